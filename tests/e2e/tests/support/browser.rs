//! Headless Chromium driven through chromedriver's W3C WebDriver HTTP API with `reqwest`
//! (a dozen endpoints; no WebDriver client crate, so no second hyper/rustls in the tree).

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use base64::Engine as _;
use reqwest::{Client, Method};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const APT: &str = "apt-get update && apt-get install -y chromium chromium-driver";
/// The W3C name of an element reference in WebDriver JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A binary from the environment variable `var`, else the Debian path; the test fails (never
/// skips) when it is missing.
fn binary(var: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "browser tests need {package}: `{}` is missing (set {var} to another path). Install it with: {APT}",
        path.display()
    );
    path
}

/// A chromedriver process and one headless Chromium session. Chromium runs in chromedriver's
/// process group, and the whole group is killed on drop, so a failing test leaves no browser.
pub struct Browser {
    client: Client,
    base: String,
    driver: Child,
    user_data: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            // `kill -KILL -- -<pgid>`: chromedriver and every Chromium process it started.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.user_data);
    }
}

impl Browser {
    pub async fn launch() -> Self {
        let chromium = binary("CHROME_BIN", CHROMIUM, "Chromium");
        let chromedriver = binary("CHROMEDRIVER", CHROMEDRIVER, "chromedriver");
        let port = testkit::free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", chromedriver.display()));
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        testkit::poll_until("chromedriver to answer", Duration::from_secs(20), || {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let status: Value = client
                    .get(format!("{base}/status"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (status["value"]["ready"] == true).then_some(())
            }
        })
        .await
        .unwrap();
        let user_data = std::env::temp_dir().join(testkit::unique_name("e2e-chromium"));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", user_data.display()),
                ],
            },
        }}});
        let session: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not start Chromium: {session}"));
        Self {
            base: format!("{base}/session/{id}"),
            client,
            driver,
            user_data,
        }
    }

    /// One WebDriver command; returns its `value`, panicking on a WebDriver error.
    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(
            answer["value"]["error"].is_null(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.command(Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.command(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> String {
        let last = std::sync::Mutex::new(Value::Null);
        let found = testkit::poll_until(
            &format!("`{css}` to appear"),
            Duration::from_secs(15),
            || {
                let body = json!({"using": "css selector", "value": css});
                let last = &last;
                async move {
                    let answer: Value = self
                        .client
                        .post(format!("{}/element", self.base))
                        .json(&body)
                        .send()
                        .await
                        .ok()?
                        .json()
                        .await
                        .ok()?;
                    let element = answer["value"][ELEMENT].as_str().map(str::to_owned);
                    *last.lock().unwrap() = answer;
                    element
                }
            },
        )
        .await;
        found.unwrap_or_else(|err| panic!("{err}; WebDriver said {}", last.lock().unwrap()))
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(
            Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// The trimmed text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        self.eval(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;",
            json!([css]),
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// Waits until the text of `css` satisfies `accept`; returns it.
    pub async fn wait_for_text(
        &self,
        what: &str,
        css: &str,
        deadline: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> String {
        let accept = &accept;
        let found = testkit::poll_until(what, deadline, || async move {
            self.text(css).await.filter(|text| accept(text))
        })
        .await;
        match found {
            Ok(text) => text,
            Err(err) => panic!(
                "{err}; `{css}` says {:?}; the page says: {:?}",
                self.text(css).await,
                self.text("main").await.unwrap_or_default()
            ),
        }
    }

    /// Saves a PNG of the viewport under `target/e2e-screenshots/`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.command(Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Ends the session politely; [`Drop`] then stops chromedriver and cleans up.
    pub async fn quit(self) {
        let _ = self.client.delete(&self.base).send().await;
    }
}
