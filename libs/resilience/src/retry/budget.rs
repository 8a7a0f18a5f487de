//! A retry budget: retries may add at most a fixed fraction to an upstream's load.
//!
//! Retries make single failures invisible, but they multiply load exactly when an upstream can
//! least afford it: with 3 attempts per call, a service that starts failing suddenly receives
//! up to 3× its normal traffic — a *retry storm* that keeps it down. Every layer that retries
//! multiplies again (gateway × orders × inventory: 3 × 3 × 3 = 27×).
//!
//! A per-call attempt limit cannot prevent this; a budget shared by *all* calls to one upstream
//! can. This is the token-bucket budget of Finagle and linkerd:
//!
//! * every original request **deposits** `ratio` tokens (0.2: one retry per five requests);
//! * every retry **withdraws** one token, and is not made if there is none;
//! * the bucket holds at most `max_tokens`, which bounds the burst of retries an upstream sees
//!   when it starts failing after a long healthy spell;
//! * `min_retries_per_second` are always allowed on top, so a low-traffic caller (a saga step
//!   run a few times a minute) can still retry at all.
//!
//! When the upstream is healthy the budget is invisible. When it fails hard, retries shrink to
//! about `ratio` of the traffic plus the small floor, instead of multiplying it.
//!
//! Tokens are counted in thousandths, in integers, so the accounting is exact: five deposits of
//! 0.2 pay for exactly one retry, with no floating-point drift.
//!
//! **Why this is written here rather than taken from tower.** `tower::retry::budget::TpsBudget`
//! is the same idea (Finagle's budget, as linkerd uses it) and the right choice inside a tower
//! stack. It is kept hand-written here because it is one of the patterns this codebase teaches,
//! and because of two differences that matter to this crate: tower's budget reads tokio's clock
//! and keeps a sliding window of generations in floating point, while this one is a plain token
//! bucket in integer thousandths on an injectable [`Clock`], so `libs/resilience` has no runtime
//! dependency and its tests step time exactly ([`ManualClock`](crate::clock::ManualClock)).

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Instant,
};

use crate::{
    InvalidConfig,
    clock::{Clock, SystemClock},
};

/// Thousandths of a token per token.
const SCALE: u64 = 1000;

/// The settings of a [`RetryBudget`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    /// Tokens deposited by each original request, in `[0, 1]` (precision 0.001).
    pub ratio: f64,
    /// Retries allowed every second regardless of the balance.
    pub min_retries_per_second: u32,
    /// The most tokens the bucket can save up.
    pub max_tokens: u32,
}

impl Default for BudgetConfig {
    /// linkerd's defaults: retries add at most 20% load, 10 per second are always allowed.
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_retries_per_second: 10,
            max_tokens: 100,
        }
    }
}

impl BudgetConfig {
    /// Checks the settings, naming the first one that is unusable.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if !(self.ratio.is_finite() && (0.0..=1.0).contains(&self.ratio)) {
            return Err(InvalidConfig::new(
                "ratio",
                format!("must be between 0 and 1, got {}", self.ratio),
            ));
        }
        Ok(())
    }
}

/// The retry budget of one upstream, shared by every call to it.
///
/// Cheap to clone: clones share one account. Give each upstream its own budget, so a failing
/// payments service cannot spend the retries of inventory calls.
#[derive(Clone, Debug)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: BudgetConfig,
    deposit: u64,
    max_balance: u64,
    clock: Arc<dyn Clock>,
    origin: Instant,
    account: Mutex<Account>,
}

#[derive(Debug, Default)]
struct Account {
    /// In thousandths of a token.
    balance: u64,
    /// The second (counted from `origin`) that `floor_used` belongs to.
    second: u64,
    /// Retries granted by the per-second floor in that second.
    floor_used: u32,
}

