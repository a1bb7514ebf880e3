//! Payment notifications from banks and intermediaries. One module per sender; each checks the
//! sender's signature on the raw bytes before anything is parsed, turns a verified notification
//! into a [`Notification`], and answers in the sender's own acknowledgement format.
//!
//! Pure code: no I/O, no clock (callers pass `now`), no database.

use crate::domain::fee::Channel;
use crate::domain::money::{AmountError, Vnd};
pub use crate::domain::provider::{Answer, ProviderId, Secret};
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// Every sender feerecon takes notifications from: one line each, `module => Type`. Adding a
/// sender is its module (a file beside this one, implementing [`Sender`]) and its line here.
macro_rules! senders {
    ($($module:ident => $sender:ident),+ $(,)?) => {
        $(pub mod $module;)+
        /// The registry: every sender, in the order the documentation lists them.
        pub static SENDERS: &[&dyn Sender] = &[$(&$module::$sender),+];
    };
}

pub mod feed;

senders! {
    vnpay => VnPay,
    momo => MoMo,
    zalopay => ZaloPay,
    sepay => SePay,
    casso => Casso,
    standard_webhooks => StandardWebhooks,
}

/// The sender named `id`, if feerecon knows it.
pub fn sender(id: ProviderId) -> Option<&'static dyn Sender> {
    SENDERS.iter().copied().find(|s| s.id() == id)
}

/// The reply status `sender` gives each delivery outcome. A sender's answers depend on the
/// outcome alone, so each table is worked out once, not per delivery.
pub fn ack_table(sender: &dyn Sender) -> crate::domain::provider::AckTable {
    use crate::domain::provider::AckTable;
    static TABLES: std::sync::OnceLock<Vec<AckTable>> = std::sync::OnceLock::new();
    let of = |s: &dyn Sender| AckTable::new(|o| s.answer(o.answer()).status);
    let tables = TABLES.get_or_init(|| SENDERS.iter().map(|s| of(*s)).collect());
    SENDERS
        .iter()
        .position(|s| s.id() == sender.id())
        .and_then(|i| tables.get(i).copied())
        .unwrap_or_else(|| of(sender))
}

/// The sender named `name` (as in a webhook path or a request), if feerecon knows it.
pub fn by_name(name: &str) -> Option<&'static dyn Sender> {
    ProviderId::parse(name).ok().and_then(sender)
}

/// Everything the rest of the service needs to know about one sender.
pub trait Sender: Sync {
    /// Its name in webhook paths, requests and the database.
    fn id(&self) -> ProviderId;

    /// The headers its verification reads. The archive keeps these (and only these), cut
    /// short, so a delivery can be checked again later.
    fn signed_headers(&self) -> &'static [&'static str] {
        &[]
    }

    /// The secret an admin gives, checked for this sender. The default takes any key of 8 to
    /// 512 characters, with no access key and no scheme.
    fn secret(&self, given: &GivenSecret<'_>) -> Result<Secret, SecretError> {
        plain_secret(given)
    }

    /// Checks the delivery's signature on the raw bytes, before anything is parsed. Every
    /// secret in force is tried, so a rotation has no gap.
    fn verify(
        &self,
        inbound: &Inbound<'_>,
        secrets: &[Secret],
        now: DateTime<Utc>,
    ) -> Result<(), VerifyError>;

    /// Reads a verified delivery.
    fn parse(&self, inbound: &Inbound<'_>) -> Result<Notification, ParseError>;

    /// The reply for each kind of answer, in the sender's documented format.
    fn answer(&self, answer: Answer) -> Reply {
        watcher_answer(answer)
    }

    /// A watcher of the school's own bank account (SePay, Casso): the same credit may also be
    /// imported from the account's statement, so its notifications carry the account number
    /// and the bank's reference to be recognised there.
    fn watches_account(&self) -> bool {
        false
    }

    /// Its transaction-list API, for a missed notification to be pulled, when it has one.
    fn feed(&self) -> Option<&dyn feed::Feed> {
        None
    }

    /// The exactly-once key of a notification delivered for `account`: the sender's own
    /// transaction id, which every retry carries, with the account.
    fn once_key(&self, account: &str, n: &Notification) -> String {
        format!("{account}:{}", n.txn_id.to_ascii_uppercase())
    }
}

