//! Payment notifications from banks and intermediaries. One module per sender; each checks the
//! sender's signature on the raw bytes before anything is parsed, turns a verified notification
//! into a [`Notification`], and answers in the sender's own acknowledgement format.
//!
//! Pure code: no I/O, no clock (callers pass `now`), no database.

pub mod casso;
pub mod momo;
pub mod sepay;
pub mod standard_webhooks;
pub mod vnpay;
pub mod zalopay;

use crate::domain::fee::Channel;
use crate::domain::money::{AmountError, Vnd};
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderId {
    Vnpay,
    Momo,
    Zalopay,
    Sepay,
    Casso,
    StandardWebhooks,
}

crate::domain::catalog::text_enum!(ProviderId {
    Vnpay => "vnpay", Momo => "momo", Zalopay => "zalopay", Sepay => "sepay", Casso => "casso",
    StandardWebhooks => "standard_webhooks",
});

/// A delivery as it arrived: the raw query string, the headers (names lower-case) and body.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Inbound<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One secret of a sender's account. During a rotation several are valid at once.
#[derive(Clone)]
pub struct Secret {
    /// The signing key (HMAC key, API key, or `whsec_…` for Standard Webhooks).
    pub key: Vec<u8>,
    /// A second, non-secret parameter some senders sign with (MoMo's access key).
    pub access_key: Option<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// How long a signed timestamp stays acceptable, both ways.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no secret is configured for this account")]
    NoSecret,
    #[error("the {0} is missing")]
    Missing(&'static str),
    #[error("the {0} is malformed")]
    Malformed(&'static str),
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signed timestamp is outside the {TOLERANCE_SECONDS} s tolerance")]
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not the JSON this sender sends: {0}")]
    Json(String),
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("field {0} is invalid")]
    Invalid(&'static str),
    #[error("amount {0}")]
    Amount(AmountError),
    #[error("currency {0} is not VND")]
    Currency(String),
}

/// What the sender says happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// Money received.
    Paid,
    /// Failed or cancelled: recorded as an event, never as a payment.
    Failed { code: String },
    /// The sender refunded or reversed an earlier payment.
    Refund,
    /// Money left the watched account (a bank watcher reports both directions).
    Outgoing,
}

/// A verified notification, normalised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub provider: ProviderId,
    /// The sender's own id of the transaction: with the account, the exactly-once key.
    pub txn_id: String,
    /// The merchant, terminal or bank account the sender says it is for.
    pub account: Option<String>,
    /// Our reference as the sender carries it (VNPay vnp_TxnRef, MoMo orderId, …).
    pub order_ref: Option<String>,
    pub amount: Vnd,
    pub payer_name: Option<String>,
    pub memo: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// The fee the sender reports it charged, when it does.
    pub fee: Option<Vnd>,
    /// Who bore that fee, when the sender says.
    pub fee_bearer: Option<crate::domain::fee::Bearer>,
    pub outcome: Outcome,
    pub channel: Channel,
    /// The bank's own reference, when the sender passes it on (may repeat; never a key).
    pub bank_ref: Option<String>,
}

/// What to tell the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Recorded now.
    Accepted,
    /// Already recorded before: the sender should stop retrying.
    Duplicate,
    /// Nothing of ours matches the order reference.
    NotFound,
    /// The amount does not match what we expected.
    InvalidAmount,
    /// The signature did not verify.
    BadSignature,
    /// The payload could not be understood.
    Rejected,
    /// Our fault: the sender should retry later.
    RetryLater,
}

/// An acknowledgement in the sender's own format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// JSON, or empty for "no content".
    pub body: String,
}

impl Reply {
    fn json(status: u16, v: serde_json::Value) -> Self {
        Self {
            status,
            body: v.to_string(),
        }
    }
}

pub fn verify(
    provider: ProviderId,
    inbound: &Inbound<'_>,
    secrets: &[Secret],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    match provider {
        ProviderId::Vnpay => vnpay::verify(inbound, secrets),
        ProviderId::Momo => momo::verify(inbound, secrets),
        ProviderId::Zalopay => zalopay::verify(inbound, secrets),
        ProviderId::Sepay => sepay::verify(inbound, secrets),
        ProviderId::Casso => casso::verify(inbound, secrets, now),
        ProviderId::StandardWebhooks => standard_webhooks::verify(inbound, secrets, now),
    }
}

pub fn parse(provider: ProviderId, inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
    let n = match provider {
        ProviderId::Vnpay => vnpay::parse(inbound),
        ProviderId::Momo => momo::parse(inbound),
        ProviderId::Zalopay => zalopay::parse(inbound),
        ProviderId::Sepay => sepay::parse(inbound),
        ProviderId::Casso => casso::parse(inbound),
        ProviderId::StandardWebhooks => standard_webhooks::parse(inbound),
    }?;
    n.tidied()
}

