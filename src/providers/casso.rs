//! Casso webhook v2: `{"error": 0, "data": {…}}` signed in `X-Casso-Signature: t=<ms>,v1=<hex>`,
//! the hex HMAC-SHA512 under the checksum key of `<t>.<body>` where body is the whole JSON
//! re-serialised compactly with object keys sorted at every level. Casso's own transaction `id`
//! is the key: its bank `reference` can repeat or be empty.

use super::feed::{self, Feed, FeedError, Page, Pulled, Request as FeedRequest};
use super::*;
use crate::domain::text::same_account;

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

    fn feed(&self) -> Option<&dyn Feed> {
        Some(self)
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

/// Casso's page size.
pub const CASSO_PAGE_SIZE: usize = 100;

/// Casso's transaction list: `GET {base}/v2/transactions?fromDate=YYYY-MM-DD&page=N&pageSize=…
/// &sort=ASC` with `Authorization: Apikey <API key>`. The cursor is the day of the last
/// transaction seen: the next run starts that day again (Casso filters by day only), and the
/// keys drop what was seen.
impl Feed for Casso {
    fn default_base_url(&self) -> &'static str {
        "https://oauth.casso.vn"
    }

    fn authorization(&self, api_key: &str) -> String {
        format!("Apikey {api_key}")
    }

    fn request(
        &self,
        _account: &str,
        from: Option<&str>,
        page: usize,
        now: DateTime<Utc>,
    ) -> FeedRequest {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("fromDate", from.unwrap_or(&feed::first_day(now)));
        q.append_pair("page", &(page + 1).to_string());
        q.append_pair("pageSize", &CASSO_PAGE_SIZE.to_string());
        q.append_pair("sort", "ASC");
        FeedRequest {
            path_and_query: format!("/v2/transactions?{}", q.finish()),
        }
    }

    fn read(&self, body: &[u8], account: &str) -> Result<Page, FeedError> {
        read_casso(&feed::json(body)?, account)
    }

    fn next_cursor(&self, cursor: Option<&str>, pulled: &[Pulled]) -> Option<String> {
        let seen = pulled
            .iter()
            .map(|p| crate::domain::time::vietnam_date(p.line.booked_at))
            .max();
        let old = cursor.and_then(|c| chrono::NaiveDate::parse_from_str(c, "%Y-%m-%d").ok());
        match (seen, old) {
            (Some(s), Some(o)) => Some(s.max(o).format("%Y-%m-%d").to_string()),
            (Some(s), None) => Some(s.format("%Y-%m-%d").to_string()),
            (None, _) => cursor.map(String::from),
        }
    }

    /// Casso pages by page number, from the run's day.
    fn page_from(&self, cursor: Option<&str>, _pulled: &[Pulled]) -> Option<String> {
        cursor.map(String::from)
    }

    fn valid_cursor(&self, cursor: &str) -> bool {
        chrono::NaiveDate::parse_from_str(cursor, "%Y-%m-%d").is_ok()
    }

    fn cursor_rule(&self) -> &'static str {
        "a Casso cursor is a day, YYYY-MM-DD"
    }
}

fn read_casso(v: &serde_json::Value, account: &str) -> Result<Page, FeedError> {
    use feed::{dong, id_text, line, text};
    match v.get("error").and_then(|e| e.as_i64()) {
        Some(0) => {}
        Some(code) => {
            return Err(FeedError::Sender(format!(
                "error {code}: {}",
                text(v, "message").unwrap_or_default()
            )))
        }
        None => return Err(FeedError::Shape("no error field".into())),
    }
    let data = v
        .get("data")
        .ok_or_else(|| FeedError::Shape("no data".into()))?;
    let list = data
        .get("records")
        .and_then(|r| r.as_array())
        .ok_or_else(|| FeedError::Shape("no data.records array".into()))?;
    let number = |f: &str| data.get(f).and_then(|x| x.as_i64());
    let more = match (number("page"), number("totalPages"), number("nextPage")) {
        (Some(p), Some(total), _) => p < total,
        (Some(p), None, Some(next)) => next > p,
        _ => false,
    };
    let mut page = Page {
        more,
        ..Page::default()
    };
    for (i, t) in list.iter().enumerate() {
        // Casso lists every bank account of the key's owner: keep this one's.
        if text(t, "bankSubAccId").is_some_and(|a| !same_account(&a, account)) {
            continue;
        }
        match line(
            id_text(t.get("id")),
            dong(t.get("amount")),
            text(t, "when"),
            text(t, "description"),
        ) {
            Ok((txn_id, mut l)) => {
                l.line_no = i + 1;
                // The bank's reference: Casso says it can repeat, so it never keys a line.
                l.bank_ref = text(t, "tid");
                l.counterparty = text(t, "corresponsiveName");
                l.balance_after = dong(t.get("cusum_balance").or(t.get("cusumBalance")))
                    .ok()
                    .and_then(|b| Vnd::new(b).ok());
                page.pulled.push(Pulled {
                    txn_id,
                    order_ref: None,
                    line: l,
                });
            }
            Err(s) => page.skipped.push(s),
        }
    }
    Ok(page)
}

