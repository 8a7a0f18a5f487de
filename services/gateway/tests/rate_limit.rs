//! Rate limits at the edge: GCRA in Redis, shared by gateway replicas, with a local fallback
//! when Redis is down or failing over. No upstream is needed: the limiter answers before any is
//! called.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::{metric, problem, spawn_gateway};
use testkit::TcpProxy;

fn limited(per_minute: u32, burst: u32) -> Vec<(&'static str, String)> {
    vec![
        ("GATEWAY_RATE_LIMIT_PER_MINUTE", per_minute.to_string()),
        ("GATEWAY_RATE_LIMIT_BURST", burst.to_string()),
    ]
}

/// Any `/api/v1` route spends from the bucket; this one needs no upstream.
const PATH: &str = "/api/v1/no-such-route";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_a_client_gets_429_with_retry_after_and_ratelimit_headers() {
    let gateway = spawn_gateway(limited(6, 3)).await;
    for remaining in ["2", "1", "0"] {
        let response = gateway.get(PATH, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let headers = response.headers();
        assert_eq!(headers["ratelimit-limit"], "3");
        assert_eq!(headers["x-ratelimit-limit"], "3");
        assert_eq!(headers["ratelimit-remaining"], remaining);
        assert_eq!(headers["x-ratelimit-remaining"], remaining);
        assert_eq!(headers["ratelimit-policy"], "6;w=60;burst=3");
    }
    let refused = gateway.get(PATH, None).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // One request per 10 s sustained: the next fits in at most 10 s.
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    let body = problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(body["type"].as_str().unwrap().ends_with("/rate-limited"));
    // Every route spends from the same bucket, the docs and the storefront too.
    for path in ["/api/openapi.json", "/", "/api/v1/products"] {
        assert_eq!(
            gateway.get(path, None).await.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{path}"
        );
    }
    let metrics = gateway.metrics().await;
    assert!(
        metric(
            &metrics,
            r#"gateway_rate_limit_decisions_total{decision="limited",store="redis"}"#
        )
        .is_some_and(|count| count >= 1.0),
        "{metrics}"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_replicas_share_one_budget_through_redis() {
    let prefix = testkit::unique_name("gateway-shared");
    let vars = || {
        let mut vars = limited(6, 4);
        vars.push(("GATEWAY_REDIS_PREFIX", prefix.clone()));
        vars
    };
    let (first, second) = (spawn_gateway(vars()).await, spawn_gateway(vars()).await);
    for gateway in [&first, &second, &first, &second] {
        assert_eq!(
            gateway.get(PATH, None).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    // Four spent across the two: the fifth is refused whichever replica takes it.
    for gateway in [&first, &second] {
        assert_eq!(
            gateway.get(PATH, None).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_local_limit_takes_over_and_is_counted() {
    let proxy = TcpProxy::start(&testkit::host_port(&testkit::redis_url().await).unwrap()).await;
    let mut vars = limited(6, 3);
    vars.push((
        "GATEWAY_REDIS_URL",
        proxy.rewrite_url(&testkit::redis_url().await),
    ));
    let gateway = spawn_gateway(vars).await;
    assert_eq!(
        gateway.get(PATH, None).await.status(),
        StatusCode::NOT_FOUND
    );
    let before = metric(
        &gateway.metrics().await,
        "gateway_rate_limit_fallbacks_total",
    )
    .unwrap_or(0.0);

    proxy.cut();
    // Redis spent one; the local limiter has its own full bucket of three.
    for _ in 0..3 {
        assert_eq!(
            gateway.get(PATH, None).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    let refused = gateway.get(PATH, None).await;
    assert!(refused.headers().contains_key("retry-after"));
    problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    let metrics = gateway.metrics().await;
    let fallbacks = metric(&metrics, "gateway_rate_limit_fallbacks_total").unwrap();
    assert!(fallbacks >= before + 4.0, "{fallbacks} fallbacks");
    assert!(
        metric(
            &metrics,
            r#"gateway_rate_limit_decisions_total{decision="limited",store="local"}"#
        )
        .is_some_and(|count| count >= 1.0)
    );
    gateway.stop().await;
}

/// Through Sentinel the limiter follows a failover. The primary crashes; while the sentinel
/// notices and promotes the replica every request is still decided (by the local limit), and
/// afterwards the shared state is written to the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_limit_follows_a_sentinel_failover_to_the_new_primary() {
    let mut redis = testkit::RedisFailover::start().await;
    let prefix = testkit::unique_name("gateway-failover");
    // One request per 10 s sustained: each one keeps its bucket (the key) for 10 s more, long
    // enough to be looked at; the burst is never reached.
    let mut vars = limited(6, 10_000);
    vars.extend([
        ("GATEWAY_REDIS_SENTINELS", redis.sentinels()),
        ("GATEWAY_REDIS_MASTER", redis.master().to_owned()),
        ("GATEWAY_REDIS_PREFIX", prefix.clone()),
    ]);
    let gateway = spawn_gateway(vars).await;
    let key = format!("{prefix}:rl:ip:127.0.0.1");
    let decided_by = |store: &'static str| {
        let gateway = &gateway;
        async move {
            let series = format!(
                r#"gateway_rate_limit_decisions_total{{decision="allowed",store="{store}"}}"#
            );
            metric(&gateway.metrics().await, &series).unwrap_or(0.0)
        }
    };
    assert_eq!(
        gateway.get(PATH, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(decided_by("redis").await >= 1.0, "decided in Redis");
    let exists = |connection: redis::aio::MultiplexedConnection| {
        let key = key.clone();
        async move {
            let mut connection = connection;
            redis::cmd("EXISTS")
                .arg(&key)
                .query_async::<bool>(&mut connection)
                .await
                .unwrap()
        }
    };
    assert!(exists(redis.primary().await.connection().await).await);

    let new_port = redis.kill_primary().await;
    let new_primary = redis.server(new_port).connection().await;
    // The bucket arrived by replication; remove it so only a write by the gateway brings it back.
    redis::cmd("DEL")
        .arg(&key)
        .query_async::<()>(&mut new_primary.clone())
        .await
        .unwrap();
    let (local_before, redis_before) = (decided_by("local").await, decided_by("redis").await);
    testkit::poll_until(
        "the limiter to write to the new primary",
        Duration::from_secs(30),
        || async {
            // Every request is decided, by Redis or by the local limit.
            assert_eq!(
                gateway.get(PATH, None).await.status(),
                StatusCode::NOT_FOUND
            );
            exists(new_primary.clone()).await.then_some(())
        },
    )
    .await
    .unwrap();
    assert!(
        decided_by("local").await > local_before,
        "the local limit decided while Redis switched"
    );
    assert!(decided_by("redis").await > redis_before);
    gateway.stop().await;
}

/// Least privilege: the limiter's own ACL user (`redis_guard::acl`, its declared commands on its
/// prefix) is all it needs, and that user cannot touch the catalog cache's keys.
#[tokio::test]
async fn the_limiter_works_as_its_own_acl_user_and_nothing_beyond_its_prefix() {
    use gateway::ratelimit::{
        Limiter,
        gcra::Gcra,
        store::{REDIS_COMMANDS, Store},
    };
    use redis_guard::{RedisTarget, acl};

    let prefix = testkit::unique_name("acl-gateway");
    let user = testkit::AclUser::create(&acl::rules(&prefix, REDIS_COMMANDS))
        .await
        .unwrap();
    let target = RedisTarget::Url(user.url().to_owned());
    let limiter = Limiter::new(
        Gcra::per_minute(60, 2),
        &target,
        &prefix,
        Duration::from_secs(2),
    )
    .unwrap();
    let decisions = [
        limiter.check("ip:192.0.2.1").await,
        limiter.check("ip:192.0.2.1").await,
        limiter.check("ip:192.0.2.1").await,
    ];
    assert!(decisions.iter().all(|(_, store)| *store == Store::Redis));
    let allowed: Vec<bool> = decisions.iter().map(|(d, _)| d.allowed).collect();
    assert_eq!(allowed, [true, true, false]);

    // The same user on the catalog cache's keys: refused by Redis, so the limit falls back to
    // this replica.
    assert!(
        user.may_not_read("inventory:v1:product:MUG-1")
            .await
            .unwrap()
    );
    let outside = Limiter::new(
        Gcra::per_minute(60, 2),
        &target,
        "inventory:v1",
        Duration::from_secs(2),
    )
    .unwrap();
    assert_eq!(outside.check("ip:192.0.2.1").await.1, Store::Local);
}
