//! The whole of Ferroshop as real processes, the way it runs in production: the `users`,
//! `inventory`, `payments` and `orders` binaries and the `gateway` in front of them, each on free
//! loopback ports, each service with a fresh database of its own, all sharing a broker exchange
//! and queue prefix unique to this run. Tests reach it over HTTP only, through [`System::api`].
//!
//! Fault tests can reach further in: SIGKILL and restart any process on its ports
//! ([`System::kill_and_restart`]), freeze one ([`System::process`]), run several orders replicas
//! on one database, route a service's database or orders' calls to payments through a
//! [`TcpProxy`] they cut or slow down, and point everything at a broker of their own.
//!
//! Every gRPC connection inside it is mutual TLS with certificates of a CA made for the run
//! ([`System::certs`]), and every call is authorized by the caller's identity, as in production;
//! [`Options::plaintext`] turns both off (`<SERVICE>_TLS=off`) for clients that bring no
//! certificate.
//!
//! The binaries are the ones `cargo` built next to this test (`target/<profile>/`): building the
//! workspace's tests (`cargo xtask test`, `cargo nextest run --workspace`) builds them too.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use testkit::{RunningService, ServiceProcess, TcpProxy, TestCerts, TestDatabase, free_port};

use super::world::{ADMIN_EMAIL, Api, new_signing_pem};

/// How long an operator command may take.
const COMMAND: Duration = Duration::from_secs(30);

/// How long a process may take to become ready.
const READY: Duration = Duration::from_secs(30);

