use std::fmt;

/// An ISO 4217 alphabetic currency code: exactly three upper-case ASCII letters (`EUR`, `USD`).
///
/// Stored as three bytes, so it is `Copy` and money can be passed around by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, MoneyError> {
        match raw.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(MoneyError::Currency(raw.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only upper-case ASCII letters get in (see `parse`), so this is always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of money: integer minor units (cents for EUR) in one currency. Never a float.
///
/// Amounts are never negative: the ledger records what was authorized, captured and refunded,
/// each a positive quantity. Arithmetic is checked, and never mixes currencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be an ISO 4217 code of three upper-case letters, got {0:?}")]
    Currency(String),
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must not be negative")]
    Negative,
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("the amount is out of range")]
    Overflow,
}

impl Money {
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// Any amount that is not negative (totals may be zero).
    pub fn new(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Self { minor, currency })
    }

    /// An amount that moves money: strictly positive. Every command and event amount is one.
    pub fn positive(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor <= 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(Self { minor, currency })
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Money::new(minor, self.currency)
    }

    /// `self - other`; an error if it would go below zero.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Money::new(minor, self.currency)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

/// `1250 EUR` means 1250 minor units (12.50 EUR): the number of decimals depends on the
/// currency, so messages never guess it.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (minor units)", self.minor, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn currencies_are_three_upper_case_ascii_letters() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        assert_eq!(Currency::parse("JPY").unwrap().to_string(), "JPY");
        for raw in [
            "", "EU", "EURO", "eur", "Eur", "E1R", "EÜR", " EUR", "EUR ", "€",
        ] {
            assert_eq!(
                Currency::parse(raw),
                Err(MoneyError::Currency(raw.to_owned())),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn positive_amounts_exclude_zero_and_negatives() {
        assert_eq!(Money::positive(1, eur()).unwrap().minor(), 1);
        assert_eq!(Money::positive(0, eur()), Err(MoneyError::NotPositive));
        assert_eq!(Money::positive(-5, eur()), Err(MoneyError::NotPositive));
        assert_eq!(Money::new(0, eur()).unwrap(), Money::zero(eur()));
        assert_eq!(Money::new(-1, eur()), Err(MoneyError::Negative));
    }

    #[test]
    fn arithmetic_is_checked_and_never_mixes_currencies() {
        let usd = Currency::parse("USD").unwrap();
        let ten = Money::positive(10, eur()).unwrap();
        let three = Money::positive(3, eur()).unwrap();
        assert_eq!(ten.checked_add(three).unwrap().minor(), 13);
        assert_eq!(ten.checked_sub(three).unwrap().minor(), 7);
        assert_eq!(ten.checked_sub(ten).unwrap(), Money::zero(eur()));
        assert_eq!(three.checked_sub(ten), Err(MoneyError::Negative));
        assert_eq!(
            ten.checked_add(Money::positive(1, usd).unwrap()),
            Err(MoneyError::CurrencyMismatch(eur(), usd))
        );
        let max = Money::positive(i64::MAX, eur()).unwrap();
        assert_eq!(max.checked_add(three), Err(MoneyError::Overflow));
    }

    #[test]
    fn money_displays_minor_units_and_currency() {
        assert_eq!(
            Money::positive(1250, eur()).unwrap().to_string(),
            "1250 EUR (minor units)"
        );
    }
}
