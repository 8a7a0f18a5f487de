//! Which gRPC failures are worth a retry, and which say the upstream is unwell.
//!
//! These are two different questions with different answers:
//!
//! | code | retry? | counts against the breaker? | why |
//! |---|---|---|---|
//! | UNAVAILABLE | yes | yes | the replica is down or restarting, or the connection failed |
//! | RESOURCE_EXHAUSTED | yes | yes | the upstream is shedding load: back off, then try again |
//! | ABORTED | yes | no | a concurrency conflict (optimistic lock lost): a healthy answer, try again |
//! | DEADLINE_EXCEEDED | if opted in | yes | the upstream is too slow; but it may have done the work |
//! | INTERNAL, UNKNOWN, DATA_LOSS | no | yes | the upstream is broken; repeating the call will not fix it |
//! | INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, OUT_OF_RANGE, PERMISSION_DENIED, UNAUTHENTICATED, UNIMPLEMENTED | no | no | an answer about *this request*, from a healthy upstream |
//! | CANCELLED | no | no | the caller gave up; it says nothing about the upstream |
//!
//! DEADLINE_EXCEEDED is not retried by default: the attempt may have finished on the server
//! after the client stopped waiting, the upstream is evidently slow (a retry adds load exactly
//! there), and the caller's own deadline has often passed too. Opt in
//! ([`is_retryable_including_deadline`], [`Upstream::retrying_deadline_exceeded`]) only for
//! idempotent calls whose per-attempt deadline is well inside the caller's overall one.
//!
//! Always classify a [`Status`] through [`effective_code`], not [`Status::code`]: tonic reports
//! a deadline that expired on the *client* as CANCELLED.

mod upstream;

use std::error::Error;

use tonic::{Code, Status, TimeoutExpired};

pub use upstream::Upstream;

/// The code a resilience policy should act on.
///
/// tonic enforces the `grpc-timeout` deadline on the client as well as on the server. When the
/// client's timer fires first — usual when the upstream hangs, since the server's timer started
/// later — tonic returns CANCELLED with the message "Timeout expired" and a [`TimeoutExpired`]
/// in the status's source chain. That is a missed deadline, not a caller that gave up, so it is
/// reported here as DEADLINE_EXCEEDED; every other status keeps its code.
pub fn effective_code(status: &Status) -> Code {
    let code = status.code();
    if code == Code::Cancelled && caused_by_timeout(status) {
        return Code::DeadlineExceeded;
    }
    code
}

fn caused_by_timeout(status: &Status) -> bool {
    let mut source = status.source();
    while let Some(error) = source {
        if error.is::<TimeoutExpired>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Transient failures that a later attempt may not meet: UNAVAILABLE, RESOURCE_EXHAUSTED and
/// ABORTED. DEADLINE_EXCEEDED is deliberately left out (see the [module docs](self)).
pub fn is_retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::ResourceExhausted | Code::Aborted
    )
}

/// [`is_retryable`], plus DEADLINE_EXCEEDED for callers that opted in.
pub fn is_retryable_including_deadline(code: Code) -> bool {
    code == Code::DeadlineExceeded || is_retryable(code)
}

/// Whether a failure says the upstream itself is unwell — the only failures a circuit breaker
/// should count. Answers about the request (NOT_FOUND, INVALID_ARGUMENT, …) do not.
pub fn is_upstream_failure(code: Code) -> bool {
    // Exhaustive on purpose: a new code must be classified, not silently defaulted.
    match code {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Internal
        | Code::Unknown
        | Code::ResourceExhausted
        | Code::DataLoss => true,
        Code::Ok
        | Code::Cancelled
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Unauthenticated => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    fn matching(classify: fn(Code) -> bool) -> Vec<Code> {
        ALL.into_iter().filter(|code| classify(*code)).collect()
    }

    #[test]
    fn only_transient_codes_are_retryable() {
        assert_eq!(
            matching(is_retryable),
            vec![Code::ResourceExhausted, Code::Aborted, Code::Unavailable]
        );
    }

    #[test]
    fn deadline_exceeded_is_retryable_only_when_opted_in() {
        assert!(!is_retryable(Code::DeadlineExceeded));
        assert_eq!(
            matching(is_retryable_including_deadline),
            vec![
                Code::DeadlineExceeded,
                Code::ResourceExhausted,
                Code::Aborted,
                Code::Unavailable
            ]
        );
    }

    #[test]
    fn upstream_failures_are_the_codes_of_an_unwell_upstream() {
        assert_eq!(
            matching(is_upstream_failure),
            vec![
                Code::Unknown,
                Code::DeadlineExceeded,
                Code::ResourceExhausted,
                Code::Internal,
                Code::Unavailable,
                Code::DataLoss
            ]
        );
    }

    #[test]
    fn answers_about_the_request_never_count_against_the_upstream() {
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::FailedPrecondition,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::OutOfRange,
            Code::Cancelled,
        ] {
            assert!(!is_upstream_failure(code), "{code:?}");
            assert!(!is_retryable_including_deadline(code), "{code:?}");
        }
    }

    #[test]
    fn a_client_side_timeout_is_a_missed_deadline_not_a_cancellation() {
        // Exactly what tonic's channel builds when its grpc-timeout timer fires.
        let status = Status::from_error(Box::new(TimeoutExpired(())));
        assert_eq!(status.code(), Code::Cancelled);
        assert_eq!(effective_code(&status), Code::DeadlineExceeded);
        assert!(is_upstream_failure(effective_code(&status)));
    }

    #[test]
    fn a_timeout_deeper_in_the_source_chain_is_found() {
        #[derive(Debug, thiserror::Error)]
        #[error("buffered service failed")]
        struct Wrapper(#[source] TimeoutExpired);
        let status = Status::from_error(Box::new(Wrapper(TimeoutExpired(()))));
        assert_eq!(effective_code(&status), Code::DeadlineExceeded);
    }

    #[test]
    fn other_statuses_keep_their_code() {
        assert_eq!(
            effective_code(&Status::cancelled("caller left")),
            Code::Cancelled
        );
        assert_eq!(effective_code(&Status::not_found("sku")), Code::NotFound);
        assert_eq!(
            effective_code(&Status::deadline_exceeded("server side")),
            Code::DeadlineExceeded
        );
    }
}
