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

pub fn verify(inbound: &Inbound<'_>, secrets: &[Secret]) -> Result<(), VerifyError> {
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

pub fn parse(inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
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
        provider: ProviderId::Momo,
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

/// MoMo wants 204 once the IPN is handled; anything else it treats as not delivered.
pub fn reply(ack: Ack) -> Reply {
    match ack {
        Ack::Accepted | Ack::Duplicate | Ack::NotFound | Ack::InvalidAmount => Reply {
            status: 204,
            body: String::new(),
        },
        Ack::BadSignature => Reply::json(401, serde_json::json!({"message": "invalid signature"})),
        Ack::Rejected => Reply::json(400, serde_json::json!({"message": "invalid payload"})),
        Ack::RetryLater => Reply::json(503, serde_json::json!({"message": "try again later"})),
    }
}
