//! What a person sends about themselves. (Emails and passwords are parsed by the users service
//! alone: nothing else reads them.)

use std::fmt;

use crate::{InvalidInput, TextRule, catalog::bounded_text};

bounded_text!(
    /// How the storefront greets the user: 1 to 80 characters, one line.
    DisplayName,
    TextRule::required("display_name", 80)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_short_single_lines() {
        assert_eq!(DisplayName::parse(" Ada ").unwrap().as_str(), "Ada");
        for bad in ["", "a\nb", "\u{0}", &"x".repeat(81)] {
            assert_eq!(DisplayName::parse(bad).unwrap_err().field(), "display_name");
        }
    }
}
