//! Properties of the shared input rules, over arbitrary input: no parser panics, what a parser
//! accepts obeys the rule it states, and parsing is idempotent (the stored form parses again to
//! itself, so a value that crossed one layer crosses the next).

use inputs::{
    AdjustmentReason, CancelReason, Currency, Description, DisplayName, IdempotencyKey,
    PaymentMethod, Price, ProductName, Quantity, SearchText, Sku, StockDelta, TextRule,
};
use proptest::prelude::*;

/// Strings that hit the edges: control characters, multi-byte characters, whitespace, and
/// lengths around every limit.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("\0".to_owned()),
        Just("\u{1b}[31m".to_owned()),
        Just("\u{7f}".to_owned()),
        Just("\u{85}".to_owned()),
        Just("\n".to_owned()),
        Just("\t".to_owned()),
        Just(" ".to_owned()),
        Just("é".to_owned()),
        Just("😀".to_owned()),
        Just("MUG-1".to_owned()),
        Just("tok_visa_approve".to_owned()),
        "[A-Za-z0-9 _-]{0,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..120).prop_map(|parts| parts.concat())
}

fn obeys(rule: &TextRule, text: &str) {
    assert_eq!(text, text.trim());
    assert!(text.len() <= rule.max_bytes, "{} bytes", text.len());
    assert!(text.chars().count() <= rule.max_chars);
    assert!(
        text.chars()
            .all(|c| !c.is_control() || (rule.multiline && matches!(c, '\n' | '\t'))),
        "{text:?}"
    );
    assert!(!rule.required || !text.is_empty());
}

macro_rules! text_property {
    ($name:ident, $type:ty) => {
        proptest! {
            #[test]
            fn $name(raw in hostile_text()) {
                if let Ok(value) = <$type>::parse(&raw) {
                    obeys(&<$type>::RULE, value.as_str());
                    prop_assert_eq!(<$type>::parse(value.as_str()), Ok(value.clone()));
                }
            }
        }
    };
}

text_property!(product_names_obey_their_rule, ProductName);
text_property!(descriptions_obey_their_rule, Description);
text_property!(adjustment_reasons_obey_their_rule, AdjustmentReason);
text_property!(search_texts_obey_their_rule, SearchText);
text_property!(cancel_reasons_obey_their_rule, CancelReason);
text_property!(display_names_obey_their_rule, DisplayName);

proptest! {
    #[test]
    fn tokens_are_printable_ascii_and_reparse_to_themselves(raw in hostile_text()) {
        if let Ok(method) = PaymentMethod::parse(&raw) {
            prop_assert!(method.as_str().bytes().all(|b| b.is_ascii_graphic()));
            prop_assert!(method.as_str().len() <= PaymentMethod::MAX_CHARS);
            prop_assert_eq!(PaymentMethod::parse(method.as_str()), Ok(method.clone()));
        }
        if let Ok(key) = IdempotencyKey::parse(&raw) {
            prop_assert!(key.as_str().bytes().all(|b| b.is_ascii_graphic()));
            prop_assert!(key.as_str().len() <= IdempotencyKey::MAX_CHARS);
            prop_assert_eq!(IdempotencyKey::parse(key.as_str()), Ok(key.clone()));
        }
        if let Ok(sku) = Sku::parse(&raw) {
            prop_assert_eq!(Sku::parse(sku.as_str()), Ok(sku.clone()));
        }
        let _ = Currency::parse(&raw);
    }

    #[test]
    fn numbers_never_panic_and_stay_in_range(raw in any::<i64>(), currency in "[A-Z]{3}") {
        if let Ok(quantity) = Quantity::parse(raw) {
            prop_assert!((1..=Quantity::MAX).contains(&quantity.get()));
        }
        if let Ok(delta) = StockDelta::parse(raw) {
            prop_assert!(delta.get() != 0 && delta.get().abs() <= StockDelta::MAX_ABS);
        }
        if let Ok(price) = Price::parse(raw, &currency) {
            prop_assert!(price.amount_minor() > 0);
        }
    }
}
