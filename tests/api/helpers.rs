//! Test harness: the real router on a random port, over a fresh database per test, on SQLite and
//! (when `FEERECON_TEST_POSTGRES_URL` is set) on a PostgreSQL database of its own.

use feerecon::store::Store;
use feerecon::{app, AppState};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const ADMIN: &str = "test-admin-token-0123456789abcdef0123456789";
pub const SEALER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (url, name) = (admin_url.clone(), name.clone());
            // Async drop is not a thing: drop the database from a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    sqlx::any::install_default_drivers();
                    if let Ok(mut c) =
                        <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await
                    {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub base: String,
    /// The service's state, shared with the running server.
    pub state: AppState,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub db_url: String,
    _db: TestDb,
}

pub fn postgres_url() -> Option<String> {
    std::env::var("FEERECON_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

impl TestApp {
    /// `None` when the backend is PostgreSQL and no server is configured: the test is skipped.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_at(backend, None).await
    }

    /// With a fixed clock, so samples signed at a past time can be delivered.
    pub async fn spawn_at(
        backend: Backend,
        now: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Option<TestApp> {
        Self::spawn_with(backend, now, |_| {}).await
    }

    /// With the service's state adjusted first (limits, budgets), as `main` would from its
    /// configuration.
    pub async fn spawn_with(
        backend: Backend,
        now: Option<chrono::DateTime<chrono::Utc>>,
        adjust: impl FnOnce(&mut AppState),
    ) -> Option<TestApp> {
        let (db, url) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}/feerecon.db", dir.path().display());
                (TestDb::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let admin_url = postgres_url()?;
                let name = format!("feerecon_test_{}", hex::encode(rand::random::<[u8; 8]>()));
                sqlx::any::install_default_drivers();
                let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
                    .await
                    .expect("connect to FEERECON_TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await
                    .expect("create test database");
                let url = replace_db_name(&admin_url, &name);
                (TestDb::Postgres { admin_url, name }, url)
            }
        };
        let store = Store::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        // The service's records are MACed from its first one (AppState::new installs the key
        // too, after bootstrap has written).
        feerecon::audit::install_mac_key(
            feerecon::sealer::Sealer::from_base64(SEALER_KEY)
                .expect("key")
                .audit_mac_key(),
        );
        store
            .bootstrap_admin(Some(ADMIN))
            .await
            .expect("admin token");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut state = AppState::new(
            store.clone(),
            feerecon::sealer::Sealer::from_base64(SEALER_KEY).expect("key"),
        );
        state.fixed_now = now;
        // The service as its own pages reach it: parent links print this origin, and cookie
        // sessions take requests from it.
        state.sessions =
            feerecon::http::session::SessionSettings::for_url(&base).expect("public url");
        // Short timeouts and waits, so the failure paths of pulling run fast.
        state.puller = feerecon::pull::Puller::new(feerecon::pull::PullPolicy {
            timeout: std::time::Duration::from_millis(700),
            backoff: std::time::Duration::from_millis(20),
            max_retry_after: std::time::Duration::from_millis(50),
            ..Default::default()
        });
        adjust(&mut state);
        let limits = state.server_limits.clone();
        let kept = state.clone();
        let router = app(state);
        // The server main runs, with its limits and timeouts.
        tokio::spawn(async move {
            feerecon::http::server::serve(listener, router, &limits, std::future::pending()).await
        });
        Some(TestApp {
            base,
            state: kept,
            client: reqwest::Client::new(),
            backend,
            db_url: url,
            _db: db,
        })
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(&body))
            .await
    }

    /// Posts raw bytes with a content type, e.g. a CSV file.
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A request with a cookie session (and its CSRF token, when given), redirects not
    /// followed: (status, headers, body).
    pub async fn with_cookie(
        &self,
        method: Method,
        path: &str,
        cookie: &str,
        csrf: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let mut req = client
            .request(method, format!("{}{}", self.base, path))
            .header("cookie", format!("feerecon_session={cookie}"));
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, value)
    }

    /// A count straight from the database, to prove a rejected request wrote nothing.
    pub async fn count(&self, table: &str) -> i64 {
        let pool = sqlx::AnyPool::connect(&self.db_url).await.expect("pool");
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .expect("count");
        pool.close().await;
        n
    }

    pub async fn execute_sql(&self, sql: &str) -> Result<(), sqlx::Error> {
        let pool = sqlx::AnyPool::connect(&self.db_url).await?;
        let r = sqlx::query(sql).execute(&pool).await.map(|_| ());
        pool.close().await;
        r
    }

    /// A department, a school with the HCMC catalog, and a token for each role.
    pub async fn school(&self, suffix: &str, prefix: &str) -> School {
        let (s, d) = self
            .post(
                "/api/v1/departments",
                ADMIN,
                json!({"code": format!("SGD-{suffix}"), "name": "Sở GD&ĐT"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        let department_id = d["id"].as_i64().expect("id");
        let (s, sc) = self
            .post(
                "/api/v1/schools",
                ADMIN,
                json!({"department_id": department_id, "code": format!("THCS-{suffix}"), "name": "THCS Lê Quý Đôn", "payment_prefix": prefix}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sc}");
        let school_id = sc["id"].as_i64().expect("id");
        for line in include_str!("../../fixtures/catalog/hcmc-2025.jsonl").lines() {
            let item: Value = serde_json::from_str(line).expect("catalog line");
            let (s, b) = self
                .post(
                    &format!("/api/v1/departments/{department_id}/fee-items"),
                    ADMIN,
                    item,
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
        }
        let token = |role: &str| {
            let body = match role {
                "auditor" => json!({"role": role, "department_id": department_id, "label": role}),
                _ => json!({"role": role, "school_id": school_id, "label": role}),
            };
            async move {
                let (s, t) = self.post("/api/v1/tokens", ADMIN, body).await;
                assert_eq!(s, StatusCode::CREATED, "{t}");
                t["token"].as_str().expect("token").to_string()
            }
        };
        School {
            department_id,
            school_id,
            code: format!("THCS-{suffix}"),
            accountant: token("accountant").await,
            cashier: token("cashier").await,
            auditor: token("auditor").await,
        }
    }

    pub async fn student(&self, school: &School, code: &str, name: &str, class: &str) -> i64 {
        let (s, b) = self
            .post(
                &format!("/api/v1/schools/{}/students", school.school_id),
                &school.accountant,
                json!({"student_code": code, "full_name": name, "class_name": class}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["id"].as_i64().expect("id")
    }

    /// A second accountant of the school: the other pair of eyes on a receiving account.
    pub async fn second_accountant(&self, school: &School) -> String {
        let (s, t) = self
            .post(
                "/api/v1/tokens",
                ADMIN,
                json!({"role": "accountant", "school_id": school.school_id, "label": "second accountant"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        t["token"].as_str().expect("token").to_string()
    }

    /// A receiving account proposed by the school's accountant and approved by a second one:
    /// in force, offered to parents.
    pub async fn approved_account(
        &self,
        school: &School,
        bin: &str,
        number: &str,
        name: &str,
    ) -> Value {
        let (s, a) = self
            .post(
                &format!("/api/v1/schools/{}/accounts", school.school_id),
                &school.accountant,
                json!({"bank_bin": bin, "account_number": number, "account_name": name}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
        assert_eq!(a["state"], "pending");
        let second = self.second_accountant(school).await;
        let (s, a) = self
            .post(
                &format!(
                    "/api/v1/schools/{}/accounts/{}/approve",
                    school.school_id, a["id"]
                ),
                &second,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        assert_eq!(a["state"], "approved");
        a
    }

    /// Uploads a bank statement of `account` (an id) as the school's accountant; `query` is
    /// appended to the route (`"?format=…"` or `""`).
    pub async fn upload_statement(
        &self,
        school: &School,
        account: &Value,
        query: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        self.post_raw(
            &format!(
                "/api/v1/schools/{}/accounts/{}/statements{query}",
                school.school_id, account["id"]
            ),
            &school.accountant,
            content_type,
            body,
        )
        .await
    }

    pub async fn import_fixture(&self, school: &School, file: &str) -> (StatusCode, Value) {
        let bytes = std::fs::read(format!(
            "{}/fixtures/invoices/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        self.post_raw(
            &format!("/api/v1/schools/{}/invoices/import", school.school_id),
            &school.accountant,
            "text/csv",
            bytes,
        )
        .await
    }
}

pub struct School {
    pub department_id: i64,
    pub school_id: i64,
    pub code: String,
    pub accountant: String,
    pub cashier: String,
    pub auditor: String,
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs each test body on SQLite and on PostgreSQL (skipped without a server).
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($app: $crate::helpers::TestApp) $body

                #[tokio::test]
                async fn sqlite() {
                    run($crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await.expect("sqlite")).await
                }

                #[tokio::test]
                async fn postgres() {
                    match $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await {
                        Some(app) => run(app).await,
                        None => eprintln!("FEERECON_TEST_POSTGRES_URL not set: skipped"),
                    }
                }
            }
        )*
    };
}

/// Runs an async `flow(app)` on SQLite and on PostgreSQL (skipped without a server), optionally
/// with a fixed clock: `on_both_backends!(name, flow)` or `on_both_backends!(name, flow, now)`.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $flow:ident) => {
        $crate::on_both_backends!($name, $flow, None);
    };
    ($name:ident, $flow:ident, $now:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let app =
                    $crate::helpers::TestApp::spawn_at($crate::helpers::Backend::Sqlite, $now)
                        .await
                        .expect("sqlite");
                $flow(app).await
            }

            #[tokio::test]
            async fn postgres() {
                match $crate::helpers::TestApp::spawn_at($crate::helpers::Backend::Postgres, $now)
                    .await
                {
                    Some(app) => $flow(app).await,
                    None => eprintln!("FEERECON_TEST_POSTGRES_URL not set: skipped"),
                }
            }
        }
    };
}
