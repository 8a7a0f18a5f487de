//! Honouring the caller's deadline (`grpc-timeout`) with the right status code.
//!
//! tonic's server already stops a call when its `grpc-timeout` passes, but it answers CANCELLED
//! ("Timeout expired"), and so does tonic's client when its own copy of the timer fires. The gRPC
//! spec says DEADLINE_EXCEEDED, and callers (the saga's retry policy above all) treat the two
//! differently: CANCELLED means "the caller gave up", DEADLINE_EXCEEDED means "too slow, the
//! outcome is unknown, retry with the same idempotency key".
//!
//! So each handler runs under a budget slightly shorter than the caller's timeout, and answers
//! DEADLINE_EXCEEDED itself when the budget is spent. The margin leaves time for that answer to
//! reach the caller before either tonic timer fires.

use std::time::Duration;

use tonic::metadata::MetadataMap;

use crate::error::PaymentsError;

/// The smallest and largest share of the caller's timeout kept back for answering in time.
const MIN_MARGIN: Duration = Duration::from_millis(5);
const MAX_MARGIN: Duration = Duration::from_millis(100);

/// The time this call may take: the caller's `grpc-timeout` minus a margin (a tenth of it,
/// between 5 ms and 100 ms). `None` when the caller set no deadline.
pub fn budget(metadata: &MetadataMap) -> Option<Duration> {
    let timeout = metadata
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)?;
    let margin = (timeout / 10).clamp(MIN_MARGIN, MAX_MARGIN);
    Some(timeout.saturating_sub(margin))
}

/// Runs `work` within `budget`; when the budget is spent, the work is dropped (an open database
/// transaction rolls back) and the caller gets DEADLINE_EXCEEDED.
pub async fn within<T>(
    budget: Option<Duration>,
    work: impl Future<Output = Result<T, PaymentsError>>,
) -> Result<T, PaymentsError> {
    match budget {
        None => work.await,
        Some(budget) => tokio::time::timeout(budget, work)
            .await
            .unwrap_or(Err(PaymentsError::DeadlineExceeded)),
    }
}

/// `grpc-timeout` is at most 8 digits and a unit: H, M, S, m (milli), u (micro), n (nano).
fn parse_grpc_timeout(raw: &str) -> Option<Duration> {
    let split = raw.len().checked_sub(1)?;
    let (digits, unit) = raw.split_at_checked(split)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    match unit {
        "H" => Some(Duration::from_secs(amount * 3600)),
        "M" => Some(Duration::from_secs(amount * 60)),
        "S" => Some(Duration::from_secs(amount)),
        "m" => Some(Duration::from_millis(amount)),
        "u" => Some(Duration::from_micros(amount)),
        "n" => Some(Duration::from_nanos(amount)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(timeout: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-timeout", timeout.parse().unwrap());
        metadata
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_grpc_timeout("1500000u"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_grpc_timeout("20000000n"),
            Some(Duration::from_millis(20))
        );
        for raw in ["", "S", "10", "10s", "123456789S", "-1S", "1.5S", "１S"] {
            assert_eq!(parse_grpc_timeout(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn the_budget_keeps_a_bounded_margin() {
        assert_eq!(budget(&MetadataMap::new()), None);
        assert_eq!(budget(&metadata("500m")), Some(Duration::from_millis(450)));
        assert_eq!(budget(&metadata("20m")), Some(Duration::from_millis(15)));
        assert_eq!(budget(&metadata("10S")), Some(Duration::from_millis(9900)));
        assert_eq!(budget(&metadata("2m")), Some(Duration::ZERO));
    }

    #[tokio::test]
    async fn work_past_the_budget_is_deadline_exceeded() {
        let never = std::future::pending::<Result<(), PaymentsError>>();
        let outcome = within(Some(Duration::from_millis(20)), never).await;
        assert!(matches!(outcome, Err(PaymentsError::DeadlineExceeded)));
        let fast = async { Ok::<_, PaymentsError>(7) };
        assert_eq!(
            within(Some(Duration::from_millis(100)), fast)
                .await
                .unwrap(),
            7
        );
        assert_eq!(
            within(None, async { Ok::<_, PaymentsError>(8) })
                .await
                .unwrap(),
            8
        );
    }
}
