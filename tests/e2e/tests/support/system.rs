//! The whole of Ferroshop as real processes, the way it runs in production: the `users`,
//! `inventory`, `payments` and `orders` binaries and the `gateway` in front of them, each on free
//! loopback ports, each service with a fresh database of its own, all sharing a broker exchange
//! and queue prefix unique to this run. Tests reach it over HTTP only, through [`System::api`].
//!
//! The binaries are the ones `cargo` built next to this test (`target/<profile>/`): building the
//! workspace's tests (`cargo xtask test`, `cargo nextest run --workspace`) builds them too.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use testkit::{RunningService, ServiceProcess, TestDatabase, free_port};

use super::world::{ADMIN_EMAIL, Api, new_signing_pem};

/// How long a process may take to become ready.
const READY: Duration = Duration::from_secs(30);

/// Options a test can change.
#[derive(Debug, Clone)]
pub struct Options {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` of every process (traces are not exported without it).
    pub otlp_endpoint: Option<String>,
    /// Inventory processes, sharing one database; the gateway balances over all of them and
    /// orders calls the first.
    pub inventory_replicas: usize,
    /// Extra gateway settings (`GATEWAY_…`), applied last.
    pub gateway_env: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            inventory_replicas: 1,
            gateway_env: Vec::new(),
        }
    }
}

pub struct System {
    /// The gateway's HTTP API.
    pub api: Api,
    /// The key users signs tokens with, so tests can forge tokens.
    pub signing_pem: String,
    /// The inventory processes, in the order of `GATEWAY_INVENTORY_URLS`.
    pub inventory: Vec<RunningService>,
    /// users, payments, orders: SIGTERMed in reverse order by [`System::stop`].
    services: Vec<RunningService>,
    gateway: ServiceProcess,
    /// Kept so the databases outlive the processes using them.
    _databases: [TestDatabase; 4],
}

/// A binary of this workspace, built next to the running test.
///
/// # Panics
/// When it has not been built, with the command that builds it.
pub fn binary(name: &str) -> PathBuf {
    let path = std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.join(name)))
        .unwrap_or_else(|| PathBuf::from(name));
    assert!(
        path.exists(),
        "the end-to-end suite runs the service binaries, and `{}` is missing: build the whole \
         workspace's tests (`cargo xtask test` or `cargo nextest run --workspace`) first",
        path.display()
    );
    path
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

impl System {
    pub async fn start(options: Options) -> Self {
        let amqp_url = testkit::amqp_url().await;
        let redis_url = testkit::redis_url().await;
        let exchange = testkit::unique_name("e2e.events");
        let cache_prefix = testkit::unique_name("e2e-inventory");
        let redis_prefix = testkit::unique_name("e2e-gateway");

        // What every process gets: JSON logs (kept for failing tests), the trace exporter, and
        // a short batch delay so exported spans arrive while the test is still looking.
        let mut common = vars(&[("LOG_FORMAT", "json"), ("OTEL_BSP_SCHEDULE_DELAY", "100")]);
        if let Some(endpoint) = &options.otlp_endpoint {
            common.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint.clone()));
        }
        let service = |name: &'static str, db: &TestDatabase, own: Vec<(String, String)>| {
            let mut env = common.clone();
            // The ports `service_vars` sets are replaced by the free ones RunningService picks.
            env.extend(testkit::service_vars(name, &db.url, &amqp_url, &exchange));
            env.push((
                format!("{}_DB_MAX_CONNECTIONS", name.to_ascii_uppercase()),
                "5".to_owned(),
            ));
            env.extend(own);
            async move {
                RunningService::start(name, &binary(name), env)
                    .await
                    .unwrap_or_else(|err| panic!("{name} did not start: {err:#}"))
            }
        };

        let databases = [
            testkit::fresh_database().await,
            testkit::fresh_database().await,
            testkit::fresh_database().await,
            testkit::fresh_database().await,
        ];
        let [users_db, inventory_db, payments_db, orders_db] = &databases;
        let signing_pem = new_signing_pem();
        let replica = || {
            service(
                "inventory",
                inventory_db,
                vars(&[
                    ("INVENTORY_REDIS_URL", &redis_url),
                    ("INVENTORY_CACHE_PREFIX", &cache_prefix),
                ]),
            )
        };
        let (users, inventory, payments) = tokio::join!(
            service(
                "users",
                users_db,
                vars(&[
                    ("USERS_ADMIN_EMAILS", ADMIN_EMAIL),
                    ("USERS_JWT_PRIVATE_KEY", &signing_pem),
                ]),
            ),
            // One at a time: the first runs the migrations the others find done.
            async {
                let mut replicas = Vec::new();
                for _ in 0..options.inventory_replicas.max(1) {
                    replicas.push(replica().await);
                }
                replicas
            },
            service("payments", payments_db, Vec::new()),
        );
        let orders = service(
            "orders",
            orders_db,
            vars(&[
                ("ORDERS_INVENTORY_URL", &inventory[0].grpc_endpoint()),
                ("ORDERS_PAYMENTS_URL", &payments.grpc_endpoint()),
                ("ORDERS_SAGA_POLL_INTERVAL", "100ms"),
                ("ORDERS_SAGA_RETRY_BASE", "50ms"),
                ("ORDERS_SAGA_RETRY_CAP", "500ms"),
            ]),
        )
        .await;

        let (http, admin) = (free_port(), free_port());
        let mut env: HashMap<String, String> = common.into_iter().collect();
        env.extend(vars(&[
            ("GATEWAY_HTTP_ADDR", &format!("127.0.0.1:{http}")),
            ("GATEWAY_ADMIN_ADDR", &format!("127.0.0.1:{admin}")),
            ("GATEWAY_HTTP_WORKERS", "2"),
            ("GATEWAY_REDIS_URL", &redis_url),
            ("GATEWAY_REDIS_PREFIX", &redis_prefix),
            ("GATEWAY_SSE_POLL_INTERVAL", "100ms"),
            ("GATEWAY_USERS_URLS", &users.grpc_endpoint()),
            (
                "GATEWAY_INVENTORY_URLS",
                &inventory
                    .iter()
                    .map(RunningService::grpc_endpoint)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("GATEWAY_ORDERS_URLS", &orders.grpc_endpoint()),
            ("GATEWAY_PAYMENTS_URLS", &payments.grpc_endpoint()),
        ]));
        env.extend(
            options
                .gateway_env
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        );
        let mut gateway = ServiceProcess::start("gateway", &binary("gateway"), &env)
            .unwrap_or_else(|err| panic!("the gateway did not start: {err:#}"));
        let admin_url = format!("http://127.0.0.1:{admin}");
        gateway
            .wait_until_ready(&format!("{admin_url}/readyz"), READY)
            .await
            .unwrap_or_else(|err| panic!("the gateway is not ready: {err:#}"));

        Self {
            api: Api::new(format!("http://127.0.0.1:{http}"), admin_url),
            signing_pem,
            inventory,
            services: vec![users, payments, orders],
            gateway,
            _databases: databases,
        }
    }

    /// SIGTERMs the gateway, then every service still running; each must exit 0.
    pub async fn stop(mut self) {
        self.gateway.terminate().await.unwrap();
        assert_eq!(
            self.gateway.wait_for_exit(READY).await.unwrap(),
            Some(0),
            "the gateway exits cleanly"
        );
        let running = self
            .inventory
            .into_iter()
            .filter(|replica| replica.process.pid().is_some());
        // Stopped after orders and payments, which call it, and before users.
        self.services.splice(1..1, running);
        while let Some(mut service) = self.services.pop() {
            assert_eq!(
                service.stop(READY).await.unwrap(),
                Some(0),
                "a service exits cleanly"
            );
        }
    }
}
