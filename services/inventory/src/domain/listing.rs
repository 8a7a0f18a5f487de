//! Listing the catalog: page sizes, opaque cursors and the text filter.
//!
//! **Cursor (keyset) pagination**: a page is "the next N active products with a SKU greater than
//! the last one you saw", ordered by SKU. Unlike `OFFSET`, it costs the same on page 1 and page
//! 1000, and a product inserted while a client pages through never shifts the pages after it
//! (no duplicates, no skipped rows). The cursor is the last SKU, base64url-encoded so clients
//! treat it as opaque and do not build their own.
//!
//! **Page size**: 0 means the default (20); anything above 100 is *clamped* to 100 rather than
//! refused, as Google's AIP-158 recommends: a client asking for "as many as possible" gets a
//! full page and a cursor, not an error.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use super::{CatalogItem, InvalidInput, Sku};

/// Products per page: 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    pub const DEFAULT: u32 = 20;
    pub const MAX: u32 = 100;

    /// 0 → 20; above 100 → 100 (clamped, never an error).
    pub fn from_request(raw: u32) -> Self {
        match raw {
            0 => Self(Self::DEFAULT),
            n => Self(n.min(Self::MAX)),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// The opaque cursor of `ListProducts`: the last SKU of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken(Sku);

impl PageToken {
    pub fn after(sku: Sku) -> Self {
        Self(sku)
    }

    /// `None` for the first page (an empty token).
    pub fn decode(raw: &str) -> Result<Option<Self>, InvalidInput> {
        if raw.is_empty() {
            return Ok(None);
        }
        let invalid = || InvalidInput::new("page_token", "is not a token from a previous page");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let sku = Sku::parse(&text).map_err(|_| invalid())?;
        Ok(Some(Self(sku)))
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_str())
    }

    pub fn last_sku(&self) -> &Sku {
        &self.0
    }
}

/// The case-insensitive text filter over name and description: the shared rule
/// (`inputs::SearchText`, at most 100 characters), plus the `ILIKE` pattern it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    /// `None` when the filter is empty (list everything).
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidInput> {
        let text = inputs::SearchText::RULE.parse(raw)?;
        Ok((!text.is_empty()).then(|| Self(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `ILIKE … ESCAPE '\'` pattern matching the text anywhere. `%`, `_` and `\` in the
    /// user's text are escaped, so "50%" finds "50% off" and not every name containing "50".
    pub fn like_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in self.0.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// A validated `ListProducts` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub size: PageSize,
    pub after: Option<PageToken>,
    pub text: Option<SearchText>,
}

impl ListQuery {
    pub fn parse(page_size: u32, page_token: &str, query: &str) -> Result<Self, InvalidInput> {
        Ok(Self {
            size: PageSize::from_request(page_size),
            after: PageToken::decode(page_token)?,
            text: SearchText::parse(query)?,
        })
    }

    /// A canonical, printable identity of the query for cache keys: two requests that ask for
    /// the same page get the same string (`20:-:-`, `10:TVVHLTE:bXVn`).
    pub fn cache_key(&self) -> String {
        let after = self
            .after
            .as_ref()
            .map_or_else(|| "-".to_owned(), PageToken::encode);
        let text = self
            .text
            .as_ref()
            .map_or_else(|| "-".to_owned(), |t| URL_SAFE_NO_PAD.encode(t.as_str()));
        format!("{}:{after}:{text}", self.size.get())
    }
}

/// One page of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogPage {
    pub items: Vec<CatalogItem>,
    /// `None` on the last page.
    pub next: Option<PageToken>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_and_clamp() {
        assert_eq!(PageSize::from_request(0).get(), 20);
        assert_eq!(PageSize::from_request(1).get(), 1);
        assert_eq!(PageSize::from_request(100).get(), 100);
        assert_eq!(PageSize::from_request(101).get(), 100);
        assert_eq!(PageSize::from_request(u32::MAX).get(), 100);
    }

    #[test]
    fn page_tokens_round_trip_and_are_opaque() {
        let token = PageToken::after(Sku::parse("MUG-CERAMIC-350").unwrap());
        let encoded = token.encode();
        assert!(!encoded.contains("MUG"), "opaque: {encoded}");
        assert_eq!(PageToken::decode(&encoded).unwrap(), Some(token));
        assert_eq!(PageToken::decode("").unwrap(), None);
    }

    #[test]
    fn forged_page_tokens_are_refused() {
        let not_a_sku = URL_SAFE_NO_PAD.encode("mug; DROP TABLE");
        for raw in ["!!!", "TVVH=", not_a_sku.as_str()] {
            assert_eq!(
                PageToken::decode(raw).unwrap_err().field(),
                "page_token",
                "{raw}"
            );
        }
    }

    #[test]
    fn search_text_is_trimmed_bounded_and_optional() {
        assert_eq!(SearchText::parse("   ").unwrap(), None);
        assert_eq!(SearchText::parse(" mug ").unwrap().unwrap().as_str(), "mug");
        assert!(SearchText::parse(&"q".repeat(100)).is_ok());
        assert_eq!(
            SearchText::parse(&"q".repeat(101)).unwrap_err().field(),
            "query"
        );
    }

    #[test]
    fn like_wildcards_in_the_text_are_escaped() {
        let pattern = |raw: &str| SearchText::parse(raw).unwrap().unwrap().like_pattern();
        assert_eq!(pattern("mug"), "%mug%");
        assert_eq!(pattern("50%"), r"%50\%%");
        assert_eq!(pattern("a_b"), r"%a\_b%");
        assert_eq!(pattern(r"back\slash"), r"%back\\slash%");
    }

    #[test]
    fn cache_keys_identify_the_page() {
        let first = ListQuery::parse(0, "", "").unwrap();
        assert_eq!(first.cache_key(), "20:-:-");
        let token = PageToken::after(Sku::parse("MUG-1").unwrap()).encode();
        let next = ListQuery::parse(10, &token, "Mug").unwrap();
        assert_eq!(next.cache_key(), format!("10:{token}:TXVn"));
        assert_ne!(
            ListQuery::parse(10, "", "mug").unwrap().cache_key(),
            ListQuery::parse(10, "", "Mug").unwrap().cache_key(),
            "the text is kept as typed; Postgres does the case folding"
        );
    }
}
