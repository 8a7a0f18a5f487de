//! A customer's journey through the gateway's public HTTP API, against a deployed Ferroshop:
//!
//! 1. the storefront page is served;
//! 2. the local administrator (`admin@ferroshop.test`) signs up (or, on a kept cluster, finds
//!    its account), an operator grants it the admin role the way `k8s/README.md` says
//!    (`users admin grant` inside the users pod), and it signs in and stocks a product of its
//!    own (a SKU unique to this run, so reruns against a kept cluster do not collide);
//! 3. a new customer signs up, finds the product, orders two: the saga confirms the order,
//!    payments captures, inventory commits the stock;
//! 4. the customer orders one with the test card that is declined: the order is cancelled and
//!    the reserved unit is back in stock.
//!
//! Every step that waits on the system (the saga, the choreography after it) polls with a
//! deadline; nothing sleeps for a fixed time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// The local administrator (granted by an operator command, see [`run`]).
pub const ADMIN_EMAIL: &str = "admin@ferroshop.test";
/// Throwaway cluster, throwaway password (also what a kept cluster's admin was created with).
const PASSWORD: &str = "kind smoke correct horse battery";
const APPROVE: &str = "tok_visa_approve";
const DECLINE: &str = "tok_visa_decline";
/// How long the saga and the steps after it may take.
const EVENTUALLY: Duration = Duration::from_secs(60);
/// How long the port-forward may take to reach a serving gateway.
const SERVING: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

fn client() -> anyhow::Result<Client> {
    Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .context("cannot build the HTTP client")
}

/// Polls `check` until it returns `Some`, failing with `what` after `deadline`.
async fn poll<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if started.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the gateway answers through the port-forward.
pub async fn wait_until_serving(base_url: &str) -> anyhow::Result<()> {
    let client = client()?;
    let url = format!("{base_url}/api/v1/products?page_size=1");
    poll(
        "the gateway through kubectl port-forward",
        SERVING,
        || async {
            let response = client.get(&url).send().await.ok()?;
            response.status().is_success().then_some(())
        },
    )
    .await
}

struct Api {
    client: Client,
    base_url: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, json))
    }

    async fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        wanted: StatusCode,
    ) -> anyhow::Result<Value> {
        let (status, json) = self.call(method.clone(), path, token, body, &[]).await?;
        ensure!(
            status == wanted,
            "{method} {path}: {status} (wanted {wanted}): {json}"
        );
        Ok(json)
    }

    /// Registers `email` (an existing account is fine) and logs in; returns the access token.
    async fn sign_in(&self, email: &str) -> anyhow::Result<String> {
        let credentials = json!({"email": email, "password": PASSWORD});
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(credentials.clone()),
                &[],
            )
            .await?;
        ensure!(
            status == StatusCode::CREATED || status == StatusCode::CONFLICT,
            "register {email}: {status}: {body}"
        );
        let session = self
            .expect(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(credentials),
                StatusCode::OK,
            )
            .await?;
        session["access_token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("login {email}: no access_token in {session}"))
    }

    async fn available(&self, sku: &str) -> anyhow::Result<i64> {
        let product = self
            .expect(
                Method::GET,
                &format!("/api/v1/products/{sku}"),
                None,
                None,
                StatusCode::OK,
            )
            .await?;
        product["available"]
            .as_i64()
            .with_context(|| format!("product {sku}: no `available` in {product}"))
    }

    async fn place(
        &self,
        token: &str,
        key: &str,
        sku: &str,
        quantity: i64,
        card: &str,
    ) -> anyhow::Result<String> {
        let body = json!({"lines": [{"sku": sku, "quantity": quantity}], "payment_method": card});
        let (status, order) = self
            .call(
                Method::POST,
                "/api/v1/orders",
                Some(token),
                Some(body),
                &[("idempotency-key", key)],
            )
            .await?;
        ensure!(
            status == StatusCode::CREATED,
            "place order: {status}: {order}"
        );
        order["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no order id in {order}"))
    }

    /// Polls the order until `accept` takes it; returns it.
    async fn order_until(
        &self,
        token: &str,
        id: &str,
        what: &str,
        accept: fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let path = format!("/api/v1/orders/{id}");
        poll(what, EVENTUALLY, || async {
            let (status, order) = self
                .call(Method::GET, &path, Some(token), None, &[])
                .await
                .ok()?;
            (status == StatusCode::OK && accept(&order)).then_some(order)
        })
        .await
    }
}

/// The journey (module documentation); its summary line on success.
/// Runs the journey; `grant_admin(email)` makes the registered account an admin, as an
/// operator would.
pub async fn run<F, Fut>(base_url: &str, grant_admin: F) -> anyhow::Result<String>
where
    F: FnOnce(&'static str) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let api = Api {
        client: client()?,
        base_url: base_url.to_owned(),
    };
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();

    let (status, page) = api.call(Method::GET, "/", None, None, &[]).await?;
    ensure!(
        status == StatusCode::OK,
        "GET / (storefront): {status}: {page}"
    );

    api.sign_in(ADMIN_EMAIL).await?;
    grant_admin(ADMIN_EMAIL).await?;
    let admin = api.sign_in(ADMIN_EMAIL).await?;
    let sku = format!("SMOKE-{run_id}");
    api.expect(
        Method::PUT,
        &format!("/api/v1/admin/products/{sku}"),
        Some(&admin),
        Some(json!({
            "name": "Smoke test kettle",
            "description": "Stocked by cargo xtask kind-smoke",
            "price": {"amount_minor": 2500, "currency": "EUR"},
        })),
        StatusCode::OK,
    )
    .await?;
    api.expect(
        Method::POST,
        &format!("/api/v1/admin/products/{sku}/stock-adjustments"),
        Some(&admin),
        Some(json!({"delta": 5, "reason": "kind-smoke delivery"})),
        StatusCode::OK,
    )
    .await?;
    ensure!(
        api.available(&sku).await? == 5,
        "the new product shows 5 in stock"
    );

    let customer = api.sign_in(&format!("smoke-{run_id}@example.com")).await?;
    let paid = api
        .place(&customer, &format!("smoke-paid-{run_id}"), &sku, 2, APPROVE)
        .await?;
    let order = api
        .order_until(&customer, &paid, "the order to settle", |o| {
            o["status"] != "PENDING"
        })
        .await?;
    ensure!(
        order["status"] == "CONFIRMED",
        "the paid order was not confirmed: {order}"
    );
    api.order_until(
        &customer,
        &paid,
        "payment captured and stock committed",
        |o| o["payment_status"] == "captured" && o["stock_status"] == "committed",
    )
    .await?;
    ensure!(api.available(&sku).await? == 3, "two units left the stock");

    let declined = api
        .place(
            &customer,
            &format!("smoke-declined-{run_id}"),
            &sku,
            1,
            DECLINE,
        )
        .await?;
    let order = api
        .order_until(&customer, &declined, "the declined order to settle", |o| {
            o["status"] != "PENDING"
        })
        .await?;
    ensure!(
        order["status"] == "CANCELLED" && order["cancellation_reason"] == "payment_declined",
        "a declined card must cancel the order: {order}"
    );
    poll("the reserved unit back in stock", EVENTUALLY, || async {
        (api.available(&sku).await.ok()? == 3).then_some(())
    })
    .await?;
    Ok(format!(
        "order {paid} confirmed and captured, order {declined} cancelled, stock {sku} consistent"
    ))
}
