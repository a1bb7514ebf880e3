//! `/webhooks/{provider}/{account_id}`: where senders deliver. The signature is checked on the
//! raw bytes before anything is parsed; a payment is recorded exactly once per (sender,
//! account, transaction); the reply is in the sender's own format, for every outcome, malformed
//! requests included. Senders authenticate by their signature only, never by our tokens.
//!
//! Every verified delivery is archived as received. A refused one (bad signature, unknown
//! account, malformed) is archived cut short: the headers its sender signs and the first bytes
//! of its query and body, each cut, with the digest and size of the whole request, so one
//! refusal costs the archive at most a few kilobytes. Refusals from one address past its budget
//! are answered "too many" and not archived at all (`limits.rs`).

use super::limits::ClientAddr;
use super::AppState;
use crate::domain::provider::{AckTable, Answer, DeliveryOutcome};
use crate::error::Error;
use crate::plan::intake::Allocate;
use crate::providers::{self, Inbound, Notification, Outcome, ProviderId, Reply, Sender};
use crate::store::ledger::NewPayment;
use crate::store::record::{Job, Outcome as Recording};
use crate::store::webhooks::{DeliveryContext, NewEvent};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Notifications are small; a larger body is refused (and archived, cut short).
pub const WEBHOOK_LIMIT: usize = 256 * 1024;
/// Header bytes a delivery may carry; no sender sends more.
pub const HEADER_LIMIT: usize = 16 * 1024;
/// What a verified delivery keeps in the archive.
pub const KEPT_BODY: usize = 64 * 1024;
const KEPT_QUERY: usize = 8 * 1024;
const KEPT_HEADER: usize = 2 * 1024;
/// What a refused delivery keeps in the archive: a few kilobytes at most.
pub const REFUSED_BODY: usize = 1024;
const REFUSED_QUERY: usize = 1024;
const REFUSED_HEADER: usize = 256;
/// Headers kept for every sender, besides those it signs.
const ALWAYS_KEPT: [&str; 2] = ["content-type", "user-agent"];

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/{provider}/{account_id}", any(deliver))
}

/// How long an instance trusts the account, school and secrets it loaded for a webhook path.
/// An admin's change on this instance takes effect at once; on other instances sharing the
/// database, within this time.
pub const CONTEXT_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Recently loaded delivery contexts, so a burst to one account reads them once. Only known
/// accounts are kept (a bounded set); unknown paths always go to the database.
type Loaded = (Instant, Arc<DeliveryContext>);

#[derive(Clone, Default)]
pub struct Contexts {
    cached: Arc<Mutex<HashMap<(i64, ProviderId), Loaded>>>,
}

impl Contexts {
    async fn get(
        &self,
        st: &AppState,
        account_id: i64,
        provider: ProviderId,
    ) -> Result<Option<Arc<DeliveryContext>>, Error> {
        let key = (account_id, provider);
        if let Ok(cached) = self.cached.lock() {
            if let Some((at, c)) = cached.get(&key) {
                if at.elapsed() < CONTEXT_TTL {
                    return Ok(Some(c.clone()));
                }
            }
        }
        let loaded = st
            .store
            .delivery_context(&st.sealer, account_id, provider)
            .await?
            .map(Arc::new);
        if let (Some(c), Ok(mut cached)) = (&loaded, self.cached.lock()) {
            cached.insert(key, (Instant::now(), c.clone()));
        }
        Ok(loaded)
    }

    /// Forgets everything: secrets or accounts changed.
    pub fn clear(&self) {
        if let Ok(mut cached) = self.cached.lock() {
            cached.clear();
        }
    }
}

/// What became of a delivery.
#[derive(Debug, Clone)]
pub(super) struct Handled {
    pub outcome: DeliveryOutcome,
    /// The answer, when it is not the outcome's (the delivery was not written).
    pub answer: Option<Answer>,
    pub detail: Option<String>,
    pub verified: bool,
    pub txn_id: Option<String>,
    pub payment_id: Option<i64>,
}

impl Handled {
    fn answer(&self) -> Answer {
        self.answer.unwrap_or_else(|| self.outcome.answer())
    }

