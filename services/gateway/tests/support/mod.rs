//! A Ferroshop in this process: users, inventory (one or more replicas), payments and orders,
//! each on random ports with its own fresh database, sharing a broker exchange unique to the
//! test — and gateways in front of them, on random ports, with a Redis key prefix of their own.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::{net::SocketAddr, time::Duration};

use platform::{Shutdown, config::Env};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use testkit::{TcpProxy, TestDatabase};

pub const PASSWORD: &str = "correct horse battery staple";
pub const ADMIN_EMAIL: &str = "admin@shop.test";
pub const APPROVE: &str = "tok_visa_approve";
pub const DECLINE: &str = "tok_visa_decline";

/// `base` (from [`testkit::service_vars`]) with `extra` on top.
fn env(prefix: &str, base: Vec<(String, String)>, extra: Vec<(&str, String)>) -> Env {
    let extra = extra.into_iter().map(|(k, v)| (k.to_owned(), v));
    Env::from_map(prefix, base.into_iter().chain(extra).collect())
}

/// Which services to start.
#[derive(Clone, Copy)]
pub struct Parts {
    /// Inventory replicas (sharing one database), each behind a [`TcpProxy`] a test can cut.
    pub inventory: usize,
    /// Users, payments and orders too (catalog-only tests skip them).
    pub everything: bool,
}

pub struct World {
    pub users_addr: Option<SocketAddr>,
    pub orders_addr: Option<SocketAddr>,
    pub payments_addr: Option<SocketAddr>,
    /// Per inventory replica: the proxy in front of it and its shutdown.
    pub inventory: Vec<(TcpProxy, Shutdown)>,
    /// The users service's signing key, so tests can forge tokens it would (or would not) sign.
    pub signing_pem: String,
    pub redis_url: String,
    /// The users service's database, where operators make admins.
    users_db_url: Option<String>,
    dbs: Vec<TestDatabase>,
    shutdowns: Vec<Shutdown>,
}

impl World {
    pub async fn start(parts: Parts) -> Self {
        let amqp_url = testkit::amqp_url().await;
        let redis_url = testkit::redis_url().await;
        let exchange = testkit::unique_name("gateway.test.events");
        let mut shutdowns = Vec::new();
        let mut dbs = Vec::new();
        let spawn = |shutdowns: &mut Vec<Shutdown>| {
            let shutdown = Shutdown::new();
            shutdowns.push(shutdown.clone());
            shutdown
        };

        let inventory_db = testkit::fresh_database().await;
        let cache_prefix = testkit::unique_name("inventory");
        let mut inventory = Vec::new();
        for _ in 0..parts.inventory {
            let app = inventory::Application::build(
                inventory::Config::from(&env(
                    "inventory",
                    testkit::service_vars("inventory", &inventory_db.url, &amqp_url, &exchange),
                    vec![
                        ("INVENTORY_REDIS_URL", redis_url.clone()),
                        ("INVENTORY_CACHE_PREFIX", cache_prefix.clone()),
                        ("INVENTORY_DB_MAX_CONNECTIONS", "10".into()),
                    ],
                ))
                .unwrap(),
            )
            .await
            .unwrap();
            let proxy = TcpProxy::start(&app.grpc_addr().to_string()).await;
            let shutdown = spawn(&mut shutdowns);
            tokio::spawn(app.run(shutdown.clone()));
            inventory.push((proxy, shutdown));
        }
        dbs.push(inventory_db);

        let signing_pem = new_signing_pem();
        let (mut users_addr, mut payments_addr, mut orders_addr) = (None, None, None);
        let mut users_db_url = None;
        if parts.everything {
            let db = testkit::fresh_database().await;
            users_db_url = Some(db.url.clone());
            let users = users::Application::build(
                users::Config::from(&env(
                    "users",
                    testkit::service_vars("users", &db.url, &amqp_url, &exchange),
                    vec![("USERS_JWT_PRIVATE_KEY", signing_pem.clone())],
                ))
                .unwrap(),
            )
            .await
            .unwrap();
            users_addr = Some(users.grpc_addr());
            tokio::spawn(users.run(spawn(&mut shutdowns)));
            dbs.push(db);

            let db = testkit::fresh_database().await;
            let payments = payments::Application::build(
                payments::Config::from(&env(
                    "payments",
                    testkit::service_vars("payments", &db.url, &amqp_url, &exchange),
                    vec![("PAYMENTS_DB_MAX_CONNECTIONS", "10".into())],
                ))
                .unwrap(),
            )
            .await
            .unwrap();
            payments_addr = Some(payments.grpc_addr());
            tokio::spawn(payments.run(spawn(&mut shutdowns)));
            dbs.push(db);

            let db = testkit::fresh_database().await;
            let inventory_url = format!("http://{}", inventory[0].0.upstream());
            let orders = orders::Application::build(
                orders::Config::from(&env(
                    "orders",
                    testkit::service_vars("orders", &db.url, &amqp_url, &exchange),
                    vec![
                        ("ORDERS_INVENTORY_URL", inventory_url),
                        (
                            "ORDERS_PAYMENTS_URL",
                            format!("http://{}", payments_addr.unwrap()),
                        ),
                        ("ORDERS_SAGA_POLL_INTERVAL", "100ms".into()),
                        ("ORDERS_SAGA_RETRY_BASE", "50ms".into()),
                        ("ORDERS_SAGA_RETRY_CAP", "500ms".into()),
                        ("ORDERS_DB_MAX_CONNECTIONS", "10".into()),
                    ],
                ))
                .unwrap(),
            )
            .await
            .unwrap();
            orders_addr = Some(orders.grpc_addr());
            tokio::spawn(orders.run(spawn(&mut shutdowns)));
            dbs.push(db);
        }
        Self {
            users_addr,
            orders_addr,
            payments_addr,
            inventory,
            signing_pem,
            redis_url,
            users_db_url,
            dbs,
            shutdowns,
        }
    }

