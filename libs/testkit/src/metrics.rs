//! Reading a `/metrics` scrape the way Prometheus does: as samples, each a name, a set of labels
//! and a value.
//!
//! A test that asks "did the service count one successful `Register`?" must look at *one* sample,
//! `grpc_server_requests_total{method="Register",code="Ok"}`. Searching the text for lines that
//! mention `Register` and, separately, lines that mention `Ok` passes when two unrelated series
//! each carry one of them (a failed `Register` and a successful health check), so the question
//! is always put to a parsed [`Scrape`].

use std::collections::BTreeMap;

/// One sample of the text exposition format: `name{label="value",…} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of one scrape, in the order the service wrote them.
#[derive(Debug, Clone)]
pub struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the Prometheus text format (comments and blank lines are skipped).
    ///
    /// # Panics
    /// On a line that is not a sample: a service that writes broken exposition text fails the
    /// test that reads it.
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                parse_sample(line).unwrap_or_else(|| panic!("not a Prometheus sample: {line:?}"))
            })
            .collect();
        Self {
            text: text.to_owned(),
            samples,
        }
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The samples named `name` that carry every one of `labels` (and possibly others).
    pub fn matching<'s>(
        &'s self,
        name: &'s str,
        labels: &'s [(&'s str, &'s str)],
    ) -> impl Iterator<Item = &'s Sample> + 's {
        self.samples.iter().filter(move |sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
        })
    }

    /// The sum over [`Scrape::matching`] samples, or `None` when there is none: the count of
    /// `Register` calls answered `Ok` is
    /// `value("grpc_server_requests_total", &[("method", "Register"), ("code", "Ok")])`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut matching = self.matching(name, labels).peekable();
        matching.peek()?;
        Some(matching.map(|sample| sample.value).sum())
    }

    /// The text as scraped, for failure messages.
    pub fn text(&self) -> &str {
        &self.text
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    // The value, then an optional timestamp.
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `key="value",…}` into `labels` and returns what follows the closing brace.
fn parse_labels<'l>(mut rest: &'l str, labels: &mut BTreeMap<String, String>) -> Option<&'l str> {
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some(after);
        }
        let (key, after_key) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after_key.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()? {
                    (_, 'n') => value.push('\n'),
                    (_, escaped) => value.push(escaped),
                },
                (at, '"') => break at,
                (_, other) => value.push(other),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        rest = &after_key[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP grpc_server_requests_total Requests.
# TYPE grpc_server_requests_total counter
grpc_server_requests_total{service="shop.users.v1.UsersService",method="Register",code="AlreadyExists"} 1
grpc_server_requests_total{service="grpc.health.v1.Health",method="Check",code="Ok"} 3
outbox_pending 0
label_escapes{path="a \"quoted\" \\ back\nslash"} 2 1700000000000
histogram_bucket{le="+Inf"} +Inf
"#;

    #[test]
    fn labels_are_matched_on_one_sample_not_across_lines() {
        let scrape = Scrape::parse(TEXT);
        // Both needles occur in the text, but never on one sample: nothing answered Register Ok.
        assert_eq!(
            scrape.value(
                "grpc_server_requests_total",
                &[("method", "Register"), ("code", "Ok")]
            ),
            None
        );
        assert_eq!(
            scrape.value(
                "grpc_server_requests_total",
                &[("method", "Register"), ("code", "AlreadyExists")]
            ),
            Some(1.0)
        );
        assert_eq!(scrape.value("grpc_server_requests_total", &[]), Some(4.0));
        assert_eq!(scrape.value("outbox_pending", &[]), Some(0.0));
    }

    #[test]
    fn escaped_label_values_timestamps_and_infinities_parse() {
        let scrape = Scrape::parse(TEXT);
        assert_eq!(
            scrape.value("label_escapes", &[("path", "a \"quoted\" \\ back\nslash")]),
            Some(2.0)
        );
        assert_eq!(
            scrape.value("histogram_bucket", &[("le", "+Inf")]),
            Some(f64::INFINITY)
        );
    }

    #[test]
    #[should_panic(expected = "not a Prometheus sample")]
    fn broken_exposition_text_fails_the_reader() {
        Scrape::parse("requests_total{code=\"Ok\" 1\n");
    }
}
