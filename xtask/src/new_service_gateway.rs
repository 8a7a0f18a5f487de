//! `--expose` of `cargo xtask new-service`: the gateway's side of a new service.
//!
//! | where | what |
//! |---|---|
//! | `services/gateway/src/config.rs` | the upstream (`GATEWAY_<SERVICE>_URLS`, `GATEWAY_<SERVICE>_LB_STRATEGY`), in the list every upstream is in |
//! | `services/gateway/src/upstream/mod.rs` | its `Backend` |
//! | `services/gateway/src/api/<service>.rs`, `api/mod.rs` | `GET /api/v1/<service>/records/{id}`, documented in the OpenAPI document under its own tag |
//! | `k8s/base/gateway/`, the new service's NetworkPolicy | `GATEWAY_<SERVICE>_URLS=dns://<service>-headless:<port>`, the gateway's egress to it, its ingress from the gateway |
//! | `infra/compose.yaml` | the gateway's URL of it, and the gateway waiting for it to be healthy |
//!
//! Each edit anchors on the way the gateway lists its four upstreams today (the last field of
//! a kind, the closing of a list); when an anchor is missing the whole generation is refused,
//! naming the file, and nothing is written.

use anyhow::{Context as _, bail};

use crate::new_service::{Changes, Names, Vars, insert_before, render};

const API: &str = include_str!("../templates/new-service/gateway/api.rs");

pub fn expose(
    changes: &mut Changes<'_>,
    names: &Names,
    grpc_port: u16,
    vars: &Vars,
) -> anyhow::Result<()> {
    let Names {
        name, snake, upper, ..
    } = names;
    changes.create(
        format!("services/gateway/src/api/{snake}.rs").into(),
        render(API, vars)?,
    )?;
    changes.edit("services/gateway/src/config.rs", |text| {
        let text = insert_after_last_line_matching(
            text,
            |line| line.starts_with("    pub ") && line.trim_end().ends_with(": UpstreamConfig,"),
            &format!("    pub {snake}: UpstreamConfig,\n"),
        )?;
        let text = insert_after_last_line_matching(
            &text,
            |line| line.contains(": upstream(\"") && line.trim_end().ends_with(")?,"),
            &format!("            {snake}: upstream(\"{snake}\", {grpc_port})?,\n"),
        )?;
        let text = grow_array(
            &text,
            "pub fn upstreams(&self) -> [&UpstreamConfig; ",
            snake,
        )?;
        // The default endpoints the unit test expects: one more, on the new port.
        let text = match text.find("(50051..=") {
            Some(at) => {
                let end = text[at..].find(')').map(|i| at + i + 1).context("range")?;
                format!("{}.chain([{grpc_port}]){}", &text[..end], &text[end..])
            }
            None => text,
        };
        Ok(text
            .replace(
                "/// `users`, `inventory`, `orders` or `payments`.",
                "/// The upstream's name, e.g. `users` or `orders`.",
            )
            .replace(
                "/// The four upstreams, in a fixed order.",
                "/// Every upstream, in a fixed order.",
            ))
    })?;
    changes.edit("services/gateway/src/upstream/mod.rs", |text| {
        let text = insert_after_last_line_matching(
            text,
            |line| line.starts_with("    pub ") && line.trim_end().ends_with(": Backend,"),
            &format!("    pub {snake}: Backend,\n"),
        )?;
        let text = insert_after_last_line_matching(
            &text,
            |line| line.contains(": backend(&config.") && line.trim_end().ends_with(")?,"),
            &format!("            {snake}: backend(&config.{snake}, config)?,\n"),
        )?;
        Ok(
            grow_array(&text, "pub fn all(&self) -> [&Backend; ", snake)?
                .replace("/// The four services.", "/// Every upstream service."),
        )
    })?;
    changes.edit("services/gateway/src/api/mod.rs", |text| {
        let text = insert_before(text, "pub mod wire;", &format!("pub mod {snake};\n"))?;
        let text = insert_before(
            &text,
            "        (name = \"admin\",",
            &format!(
                "        (name = \"{name}\", description = \"Records of the {name} service, public\"),\n"
            ),
        )?;
        let Some(routes) = text.find("pub fn routes(") else {
            bail!("expected `pub fn routes(`");
        };
        let Some(end) = text[routes..].find(";\n}").map(|at| routes + at) else {
            bail!("expected the route chain of `routes` to end with `;`");
        };
        Ok(format!(
            "{}\n        .service({snake}::get_{snake}_record){}",
            &text[..end],
            &text[end..]
        ))
    })?;
    changes.edit("k8s/base/gateway/config.env", |text| {
        insert_after_last_line_matching(
            text,
            |line| line.starts_with("GATEWAY_") && line.contains("_URLS=dns://"),
            &format!("GATEWAY_{upper}_URLS=dns://{name}-headless:{grpc_port}\n"),
        )
    })?;
    changes.edit("k8s/base/gateway/networkpolicy.yaml", |text| {
        insert_before(
            text,
            "    - to:\n        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: redis\n",
            &format!(
                "    - to:\n        - podSelector:\n            matchLabels:\n              \
                 app.kubernetes.io/name: {name}\n      ports:\n        - port: {grpc_port}\n"
            ),
        )
    })?;
    changes.edit("infra/compose.yaml", |text| {
        let Some(gateway) = text.find("\n  gateway:\n") else {
            bail!("expected the gateway's service");
        };
        let (head, tail) = text.split_at(gateway);
        let tail = insert_after_last_line_matching(
            tail,
            |line| line.starts_with("      GATEWAY_") && line.contains("_URLS: "),
            &format!("      GATEWAY_{upper}_URLS: http://{name}:{grpc_port}\n"),
        )?;
        let tail = insert_before(
            &tail,
            "      redis:\n        condition: service_healthy",
            &format!("      {name}:\n        condition: service_healthy\n"),
        )?;
        Ok(format!("{head}{tail}"))
    })?;
    Ok(())
}

