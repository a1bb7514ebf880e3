//! MoMo IPN (AIO gateway v2/v3): a JSON POST. `signature` is the lower-case hex HMAC-SHA256,
//! under the partner's secret key, of `accessKey=…&amount=…&extraData=…&message=…&orderId=…&
//! orderInfo=…&orderType=…&partnerCode=…&payType=…&requestId=…&responseTime=…&resultCode=…&
//! transId=…` with raw values (numbers as plain decimals); the access key comes from our
//! configuration, not the body. MoMo expects 204 No Content.

use super::*;

const SIGNED: [&str; 12] = [
    "amount",
    "extraData",
    "message",
    "orderId",
    "orderInfo",
    "orderType",
    "partnerCode",
    "payType",
    "requestId",
    "responseTime",
    "resultCode",
    "transId",
];

fn raw_value(v: &serde_json::Value, field: &str) -> Option<String> {
    match v.get(field)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// MoMo's payment gateway (AIO v2/v3 IPN).
pub struct MoMo;

pub const ID: ProviderId = ProviderId::named("momo");

impl Sender for MoMo {
    fn id(&self) -> ProviderId {
        ID
    }

    /// The secret key, with the access key MoMo signs with (not secret, but required).
    fn secret(&self, given: &GivenSecret<'_>) -> Result<Secret, SecretError> {
        let access_key = given
            .access_key
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 128)
            .ok_or_else(|| SecretError("MoMo signs with an access key: give access_key".into()))?;
        let mut secret = plain_secret(&GivenSecret {
            access_key: None,
            ..*given
        })?;
        secret.access_key = Some(access_key.to_string());
        Ok(secret)
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
    let presented = v
        .get("signature")
        .and_then(|s| s.as_str())
        .ok_or(VerifyError::Missing("signature"))?;
    let mut tail = String::new();
    for f in SIGNED {
        let value = raw_value(&v, f).ok_or(VerifyError::Malformed("signed fields"))?;
        tail.push('&');
        tail.push_str(f);
        tail.push('=');
        tail.push_str(&value);
    }
    let ok = secrets.iter().any(|s| {
        let msg = format!(
            "accessKey={}{tail}",
            s.access_key.as_deref().unwrap_or_default()
        );
        same(&hex::encode(hmac_sha256(&s.key, msg.as_bytes())), presented)
    });
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

fn parse(inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
    let v = json_body(inbound.body)?;
    let amount = json_dong(
        v.get("amount").unwrap_or(&serde_json::Value::Null),
        "amount",
    )?;
    let result = v
        .get("resultCode")
        .and_then(|r| r.as_i64())
        .ok_or(ParseError::Invalid("resultCode"))?;
    let outcome = match result {
        0 => Outcome::Paid,
        // 9000 is authorised but not captured: not money yet.
        other => Outcome::Failed {
            code: other.to_string(),
        },
    };
    let ms = v
        .get("responseTime")
        .and_then(|t| t.as_i64())
        .ok_or(ParseError::Invalid("responseTime"))?;
    Ok(Notification {
        provider: ID,
        txn_id: id_field(&v, "transId")?,
        account: Some(str_field(&v, "partnerCode")?),
        order_ref: Some(str_field(&v, "orderId")?),
        amount,
        payer_name: None,
        memo: opt_str(&v, "orderInfo"),
        occurred_at: millis(ms).ok_or(ParseError::Invalid("responseTime"))?,
        fee: None,
        fee_bearer: None,
        outcome,
        channel: Channel::Ewallet,
        bank_ref: None,
    })
}

/// MoMo wants 204 No Content once the IPN is handled (booked, already booked, or kept as a
/// failure); anything else it treats as not delivered.
fn reply(answer: Answer) -> Reply {
    let refused = |status: u16, message: &str| {
        Reply::json(status, serde_json::json!({"message": message}))
    };
    match answer {
        Answer::Booked | Answer::AlreadyBooked | Answer::Noted => Reply::empty(204),
        Answer::UnknownAccount => refused(404, "no such partner account"),
        Answer::OtherAccount => refused(422, "the notification is for another partner"),
        Answer::InvalidAmount => refused(422, "invalid amount"),
        Answer::BadSignature => refused(401, "invalid signature"),
        Answer::Malformed => refused(400, "invalid payload"),
        Answer::RetryLater => refused(503, "try again later").retry_after(RETRY_AFTER_SECONDS),
        Answer::TooMany => refused(429, "too many requests").retry_after(RETRY_AFTER_SECONDS),
    }
}
