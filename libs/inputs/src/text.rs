//! [`TextRule`]: how long a text may be, and which characters it may hold.
//!
//! A text input is *trimmed* (leading and trailing whitespace is never meaningful in a name or a
//! reason), then checked against three bounds:
//!
//! * **characters**: what a person reads and what the storefront lays out;
//! * **bytes** (UTF-8): what Postgres, a log line or a Redis key pays for. A limit in characters
//!   alone lets 200 four-byte characters through as 800 bytes; some limits (index keys, headers)
//!   are in bytes, so every rule states both;
//! * **control characters** (Unicode category Cc: NUL, ESC, DEL, the C1 range): never part of a
//!   name, they break terminals and logs, and Postgres refuses NUL in `TEXT` outright. Multi-line
//!   texts ([`TextRule::multiline`]) allow `\n` and `\t` and nothing else of the category.
//!
//! Rules are `const` values, so each field's rule is written once and read by every layer:
//!
//! ```
//! use inputs::TextRule;
//!
//! const REASON: TextRule = TextRule::required("reason", 200);
//! assert_eq!(REASON.parse("  broken in transit ").unwrap(), "broken in transit");
//! assert_eq!(REASON.parse("nul\0").unwrap_err().field(), "reason");
//! ```

use crate::InvalidInput;

/// An opaque page token a service handed out (`next_page_token`), sent back by the client:
/// never parsed by the edge, only bounded, since it becomes a cache key and an upstream request.
pub const PAGE_TOKEN: TextRule = TextRule::required("page_token", 512)
    .optional()
    .max_bytes(512);

/// The bounds of one text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRule {
    /// The request field, as errors name it.
    pub field: &'static str,
    /// Whether an empty (or all-whitespace) value is refused.
    pub required: bool,
    /// At most this many characters (Unicode scalar values), after trimming.
    pub max_chars: usize,
    /// At most this many bytes of UTF-8, after trimming.
    pub max_bytes: usize,
    /// Whether `\n` and `\t` are allowed (every other control character never is).
    pub multiline: bool,
}

impl TextRule {
    /// A required single-line text of at most `max_chars` characters and four bytes per
    /// character (any character fits).
    pub const fn required(field: &'static str, max_chars: usize) -> Self {
        Self {
            field,
            required: true,
            max_chars,
            max_bytes: max_chars * 4,
            multiline: false,
        }
    }

    /// The same rule, but an empty value is allowed.
    pub const fn optional(self) -> Self {
        Self {
            required: false,
            ..self
        }
    }

    /// The same rule, allowing `\n` and `\t`.
    pub const fn multiline(self) -> Self {
        Self {
            multiline: true,
            ..self
        }
    }

    /// The same rule with a tighter byte bound.
    pub const fn max_bytes(self, max_bytes: usize) -> Self {
        Self { max_bytes, ..self }
    }

    /// Trims `raw` and checks it; the trimmed text, or the first broken bound.
    pub fn parse<'a>(&self, raw: &'a str) -> Result<&'a str, InvalidInput> {
        let text = raw.trim();
        if text.is_empty() {
            return if self.required {
                Err(self.refuse("is required"))
            } else {
                Ok(text)
            };
        }
        // Bytes first: it bounds the work of counting characters in a hostile megabyte.
        if text.len() > self.max_bytes {
            return Err(self.refuse(format!("must be at most {} bytes", self.max_bytes)));
        }
        if text.chars().count() > self.max_chars {
            return Err(self.refuse(format!("must be at most {} characters", self.max_chars)));
        }
        if text.chars().any(|c| self.refuses(c)) {
            return Err(self.refuse(if self.multiline {
                "must not contain control characters other than newlines and tabs"
            } else {
                "must not contain control characters"
            }));
        }
        Ok(text)
    }

    fn refuses(&self, c: char) -> bool {
        c.is_control() && !(self.multiline && matches!(c, '\n' | '\t'))
    }

    fn refuse(&self, reason: impl Into<String>) -> InvalidInput {
        InvalidInput::new(self.field, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: TextRule = TextRule::required("name", 5);

    #[test]
    fn text_is_trimmed_and_bounded_in_characters() {
        assert_eq!(NAME.parse("  ab  ").unwrap(), "ab");
        assert_eq!(
            NAME.parse("ééééé").unwrap(),
            "ééééé",
            "5 characters, 10 bytes"
        );
        let err = NAME.parse("abcdef").unwrap_err();
        assert_eq!(err.to_string(), "name: must be at most 5 characters");
    }

    #[test]
    fn text_is_bounded_in_bytes() {
        let tight = NAME.max_bytes(6);
        assert_eq!(tight.parse("abcdé").unwrap(), "abcdé");
        let err = tight.parse("ééééé").unwrap_err();
        assert_eq!(err.to_string(), "name: must be at most 6 bytes");
    }

    #[test]
    fn required_and_optional() {
        assert_eq!(NAME.parse("   ").unwrap_err().reason(), "is required");
        assert_eq!(NAME.optional().parse("   ").unwrap(), "");
    }

    #[test]
    fn control_characters_are_refused_and_newlines_only_where_allowed() {
        for bad in ["a\0b", "a\u{1b}b", "a\u{7f}", "a\u{85}b", "a\nb", "a\tb"] {
            assert_eq!(NAME.parse(bad).unwrap_err().field(), "name", "{bad:?}");
        }
        let text = TextRule::required("description", 20).multiline();
        assert_eq!(text.parse("line\nnext\tcol").unwrap(), "line\nnext\tcol");
        assert!(text.parse("a\0b").is_err());
        assert!(text.parse("a\rb").is_err());
    }
}
