//! Pulling watched accounts' transactions when a notification never came. SePay gives up on a
//! delivery after 7 retries over about 33 minutes, and Casso delivers minutes after the bank
//! booked the transfer: for each SePay or Casso account with a pull source, a scheduler asks the
//! sender's transaction-list API for what happened since the last run and books it through the
//! statement path, where a transaction already notified is tied to its payment and one that was
//! not becomes the payment its notification would have made.
//!
//! Requests time out, and a failed request (no answer, 5xx, 429) is retried with doubling waits,
//! honouring `Retry-After`; a refused one (401, 403, 404) is not. A run that fails keeps what it
//! booked and its cursor, and the source waits twice as long after each failure in a row, up to
//! an hour.

use crate::error::{Error, Result};
use crate::providers::feed::{self, Pulled, Skipped};
use crate::sealer::Sealer;
use crate::store::pulls::PullSource;
use crate::store::statements::StatementReport;
use crate::store::Store;
use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::Duration;
use utoipa::ToSchema;

/// Timeouts, retries and the scheduler's pace.
#[derive(Debug, Clone)]
pub struct PullPolicy {
    pub connect_timeout: Duration,
    /// For a whole request, answer included.
    pub timeout: Duration,
    /// Attempts of one request, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubled before each next one.
    pub backoff: Duration,
    /// A `Retry-After` longer than this is cut to it.
    pub max_retry_after: Duration,
    /// Answers longer than this are refused.
    pub max_body: usize,
    /// How often the scheduler looks for due sources.
    pub tick: Duration,
    /// How long a claimed run holds its source before another instance may take it.
    pub lease: chrono::Duration,
}

impl Default for PullPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            attempts: 4,
            backoff: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(30),
            max_body: 32 << 20,
            tick: Duration::from_secs(15),
            lease: chrono::Duration::minutes(10),
        }
    }
}

/// Fewest and most seconds between two runs of a source.
pub const MIN_INTERVAL_SECONDS: i64 = 60;
pub const MAX_INTERVAL_SECONDS: i64 = 86_400;
/// After failures in a row a source waits at most this long.
pub const MAX_BACKOFF_SECONDS: i64 = 3_600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the sender refused the request (HTTP {0}): check the API key and the account")]
    Refused(u16),
    #[error("no usable answer after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: String },
    #[error("the sender's answer is over {0} bytes")]
    TooLarge(usize),
    #[error("the sender's API answered with a redirect (HTTP {0}), which is not followed: check base_url")]
    Redirected(u16),
}