    /// Signs up [`ADMIN_EMAIL`] through `api`, has an operator make it an admin (as
    /// `users admin grant` does), and signs in again: the admin's token.
    pub async fn admin(&self, api: &Api) -> String {
        api.sign_up(ADMIN_EMAIL).await;
        self.grant_admin(api, ADMIN_EMAIL).await
    }

    /// Makes the registered account `email` an admin (as `users admin grant` does) and signs
    /// in again: a token with the admin role.
    pub async fn grant_admin(&self, api: &Api, email: &str) -> String {
        let db = self
            .users_db_url
            .as_deref()
            .expect("users runs in this world");
        users::admin::set_role(db, email, users::domain::Role::Admin)
            .await
            .expect("the admin is granted");
        api.log_in(email).await.0
    }

    /// The gateway settings that point at this world (through the inventory proxies).
    pub fn gateway_vars(&self) -> Vec<(&'static str, String)> {
        let unused = |addr: Option<SocketAddr>| {
            addr.map_or_else(
                || "http://127.0.0.1:9".to_owned(),
                |a| format!("http://{a}"),
            )
        };
        let inventory: Vec<String> = self
            .inventory
            .iter()
            .map(|(proxy, _)| format!("http://{}", proxy.addr()))
            .collect();
        vec![
            ("GATEWAY_USERS_URLS", unused(self.users_addr)),
            ("GATEWAY_INVENTORY_URLS", inventory.join(",")),
            ("GATEWAY_ORDERS_URLS", unused(self.orders_addr)),
            ("GATEWAY_PAYMENTS_URLS", unused(self.payments_addr)),
            ("GATEWAY_REDIS_URL", self.redis_url.clone()),
        ]
    }

    /// A token signed with the users service's own key, with the claims given.
    pub fn forge(&self, claims: &Value) -> String {
        forge(&self.signing_pem, claims)
    }

    pub fn stop(&self) {
        for shutdown in &self.shutdowns {
            shutdown.trigger();
        }
    }
}

