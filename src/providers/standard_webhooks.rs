//! Standard Webhooks (standardwebhooks.com), for any bank or intermediary that signs that way:
//! headers `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`, a
//! space-separated list of `v1,<base64 HMAC-SHA256>` over `<id>.<timestamp>.<body>` under the
//! base64-decoded bytes of the `whsec_…` secret; any matching entry is enough (key rotation).
//!
//! The event body feerecon accepts: `{"type": "payment.succeeded" | "payment.failed" |
//! "payment.refunded", "data": {"transaction_id", "account", "amount", "currency": "VND",
//! "memo", "payer_name", "booked_at" (RFC 3339), "fee", "order_ref"}}`. Other event types are
//! acknowledged and archived as ignored.

use super::*;
use base64::Engine as _;

fn key_bytes(secret: &Secret) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(&secret.key).ok()?;
    base64::engine::general_purpose::STANDARD
        .decode(text.strip_prefix("whsec_").unwrap_or(text))
        .ok()
}

/// Any bank or intermediary that signs the Standard Webhooks way.
pub struct StandardWebhooks;

pub const ID: ProviderId = ProviderId::named("standard_webhooks");

impl Sender for StandardWebhooks {
    fn id(&self) -> ProviderId {
        ID
    }

    fn signed_headers(&self) -> &'static [&'static str] {
        &["webhook-id", "webhook-timestamp", "webhook-signature"]
    }

    /// `whsec_` and the base64 of the key: the HMAC key is the decoded bytes, so
    /// "whsec_AA==" would be a one-byte key anyone can guess. The spec asks for 24 to 64 bytes.
    fn secret(&self, given: &GivenSecret<'_>) -> Result<Secret, SecretError> {
        let secret = plain_secret(given)?;
        let decoded = std::str::from_utf8(&secret.key)
            .ok()
            .and_then(|t| {
                base64::engine::general_purpose::STANDARD
                    .decode(t.strip_prefix("whsec_").unwrap_or(t))
                    .ok()
            })
            .map(|k| k.len())
            .unwrap_or(0);
        if decoded < 24 {
            return Err(SecretError(
                "a Standard Webhooks secret is whsec_ and the base64 of at least 24 bytes".into(),
            ));
        }
        Ok(secret)
    }

    fn verify(
        &self,
        inbound: &Inbound<'_>,
        secrets: &[Secret],
        now: DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        verify(inbound, secrets, now)
    }

    fn parse(&self, inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
        parse(inbound)
    }
}

fn verify(
    inbound: &Inbound<'_>,
    secrets: &[Secret],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let id = inbound
        .header("webhook-id")
        .ok_or(VerifyError::Missing("webhook-id header"))?;
    let ts = inbound
        .header("webhook-timestamp")
        .ok_or(VerifyError::Missing("webhook-timestamp header"))?;
    let sigs = inbound
        .header("webhook-signature")
        .ok_or(VerifyError::Missing("webhook-signature header"))?;
    let seconds: i64 = ts
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed("webhook-timestamp header"))?;
    let mut msg = Vec::with_capacity(id.len() + ts.len() + inbound.body.len() + 2);
    msg.extend_from_slice(id.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(ts.trim().as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(inbound.body);
    let expected: Vec<Vec<u8>> = secrets
        .iter()
        .filter_map(key_bytes)
        .map(|k| hmac_sha256(&k, &msg))
        .collect();
    let presented = sigs
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    let mut ok = false;
    for p in presented {
        for e in &expected {
            ok |= e.len() == p.len() && bool::from(e.as_slice().ct_eq(&p));
        }
    }
    if !ok {
        return Err(VerifyError::Mismatch);
    }
    if (now.timestamp() - seconds).abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::Expired);
    }
    Ok(())
}

fn parse(inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
    let outer = json_body(inbound.body)?;
    let kind = str_field(&outer, "type")?;
    let outcome = match kind.as_str() {
        "payment.succeeded" => Outcome::Paid,
        "payment.refunded" => Outcome::Refund,
        "payment.failed" => Outcome::Failed {
            code: String::new(),
        },
        // An event type this endpoint does not book is acknowledged and kept, not refused: a
        // refusal would make the sender send it again for days. Its data may be any shape.
        other => return ignored(inbound, other),
    };
    let v = outer
        .get("data")
        .filter(|d| d.is_object())
        .ok_or(ParseError::Missing("data"))?;
    let outcome = match outcome {
        Outcome::Failed { .. } => Outcome::Failed {
            code: opt_str(v, "failure_code").unwrap_or_else(|| "failed".into()),
        },
        other => other,
    };
    let currency = opt_str(v, "currency").unwrap_or_else(|| "VND".into());
    if currency != "VND" {
        return Err(ParseError::Currency(currency.chars().take(8).collect()));
    }
    let amount = json_dong(
        v.get("amount").unwrap_or(&serde_json::Value::Null),
        "amount",
    )?;
    let fee = match v.get("fee") {
        Some(f) if !f.is_null() => Some(json_dong(f, "fee")?),
        _ => None,
    };
    let booked = str_field(v, "booked_at")?;
    Ok(Notification {
        provider: ID,
        txn_id: id_field(v, "transaction_id")?,
        account: opt_str(v, "account"),
        order_ref: opt_str(v, "order_ref"),
        amount,
        payer_name: opt_str(v, "payer_name"),
        memo: opt_str(v, "memo"),
        occurred_at: DateTime::parse_from_rfc3339(&booked)
            .map_err(|_| ParseError::Invalid("booked_at"))?
            .with_timezone(&Utc),
        fee,
        fee_bearer: None,
        outcome,
        channel: Channel::BankTransfer,
        bank_ref: None,
    })
}

/// An event of a type feerecon does not book, known by its `webhook-id` (the same on every
/// retry) and dated by its signed timestamp.
fn ignored(inbound: &Inbound<'_>, kind: &str) -> Result<Notification, ParseError> {
    let id = inbound
        .header("webhook-id")
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .ok_or(ParseError::Missing("webhook-id"))?;
    let at = inbound
        .header("webhook-timestamp")
        .and_then(|t| t.trim().parse::<i64>().ok())
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .ok_or(ParseError::Invalid("webhook-timestamp"))?;
    Ok(Notification {
        provider: ID,
        txn_id: id.to_string(),
        account: None,
        order_ref: None,
        amount: Vnd::ZERO,
        payer_name: None,
        memo: None,
        occurred_at: at,
        fee: None,
        fee_bearer: None,
        outcome: Outcome::Ignored {
            event_type: kind.into(),
        },
        channel: Channel::BankTransfer,
        bank_ref: None,
    })
}
