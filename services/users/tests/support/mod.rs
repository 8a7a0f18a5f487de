//! `spawn_app`: a users service on random ports with its own fresh database.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::{collections::HashMap, net::SocketAddr};

use contracts::users::{RegisterRequest, User, UsersServiceClient};
use platform::{Shutdown, config::Env};
use testkit::TestDatabase;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use users::{Application, Config};

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    /// The broker and the exchange (unique to this test) the outbox relay publishes to.
    pub amqp_url: String,
    pub exchange: String,
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub client: UsersServiceClient<Channel>,
    pub db: TestDatabase,
    shutdown: Shutdown,
    server: JoinHandle<()>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let db = testkit::fresh_database().await;
    let amqp_url = testkit::amqp_url().await;
    let exchange = testkit::unique_name("users.test.events");
    let mut vars: HashMap<String, String> =
        testkit::service_vars("users", &db.url, &amqp_url, &exchange)
            .into_iter()
            .collect();
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = Config::from(&Env::from_map("users", vars)).expect("valid test config");
    let app = Application::build(config)
        .await
        .expect("the service builds");
    let grpc_addr = app.grpc_addr();
    let admin_addr = app.admin_addr();
    let shutdown = Shutdown::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            app.run(shutdown).await.expect("the service runs");
        }
    });
    let client = UsersServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .expect("connects to the service");
    TestApp {
        amqp_url,
        exchange,
        grpc_addr,
        admin_addr,
        client,
        db,
        shutdown,
        server,
    }
}

impl TestApp {
    pub async fn register(&self, email: &str) -> User {
        self.client
            .clone()
            .register(RegisterRequest {
                email: email.to_owned(),
                password: PASSWORD.to_owned(),
                display_name: String::new(),
            })
            .await
            .expect("registration succeeds")
            .into_inner()
            .user
            .expect("a user in the response")
    }

    /// Rows in `table` of this test's database.
    pub async fn count(&self, table: &str) -> i64 {
        let pool = self.db.pool().await;
        let query = format!("SELECT count(*) FROM {table}");
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(query))
            .fetch_one(&pool)
            .await
            .expect("count rows");
        pool.close().await;
        count
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        self.server.await.expect("the server task ends cleanly");
    }
}
