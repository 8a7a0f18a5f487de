//! The payment provider (a card processor such as Stripe or Adyen), behind a trait, and the
//! simulator that stands in for it everywhere in Ferroshop.
//!
//! The simulator is deterministic where tests need determinism and faulty where they need
//! faults:
//!
//! | card token | outcome |
//! |---|---|
//! | `tok_visa_approve`, `tok_approve` | approved |
//! | `tok_visa_decline` | declined, `card_declined` |
//! | `tok_insufficient_funds` | declined, `insufficient_funds` |
//! | anything else | declined, `unknown_payment_method` |
//!
//! Fault knobs ([`ProviderFaults`], from `PAYMENTS_PROVIDER_*`): a fixed latency before every
//! answer, a probability of a transient error (the caller gets UNAVAILABLE and may retry), and a
//! hang that never answers, so that the caller's deadline is what ends the call.
//!
//! The order id is passed as the provider's **idempotency key**, as real providers allow: if a
//! first call reached the provider but its answer was lost (timeout, crash before our commit),
//! the retry gets the same authorization instead of holding the customer's money twice.

use std::time::Duration;

use uuid::Uuid;

use crate::domain::{AuthorizationOutcome, Money, PaymentMethod};

/// What the provider is asked.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest<'a> {
    /// The order id: the same key for every retry of one order's authorization.
    pub idempotency_key: Uuid,
    pub amount: Money,
    pub payment_method: &'a PaymentMethod,
}

/// The provider could not be reached or failed: nothing was decided, try again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payment provider unavailable: {0}")]
pub struct ProviderError(pub String);

/// A payment provider. `authorize` is the only operation the ledger needs from it before
/// recording anything; capture, refund and void are settled against the provider asynchronously
/// in a real deployment and are ledger entries here.
pub trait PaymentProvider: Send + Sync + 'static {
    fn authorize(
        &self,
        request: AuthorizationRequest<'_>,
    ) -> impl Future<Output = Result<AuthorizationOutcome, ProviderError>> + Send;
}

/// Failure injection for the simulator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProviderFaults {
    /// Waited before every answer.
    pub latency: Duration,
    /// Probability (0.0 to 1.0) that a call fails with [`ProviderError`].
    pub error_rate: f64,
    /// Never answer at all.
    pub hang: bool,
}

impl Default for ProviderFaults {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            error_rate: 0.0,
            hang: false,
        }
    }
}

/// The simulated provider: outcomes decided by the card token (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct SimulatedProvider {
    faults: ProviderFaults,
}

impl SimulatedProvider {
    pub fn new(faults: ProviderFaults) -> Self {
        Self { faults }
    }

    /// The outcome for a card token, without faults.
    pub fn outcome_for(token: &str) -> AuthorizationOutcome {
        let declined = |reason: &str| AuthorizationOutcome::Declined {
            reason: reason.to_owned(),
        };
        match token {
            "tok_visa_approve" | "tok_approve" => AuthorizationOutcome::Approved,
            "tok_visa_decline" => declined("card_declined"),
            "tok_insufficient_funds" => declined("insufficient_funds"),
            _ => declined("unknown_payment_method"),
        }
    }
}

impl PaymentProvider for SimulatedProvider {
    async fn authorize(
        &self,
        request: AuthorizationRequest<'_>,
    ) -> Result<AuthorizationOutcome, ProviderError> {
        if self.faults.hang {
            tracing::warn!(order_id = %request.idempotency_key, "simulated provider hangs");
            std::future::pending::<()>().await;
        }
        if !self.faults.latency.is_zero() {
            tokio::time::sleep(self.faults.latency).await;
        }
        // `random::<f64>()` is in [0, 1): a rate of 0 never fails, a rate of 1 always does.
        if self.faults.error_rate > 0.0 && rand::random::<f64>() < self.faults.error_rate {
            tracing::warn!(order_id = %request.idempotency_key, "simulated provider error");
            return Err(ProviderError("simulated transient failure".to_owned()));
        }
        Ok(Self::outcome_for(request.payment_method.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn request(method: &PaymentMethod) -> AuthorizationRequest<'_> {
        AuthorizationRequest {
            idempotency_key: Uuid::now_v7(),
            amount: Money::positive(100, Currency::parse("EUR").unwrap()).unwrap(),
            payment_method: method,
        }
    }

    async fn authorize(
        provider: &SimulatedProvider,
        token: &str,
    ) -> Result<AuthorizationOutcome, ProviderError> {
        let method = PaymentMethod::parse(token).unwrap();
        provider.authorize(request(&method)).await
    }

    #[tokio::test]
    async fn card_tokens_decide_the_outcome() {
        let provider = SimulatedProvider::default();
        let declined = |reason: &str| {
            Ok(AuthorizationOutcome::Declined {
                reason: reason.into(),
            })
        };
        let cases = [
            ("tok_visa_approve", Ok(AuthorizationOutcome::Approved)),
            ("tok_approve", Ok(AuthorizationOutcome::Approved)),
            ("tok_visa_decline", declined("card_declined")),
            ("tok_insufficient_funds", declined("insufficient_funds")),
            ("tok_mastercard_approve", declined("unknown_payment_method")),
            ("TOK_VISA_APPROVE", declined("unknown_payment_method")),
        ];
        for (token, expected) in cases {
            assert_eq!(authorize(&provider, token).await, expected, "{token}");
        }
    }

    #[tokio::test]
    async fn the_error_rate_bounds_are_never_and_always() {
        let never = SimulatedProvider::new(ProviderFaults {
            error_rate: 0.0,
            ..ProviderFaults::default()
        });
        let always = SimulatedProvider::new(ProviderFaults {
            error_rate: 1.0,
            ..ProviderFaults::default()
        });
        for _ in 0..200 {
            assert!(authorize(&never, "tok_approve").await.is_ok());
            assert!(authorize(&always, "tok_approve").await.is_err());
        }
    }

    #[tokio::test]
    async fn latency_delays_the_answer() {
        let provider = SimulatedProvider::new(ProviderFaults {
            latency: Duration::from_millis(50),
            ..ProviderFaults::default()
        });
        let started = std::time::Instant::now();
        assert!(authorize(&provider, "tok_approve").await.is_ok());
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_hanging_provider_never_answers() {
        let provider = SimulatedProvider::new(ProviderFaults {
            hang: true,
            // Even a fast, error-free provider: the hang comes first.
            ..ProviderFaults::default()
        });
        let answer = tokio::time::timeout(
            Duration::from_millis(100),
            authorize(&provider, "tok_approve"),
        )
        .await;
        assert!(answer.is_err(), "a hanging provider answered");
    }
}
