//! Rate limiting at the edge: per user, per IP for anonymous callers, shared by all replicas.
//!
//! Every `/api/v1` request spends from one bucket ([`gcra`]): the signed-in user's
//! (`user:<id>`, so one account cannot multiply its budget by spreading over addresses), or for
//! anonymous requests the client IP's (`ip:<addr>`, so login attempts and catalog scraping are
//! bounded too). The state is in Redis ([`store`]) so that every gateway replica sees the same
//! bucket, with a local fallback when Redis is away.
//!
//! Every answer carries the client's standing, in the IETF draft's headers and the older
//! `X-RateLimit-*` ones many clients still read:
//!
//! | header | value |
//! |---|---|
//! | `RateLimit-Limit` / `X-RateLimit-Limit` | the burst: requests allowed at once from a full bucket |
//! | `RateLimit-Remaining` / `X-RateLimit-Remaining` | requests that would be allowed right now |
//! | `RateLimit-Reset` / `X-RateLimit-Reset` | seconds until the bucket is full again |
//! | `RateLimit-Policy` | `<per minute>;w=60;burst=<burst>` |
//! | `Retry-After` (429 only) | seconds until one more request fits |
//!
//! The client IP is the TCP peer; `X-Forwarded-For` is believed only with
//! `GATEWAY_TRUST_FORWARDED_FOR=true`, i.e. behind an ingress that overwrites it — otherwise any
//! client could pick a new "IP" per request and escape the limit.

pub mod gcra;
pub mod store;

use actix_web::{
    Error, ResponseError as _,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER},
    middleware::Next,
    web,
};

pub use store::Limiter;

use self::gcra::{Decision, Gcra};
use crate::{
    auth::{self, Identity},
    problem::ApiError,
    state::Gateway,
};

/// The bucket a request spends from.
fn client_key(req: &ServiceRequest, trust_forwarded_for: bool) -> String {
    if let Identity::User(principal) = auth::identity(req.request()) {
        return format!("user:{}", principal.user_id);
    }
    let ip = if trust_forwarded_for {
        req.connection_info()
            .realip_remote_addr()
            .map(str::to_owned)
    } else {
        req.peer_addr().map(|addr| addr.ip().to_string())
    };
    format!("ip:{}", ip.unwrap_or_else(|| "unknown".to_owned()))
}

pub async fn middleware(
    gateway: web::Data<Gateway>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if !req.path().starts_with("/api/v1/") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let key = client_key(&req, gateway.trust_forwarded_for);
    let (decision, store) = gateway.limiter.check(&key).await;
    let outcome = if decision.allowed {
        "allowed"
    } else {
        "limited"
    };
    metrics::counter!(
        "gateway_rate_limit_decisions_total",
        "decision" => outcome,
        "store" => store.label()
    )
    .increment(1);
    let gcra = *gateway.limiter.gcra();
    if !decision.allowed {
        tracing::info!(key, store = store.label(), "rate limit exceeded");
        let mut response = ApiError::TooManyRequests {
            retry_after_secs: decision.retry_after_secs(),
        }
        .error_response();
        set_headers(response.headers_mut(), &decision, &gcra);
        return Ok(req.into_response(response).map_into_boxed_body());
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    set_headers(response.headers_mut(), &decision, &gcra);
    Ok(response)
}

fn set_headers(headers: &mut HeaderMap, decision: &Decision, gcra: &Gcra) {
    let values = [
        ("limit", decision.limit.to_string()),
        ("remaining", decision.remaining.to_string()),
        ("reset", decision.reset_secs().to_string()),
    ];
    for (name, value) in values {
        for prefix in ["ratelimit", "x-ratelimit"] {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(format!("{prefix}-{name}")),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
    }
    if let Ok(policy) =
        HeaderValue::from_str(&format!("{};w=60;burst={}", gcra.per_minute, gcra.burst))
    {
        headers.insert(HeaderName::from_static("ratelimit-policy"), policy);
    }
    if !decision.allowed {
        headers.insert(RETRY_AFTER, HeaderValue::from(decision.retry_after_secs()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_describe_the_decision() {
        let gcra = Gcra::per_minute(60, 3);
        let mut headers = HeaderMap::new();
        set_headers(&mut headers, &gcra.decision(false, 3500), &gcra);
        let get = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(get("ratelimit-limit"), "3");
        assert_eq!(get("x-ratelimit-limit"), "3");
        assert_eq!(get("ratelimit-remaining"), "0");
        assert_eq!(get("ratelimit-reset"), "4");
        assert_eq!(get("x-ratelimit-reset"), "4");
        assert_eq!(get("retry-after"), "2");
        assert_eq!(get("ratelimit-policy"), "60;w=60;burst=3");
        let mut headers = HeaderMap::new();
        set_headers(&mut headers, &gcra.decision(true, 1000), &gcra);
        assert!(headers.get("retry-after").is_none());
        assert_eq!(headers.get("ratelimit-remaining").unwrap(), "2");
    }
}
