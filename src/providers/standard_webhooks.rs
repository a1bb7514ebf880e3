//! Standard Webhooks (standardwebhooks.com), for any bank or intermediary that signs that way:
//! headers `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`, a
//! space-separated list of `v1,<base64 HMAC-SHA256>` over `<id>.<timestamp>.<body>` under the
//! base64-decoded bytes of the `whsec_…` secret; any matching entry is enough (key rotation).
//!
//! The event body feerecon accepts: `{"type": "payment.succeeded" | "payment.failed" |
//! "payment.refunded", "data": {"transaction_id", "account", "amount", "currency": "VND",
//! "memo", "payer_name", "booked_at" (RFC 3339), "fee", "order_ref"}}`.

use super::*;
use base64::Engine as _;

fn key_bytes(secret: &Secret) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(&secret.key).ok()?;
    base64::engine::general_purpose::STANDARD
        .decode(text.strip_prefix("whsec_").unwrap_or(text))
        .ok()
}

pub fn verify(
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

pub fn parse(inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
    let outer = json_body(inbound.body)?;
    let kind = str_field(&outer, "type")?;
    let v = outer
        .get("data")
        .filter(|d| d.is_object())
        .ok_or(ParseError::Missing("data"))?;
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
    let outcome = match kind.as_str() {
        "payment.succeeded" => Outcome::Paid,
        "payment.refunded" => Outcome::Refund,
        "payment.failed" => Outcome::Failed {
            code: opt_str(v, "failure_code").unwrap_or_else(|| "failed".into()),
        },
        _ => return Err(ParseError::Invalid("type")),
    };
    let booked = str_field(v, "booked_at")?;
    Ok(Notification {
        provider: ProviderId::StandardWebhooks,
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
