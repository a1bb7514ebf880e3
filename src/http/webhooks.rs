//! `/webhooks/{provider}/{account_id}`: where senders deliver. Every delivery is archived,
//! whatever becomes of it; the signature is checked on the raw bytes before anything is parsed;
//! a payment is recorded exactly once per (sender, account, transaction); the reply is in the
//! sender's own format. Senders authenticate by their signature only, never by our tokens.

use super::AppState;
use crate::domain::code::{find_in_text, PaymentCode, SchoolPrefix};
use crate::error::Error;
use crate::providers::{self, Ack, Inbound, Notification, Outcome, ProviderId};
use crate::store::ledger::{NewPayment, Recorded};
use crate::store::record::{Job, Named};
use crate::store::webhooks::{DeliveryContext, NewEvent};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Notifications are small; a larger body is refused (and archived, cut short).
pub const WEBHOOK_LIMIT: usize = 256 * 1024;

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

/// Headers kept in the archive: what the signatures and replays need, with API keys masked.
fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    const KEEP: [&str; 7] = [
        "authorization",
        "content-type",
        "x-casso-signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "user-agent",
    ];
    headers
        .iter()
        .filter(|(n, _)| KEEP.contains(&n.as_str()))
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn archived_headers(kept: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = kept
        .iter()
        .map(|(n, v)| {
            // SePay's API key travels in Authorization: it is a secret, so it is never stored.
            // Keep the scheme word only when there is one: a bare key must not survive.
            let v = if n == "authorization" {
                match v.split_whitespace().collect::<Vec<_>>().as_slice() {
                    [scheme, _, ..] => format!("{scheme} ***"),
                    _ => "***".to_string(),
                }
            } else {
                v.clone()
            };
            (n.clone(), serde_json::Value::String(v))
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// What became of a delivery.
#[derive(Debug, Clone)]
pub(super) struct Handled {
    pub ack: Ack,
    pub outcome: &'static str,
    pub detail: Option<String>,
    pub verified: bool,
    pub txn_id: Option<String>,
    pub payment_id: Option<i64>,
    /// Recorded without an invoice: the reconciliation engine reads its memo next.
    pub to_match: bool,
}

impl Handled {
    fn rejected(ack: Ack, outcome: &'static str, detail: String, verified: bool) -> Self {
        Self {
            ack,
            outcome,
            detail: Some(detail),
            verified,
            txn_id: None,
            payment_id: None,
            to_match: false,
        }
    }

    /// Writes the outcome into the archived delivery.
    pub(super) fn fill(&self, provider: ProviderId, event: &mut NewEvent) {
        event.verified = self.verified;
        event.txn_id.clone_from(&self.txn_id);
        event.outcome = self.outcome;
        event.detail.clone_from(&self.detail);
        event.payment_id = self.payment_id;
        event.ack_status = providers::reply(provider, self.ack).status;
    }
}

/// A verified paid notification, ready to be recorded, with what its reply depends on.
#[derive(Debug, Clone)]
pub(super) struct ToRecord {
    pub provider: ProviderId,
    pub txn_id: String,
    pub amount: crate::domain::money::Vnd,
}

enum Handling {
    Done(Handled),
    Record(Box<(Job, ToRecord)>),
}

async fn deliver(
    State(st): State<AppState>,
    Path((provider, account_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(provider) = ProviderId::from_db(&provider) else {
        return Error::not_found("route_not_found", "route").into_response();
    };
    let query = uri.query().unwrap_or("").to_string();
    let kept = kept_headers(&headers);
    let context = match account_id.parse::<i64>() {
        Ok(id) => st.contexts.get(&st, id, provider).await,
        Err(_) => Ok(None),
    };
    let account = context
        .as_ref()
        .ok()
        .and_then(|c| c.as_ref())
        .map(|c| (c.account.id, c.account.school_id));
    let (bytes, handling) = match axum::body::to_bytes(body, WEBHOOK_LIMIT).await {
        Err(_) => (
            Vec::new(),
            Handling::Done(Handled::rejected(
                Ack::Rejected,
                "too_large",
                format!("body over {WEBHOOK_LIMIT} bytes"),
                false,
            )),
        ),
        Ok(bytes) => {
            let handling = match &context {
                Ok(None) => Handling::Done(Handled::rejected(
                    Ack::BadSignature,
                    "unknown_account",
                    "no such account for this sender".into(),
                    false,
                )),
                Ok(Some(context)) => handle(&st, provider, context, &query, &kept, &bytes).await,
                Err(e) => {
                    tracing::error!(error = ?e, "could not load the account of a delivery");
                    Handling::Done(Handled::rejected(
                        Ack::RetryLater,
                        "error",
                        "account unavailable".into(),
                        false,
                    ))
                }
            };
            (bytes.to_vec(), handling)
        }
    };
    let body_size = bytes.len();
    let event = NewEvent {
        provider: provider.as_str(),
        account,
        method: method.as_str().to_string(),
        query,
        headers: archived_headers(&kept),
        body: bytes,
        body_size,
        verified: false,
        txn_id: None,
        outcome: "pending",
        detail: None,
        payment_id: None,
        ack_status: 0,
    };
    // The payment, if any, and the archived delivery are written together, in a batch with
    // whatever else arrived meanwhile.
    let handled = match handling {
        Handling::Done(h) => st.intake.archive(&st.store, provider, event, h).await,
        Handling::Record(prepared) => {
            let (job, info) = *prepared;
            st.intake.record(&st.store, event, job, info).await
        }
    };
    // A payment without an invoice goes through the engine now, so the accountant finds it
    // allocated or in the review queue; the sender's answer does not depend on it.
    if let (true, Some(payment_id)) = (handled.to_match, handled.payment_id) {
        if let Some(school) = context
            .as_ref()
            .ok()
            .and_then(|c| c.as_ref())
            .map(|c| &c.school)
        {
            if let Err(e) = st
                .store
                .reconcile_payment(&format!("recon:{}", provider.as_str()), school, payment_id)
                .await
            {
                tracing::error!(error = %e, payment_id, "could not reconcile a payment");
            }
        }
    }
    let reply = providers::reply(provider, handled.ack);
    tracing::info!(provider = provider.as_str(), outcome = handled.outcome, status = reply.status, payment_id = ?handled.payment_id, "delivery");
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    if reply.body.is_empty() {
        status.into_response()
    } else {
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            reply.body,
        )
            .into_response()
    }
}

async fn handle(
    st: &AppState,
    provider: ProviderId,
    context: &DeliveryContext,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Handling {
    let inbound = Inbound {
        query,
        headers,
        body,
    };
    let account = &context.account;
    if let Err(e) = providers::verify(provider, &inbound, &context.secrets, st.now()) {
        return Handling::Done(Handled::rejected(
            Ack::BadSignature,
            "bad_signature",
            e.to_string(),
            false,
        ));
    }
    let n = match providers::parse(provider, &inbound) {
        Ok(n) => n,
        Err(e) => {
            return Handling::Done(Handled::rejected(
                Ack::Rejected,
                "rejected",
                e.to_string(),
                true,
            ))
        }
    };
    if n.account
        .as_deref()
        .is_some_and(|a| !a.trim().eq_ignore_ascii_case(&account.account))
    {
        return Handling::Done(Handled::rejected(
            Ack::Rejected,
            "account_mismatch",
            "the notification is for another account".into(),
            true,
        ));
    }
    let event = |ack, outcome: &'static str, detail: Option<String>| {
        Handling::Done(Handled {
            ack,
            outcome,
            detail,
            verified: true,
            txn_id: Some(n.txn_id.clone()),
            payment_id: None,
            to_match: false,
        })
    };
    match &n.outcome {
        Outcome::Failed { code } => {
            return event(Ack::Accepted, "failed", Some(format!("sender code {code}")))
        }
        Outcome::Outgoing => return event(Ack::Accepted, "outgoing", None),
        // Refunds are archived for the accountant; booking them against the ledger is reconciliation's job.
        Outcome::Refund => return event(Ack::Accepted, "refund", None),
        Outcome::Paid => {}
    }
    if n.amount.dong() <= 0 {
        return event(
            Ack::Rejected,
            "rejected",
            Some("a payment of 0 đồng".into()),
        );
    }
    match prepare(provider, context, &n) {
        Ok(prepared) => Handling::Record(Box::new(prepared)),
        Err(e) => {
            tracing::error!(error = %e, "could not prepare a notification");
            event(Ack::RetryLater, "error", Some(e.to_string()))
        }
    }
}

/// The payment a paid notification becomes, with the payment codes it carries: the batch, under
/// the school's lock, allocates it to the invoice they name, if exactly one.
fn prepare(
    provider: ProviderId,
    context: &DeliveryContext,
    n: &Notification,
) -> Result<(Job, ToRecord), Error> {
    let (school, account) = (&context.school, &context.account);
    let prefix =
        SchoolPrefix::parse(&school.payment_prefix).map_err(|e| Error::Internal(e.to_string()))?;
    // The sender's order reference first (VNPay vnp_TxnRef is our code), then the memo.
    let mut candidates: Vec<PaymentCode> = Vec::new();
    for text in [n.order_ref.as_deref(), n.memo.as_deref()]
        .into_iter()
        .flatten()
    {
        for c in find_in_text(text, &prefix) {
            if !candidates.contains(&c) {
                candidates.push(c);
            }
        }
    }
    let payment = NewPayment {
        channel: n.channel,
        provider: provider.as_str().to_string(),
        // The sender's transaction id is unique per sender and account.
        provider_ref: Some(format!(
            "{}:{}",
            account.account,
            n.txn_id.to_ascii_uppercase()
        )),
        bank_ref: n.bank_ref.clone(),
        payer_name: n.payer_name.clone(),
        memo: n.memo.clone(),
        amount: n.amount,
        received_at: n.occurred_at.min(chrono::Utc::now()),
        reported_fee: n.fee,
        allocations: vec![],
        codes: candidates,
        method: "payment_code",
        up_to_balance: true,
        reported_fee_bearer: n.fee_bearer,
        credited_account: matches!(provider, ProviderId::Sepay | ProviderId::Casso)
            .then(|| account.account.clone()),
    };
    let job = Job {
        actor: format!("webhook:{}", provider.as_str()),
        school: school.clone(),
        payment,
    };
    let info = ToRecord {
        provider,
        txn_id: n.txn_id.clone(),
        amount: n.amount,
    };
    Ok((job, info))
}

/// What the sender is told, and the archive says, once recording has run.
pub(super) fn settle(info: &ToRecord, result: &Result<Recorded, Error>, named: &Named) -> Handled {
    let done = |ack, outcome, payment_id, detail| Handled {
        ack,
        outcome,
        detail,
        verified: true,
        txn_id: Some(info.txn_id.clone()),
        payment_id,
        to_match: false,
    };
    match result {
        Ok(Recorded::Duplicate(id)) => done(Ack::Duplicate, "duplicate", Some(*id), None),
        Ok(Recorded::Created(id)) => {
            let detail = match (&named.invoice, named.invoices) {
                (Some((code, ..)), _) => format!("allocated to invoice {code}"),
                (None, 0) => {
                    "no invoice code found; matched from the memo or kept for review".into()
                }
                (None, k) => {
                    format!("{k} invoice codes found; matched from the memo or kept for review")
                }
            };
            // VNPay pays one order of ours: it must exist and the amount must be what it owed.
            let ack = match (info.provider, &named.invoice) {
                (ProviderId::Vnpay, None) => Ack::NotFound,
                (ProviderId::Vnpay, Some((_, _, open, _))) if *open != info.amount => {
                    Ack::InvalidAmount
                }
                _ => Ack::Accepted,
            };
            Handled {
                to_match: named.allocates().is_none(),
                ..done(ack, "recorded", Some(*id), Some(detail))
            }
        }
        Err(Error::Conflict {
            code: "provider_ref_conflict",
            message,
        }) => done(
            if info.provider == ProviderId::Vnpay {
                Ack::InvalidAmount
            } else {
                Ack::Duplicate
            },
            "conflict",
            None,
            Some(message.clone()),
        ),
        // A retry could never succeed: refuse it, with the reason kept for the accountant.
        Err(e @ Error::Invalid { .. }) => {
            done(Ack::Rejected, "rejected", None, Some(e.to_string()))
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record a notification");
            done(Ack::RetryLater, "error", None, Some(e.to_string()))
        }
    }
}