    /// Writes the outcome into the archived delivery.
    pub(super) fn fill(&self, sender: &dyn Sender, event: &mut NewEvent) {
        event.verified = self.verified;
        event.txn_id.clone_from(&self.txn_id);
        event.outcome = self.outcome;
        event.detail.clone_from(&self.detail);
        event.payment_id = self.payment_id;
        event.ack_status = sender.answer(self.answer()).status;
    }

    /// Our own failure: the sender is asked to send again.
    pub(super) fn retry_later(why: &str) -> Self {
        Self {
            outcome: DeliveryOutcome::Error,
            answer: None,
            detail: Some(why.into()),
            verified: false,
            txn_id: None,
            payment_id: None,
        }
    }

    /// What recording a paid notification came to.
    pub(super) fn recorded(info: &ToRecord, o: &Recording) -> Self {
        Self {
            outcome: o.planned.delivery_outcome(),
            answer: None,
            detail: o.planned.detail(),
            verified: true,
            txn_id: Some(info.txn_id.clone()),
            payment_id: o.payment_id,
        }
    }

    /// Not queued, so nothing was written: the sender is asked to send again.
    pub(super) fn not_written(why: super::intake::NotQueued) -> Self {
        Self {
            answer: Some(Answer::RetryLater),
            ..Self::retry_later(match why {
                super::intake::NotQueued::Full => "the intake is full",
                super::intake::NotQueued::Closed => "the service is stopping",
            })
        }
    }
}

/// A verified paid notification, ready to be recorded, with what its reply depends on.
#[derive(Debug, Clone)]
pub(super) struct ToRecord {
    pub txn_id: String,
}

/// The request as it arrived, before anything is believed of it.
struct Arrival {
    sender: &'static dyn Sender,
    account_id: Option<i64>,
    client: IpAddr,
    method: String,
    query: String,
    /// The headers the archive keeps (the sender's signed ones and a few more), in full.
    kept: Vec<(String, String)>,
    header_bytes: usize,
    digest: Sha256,
    size: usize,
}