/// A secret as an admin gives it.
#[derive(Debug, Clone, Copy)]
pub struct GivenSecret<'a> {
    pub secret: &'a str,
    pub access_key: Option<&'a str>,
    pub scheme: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

/// The default secret rule: 8 to 512 characters, nothing else.
pub fn plain_secret(given: &GivenSecret<'_>) -> Result<Secret, SecretError> {
    let key = given.secret.trim();
    if key.len() < 8 || key.len() > 512 {
        return Err(SecretError("a secret has 8 to 512 characters".into()));
    }
    if given.access_key.is_some() {
        return Err(SecretError("this sender signs with no access key".into()));
    }
    if given.scheme.is_some() {
        return Err(SecretError(
            "this sender authenticates one way only: leave scheme out".into(),
        ));
    }
    Ok(Secret::new(key.as_bytes()))
}

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

impl ParseError {
    /// A verified notification whose money cannot be booked as it says: its sender is told the
    /// amount is invalid, not that the message is unreadable.
    pub fn is_amount(&self) -> bool {
        matches!(self, ParseError::Amount(_) | ParseError::Currency(_))
    }
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
    /// An event of a kind feerecon does not book (acknowledged and archived, so the sender
    /// does not send it for ever).
    Ignored { event_type: String },
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

/// An acknowledgement in the sender's own format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// JSON, or empty for "no content".
    pub body: String,
    /// Seconds to wait before sending again, for a reply that asks for that.
    pub retry_after: Option<u32>,
}

/// How long a sender asked to retry should wait.
pub const RETRY_AFTER_SECONDS: u32 = 30;

impl Reply {
    pub fn json(status: u16, v: serde_json::Value) -> Self {
        Self {
            status,
            body: v.to_string(),
            retry_after: None,
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            body: String::new(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// Reads a verified delivery and tidies the sender's text.
pub fn parse(sender: &dyn Sender, inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
    sender.parse(inbound)?.tidied()
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
        match &mut self.outcome {
            Outcome::Failed { code } => {
                *code = sender_text(code).unwrap_or_else(|| "failed".into());
            }
            Outcome::Ignored { event_type } => {
                *event_type = sender_text(event_type)
                    .map(|k| k.chars().take(64).collect())
                    .unwrap_or_else(|| "unknown".into());
            }
            _ => {}
        }
        Ok(self)
    }
}

/// The senders that read only the status (SePay, Casso, Standard Webhooks): any 2xx ends the
/// delivery, anything else makes them send it again. What was booked, or is kept and will never
/// be booked however often it comes, is a 2xx; a refusal is a 4xx; our own trouble is a 503 or
/// 429 with `Retry-After`.
pub fn watcher_answer(answer: Answer) -> Reply {
    let refused = |status: u16, message: &str| {
        Reply::json(
            status,
            serde_json::json!({"success": false, "message": message}),
        )
    };
    match answer {
        Answer::Booked | Answer::AlreadyBooked | Answer::Noted => {
            Reply::json(200, serde_json::json!({"success": true}))
        }
        Answer::UnknownAccount => refused(404, "no such account"),
        Answer::OtherAccount => refused(422, "the notification is for another account"),
        Answer::InvalidAmount => refused(422, "invalid amount"),
        Answer::BadSignature => refused(401, "invalid signature"),
        Answer::Malformed => refused(400, "invalid payload"),
        Answer::RetryLater => refused(503, "try again later").retry_after(RETRY_AFTER_SECONDS),
        Answer::TooMany => refused(429, "too many requests").retry_after(RETRY_AFTER_SECONDS),
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