/// Whether pulls may be sent to `url`: HTTPS, or plain HTTP to this machine (a local stand-in
/// or proxy). The API key travels in a header, so plain HTTP across a network gives it away.
pub fn allowed_base_url(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => {
            let host = url.host_str().unwrap_or_default();
            host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// The HTTP side of pulling: one client, its policy.
#[derive(Clone)]
pub struct Puller {
    /// `None` when the client could not be built (no TLS backend): every run then fails.
    client: Option<reqwest::Client>,
    pub policy: PullPolicy,
}

impl Default for Puller {
    fn default() -> Self {
        Self::new(PullPolicy::default())
    }
}

impl Puller {
    pub fn new(policy: PullPolicy) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .user_agent(concat!("feerecon/", env!("CARGO_PKG_VERSION")))
            // A redirect is not followed: it would take the API key to an address base_url
            // never named, past the check on it.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok();
        Self { client, policy }
    }

    /// GET `url`, retried as the policy says; the body of the first 2xx answer.
    async fn get(
        &self,
        url: &str,
        authorization: &str,
    ) -> std::result::Result<Vec<u8>, FetchError> {
        let Some(client) = &self.client else {
            return Err(FetchError::Unavailable {
                attempts: 0,
                last: "the HTTP client could not start".into(),
            });
        };
        let mut wait = self.policy.backoff;
        let mut last = String::new();
        for attempt in 1..=self.policy.attempts {
            let mut retry_after = None;
            match client
                .get(url)
                .header("authorization", authorization)
                .header("accept", "application/json")
                .send()
                .await
            {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        match self.body(response).await {
                            Ok(body) => return Ok(body),
                            Err(FetchError::TooLarge(n)) => return Err(FetchError::TooLarge(n)),
                            Err(e) => last = e.to_string(),
                        }
                    } else if status.as_u16() == 429
                        || status.as_u16() == 408
                        || status.is_server_error()
                    {
                        last = format!("HTTP {}", status.as_u16());
                        retry_after = ["retry-after", "x-sepay-userapi-retry-after"]
                            .iter()
                            .find_map(|h| response.headers().get(*h))
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(|s| Duration::from_secs(s).min(self.policy.max_retry_after));
                    } else if status.is_redirection() {
                        return Err(FetchError::Redirected(status.as_u16()));
                    } else {
                        return Err(FetchError::Refused(status.as_u16()));
                    }
                }
                // The error names the host, never the key: it is in a header.
                Err(e) if e.is_timeout() => last = "timed out".into(),
                Err(e) if e.is_connect() => last = "could not connect".into(),
                Err(e) => last = format!("request failed: {}", e.without_url()),
            }
            if attempt < self.policy.attempts {
                tokio::time::sleep(retry_after.unwrap_or(wait)).await;
                wait *= 2;
            }
        }
        Err(FetchError::Unavailable {
            attempts: self.policy.attempts,
            last,
        })
    }

    async fn body(
        &self,
        mut response: reqwest::Response,
    ) -> std::result::Result<Vec<u8>, FetchError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.policy.max_body {
                        return Err(FetchError::TooLarge(self.policy.max_body));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) if e.is_timeout() => {
                    return Err(FetchError::Unavailable {
                        attempts: 1,
                        last: "timed out reading the answer".into(),
                    })
                }
                Err(e) => {
                    return Err(FetchError::Unavailable {
                        attempts: 1,
                        last: format!("answer cut short: {}", e.without_url()),
                    })
                }
            }
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RunReport {
    /// Answers read (pages).
    pub pages: usize,
    /// Transactions of the account the answers listed.
    pub pulled: usize,
    /// Listed transactions that cannot be booked, with why.
    pub skipped: Vec<Skipped>,
    /// What booking them did, as for a statement.
    pub booked: StatementReport,
    /// Where the next run starts.
    pub cursor: Option<String>,
    /// Why the run stopped short; what it read before is booked.
    pub error: Option<String>,
}

/// Runs one source now: reads the sender's list from the cursor, books what it read, and
/// records how it went. Only a failure of our own database is an `Err`; a sender's failure is
/// in the report.
pub async fn run(
    store: &Store,
    sealer: &Sealer,
    puller: &Puller,
    source: &PullSource,
) -> Result<RunReport> {
    let mut report = RunReport::default();
    let outcome = read_and_book(store, sealer, puller, source, &mut report).await;
    if let Err(e) = &outcome {
        report.error = Some(match e {
            Error::Internal(_) | Error::Db(_) => {
                "the run could not be booked; it will be tried again".into()
            }
            other => other.to_string(),
        });
    }
    let now = Utc::now();
    let next = match &report.error {
        None => now + chrono::Duration::seconds(source.interval_seconds),
        Some(_) => {
            let doubled = source
                .interval_seconds
                .saturating_mul(1i64 << source.failures.clamp(0, 20));
            now + chrono::Duration::seconds(doubled.min(MAX_BACKOFF_SECONDS))
        }
    };
    let result = serde_json::to_value(&report).map_err(|e| Error::Internal(e.to_string()))?;
    store
        .finish_pull(
            source.provider_account_id,
            report.cursor.as_deref(),
            next,
            report.error.as_deref(),
            &result,
        )
        .await?;
    match outcome {
        Err(e @ (Error::Internal(_) | Error::Db(_))) => Err(e),
        _ => Ok(report),
    }
}