/// A fresh Ed25519 key for the users service to sign with (`USERS_JWT_PRIVATE_KEY`), so tests
/// know it and can forge tokens it would, or would not, sign.
pub fn new_signing_pem() -> String {
    users::tokens::SigningKey::generate_pem().unwrap()
}

/// A token signed with `signing_pem` exactly as the users service signs, with the claims given.
pub fn forge(signing_pem: &str, claims: &Value) -> String {
    users::tokens::SigningKey::from_pem(signing_pem)
        .unwrap()
        .sign(claims)
        .unwrap()
}

/// The claims of a valid customer token for `user_id`.
pub fn claims(user_id: &str) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "iss": "ferroshop-users", "aud": "ferroshop", "sub": user_id, "role": "customer",
        "email": "eve@example.com", "iat": now, "nbf": now, "exp": now + 600, "jti": "x",
    })
}

/// Credentials the gateway must refuse with 401, named: none at all, tokens properly signed
/// with the wrong claims, an unsigned (`alg: none`) copy of `token`, `token` with its payload
/// changed (promoted to admin) under the original signature, and garbage.
pub fn bad_tokens(
    signing_pem: &str,
    token: &str,
    user_id: &str,
) -> Vec<(&'static str, Option<String>)> {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut expired = claims(user_id);
    expired["exp"] = json!(now - 3600);
    let mut wrong_audience = claims(user_id);
    wrong_audience["aud"] = json!("another-app");
    let mut wrong_issuer = claims(user_id);
    wrong_issuer["iss"] = json!("evil-issuer");
    let mut parts = token.split('.');
    let (header, payload, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let alg_none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    let mut promoted: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    promoted["role"] = json!("admin");
    let tampered = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(promoted.to_string())
    );
    vec![
        ("no token", None),
        ("expired", Some(forge(signing_pem, &expired))),
        ("wrong audience", Some(forge(signing_pem, &wrong_audience))),
        ("wrong issuer", Some(forge(signing_pem, &wrong_issuer))),
        ("alg none", Some(alg_none)),
        ("tampered", Some(tampered)),
        ("garbage", Some("not.a.jwt".to_owned())),
    ]
}

/// A gateway running in this process; its HTTP API is [`Api`] (through `Deref`).
pub struct TestGateway {
    api: Api,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<Result<(), gateway::GatewayError>>,
}

