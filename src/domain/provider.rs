//! What the rest of the service knows of a payment sender without knowing which one it is: its
//! name and its secrets. Everything particular to a sender lives in its `providers` module.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest sender name.
const MAX_NAME: usize = 31;

/// A payment sender's name as it appears in webhook paths and in the database (`vnpay`,
/// `sepay`, …): 1 to 31 lower-case ASCII letters, digits or `_`. Holding one says nothing about
/// whether the sender is known: the providers' registry answers that.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId {
    len: u8,
    name: [u8; MAX_NAME],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a sender's name is 1 to {MAX_NAME} lower-case letters, digits or _")]
pub struct ProviderNameError;

impl ProviderId {
    /// For a sender module's own constant; a bad name fails the build.
    pub const fn named(name: &'static str) -> Self {
        match Self::from_bytes(name.as_bytes()) {
            Some(id) => id,
            None => panic!("invalid sender name"),
        }
    }

    pub fn parse(text: &str) -> Result<Self, ProviderNameError> {
        Self::from_bytes(text.as_bytes()).ok_or(ProviderNameError)
    }

    const fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > MAX_NAME {
            return None;
        }
        let mut name = [0u8; MAX_NAME];
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return None;
            }
            name[i] = b;
            i += 1;
        }
        Some(Self {
            len: bytes.len() as u8,
            name,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this never falls back.
        std::str::from_utf8(&self.name[..self.len as usize]).unwrap_or("")
    }
}

impl std::fmt::Debug for ProviderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for ProviderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl utoipa::PartialSchema for ProviderId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z0-9_]{1,31}$"))
            .description(Some(
                "A payment sender: vnpay, momo, zalopay, sepay, casso or standard_webhooks.",
            ))
            .examples(["sepay"])
            .into()
    }
}

impl ToSchema for ProviderId {}

impl Serialize for ProviderId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProviderId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One secret of a sender's account. During a rotation several are valid at once.
#[derive(Clone)]
pub struct Secret {
    /// The signing key (HMAC key, API key, or `whsec_…` for Standard Webhooks).
    pub key: Vec<u8>,
    /// A second, non-secret parameter some senders sign with (MoMo's access key).
    pub access_key: Option<String>,
    /// How this secret authenticates, for a sender that offers several ways (SePay: an API key
    /// or an HMAC signing key); `None` is the sender's first way.
    pub scheme: Option<String>,
}

impl Secret {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            access_key: None,
            scheme: None,
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// What became of a delivery, as the archive records it and the review screens show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// A payment booked now (allocated, or in the review queue).
    Recorded,
    /// The transaction was already booked: a retry.
    Duplicate,
    /// The transaction was already booked with other details; kept for review, not booked.
    Conflict,
    /// The sender reports a failed or cancelled payment.
    Failed,
    /// Money left the watched account.
    Outgoing,
    /// The sender refunded or reversed an earlier payment.
    Refund,
    /// A verified event of a kind feerecon does not book (acknowledged, kept).
    Ignored,
    /// The signature did not verify.
    BadSignature,
    /// The path names no account of this sender.
    UnknownAccount,
    /// Verified, but the notification is for another account than the path's.
    AccountMismatch,
    /// Verified, but the amount cannot be booked (a fraction of a đồng, zero, another currency).
    InvalidAmount,
    /// Not what this sender sends (unreadable, missing fields).
    Rejected,
    /// The body was over the limit.
    TooLarge,
    /// We could not handle it (a database error); the sender was asked to retry.
    Error,
}

crate::domain::catalog::text_enum!(DeliveryOutcome {
    Recorded => "recorded", Duplicate => "duplicate", Conflict => "conflict", Failed => "failed",
    Outgoing => "outgoing", Refund => "refund", Ignored => "ignored", BadSignature => "bad_signature",
    UnknownAccount => "unknown_account", AccountMismatch => "account_mismatch",
    InvalidAmount => "invalid_amount", Rejected => "rejected", TooLarge => "too_large", Error => "error",
});

/// A sender's reply status for every outcome, worked out before a delivery is written, so the
/// archive records what the sender is told without the store knowing any sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckTable([u16; DeliveryOutcome::ALL.len()]);

impl AckTable {
    pub fn new(status: impl Fn(DeliveryOutcome) -> u16) -> Self {
        let mut t = [0u16; DeliveryOutcome::ALL.len()];
        for (i, o) in DeliveryOutcome::ALL.iter().enumerate() {
            t[i] = status(*o);
        }
        Self(t)
    }

    pub fn status(&self, outcome: DeliveryOutcome) -> u16 {
        DeliveryOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |i| self.0[i])
    }
}

/// The kind of answer a sender gets, whatever its format. Each sender turns these into its own
/// documented replies; `README.md` has the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answer {
    /// Money booked now, whatever review it may need: stop sending.
    Booked,
    /// Already booked (a retry), or booked under this id with other details (kept for review):
    /// stop sending, sending again changes nothing.
    AlreadyBooked,
    /// Verified and kept, but not money in (failed, outgoing, refund, an event not booked).
    Noted,
    /// No account of this sender at this path.
    UnknownAccount,
    /// Verified, for another account than the path's.
    OtherAccount,
    /// Verified, with an amount that cannot be booked.
    InvalidAmount,
    BadSignature,
    /// Not a request this sender makes.
    Malformed,
    /// We cannot handle it now (overloaded, stopping, a database error): send it again later.
    RetryLater,
    /// Too many deliveries from this address or to this account: send again later.
    TooMany,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 14] = [
        Self::Recorded,
        Self::Duplicate,
        Self::Conflict,
        Self::Failed,
        Self::Outgoing,
        Self::Refund,
        Self::Ignored,
        Self::BadSignature,
        Self::UnknownAccount,
        Self::AccountMismatch,
        Self::InvalidAmount,
        Self::Rejected,
        Self::TooLarge,
        Self::Error,
    ];

    /// Deliveries refused before anything was booked from them: archived cut short, and the
    /// only rows the archive lets a retention job delete (the migrations list them too).
    pub const REFUSED: [DeliveryOutcome; 7] = [
        Self::BadSignature,
        Self::UnknownAccount,
        Self::AccountMismatch,
        Self::InvalidAmount,
        Self::Rejected,
        Self::TooLarge,
        Self::Error,
    ];

    /// The answer a delivery with this outcome gets. Booked money is never answered as refused,
    /// and what is refused before booking never as booked.
    pub fn answer(self) -> Answer {
        match self {
            Self::Recorded => Answer::Booked,
            Self::Duplicate | Self::Conflict => Answer::AlreadyBooked,
            Self::Failed | Self::Outgoing | Self::Refund | Self::Ignored => Answer::Noted,
            Self::BadSignature => Answer::BadSignature,
            Self::UnknownAccount => Answer::UnknownAccount,
            Self::AccountMismatch => Answer::OtherAccount,
            Self::InvalidAmount => Answer::InvalidAmount,
            Self::Rejected | Self::TooLarge => Answer::Malformed,
            Self::Error => Answer::RetryLater,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_not_trusted() {
        assert_eq!(ProviderId::parse("sepay").unwrap().as_str(), "sepay");
        assert_eq!(
            ProviderId::parse("standard_webhooks").unwrap(),
            ProviderId::named("standard_webhooks")
        );
        for bad in ["", "SePay", "se pay", "sepay/", "é", &"x".repeat(32)] {
            assert!(ProviderId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            serde_json::to_string(&ProviderId::named("momo")).unwrap(),
            "\"momo\""
        );
        assert!(serde_json::from_str::<ProviderId>("\"../x\"").is_err());
    }
}