async fn read_and_book(
    store: &Store,
    sealer: &Sealer,
    puller: &Puller,
    source: &PullSource,
    report: &mut RunReport,
) -> Result<()> {
    let feed = crate::providers::sender(source.provider)
        .and_then(|s| s.feed())
        .ok_or_else(|| {
            Error::Internal(format!(
                "{} has no transaction list",
                source.provider.as_str()
            ))
        })?;
    let key = sealer
        .open(&store.pull_key(source.provider_account_id).await?)
        .map_err(|_| {
            Error::invalid(
                "pull_key_unreadable",
                "the stored API key cannot be opened with this instance's secret key; set it again",
            )
        })?;
    let key = String::from_utf8(key).map_err(|_| {
        Error::invalid(
            "pull_key_unreadable",
            "the stored API key is not text; set it again",
        )
    })?;
    let school = store.school_by_id(source.school_id).await?;
    let account = store
        .school_account(source.school_id, source.account_id)
        .await?;
    // Checked when it was set; again here for a source stored before the rule existed.
    if !reqwest::Url::parse(&source.base_url).is_ok_and(|u| allowed_base_url(&u)) {
        return Err(Error::invalid(
            "pull_failed",
            "base_url is not https (plain http is only for this machine): set it again",
        ));
    }
    let base = source.base_url.trim_end_matches('/');
    let authorization = feed.authorization(&key);

    let mut pulled: Vec<Pulled> = Vec::new();
    let mut digest = Sha256::new();
    let mut cursor = source.cursor.clone();
    let mut failure = None;
    for page in 0..feed::MAX_PAGES_PER_RUN {
        let from = feed
            .page_from(source.cursor.as_deref(), &pulled)
            .or(cursor.clone());
        let request = feed.request(&source.account, from.as_deref(), page, Utc::now());
        let body = match puller
            .get(&format!("{base}{}", request.path_and_query), &authorization)
            .await
        {
            Ok(body) => body,
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        };
        digest.update(&body);
        let read = match feed.read(&body, &source.account) {
            Ok(read) => read,
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        };
        report.pages += 1;
        report.skipped.extend(read.skipped);
        let more = read.more && !read.pulled.is_empty();
        pulled.extend(read.pulled);
        cursor = feed.next_cursor(source.cursor.as_deref(), &pulled);
        if !more {
            break;
        }
    }
    report.pulled = pulled.len();
    if !pulled.is_empty() {
        report.booked = store
            .import_pulled(
                &school,
                &account,
                source.provider,
                &pulled,
                &hex::encode(digest.finalize()),
            )
            .await?;
    }
    report.cursor = cursor;
    if let Some(f) = failure {
        return Err(Error::invalid("pull_failed", f));
    }
    Ok(())
}

/// Runs every due source this instance can claim; how many ran.
pub async fn run_due(store: &Store, sealer: &Sealer, puller: &Puller) -> Result<usize> {
    let mut ran = 0;
    for due in store.due_pulls(Utc::now()).await? {
        let lease_until = Utc::now() + puller.policy.lease;
        if !store
            .claim_pull(due.provider_account_id, &due.next_run_at, lease_until)
            .await?
        {
            continue;
        }
        let Some(source) = store.pull_source(due.provider_account_id).await? else {
            continue;
        };
        match run(store, sealer, puller, &source).await {
            Ok(r) => tracing::info!(
                provider_account_id = source.provider_account_id,
                pulled = r.pulled,
                created = r.booked.created,
                error = r.error.as_deref().unwrap_or(""),
                "pull ran"
            ),
            Err(e) => {
                tracing::error!(provider_account_id = source.provider_account_id, error = %e, "pull could not be booked")
            }
        }
        ran += 1;
    }
    Ok(ran)
}

/// The scheduler: looks for due sources every tick, until the process ends.
pub fn spawn(store: Store, sealer: Sealer, puller: Puller) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(puller.policy.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = run_due(&store, &sealer, &puller).await {
                tracing::error!(error = %e, "pull scheduler");
            }
        }
    })
}