impl std::ops::Deref for TestGateway {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// A gateway's HTTP API as a customer or an admin uses it, wherever the gateway runs.
pub struct Api {
    pub url: String,
    pub admin_url: String,
    pub client: Client,
}

/// Settings every test gateway gets unless overridden: loopback ports, a private Redis key
/// prefix, limits high enough not to get in the way.
pub async fn spawn_gateway(vars: Vec<(&'static str, String)>) -> TestGateway {
    let mut all = vec![
        ("GATEWAY_HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("GATEWAY_ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("GATEWAY_HTTP_WORKERS", "2".to_owned()),
        ("GATEWAY_REDIS_URL", testkit::redis_url().await),
        ("GATEWAY_REDIS_PREFIX", testkit::unique_name("gateway")),
        ("GATEWAY_RATE_LIMIT_PER_MINUTE", "100000".to_owned()),
        ("GATEWAY_RATE_LIMIT_BURST", "10000".to_owned()),
        ("GATEWAY_USERS_URLS", "http://127.0.0.1:9".to_owned()),
        ("GATEWAY_INVENTORY_URLS", "http://127.0.0.1:9".to_owned()),
        ("GATEWAY_ORDERS_URLS", "http://127.0.0.1:9".to_owned()),
        ("GATEWAY_PAYMENTS_URLS", "http://127.0.0.1:9".to_owned()),
    ];
    all.extend(vars);
    let config =
        gateway::Config::from(&env("gateway", Vec::new(), all)).expect("valid gateway config");
    let app = gateway::Application::build(config)
        .await
        .expect("the gateway builds");
    let (url, admin_url) = (
        format!("http://{}", app.http_addr()),
        format!("http://{}", app.admin_addr()),
    );
    let shutdown = Shutdown::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    TestGateway {
        api: Api::new(url, admin_url),
        shutdown,
        server,
    }
}

impl TestGateway {
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.server
            .await
            .expect("the gateway task ends")
            .expect("the gateway stops cleanly");
    }
}

impl Api {
    pub fn new(url: String, admin_url: String) -> Self {
        Self {
            url,
            admin_url,
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.url));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(Method::POST, path, token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Registers `email` and logs in; returns the token and the user id.
    pub async fn sign_up(&self, email: &str) -> (String, String) {
        let registered = self
            .post(
                "/api/v1/auth/register",
                None,
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(registered.status(), StatusCode::CREATED, "register {email}");
        self.log_in(email).await
    }

    /// Logs in as `email` (registered with [`PASSWORD`]); returns the token and the user id.
    pub async fn log_in(&self, email: &str) -> (String, String) {
        let session: Value = self
            .post(
                "/api/v1/auth/login",
                None,
                &json!({"email": email, "password": PASSWORD}),
            )
            .await
            .json()
            .await
            .unwrap();
        let token = session["access_token"].as_str().unwrap().to_owned();
        let id = session["user"]["id"].as_str().unwrap().to_owned();
        (token, id)
    }

    /// Creates a product with stock through the admin API.
    pub async fn seed(&self, admin: &str, sku: &str, price_minor: i64, stock: i64) {
        let response = self
            .request(
                Method::PUT,
                &format!("/api/v1/admin/products/{sku}"),
                Some(admin),
            )
            .json(&json!({
                "name": format!("Product {sku}"),
                "description": "A test product",
                "price": {"amount_minor": price_minor, "currency": "EUR"},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "upsert {sku}");
        let response = self
            .post(
                &format!("/api/v1/admin/products/{sku}/stock-adjustments"),
                Some(admin),
                &json!({"delta": stock, "reason": "test delivery"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "stock {sku}");
    }

    /// Places an order of `lines` with the idempotency key `key`, paid with the approving card.
    pub async fn place(&self, token: &str, key: &str, lines: &[(&str, i64)]) -> Response {
        self.place_paying(token, key, lines, APPROVE).await
    }

    /// Places an order of `lines` with the idempotency key `key`, paid with the test `card`.
    pub async fn place_paying(
        &self,
        token: &str,
        key: &str,
        lines: &[(&str, i64)],
        card: &str,
    ) -> Response {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
            .collect();
        self.request(Method::POST, "/api/v1/orders", Some(token))
            .header("idempotency-key", key)
            .json(&json!({"lines": lines, "payment_method": card}))
            .send()
            .await
            .unwrap()
    }

    /// My orders, from the CQRS read model: eventually consistent, so polled until `accept`
    /// takes them.
    pub async fn my_orders_until(&self, token: &str, accept: fn(&[Value]) -> bool) -> Vec<Value> {
        testkit::poll_until("my orders", Duration::from_secs(30), || async {
            let page: Value = self
                .get("/api/v1/orders", Some(token))
                .await
                .json()
                .await
                .ok()?;
            let orders = page["orders"].as_array()?.clone();
            accept(&orders).then_some(orders)
        })
        .await
        .unwrap()
    }

    /// Polls the order until it leaves PENDING.
    pub async fn settled(&self, token: &str, id: &str) -> Value {
        testkit::poll_until("the order to settle", Duration::from_secs(30), || async {
            let order: Value = self
                .get(&format!("/api/v1/orders/{id}"), Some(token))
                .await
                .json()
                .await
                .ok()?;
            (order["status"] != "PENDING").then_some(order)
        })
        .await
        .unwrap()
    }

    /// The Prometheus text of the admin port.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.admin_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Asserts that a place request created an order; returns its id.
pub async fn created_id(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    order["id"].as_str().unwrap().to_owned()
}

/// Asserts an RFC 9457 problem with `status`; returns the document.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "{:?}", response.headers());
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].as_str().unwrap().starts_with("https://"));
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

/// The value of one series in Prometheus text, if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}