impl Arrival {
    fn new(sender: &'static dyn Sender, req: &Request, account: Option<&str>) -> Self {
        let mut digest = Sha256::new();
        let mut size = 0;
        let mut feed = |bytes: &[u8]| {
            digest.update((bytes.len() as u64).to_be_bytes());
            digest.update(bytes);
            size += bytes.len();
        };
        feed(req.method().as_str().as_bytes());
        feed(
            req.uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("")
                .as_bytes(),
        );
        let mut header_bytes = 0;
        let mut kept = Vec::new();
        for (name, value) in req.headers() {
            feed(name.as_str().as_bytes());
            feed(value.as_bytes());
            header_bytes += name.as_str().len() + value.len() + 4;
            let n = name.as_str();
            if sender.signed_headers().contains(&n) || ALWAYS_KEPT.contains(&n) {
                kept.push((
                    n.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                ));
            }
        }
        Self {
            sender,
            account_id: account.and_then(|a| a.parse().ok()),
            client: req
                .extensions()
                .get::<ClientAddr>()
                .map(|a| a.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            method: req.method().as_str().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            kept,
            header_bytes,
            digest,
            size,
        }
    }

    fn inbound<'a>(&'a self, body: &'a [u8]) -> Inbound<'a> {
        Inbound {
            query: &self.query,
            headers: &self.kept,
            body,
        }
    }

    /// The archive's copy: the kept headers (a credential masked), the query and the body,
    /// each cut to `limits`; a refused delivery also keeps the digest and size of all of it.
    fn event(&self, account: Option<(i64, i64)>, body: &[u8], refused: bool) -> NewEvent {
        let (header_limit, query_limit, body_limit) = if refused {
            (REFUSED_HEADER, REFUSED_QUERY, REFUSED_BODY)
        } else {
            (KEPT_HEADER, KEPT_QUERY, KEPT_BODY)
        };
        let headers: serde_json::Map<String, serde_json::Value> = self
            .kept
            .iter()
            .map(|(n, v)| {
                // SePay's API key travels in Authorization: it is a secret, so it is never
                // stored. Keep the scheme word only when there is one: a bare key must not
                // survive.
                let v = if n == "authorization" {
                    match v.split_whitespace().collect::<Vec<_>>().as_slice() {
                        [scheme, _, ..] => format!("{} ***", cut(scheme, 32)),
                        _ => "***".to_string(),
                    }
                } else {
                    cut(v, header_limit).to_string()
                };
                (n.clone(), serde_json::Value::String(v))
            })
            .collect();
        let request_digest = refused.then(|| {
            let mut digest = self.digest.clone();
            digest.update((body.len() as u64).to_be_bytes());
            digest.update(body);
            (hex::encode(digest.finalize()), self.size + body.len())
        });
        NewEvent {
            provider: self.sender.id(),
            account,
            method: self.method.clone(),
            query: cut(&self.query, query_limit).to_string(),
            headers: serde_json::Value::Object(headers).to_string(),
            body: body[..body.len().min(body_limit)].to_vec(),
            body_size: body.len(),
            request_digest,
            verified: false,
            txn_id: None,
            outcome: DeliveryOutcome::Error,
            detail: None,
            payment_id: None,
            ack_status: 0,
            acks: AckTable::new(|_| 0),
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

async fn deliver(State(st): State<AppState>, req: Request) -> Response {
    // The path is read by hand, so that no malformed path is ever answered outside the
    // sender's format.
    let path = req
        .uri()
        .path()
        .trim_start_matches("/webhooks/")
        .to_string();
    let mut parts = path.splitn(2, '/');
    let Some(sender) = parts.next().and_then(providers::by_name) else {
        return Error::not_found("route_not_found", "route").into_response();
    };
    let arrival = Arrival::new(sender, &req, parts.next());
    if arrival.header_bytes > HEADER_LIMIT {
        return refuse(
            &st,
            &arrival,
            None,
            &[],
            DeliveryOutcome::Rejected,
            false,
            format!("headers over {HEADER_LIMIT} bytes"),
        )
        .await;
    }
    let context = match arrival.account_id {
        Some(id) => st.contexts.get(&st, id, sender.id()).await,
        None => Ok(None),
    };
    let context = match context {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "could not load the account of a delivery");
            return respond(sender.answer(Answer::RetryLater));
        }
    };
    let account = context
        .as_ref()
        .map(|c| (c.account.id, c.account.school_id));
    let bytes = match axum::body::to_bytes(req.into_body(), WEBHOOK_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                &st,
                &arrival,
                account,
                &[],
                DeliveryOutcome::TooLarge,
                false,
                format!("body over {WEBHOOK_LIMIT} bytes, or not sent in time"),
            )
            .await
        }
    };
    let Some(context) = context else {
        return refuse(
            &st,
            &arrival,
            None,
            &bytes,
            DeliveryOutcome::UnknownAccount,
            false,
            "no such account for this sender".into(),
        )
        .await;
    };
    let inbound = arrival.inbound(&bytes);
    let verified = if context.secrets.is_empty() {
        Err(providers::VerifyError::NoSecret)
    } else {
        sender.verify(&inbound, &context.secrets, st.now())
    };
    if let Err(e) = verified {
        return refuse(
            &st,
            &arrival,
            account,
            &bytes,
            DeliveryOutcome::BadSignature,
            false,
            e.to_string(),
        )
        .await;
    }
    // Verified: from here on the delivery is the sender's own, and counts against its
    // account's budget, never against the address it came from.
    if !st.webhook_limits.delivery(context.account.id) {
        return respond(sender.answer(Answer::TooMany));
    }
    let n = match providers::parse(sender, &inbound) {
        Ok(n) => n,
        Err(e) => {
            let outcome = if e.is_amount() {
                DeliveryOutcome::InvalidAmount
            } else {
                DeliveryOutcome::Rejected
            };
            return refuse(&st, &arrival, account, &bytes, outcome, true, e.to_string()).await;
        }
    };
    if n.account
        .as_deref()
        .is_some_and(|a| !a.trim().eq_ignore_ascii_case(&context.account.account))
    {
        return refuse(
            &st,
            &arrival,
            account,
            &bytes,
            DeliveryOutcome::AccountMismatch,
            true,
            "the notification is for another account".into(),
        )
        .await;
    }
    let event = arrival.event(account, &bytes, false);
    let kept = |outcome, detail: Option<String>| Handled {
        outcome,
        answer: None,
        detail,
        verified: true,
        txn_id: Some(n.txn_id.clone()),
        payment_id: None,
    };
    let handled = match &n.outcome {
        Outcome::Failed { code } => {
            let h = kept(DeliveryOutcome::Failed, Some(format!("sender code {code}")));
            st.intake.keep(&st.store, sender, event, h).await
        }
        Outcome::Outgoing => {
            let h = kept(DeliveryOutcome::Outgoing, None);
            st.intake.keep(&st.store, sender, event, h).await
        }
        // Refunds are archived for the accountant; booking them against the ledger is
        // reconciliation's job.
        Outcome::Refund => {
            let h = kept(DeliveryOutcome::Refund, None);
            st.intake.keep(&st.store, sender, event, h).await
        }
        Outcome::Ignored { event_type } => {
            let h = kept(
                DeliveryOutcome::Ignored,
                Some(format!("event type {event_type}")),
            );
            st.intake.keep(&st.store, sender, event, h).await
        }
        Outcome::Paid if n.amount.dong() <= 0 => {
            return refuse(
                &st,
                &arrival,
                account,
                &bytes,
                DeliveryOutcome::InvalidAmount,
                true,
                "a payment of 0 đồng".into(),
            )
            .await
        }
        Outcome::Paid => match prepare(sender, &context, &n) {
            Ok((job, info)) => {
                let mut event = event;
                event.acks = providers::ack_table(sender);
                st.intake.record(&st.store, sender, event, job, info).await
            }
            Err(e) => {
                tracing::error!(error = %e, "could not prepare a notification");
                Handled::retry_later("could not be prepared")
            }
        },
    };
    let reply = sender.answer(handled.answer());
    tracing::info!(provider = sender.id().as_str(), outcome = handled.outcome.as_str(), status = reply.status, payment_id = ?handled.payment_id, "delivery");
    respond(reply)
}

