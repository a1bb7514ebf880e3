//! `/webhooks/{provider}/{account_id}`: where senders deliver. Every delivery is archived,
//! whatever becomes of it; the signature is checked on the raw bytes before anything is parsed;
//! a payment is recorded exactly once per (sender, account, transaction); the reply is in the
//! sender's own format. Senders authenticate by their signature only, never by our tokens.

use super::AppState;
use crate::domain::code::{find_in_text, PaymentCode, SchoolPrefix};
use crate::error::Error;
use crate::providers::{self, Ack, Inbound, Notification, Outcome, ProviderId};
use crate::store::ledger::{NewPayment, Recorded};
use crate::store::webhooks::{DeliveryContext, NewEvent};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

/// Notifications are small; a larger body is refused (and archived, cut short).
pub const WEBHOOK_LIMIT: usize = 256 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/{provider}/{account_id}", any(deliver))
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
struct Handled {
    ack: Ack,
    outcome: &'static str,
    detail: Option<String>,
    verified: bool,
    txn_id: Option<String>,
    payment_id: Option<i64>,
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
        }
    }
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
        Ok(id) => st.store.delivery_context(&st.sealer, id, provider).await,
        Err(_) => Ok(None),
    };
    let account = context
        .as_ref()
        .ok()
        .and_then(|c| c.as_ref())
        .map(|c| c.account.clone());
    let (bytes, handled) = match axum::body::to_bytes(body, WEBHOOK_LIMIT).await {
        Err(_) => (
            Vec::new(),
            Handled::rejected(
                Ack::Rejected,
                "too_large",
                format!("body over {WEBHOOK_LIMIT} bytes"),
                false,
            ),
        ),
        Ok(bytes) => {
            let handled = match &context {
                Ok(None) => Handled::rejected(
                    Ack::BadSignature,
                    "unknown_account",
                    "no such account for this sender".into(),
                    false,
                ),
                Ok(Some(context)) => handle(&st, provider, context, &query, &kept, &bytes).await,
                Err(e) => {
                    tracing::error!(error = ?e, "could not load the account of a delivery");
                    Handled::rejected(
                        Ack::RetryLater,
                        "error",
                        "account unavailable".into(),
                        false,
                    )
                }
            };
            (bytes.to_vec(), handled)
        }
    };
    let reply = providers::reply(provider, handled.ack);
    let archived = st
        .store
        .archive_event(NewEvent {
            provider: provider.as_str(),
            account: account.as_ref(),
            method: method.as_str(),
            query: &query,
            headers: archived_headers(&kept),
            body: &bytes,
            body_size: bytes.len(),
            verified: handled.verified,
            txn_id: handled.txn_id.as_deref(),
            outcome: handled.outcome,
            detail: handled.detail.clone(),
            payment_id: handled.payment_id,
            ack_status: reply.status,
        })
        .await;
    let reply = match archived {
        Ok(_) => reply,
        Err(e) => {
            // Without its archive record the delivery is not handled: ask the sender to retry.
            tracing::error!(error = ?e, provider = provider.as_str(), "could not archive a delivery");
            providers::reply(provider, Ack::RetryLater)
        }
    };
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
) -> Handled {
    let inbound = Inbound {
        query,
        headers,
        body,
    };
    let account = &context.account;
    if let Err(e) = providers::verify(provider, &inbound, &context.secrets, st.now()) {
        return Handled::rejected(Ack::BadSignature, "bad_signature", e.to_string(), false);
    }
    let n = match providers::parse(provider, &inbound) {
        Ok(n) => n,
        Err(e) => return Handled::rejected(Ack::Rejected, "rejected", e.to_string(), true),
    };
    if n.account
        .as_deref()
        .is_some_and(|a| !a.trim().eq_ignore_ascii_case(&account.account))
    {
        return Handled::rejected(
            Ack::Rejected,
            "account_mismatch",
            "the notification is for another account".into(),
            true,
        );
    }
    let txn_id = Some(n.txn_id.clone());
    let event = |ack, outcome: &'static str, detail: Option<String>| Handled {
        ack,
        outcome,
        detail,
        verified: true,
        txn_id: txn_id.clone(),
        payment_id: None,
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
    match record(st, provider, context, &n).await {
        Ok((ack, outcome, payment_id, detail)) => Handled {
            ack,
            outcome,
            detail,
            verified: true,
            txn_id,
            payment_id,
        },
        Err(Error::Conflict {
            code: "provider_ref_conflict",
            message,
        }) => event(
            if provider == ProviderId::Vnpay {
                Ack::InvalidAmount
            } else {
                Ack::Duplicate
            },
            "conflict",
            Some(message),
        ),
        // A retry could never succeed: refuse it, with the reason kept for the accountant.
        Err(e @ Error::Invalid { .. }) => event(Ack::Rejected, "rejected", Some(e.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "could not record a notification");
            event(Ack::RetryLater, "error", Some(e.to_string()))
        }
    }
}

/// Records a paid notification and allocates it to the invoice its payment code names, if one does.
async fn record(
    st: &AppState,
    provider: ProviderId,
    context: &DeliveryContext,
    n: &Notification,
) -> Result<(Ack, &'static str, Option<i64>, Option<String>), Error> {
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
    // (code, id, still owed, voided) of each candidate that is an invoice of this school.
    let mut invoices = Vec::new();
    for c in candidates {
        if let Some((id, open, voided)) = st.store.invoice_balance_by_code(school.id, &c).await? {
            invoices.push((c, id, open, voided));
        }
    }
    let invoice = if invoices.len() == 1 {
        invoices.pop()
    } else {
        None
    };
    let allocations = match &invoice {
        Some((_, id, open, voided)) if open.dong() > 0 && !voided => {
            vec![(*id, n.amount.min(*open))]
        }
        _ => vec![],
    };
    let p = NewPayment {
        channel: n.channel,
        provider: provider.as_str().to_string(),
        // The sender's transaction id is unique per sender and account.
        provider_ref: Some(format!(
            "{}:{}",
            account.account,
            n.txn_id.to_ascii_uppercase()
        )),
        payer_name: n.payer_name.clone(),
        memo: n.memo.clone(),
        amount: n.amount,
        received_at: n.occurred_at.min(chrono::Utc::now()),
        reported_fee: n.fee,
        allocations,
        method: "payment_code",
        up_to_balance: true,
        reported_fee_bearer: n.fee_bearer,
    };
    let recorded = st
        .store
        .record_payment(&format!("webhook:{}", provider.as_str()), school, p)
        .await?;
    let (id, duplicate) = match recorded {
        Recorded::Created(id) => (id, false),
        Recorded::Duplicate(id) => (id, true),
    };
    if duplicate {
        return Ok((Ack::Duplicate, "duplicate", Some(id), None));
    }
    let detail = match (&invoice, invoices.len()) {
        (Some((code, ..)), _) => Some(format!("allocated to invoice {code}")),
        (None, 0) => Some("no invoice code found; kept as credit for review".into()),
        (None, k) => Some(format!(
            "{k} invoice codes found; kept as credit for review"
        )),
    };
    // VNPay pays one order of ours: it must exist and the amount must be what it owed.
    let ack = match (provider, &invoice) {
        (ProviderId::Vnpay, None) => Ack::NotFound,
        (ProviderId::Vnpay, Some((_, _, open, _))) if *open != n.amount => Ack::InvalidAmount,
        _ => Ack::Accepted,
    };
    Ok((ack, "recorded", Some(id), detail))
}