impl RetryBudget {
    /// A budget on the system clock.
    pub fn new(config: BudgetConfig) -> Result<Self, InvalidConfig> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A budget reading time from `clock` (a [`ManualClock`](crate::clock::ManualClock) in
    /// tests).
    pub fn with_clock(config: BudgetConfig, clock: Arc<dyn Clock>) -> Result<Self, InvalidConfig> {
        config.validate()?;
        Ok(Self::from_valid(config, clock))
    }

    fn from_valid(config: BudgetConfig, clock: Arc<dyn Clock>) -> Self {
        // The ratio is in [0, 1], so the rounded product is in [0, SCALE].
        let deposit = (config.ratio * SCALE as f64).round() as u64;
        let origin = clock.now();
        Self {
            inner: Arc::new(Inner {
                config,
                deposit,
                max_balance: u64::from(config.max_tokens) * SCALE,
                clock,
                origin,
                account: Mutex::new(Account::default()),
            }),
        }
    }

    /// The settings this budget was built with.
    pub fn config(&self) -> BudgetConfig {
        self.inner.config
    }

    /// Records an original request (not a retry): adds `ratio` tokens, up to `max_tokens`.
    pub fn deposit(&self) {
        let mut account = self.account();
        account.balance = account
            .balance
            .saturating_add(self.inner.deposit)
            .min(self.inner.max_balance);
    }

    /// Asks to make one retry. `true` means go ahead (one token was spent, or the per-second
    /// floor covered it); `false` means the budget is exhausted and the caller should give up.
    pub fn try_withdraw(&self) -> bool {
        let second = self
            .inner
            .clock
            .now()
            .saturating_duration_since(self.inner.origin)
            .as_secs();
        let mut account = self.account();
        if account.balance >= SCALE {
            account.balance -= SCALE;
            return true;
        }
        if account.second != second {
            account.second = second;
            account.floor_used = 0;
        }
        if account.floor_used < self.inner.config.min_retries_per_second {
            account.floor_used += 1;
            return true;
        }
        false
    }

    fn account(&self) -> MutexGuard<'_, Account> {
        // Nothing in this module panics while holding the lock, so a poisoned account is
        // still consistent.
        self.inner
            .account
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for RetryBudget {
    /// A budget with [`BudgetConfig::default`] on the system clock.
    fn default() -> Self {
        Self::from_valid(BudgetConfig::default(), Arc::new(SystemClock))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    fn budget(ratio: f64, floor: u32, max_tokens: u32) -> (RetryBudget, ManualClock) {
        let clock = ManualClock::new();
        let config = BudgetConfig {
            ratio,
            min_retries_per_second: floor,
            max_tokens,
        };
        let budget = RetryBudget::with_clock(config, Arc::new(clock.clone())).unwrap();
        (budget, clock)
    }

    fn withdrawals(budget: &RetryBudget) -> usize {
        std::iter::from_fn(|| budget.try_withdraw().then_some(()))
            .take(10_000)
            .count()
    }

    #[test]
    fn without_deposits_only_the_floor_is_available() {
        let (budget, _clock) = budget(0.2, 3, 100);
        assert_eq!(withdrawals(&budget), 3);
    }

    #[test]
    fn five_requests_at_a_fifth_pay_for_exactly_one_retry() {
        let (budget, _clock) = budget(0.2, 0, 100);
        for _ in 0..4 {
            budget.deposit();
        }
        assert!(!budget.try_withdraw(), "four fifths are not a token");
        budget.deposit();
        assert!(budget.try_withdraw());
        assert!(!budget.try_withdraw());
    }

    #[test]
    fn retries_are_bounded_by_the_ratio_of_requests() {
        let (budget, _clock) = budget(0.2, 0, 1000);
        for _ in 0..1000 {
            budget.deposit();
        }
        assert_eq!(withdrawals(&budget), 200);
    }

    #[test]
    fn the_balance_is_spent_before_the_floor() {
        let (budget, clock) = budget(1.0, 2, 100);
        budget.deposit();
        budget.deposit();
        assert!(
            budget.try_withdraw() && budget.try_withdraw(),
            "paid from the balance"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            withdrawals(&budget),
            2,
            "the balance is empty; only the floor is left"
        );
    }

    #[test]
    fn the_floor_covers_retries_once_the_balance_is_empty() {
        let (budget, _clock) = budget(1.0, 2, 100);
        budget.deposit();
        budget.deposit();
        assert_eq!(
            withdrawals(&budget),
            2 + 2,
            "two tokens, then the floor of two"
        );
    }

    #[test]
    fn the_floor_renews_every_second_but_does_not_accumulate() {
        let (budget, clock) = budget(0.2, 2, 100);
        assert_eq!(withdrawals(&budget), 2);
        clock.advance(Duration::from_millis(999));
        assert!(!budget.try_withdraw(), "still the same second");
        clock.advance(Duration::from_millis(1));
        assert_eq!(withdrawals(&budget), 2);
        clock.advance(Duration::from_secs(10));
        assert_eq!(withdrawals(&budget), 2, "quiet seconds are not saved up");
    }

    #[test]
    fn savings_are_capped_at_max_tokens() {
        let (budget, _clock) = budget(0.5, 0, 3);
        for _ in 0..100 {
            budget.deposit();
        }
        assert_eq!(withdrawals(&budget), 3);
    }

    #[test]
    fn a_zero_ratio_leaves_only_the_floor() {
        let (budget, clock) = budget(0.0, 1, 100);
        for _ in 0..100 {
            budget.deposit();
        }
        assert_eq!(withdrawals(&budget), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(withdrawals(&budget), 1);
    }

    #[test]
    fn a_zero_budget_allows_no_retries_at_all() {
        let (budget, _clock) = budget(0.0, 0, 100);
        budget.deposit();
        assert!(!budget.try_withdraw());
    }

    #[test]
    fn clones_share_one_account() {
        let (budget, _clock) = budget(1.0, 0, 100);
        let other = budget.clone();
        budget.deposit();
        assert!(other.try_withdraw());
        assert!(!budget.try_withdraw());
    }

    #[test]
    fn the_ratio_must_be_a_fraction() {
        for ratio in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let config = BudgetConfig {
                ratio,
                ..BudgetConfig::default()
            };
            let err = RetryBudget::new(config).unwrap_err();
            assert_eq!(err.setting, "ratio");
        }
        for ratio in [0.0, 0.2, 1.0] {
            let config = BudgetConfig {
                ratio,
                ..BudgetConfig::default()
            };
            assert!(RetryBudget::new(config).is_ok());
        }
    }

    #[test]
    fn the_default_budget_matches_the_default_config() {
        let budget = RetryBudget::default();
        assert_eq!(budget.config(), BudgetConfig::default());
        for _ in 0..5 {
            budget.deposit();
        }
        assert_eq!(budget.account().balance, SCALE);
    }
}
