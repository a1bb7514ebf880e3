//! Casso webhook v2: `{"error": 0, "data": {…}}` signed in `X-Casso-Signature: t=<ms>,v1=<hex>`,
//! the hex HMAC-SHA512 under the checksum key of `<t>.<body>` where body is the whole JSON
//! re-serialised compactly with object keys sorted at every level. Casso's own transaction `id`
//! is the key: its bank `reference` can repeat or be empty.

use super::*;

/// Casso's bank-account watcher (webhook v2).
pub struct Casso;

pub const ID: ProviderId = ProviderId::named("casso");

impl Sender for Casso {
    fn id(&self) -> ProviderId {
        ID
    }

    fn signed_headers(&self) -> &'static [&'static str] {
        &["x-casso-signature"]
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

    fn watches_account(&self) -> bool {
        true
    }
}

/// How a serialiser writes the signed JSON. Casso's samples sign the same sorted, compact JSON
/// through different serialisers: JavaScript's `JSON.stringify` keeps non-ASCII text as UTF-8;
/// Python's `json.dumps` escapes it as `\uXXXX`; PHP's `json_encode` escapes it too, and `/` as
/// `\/`. A Vietnamese memo is signed differently by each, so each form is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escaping {
    Raw,
    Ascii,
    AsciiAndSlash,
}

/// Compact JSON with keys sorted recursively, whatever serde_json's map ordering is built with.
pub fn canonical_json(v: &serde_json::Value) -> String {
    canonical_json_as(v, Escaping::Raw)
}

pub fn canonical_json_as(v: &serde_json::Value, escaping: Escaping) -> String {
    let mut out = String::new();
    write_canonical(v, escaping, &mut out);
    out
}

fn write_string(text: &str, escaping: Escaping, out: &mut String) {
    let quoted = serde_json::Value::String(text.to_string()).to_string();
    if escaping == Escaping::Raw {
        out.push_str(&quoted);
        return;
    }
    for c in quoted.chars() {
        match c {
            '/' if escaping == Escaping::AsciiAndSlash => out.push_str("\\/"),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
}

fn write_canonical(v: &serde_json::Value, escaping: Escaping, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, escaping, out);
                out.push(':');
                write_canonical(&map[*k], escaping, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, escaping, out);
            }
            out.push(']');
        }
        serde_json::Value::String(text) => write_string(text, escaping, out),
        other => out.push_str(&other.to_string()),
    }
}

fn verify(
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
    let raw = canonical_json_as(&body, Escaping::Raw);
    let ascii = canonical_json_as(&body, Escaping::Ascii);
    let slash = canonical_json_as(&body, Escaping::AsciiAndSlash);
    // The forms coincide for ASCII text; each distinct one is tried.
    let mut forms = vec![raw];
    for form in [ascii, slash] {
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    let signed = secrets.iter().any(|s| {
        forms.iter().any(|json| {
            let msg = format!("{t}.{json}");
            same(&hex::encode(hmac_sha512(&s.key, msg.as_bytes())), v1)
        })
    });
    if !signed {
        return Err(VerifyError::Mismatch);
    }
    // Checked after the signature, so an attacker learns nothing from timing about old requests.
    if (now.timestamp_millis() - ms).abs() > TOLERANCE_SECONDS * 1000 {
        return Err(VerifyError::Expired);
    }
    Ok(())
}

fn parse(inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
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
        provider: ID,
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