impl Notification {
    /// The exactly-once key and the account with a control character are refused: no sender
    /// makes them, and cleaning one could make two keys one. Everything else is kept, without
    /// its control characters, so that the money is still recorded.
    fn tidied(mut self) -> Result<Self, ParseError> {
        use crate::domain::text::{has_control, sender_text};
        if has_control(&self.txn_id) {
            return Err(ParseError::Invalid("transaction id"));
        }
        if self.account.as_deref().is_some_and(has_control) {
            return Err(ParseError::Invalid("account"));
        }
        for text in [
            &mut self.order_ref,
            &mut self.bank_ref,
            &mut self.payer_name,
            &mut self.memo,
        ] {
            *text = text.as_deref().and_then(sender_text);
        }
        if let Outcome::Failed { code } = &mut self.outcome {
            *code = sender_text(code).unwrap_or_else(|| "failed".into());
        }
        Ok(self)
    }
}

pub fn reply(provider: ProviderId, ack: Ack) -> Reply {
    match provider {
        ProviderId::Vnpay => vnpay::reply(ack),
        ProviderId::Momo => momo::reply(ack),
        ProviderId::Zalopay => zalopay::reply(ack),
        ProviderId::Sepay | ProviderId::Casso | ProviderId::StandardWebhooks => watcher_reply(ack),
    }
}

/// SePay, Casso and Standard Webhooks senders read only the status: 2xx ends the delivery, any
/// other status makes them retry. A rejected signature is final (4xx); our own failure asks for
/// a retry (503).
fn watcher_reply(ack: Ack) -> Reply {
    match ack {
        Ack::Accepted | Ack::Duplicate | Ack::NotFound | Ack::InvalidAmount => {
            Reply::json(200, serde_json::json!({"success": true}))
        }
        Ack::BadSignature => Reply::json(
            401,
            serde_json::json!({"success": false, "message": "invalid signature"}),
        ),
        Ack::Rejected => Reply::json(
            400,
            serde_json::json!({"success": false, "message": "invalid payload"}),
        ),
        Ack::RetryLater => Reply::json(
            503,
            serde_json::json!({"success": false, "message": "try again later"}),
        ),
    }
}

/// HMAC-SHA256 of `msg` under `key`. HMAC takes keys of any length, so creation cannot fail.
pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA512 of `msg` under `key`.
pub(crate) fn hmac_sha512(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<sha2::Sha512> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time equality of a computed signature and a presented one (case-insensitive hex).
pub(crate) fn same(expected: &str, presented: &str) -> bool {
    let presented = presented.trim().to_ascii_lowercase();
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Vietnamese senders send local times without a zone; Vietnam is UTC+7 all year.
pub(crate) fn vietnam_time(text: &str, format: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text.trim(), format)
        .ok()
        .map(crate::domain::time::local_to_utc)
}

pub(crate) fn millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// A JSON number that must be a whole number of đồng.
pub(crate) fn json_dong(v: &serde_json::Value, field: &'static str) -> Result<Vnd, ParseError> {
    match v {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Vnd::non_negative(i).map_err(ParseError::Amount),
            None if n.is_f64() => Err(ParseError::Amount(AmountError::Fractional)),
            None => Err(ParseError::Amount(AmountError::TooLarge)),
        },
        serde_json::Value::Null => Err(ParseError::Missing(field)),
        _ => Err(ParseError::Invalid(field)),
    }
}

pub(crate) fn json_body(body: &[u8]) -> Result<serde_json::Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError::Json(e.classify_name().to_string()))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

pub(crate) fn str_field(v: &serde_json::Value, field: &'static str) -> Result<String, ParseError> {
    match v.get(field) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Null) | None => Err(ParseError::Missing(field)),
        Some(_) => Err(ParseError::Invalid(field)),
    }
}

pub(crate) fn opt_str(v: &serde_json::Value, field: &'static str) -> Option<String> {
    v.get(field)
        .and_then(|x| x.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// The id a sender gives a transaction, as text whether it sent a number or a string.
pub(crate) fn id_field(v: &serde_json::Value, field: &'static str) -> Result<String, ParseError> {
    match v.get(field) {
        Some(serde_json::Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() && s.len() <= 128 => {
            Ok(s.trim().to_string())
        }
        None | Some(serde_json::Value::Null) => Err(ParseError::Missing(field)),
        _ => Err(ParseError::Invalid(field)),
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
