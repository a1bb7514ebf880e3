//! Casso webhook v2: `{"error": 0, "data": {…}}` signed in `X-Casso-Signature: t=<ms>,v1=<hex>`,
//! the hex HMAC-SHA512 under the checksum key of `<t>.<body>` where body is the whole JSON
//! re-serialised compactly with object keys sorted at every level. Casso's own transaction `id`
//! is the key: its bank `reference` can repeat or be empty.

use super::*;

/// Compact JSON with keys sorted recursively, whatever serde_json's map ordering is built with.
pub fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[*k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

pub fn verify(
    inbound: &Inbound<'_>,
    secrets: &[Secret],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let header = inbound
        .header("x-casso-signature")
        .ok_or(VerifyError::Missing("X-Casso-Signature header"))?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value.trim()),
            Some(("v1", value)) => v1 = Some(value.trim()),
            _ => {}
        }
    }
    let (t, v1) = (
        t.ok_or(VerifyError::Malformed("X-Casso-Signature header"))?,
        v1.ok_or(VerifyError::Malformed("X-Casso-Signature header"))?,
    );
    let ms: i64 = t
        .parse()
        .map_err(|_| VerifyError::Malformed("X-Casso-Signature timestamp"))?;
    let body: serde_json::Value =
        serde_json::from_slice(inbound.body).map_err(|_| VerifyError::Malformed("body"))?;
    let msg = format!("{t}.{}", canonical_json(&body));
    if !secrets
        .iter()
        .any(|s| same(&hex::encode(hmac_sha512(&s.key, msg.as_bytes())), v1))
    {
        return Err(VerifyError::Mismatch);
    }
    // Checked after the signature, so an attacker learns nothing from timing about old requests.
    if (now.timestamp_millis() - ms).abs() > TOLERANCE_SECONDS * 1000 {
        return Err(VerifyError::Expired);
    }
    Ok(())
}

pub fn parse(inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
    let outer = json_body(inbound.body)?;
    let v = outer
        .get("data")
        .filter(|d| d.is_object())
        .ok_or(ParseError::Missing("data"))?;
    let signed_amount = match v.get("amount") {
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .ok_or(ParseError::Amount(AmountError::Fractional))?,
        _ => return Err(ParseError::Invalid("amount")),
    };
    // Casso reports money out as a negative amount.
    let outcome = if signed_amount < 0 {
        Outcome::Outgoing
    } else {
        Outcome::Paid
    };
    let amount = Vnd::non_negative(
        signed_amount
            .checked_abs()
            .ok_or(ParseError::Invalid("amount"))?,
    )
    .map_err(ParseError::Amount)?;
    let when = str_field(v, "transactionDateTime")?;
    Ok(Notification {
        provider: ProviderId::Casso,
        txn_id: id_field(v, "id")?,
        account: Some(str_field(v, "accountNumber")?),
        order_ref: None,
        amount,
        payer_name: opt_str(v, "counterAccountName"),
        memo: opt_str(v, "description"),
        occurred_at: vietnam_time(&when, "%Y-%m-%d %H:%M:%S")
            .ok_or(ParseError::Invalid("transactionDateTime"))?,
        fee: None,
        fee_bearer: None,
        outcome,
        channel: Channel::BankTransfer,
        bank_ref: opt_str(v, "reference"),
    })
}