/// `text` with `insertion` after the last line `matches` accepts.
fn insert_after_last_line_matching(
    text: &str,
    matches: impl Fn(&str) -> bool,
    insertion: &str,
) -> anyhow::Result<String> {
    let mut end = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        if matches(line) {
            end = Some(offset);
        }
    }
    let Some(end) = end else {
        bail!("expected a line listing an upstream, to add {insertion:?} after it");
    };
    Ok(format!("{}{insertion}{}", &text[..end], &text[end..]))
}

/// `[&T; N]` after `signature` becomes `[&T; N + 1]`, and the array literal that follows gains
/// `&self.<field>`.
fn grow_array(text: &str, signature: &str, field: &str) -> anyhow::Result<String> {
    let Some(at) = text.find(signature) else {
        bail!("expected `{signature}…`");
    };
    let count_at = at + signature.len();
    let digits: String = text[count_at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let count: usize = digits.parse().context("the array's length")?;
    let after_count = count_at + digits.len();
    let Some(literal) = text[after_count..].find("[&self.").map(|i| after_count + i) else {
        bail!("expected the array literal after `{signature}…`");
    };
    let Some(close) = text[literal..].find(']').map(|i| literal + i) else {
        bail!("the array literal after `{signature}…` is not closed");
    };
    let body = text[literal..close].trim_end().trim_end_matches(',');
    Ok(format!(
        "{}{}{}{body}, &self.{field}{}",
        &text[..count_at],
        count + 1,
        &text[after_count..literal],
        &text[close..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_of_upstreams_grow_by_one() {
        let text = "    pub fn all(&self) -> [&Backend; 4] {\n        [&self.users, &self.inventory, &self.orders, &self.payments]\n    }\n";
        assert_eq!(
            grow_array(text, "pub fn all(&self) -> [&Backend; ", "shipping").unwrap(),
            "    pub fn all(&self) -> [&Backend; 5] {\n        [&self.users, &self.inventory, &self.orders, &self.payments, &self.shipping]\n    }\n"
        );
    }
}