/// Options a test can change.
#[derive(Debug, Clone)]
pub struct Options {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` of every process (traces are not exported without it).
    pub otlp_endpoint: Option<String>,
    /// Inventory processes, sharing one database; the gateway and orders balance over all of
    /// them.
    pub inventory_replicas: usize,
    /// Extra gateway settings (`GATEWAY_…`), applied last.
    pub gateway_env: Vec<(&'static str, String)>,
    /// Extra users settings (`USERS_…`), applied last.
    pub users_env: Vec<(&'static str, String)>,
    /// Extra orders settings (`ORDERS_…`), applied last.
    pub orders_env: Vec<(&'static str, String)>,
    /// Extra payments settings (`PAYMENTS_…`), applied last.
    pub payments_env: Vec<(&'static str, String)>,
    /// Orders processes, sharing one database (each runs saga runners); the gateway balances
    /// over all of them.
    pub orders_replicas: usize,
    /// Services (`"payments"`, …) whose `DATABASE_URL` goes through a [`TcpProxy`]
    /// ([`System::database_proxy`]): cut it and the service's database is gone for it alone.
    pub proxied_databases: Vec<&'static str>,
    /// Orders reaches payments through a [`TcpProxy`] ([`System::payments_proxy`]).
    pub proxied_payments: bool,
    /// The broker every process uses, instead of the shared one (`testkit::amqp_url`).
    pub amqp_url: Option<String>,
    /// Plaintext gRPC, no identities, no authorization (`<SERVICE>_TLS=off` everywhere)
    /// instead of mutual TLS.
    pub plaintext: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            inventory_replicas: 1,
            gateway_env: Vec::new(),
            users_env: Vec::new(),
            orders_env: Vec::new(),
            payments_env: Vec::new(),
            orders_replicas: 1,
            proxied_databases: Vec::new(),
            proxied_payments: false,
            amqp_url: None,
            plaintext: false,
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
    /// users, payments, then the orders replicas: SIGTERMed in reverse order by
    /// [`System::stop`].
    services: Vec<RunningService>,
    gateway: ServiceProcess,
    /// The gateway's environment and admin URL, to restart it.
    gateway_env: HashMap<String, String>,
    /// users' database, for operator commands (`users admin grant`).
    users_db_url: String,
    /// Each service's own database, as the test reaches it (never through a proxy).
    database_urls: HashMap<&'static str, String>,
    /// The proxies of [`Options::proxied_databases`], by service.
    database_proxies: HashMap<&'static str, TcpProxy>,
    /// The proxy of [`Options::proxied_payments`].
    payments_proxy: Option<TcpProxy>,
    /// The broker and the exchange every process publishes to.
    pub amqp_url: String,
    pub exchange: String,
    /// The CA and the certificates of the five processes (`None` with [`Options::plaintext`]).
    pub certs: Option<TestCerts>,
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

/// A test's extra settings, as environment pairs.
fn own(settings: &[(&'static str, String)]) -> Vec<(String, String)> {
    settings
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

async fn start_gateway(env: &HashMap<String, String>, admin_url: &str) -> ServiceProcess {
    let mut gateway = ServiceProcess::start("gateway", &binary("gateway"), env)
        .unwrap_or_else(|err| panic!("the gateway did not start: {err:#}"));
    gateway
        .wait_until_ready(&format!("{admin_url}/readyz"), READY)
        .await
        .unwrap_or_else(|err| panic!("the gateway is not ready: {err:#}"));
    gateway
}

impl System {
    pub async fn start(options: Options) -> Self {
        let amqp_url = match &options.amqp_url {
            Some(url) => url.clone(),
            None => testkit::amqp_url().await,
        };
        let redis_url = testkit::redis_url().await;
        let exchange = testkit::unique_name("e2e.events");
        let cache_prefix = testkit::unique_name("e2e-inventory");
        let redis_prefix = testkit::unique_name("e2e-gateway");

        // What every process gets: JSON logs (kept for failing tests), the trace exporter, and
        // a short batch delay so exported spans and log records arrive while the test is still
        // looking.
        let mut common = vars(&[
            ("LOG_FORMAT", "json"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ]);
        if let Some(endpoint) = &options.otlp_endpoint {
            common.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint.clone()));
        }
        let certs = (!options.plaintext).then(|| {
            TestCerts::generate(
                "e2e CA",
                &["users", "inventory", "payments", "orders", "gateway"],
            )
            .expect("test certificates")
        });
        let tls = |name: &str| match &certs {
            Some(certs) => certs.settings(name),
            None => vec![(
                format!("{}_TLS", name.to_ascii_uppercase()),
                "off".to_owned(),
            )],
        };
        let databases = [
            testkit::fresh_database().await,
            testkit::fresh_database().await,
            testkit::fresh_database().await,
            testkit::fresh_database().await,
        ];
        let [users_db, inventory_db, payments_db, orders_db] = &databases;
        let mut database_proxies = HashMap::new();
        for (name, db) in [
            ("users", users_db),
            ("inventory", inventory_db),
            ("payments", payments_db),
            ("orders", orders_db),
        ] {
            if options.proxied_databases.contains(&name) {
                let upstream = testkit::host_port(&db.url).expect("a database URL has host:port");
                database_proxies.insert(name, TcpProxy::start(&upstream).await);
            }
        }
        let database_url = |name: &str, db: &TestDatabase| {
            database_proxies
                .get(name)
                .map_or_else(|| db.url.clone(), |proxy| proxy.rewrite_url(&db.url))
        };
        let service = |name: &'static str, db: &TestDatabase, own: Vec<(String, String)>| {
            let mut env = common.clone();
            // The ports `service_vars` sets are replaced by the free ones RunningService picks.
            env.extend(testkit::service_vars(
                name,
                &database_url(name, db),
                &amqp_url,
                &exchange,
            ));
            env.push((
                format!("{}_DB_MAX_CONNECTIONS", name.to_ascii_uppercase()),
                "5".to_owned(),
            ));
            env.extend(tls(name));
            env.extend(own);
            async move {
                RunningService::start(name, &binary(name), env)
                    .await
                    .unwrap_or_else(|err| panic!("{name} did not start: {err:#}"))
            }
        };

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
            service("users", users_db, {
                let mut settings = vars(&[("USERS_JWT_PRIVATE_KEY", &signing_pem)]);
                settings.extend(own(&options.users_env));
                settings
            }),
            // One at a time: the first runs the migrations the others find done.
            async {
                let mut replicas = Vec::new();
                for _ in 0..options.inventory_replicas.max(1) {
                    replicas.push(replica().await);
                }
                replicas
            },
            service("payments", payments_db, own(&options.payments_env)),
        );
        let payments_proxy = if options.proxied_payments {
            Some(TcpProxy::start(&format!("127.0.0.1:{}", payments.grpc_port)).await)
        } else {
            None
        };
        let payments_url = payments_proxy.as_ref().map_or_else(
            || payments.grpc_endpoint(),
            |proxy| format!("http://{}", proxy.addr()),
        );
        let mut orders_vars = vars(&[
            (
                "ORDERS_INVENTORY_URL",
                &inventory
                    .iter()
                    .map(RunningService::grpc_endpoint)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("ORDERS_PAYMENTS_URL", &payments_url),
            ("ORDERS_SAGA_POLL_INTERVAL", "100ms"),
            ("ORDERS_SAGA_RETRY_BASE", "50ms"),
            ("ORDERS_SAGA_RETRY_CAP", "500ms"),
        ]);
        orders_vars.extend(own(&options.orders_env));
        // One at a time: the first runs the migrations the others find done.
        let mut orders = Vec::new();
        for _ in 0..options.orders_replicas.max(1) {
            orders.push(service("orders", orders_db, orders_vars.clone()).await);
        }

        let (http, admin) = (free_port(), free_port());
        // 32 bytes and more, unique to this system.
        let stream_ticket_key = testkit::unique_name("stream-ticket-key");
        let mut env: HashMap<String, String> = common.into_iter().collect();
        env.extend(vars(&[
            ("GATEWAY_HTTP_ADDR", &format!("127.0.0.1:{http}")),
            ("GATEWAY_ADMIN_ADDR", &format!("127.0.0.1:{admin}")),
            ("GATEWAY_HTTP_WORKERS", "2"),
            ("GATEWAY_REDIS_URL", &redis_url),
            ("GATEWAY_REDIS_PREFIX", &redis_prefix),
            // As every deployment sets it: replicas accept each other's stream tickets.
            ("GATEWAY_STREAM_TICKET_KEY", &stream_ticket_key),
            ("GATEWAY_USERS_URLS", &users.grpc_endpoint()),
            (
                "GATEWAY_INVENTORY_URLS",
                &inventory
                    .iter()
                    .map(RunningService::grpc_endpoint)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "GATEWAY_ORDERS_URLS",
                &orders
                    .iter()
                    .map(RunningService::grpc_endpoint)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("GATEWAY_PAYMENTS_URLS", &payments.grpc_endpoint()),
        ]));
        env.extend(tls("gateway"));
        env.extend(
            options
                .gateway_env
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        );
        let admin_url = format!("http://127.0.0.1:{admin}");
        let gateway = start_gateway(&env, &admin_url).await;

        let mut services = vec![users, payments];
        services.extend(orders);
        Self {
            api: Api::new(format!("http://127.0.0.1:{http}"), admin_url),
            signing_pem,
            inventory,
            services,
            gateway,
            gateway_env: env,
            users_db_url: users_db.url.clone(),
            database_urls: HashMap::from([
                ("users", users_db.url.clone()),
                ("inventory", inventory_db.url.clone()),
                ("payments", payments_db.url.clone()),
                ("orders", orders_db.url.clone()),
            ]),
            database_proxies,
            payments_proxy,
            amqp_url,
            exchange,
            certs,
            _databases: databases,
        }
    }

    /// The gRPC endpoint of the (first) process of service `name`.
    ///
    /// # Panics
    /// When the system runs no such service.
    pub fn grpc_endpoint(&self, name: &str) -> String {
        self.services
            .iter()
            .chain(&self.inventory)
            .find(|service| service.name() == name)
            .unwrap_or_else(|| panic!("no {name} in this system"))
            .grpc_endpoint()
    }

    /// A channel to the (first) process of service `name` that presents `caller`'s
    /// certificate (mutual TLS), or a plaintext one with [`Options::plaintext`].
    ///
    /// # Panics
    /// When the system runs no such service.
    pub fn grpc_channel(&self, caller: &str, name: &str) -> tonic::transport::Channel {
        let endpoint = self.grpc_endpoint(name);
        match &self.certs {
            Some(certs) => certs.channel(caller, name, &endpoint),
            None => platform::grpc::client::connect_lazy(&endpoint, None)
                .unwrap_or_else(|err| panic!("cannot use {endpoint}: {err}")),
        }
    }

    /// Service `name`'s own database (the test's direct URL, not the proxied one).
    ///
    /// # Panics
    /// When `name` is not one of the four services with a database.
    pub fn database_url(&self, name: &str) -> &str {
        self.database_urls
            .get(name)
            .unwrap_or_else(|| panic!("{name} has no database"))
    }

    /// The proxy between service `name` and its database ([`Options::proxied_databases`]).
    ///
    /// # Panics
    /// When the system was started without one.
    pub fn database_proxy(&self, name: &str) -> &TcpProxy {
        self.database_proxies
            .get(name)
            .unwrap_or_else(|| panic!("{name}'s database is not proxied"))
    }

    /// The proxy between orders and payments ([`Options::proxied_payments`]).
    ///
    /// # Panics
    /// When the system was started without it.
    pub fn payments_proxy(&self) -> &TcpProxy {
        self.payments_proxy
            .as_ref()
            .expect("the system was started with proxied_payments")
    }

    /// Every line every process has written so far, as `(service, line)`.
    pub fn logs(&self) -> Vec<(String, String)> {
        let services = self
            .services
            .iter()
            .chain(&self.inventory)
            .map(|service| (service.name().to_owned(), service.process.logs()));
        services
            .chain([("gateway".to_owned(), self.gateway.logs())])
            .flat_map(|(name, lines)| lines.into_iter().map(move |line| (name.clone(), line)))
            .collect()
    }

    /// Replica `replica` (0 for a single-process service) of service `name`.
    ///
    /// # Panics
    /// When the system runs no such process.
    pub fn process(&self, name: &str, replica: usize) -> &RunningService {
        self.services
            .iter()
            .chain(&self.inventory)
            .filter(|service| service.name() == name)
            .nth(replica)
            .unwrap_or_else(|| panic!("no {name} replica {replica} in this system"))
    }

    /// SIGKILLs replica `replica` of `name` (`"gateway"` too) and starts it again on the same
    /// ports with the same settings; waits until it is ready.
    ///
    /// # Panics
    /// When there is no such process or it does not come back.
    pub async fn kill_and_restart(&mut self, name: &str, replica: usize) {
        if name == "gateway" {
            self.gateway.kill().await.unwrap();
            self.gateway.wait_for_exit(READY).await.unwrap();
            self.gateway = start_gateway(&self.gateway_env, &self.api.admin_url).await;
            return;
        }
        self.services
            .iter_mut()
            .chain(&mut self.inventory)
            .filter(|service| service.name() == name)
            .nth(replica)
            .unwrap_or_else(|| panic!("no {name} replica {replica} in this system"))
            .kill_and_restart()
            .await
            .unwrap_or_else(|err| panic!("{name} did not come back after SIGKILL: {err:#}"));
    }

    /// The users process (SIGTERMed and started again on its ports by [`System::restart_users`]).
    pub fn users(&self) -> &RunningService {
        &self.services[0]
    }

    /// Restarts users with `changes` to its settings (a rolling update); waits until ready.
    pub async fn restart_users(&mut self, changes: &[(&str, String)]) {
        self.services[0]
            .restart_with(changes)
            .await
            .unwrap_or_else(|err| panic!("users did not restart: {err:#}"));
    }

    /// Restarts the gateway (SIGTERM, then the same settings and ports); waits until ready.
    pub async fn restart_gateway(&mut self) {
        self.gateway.terminate().await.unwrap();
        assert_eq!(self.gateway.wait_for_exit(READY).await.unwrap(), Some(0));
        self.gateway = start_gateway(&self.gateway_env, &self.api.admin_url).await;
    }

    /// Signs up [`ADMIN_EMAIL`], makes it an admin the way an operator does (the `users` binary:
    /// `users admin grant EMAIL`, against users' database), and signs in again: its token.
    pub async fn admin(&self) -> String {
        self.api.sign_up(ADMIN_EMAIL).await;
        self.users_admin(&["grant", ADMIN_EMAIL]).await;
        self.api.log_in(ADMIN_EMAIL).await.0
    }

    /// Runs `users admin <args>` against this system's users database; panics unless it
    /// succeeds.
    pub async fn users_admin(&self, args: &[&str]) {
        let mut command = tokio::process::Command::new(binary("users"));
        command
            .arg("admin")
            .args(args)
            .env_clear()
            .env("USERS_DATABASE_URL", &self.users_db_url)
            .kill_on_drop(true);
        let output = tokio::time::timeout(COMMAND, command.output())
            .await
            .expect("the operator command finishes")
            .expect("the users binary runs");
        assert!(
            output.status.success(),
            "users admin {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
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
