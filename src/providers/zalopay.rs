//! ZaloPay callback (API v2): `{"data": "<JSON text>", "mac": "<hex>", "type": 1}` where `mac` is
//! the hex HMAC-SHA256, under the app's key2, of `data` exactly as received (never re-serialised).
//! ZaloPay reads `return_code`: 1 processed, 2 already processed, 0 call again, -1 bad mac.

use super::*;

/// ZaloPay's payment gateway (callback API v2).
pub struct ZaloPay;

pub const ID: ProviderId = ProviderId::named("zalopay");

impl Sender for ZaloPay {
    fn id(&self) -> ProviderId {
        ID
    }

    fn verify(
        &self,
        inbound: &Inbound<'_>,
        secrets: &[Secret],
        _now: DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        verify(inbound, secrets)
    }

    fn parse(&self, inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
        parse(inbound)
    }

    fn answer(&self, answer: Answer) -> Reply {
        reply(answer)
    }
}

fn verify(inbound: &Inbound<'_>, secrets: &[Secret]) -> Result<(), VerifyError> {
    let v: serde_json::Value =
        serde_json::from_slice(inbound.body).map_err(|_| VerifyError::Malformed("body"))?;
    let data = v
        .get("data")
        .and_then(|d| d.as_str())
        .ok_or(VerifyError::Missing("data"))?;
    let mac = v
        .get("mac")
        .and_then(|m| m.as_str())
        .ok_or(VerifyError::Missing("mac"))?;
    if secrets
        .iter()
        .any(|s| same(&hex::encode(hmac_sha256(&s.key, data.as_bytes())), mac))
    {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

fn parse(inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
    let outer = json_body(inbound.body)?;
    let data = outer
        .get("data")
        .and_then(|d| d.as_str())
        .ok_or(ParseError::Missing("data"))?;
    let v: serde_json::Value =
        serde_json::from_str(data).map_err(|_| ParseError::Invalid("data"))?;
    let amount = json_dong(
        v.get("amount").unwrap_or(&serde_json::Value::Null),
        "amount",
    )?;
    let fee = match v.get("user_fee_amount") {
        Some(f) if !f.is_null() => Some(json_dong(f, "user_fee_amount")?).filter(|f| f.dong() > 0),
        _ => None,
    };
    let ms = v
        .get("server_time")
        .and_then(|t| t.as_i64())
        .ok_or(ParseError::Invalid("server_time"))?;
    Ok(Notification {
        provider: ID,
        txn_id: id_field(&v, "zp_trans_id")?,
        account: Some(id_field(&v, "app_id")?),
        order_ref: Some(str_field(&v, "app_trans_id")?),
        amount,
        payer_name: None,
        memo: opt_str(&v, "description").or_else(|| opt_str(&v, "item")),
        occurred_at: millis(ms).ok_or(ParseError::Invalid("server_time"))?,
        fee,
        // ZaloPay's user fee is charged to the payer on top of the amount.
        fee_bearer: fee.map(|_| crate::domain::fee::Bearer::Parent),
        // ZaloPay calls back only once it has collected the money.
        outcome: Outcome::Paid,
        channel: Channel::Ewallet,
        bank_ref: None,
    })
}

/// ZaloPay reads `return_code` (its samples): 1 processed, 2 already processed (both end the
/// callback), 0 "call again" (at most 3 more times), -1 refused.
fn reply(answer: Answer) -> Reply {
    let (code, message) = match answer {
        Answer::Booked | Answer::Noted => (1, "success"),
        Answer::AlreadyBooked => (2, "already processed"),
        Answer::BadSignature => (-1, "mac not equal"),
        Answer::UnknownAccount => (-1, "unknown app"),
        Answer::OtherAccount => (-1, "the callback is for another app"),
        Answer::InvalidAmount => (-1, "invalid amount"),
        Answer::Malformed => (-1, "invalid payload"),
        Answer::RetryLater | Answer::TooMany => (0, "try again later"),
    };
    Reply::json(
        200,
        serde_json::json!({"return_code": code, "return_message": message}),
    )
}