/// A delivery refused before anything is booked: archived cut short, within the address's
/// refusal budget, and answered in the sender's format.
async fn refuse(
    st: &AppState,
    arrival: &Arrival,
    account: Option<(i64, i64)>,
    body: &[u8],
    outcome: DeliveryOutcome,
    verified: bool,
    detail: String,
) -> Response {
    let sender = arrival.sender;
    if !verified && !st.webhook_limits.refusal(arrival.client) {
        return respond(sender.answer(Answer::TooMany));
    }
    let reply = sender.answer(outcome.answer());
    let mut event = arrival.event(account, body, true);
    event.verified = verified;
    event.outcome = outcome;
    event.detail = Some(cut(&detail, 300).to_string());
    event.ack_status = reply.status;
    if let Err(why) = st.intake.refused(&st.store, event).await {
        // Not archived: ask the sender to come back rather than tell it something the archive
        // would not show.
        return respond(sender.answer(match why {
            super::intake::NotQueued::Full => Answer::TooMany,
            super::intake::NotQueued::Closed => Answer::RetryLater,
        }));
    }
    tracing::info!(
        provider = sender.id().as_str(),
        outcome = outcome.as_str(),
        status = reply.status,
        "delivery refused"
    );
    respond(reply)
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    if !reply.body.is_empty() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Some(seconds) = reply.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    (status, headers, Body::from(reply.body)).into_response()
}

/// The payment a paid notification becomes.
fn prepare(
    sender: &dyn Sender,
    context: &DeliveryContext,
    n: &Notification,
) -> Result<(Job, ToRecord), Error> {
    let (school, account) = (&context.school, &context.account);
    let payment = NewPayment {
        channel: n.channel,
        provider: sender.id().as_str().to_string(),
        provider_ref: Some(sender.once_key(&account.account, n)),
        bank_ref: n.bank_ref.clone(),
        payer_name: n.payer_name.clone(),
        memo: n.memo.clone(),
        amount: n.amount,
        received_at: n.occurred_at.min(chrono::Utc::now()),
        reported_fee: n.fee,
        // The engine reads the memo and the sender's order reference (VNPay's vnp_TxnRef is
        // our code), under the school's ledger lock, in the transaction that records it.
        allocate: Allocate::Engine {
            order_ref: n.order_ref.clone(),
        },
        reported_fee_bearer: n.fee_bearer,
        credited_account: sender.watches_account().then(|| account.account.clone()),
    };
    let job = Job {
        actor: format!("webhook:{}", sender.id()),
        school: school.clone(),
        payment,
    };
    let info = ToRecord {
        txn_id: n.txn_id.clone(),
    };
    Ok((job, info))
}
