//! Rate limiting at the edge: per user, per IP for anonymous callers, shared by all replicas.
//!
//! **Every request** spends from one bucket ([`gcra`]), whatever its path: the signed-in
//! user's (`user:<id>`, so one account cannot multiply its budget by spreading over addresses),
//! or for anonymous requests the client IP's (`ip:<addr>`, so login attempts and catalog
//! scraping are bounded too). The limiter never looks at the path, because a path has many
//! spellings: the router decodes `/%61pi/v1/products` to `/api/v1/products`, and `NormalizePath`
//! (outermost, see `lib.rs`) merges `//` and trims a trailing `/` before routing; a limiter
//! that tested the raw path for `/api/v1/` let every other spelling through unmetered. The
//! state is in Redis ([`store`]) so that every gateway replica sees the same bucket, with a
//! local fallback when Redis is away.
//!
//! **Per account, for sign-ins.** Each login attempt also spends from a bucket of the account it
//! names (`login:<sha-256 of the address>`, [`check_login`], `GATEWAY_LOGIN_RATE_PER_MINUTE` /
//! `_BURST`), so password guessing against one account is slow however many addresses the
//! guesser has, and the users service is not asked to hash passwords for it. The address is
//! hashed so that Redis never holds who tried to sign in.
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
//! The client IP is the TCP peer, unless the peer is one of `GATEWAY_TRUSTED_PROXIES`; then it
//! is the right-most untrusted hop of `X-Forwarded-For` (`edge::client_ip`) — never the
//! left-most, which the client writes itself.

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
use sha2::{Digest as _, Sha256};

use crate::{
    auth::{self, Identity},
    edge::client_ip,
    problem::ApiError,
    state::Gateway,
};

/// The client's IP, as far as it can be trusted (see `edge::client_ip`).
pub fn client_addr(req: &actix_web::HttpRequest, gateway: &Gateway) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok());
    Some(client_ip::client_ip(
        peer,
        forwarded,
        &gateway.trusted_proxies,
    ))
}

/// The bucket a request spends from.
fn client_key(req: &ServiceRequest, gateway: &Gateway) -> String {
    if let Identity::User(principal) = auth::identity(req.request()) {
        return format!("user:{}", principal.user_id);
    }
    match client_addr(req.request(), gateway) {
        Some(ip) => format!("ip:{ip}"),
        None => "ip:unknown".to_owned(),
    }
}

/// Spends one sign-in attempt of the account `email` names; 429 when they come too fast.
pub async fn check_login(gateway: &Gateway, email: &str) -> Result<(), ApiError> {
    let normalised = email.trim().to_lowercase();
    let digest = Sha256::digest(normalised.as_bytes());
    let key = format!("login:{}", hex(&digest[..16]));
    let (decision, store) = gateway.login_limiter.check(&key).await;
    metrics::counter!(
        "gateway_login_throttle_decisions_total",
        "decision" => if decision.allowed { "allowed" } else { "limited" },
        "store" => store.label()
    )
    .increment(1);
    if decision.allowed {
        return Ok(());
    }
    tracing::info!("sign-in attempts for one account throttled");
    Err(ApiError::TooManyRequests {
        retry_after_secs: decision.retry_after_secs(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub async fn middleware(
    gateway: web::Data<Gateway>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let key = client_key(&req, &gateway);
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
        set_headers(&mut headers, &gcra.decision(false, 3_500_000), &gcra);
        let get = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(get("ratelimit-limit"), "3");
        assert_eq!(get("x-ratelimit-limit"), "3");
        assert_eq!(get("ratelimit-remaining"), "0");
        assert_eq!(get("ratelimit-reset"), "4");
        assert_eq!(get("x-ratelimit-reset"), "4");
        assert_eq!(get("retry-after"), "2");
        assert_eq!(get("ratelimit-policy"), "60;w=60;burst=3");
        let mut headers = HeaderMap::new();
        set_headers(&mut headers, &gcra.decision(true, 1_000_000), &gcra);
        assert!(headers.get("retry-after").is_none());
        assert_eq!(headers.get("ratelimit-remaining").unwrap(), "2");
    }
}
