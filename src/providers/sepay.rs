//! SePay bank-account watcher: one JSON POST per transaction on the watched account,
//! authenticated by `Authorization: Apikey <key>` or, in SePay's HMAC-SHA256 mode, signed in
//! `X-SePay-Signature`. Any 2xx ends the delivery; SePay retries others up to 7 times over
//! about 33 minutes.

use super::feed::{self, Feed, FeedError, Page, Pulled, Request as FeedRequest};
use super::*;
use crate::domain::text::same_account;

/// SePay's bank-account watcher.
pub struct SePay;

pub const ID: ProviderId = ProviderId::named("sepay");

/// A SePay webhook secret is one of the two ways SePay authenticates a webhook.
const API_KEY: &str = "api_key";
const HMAC: &str = "hmac_sha256";

impl Sender for SePay {
    fn id(&self) -> ProviderId {
        ID
    }

    fn signed_headers(&self) -> &'static [&'static str] {
        &["authorization", "x-sepay-timestamp", "x-sepay-signature"]
    }

    /// `scheme` is `api_key` (the default: SePay sends `Authorization: Apikey <key>`) or
    /// `hmac_sha256` (SePay signs each request with the webhook's secret). An account may hold
    /// both while it moves from one to the other.
    fn secret(&self, given: &GivenSecret<'_>) -> Result<Secret, SecretError> {
        let scheme = match given.scheme.map(str::trim) {
            None | Some(API_KEY) => None,
            Some(HMAC) => Some(HMAC.to_string()),
            Some(_) => {
                return Err(SecretError(format!(
                    "a SePay secret's scheme is {API_KEY} or {HMAC}"
                )))
            }
        };
        let mut secret = plain_secret(&GivenSecret {
            scheme: None,
            ..*given
        })?;
        secret.scheme = scheme;
        Ok(secret)
    }

    fn verify(
        &self,
        inbound: &Inbound<'_>,
        secrets: &[Secret],
        now: DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        if inbound.header("x-sepay-signature").is_some() {
            verify_hmac(inbound, secrets, now)
        } else {
            verify_api_key(inbound, secrets)
        }
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

fn is_hmac(secret: &Secret) -> bool {
    secret.scheme.as_deref() == Some(HMAC)
}

/// `Authorization: Apikey <key>`: the key only proves who sent it, not what was sent.
fn verify_api_key(inbound: &Inbound<'_>, secrets: &[Secret]) -> Result<(), VerifyError> {
    let header = inbound
        .header("authorization")
        .ok_or(VerifyError::Missing("Authorization header"))?;
    let key = header
        .strip_prefix("Apikey ")
        .or_else(|| header.strip_prefix("apikey "))
        .ok_or(VerifyError::Malformed("Authorization header"))?
        .trim();
    // Compare every configured key in full, so timing does not say which one nearly matched.
    let matched = secrets
        .iter()
        .filter(|s| !is_hmac(s))
        .fold(subtle::Choice::from(0), |acc, s| {
            acc | if s.key.len() == key.len() {
                s.key.as_slice().ct_eq(key.as_bytes())
            } else {
                subtle::Choice::from(0)
            }
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// `X-SePay-Signature: sha256=<hex>`, the HMAC-SHA256 under the webhook's secret of
/// `<X-SePay-Timestamp>.<raw body>`; the timestamp (Unix seconds) must be within 5 minutes, as
/// SePay asks, so an old request cannot be replayed.
fn verify_hmac(
    inbound: &Inbound<'_>,
    secrets: &[Secret],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let presented = inbound
        .header("x-sepay-signature")
        .ok_or(VerifyError::Missing("X-SePay-Signature header"))?;
    let presented = presented
        .trim()
        .strip_prefix("sha256=")
        .unwrap_or(presented.trim());
    let ts = inbound
        .header("x-sepay-timestamp")
        .ok_or(VerifyError::Missing("X-SePay-Timestamp header"))?
        .trim();
    let seconds: i64 = ts
        .parse()
        .map_err(|_| VerifyError::Malformed("X-SePay-Timestamp header"))?;
    let mut msg = Vec::with_capacity(ts.len() + 1 + inbound.body.len());
    msg.extend_from_slice(ts.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(inbound.body);
    if !secrets
        .iter()
        .filter(|s| is_hmac(s))
        .any(|s| same(&hex::encode(hmac_sha256(&s.key, &msg)), presented))
    {
        return Err(VerifyError::Mismatch);
    }
    // Checked after the signature, so timing tells an attacker nothing about old requests.
    if (now.timestamp() - seconds).abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::Expired);
    }
    Ok(())
}

fn parse(inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
    let v = json_body(inbound.body)?;
    let amount = json_dong(
        v.get("transferAmount").unwrap_or(&serde_json::Value::Null),
        "transferAmount",
    )?;
    let outcome = match str_field(&v, "transferType")?.as_str() {
        "in" => Outcome::Paid,
        "out" => Outcome::Outgoing,
        _ => return Err(ParseError::Invalid("transferType")),
    };
    let when = str_field(&v, "transactionDate")?;
    let memo = opt_str(&v, "content");
    // SePay's own `code` is what it extracted with the company's code pattern; keep it as the
    // order reference and let matching check it.
    Ok(Notification {
        provider: ID,
        txn_id: id_field(&v, "id")?,
        account: Some(str_field(&v, "accountNumber")?),
        order_ref: opt_str(&v, "code"),
        amount,
        payer_name: None,
        memo: memo.or_else(|| opt_str(&v, "description")),
        occurred_at: vietnam_time(&when, "%Y-%m-%d %H:%M:%S")
            .ok_or(ParseError::Invalid("transactionDate"))?,
        fee: None,
        fee_bearer: None,
        outcome,
        channel: Channel::BankTransfer,
        bank_ref: opt_str(&v, "referenceCode"),
    })
}

/// SePay answers at most this many transactions a request (its maximum is 5,000).
pub const SEPAY_LIMIT: usize = 1000;

/// SePay's transaction list: `GET {base}/userapi/transactions/list?account_number=…&since_id=…
/// &limit=…` with `Authorization: Bearer <API token>`. Its ids are the ones SePay's webhooks
/// carry; `since_id` is inclusive, so the cursor is the last id seen plus one. Amounts come as
/// `"2277000.00"`.
impl Feed for SePay {
    fn default_base_url(&self) -> &'static str {
        "https://my.sepay.vn"
    }

    fn authorization(&self, api_key: &str) -> String {
        format!("Bearer {api_key}")
    }

    fn request(
        &self,
        account: &str,
        from: Option<&str>,
        _page: usize,
        now: DateTime<Utc>,
    ) -> FeedRequest {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("account_number", account);
        match from {
            Some(since) => q.append_pair("since_id", since),
            None => q.append_pair("transaction_date_min", &feed::first_day(now)),
        };
        q.append_pair("limit", &SEPAY_LIMIT.to_string());
        FeedRequest {
            path_and_query: format!("/userapi/transactions/list?{}", q.finish()),
        }
    }

    fn read(&self, body: &[u8], account: &str) -> Result<Page, FeedError> {
        read_sepay(&feed::json(body)?, account)
    }

    fn next_cursor(&self, cursor: Option<&str>, pulled: &[Pulled]) -> Option<String> {
        let seen = pulled
            .iter()
            .filter_map(|p| p.txn_id.parse::<u64>().ok())
            .max();
        let old = cursor.and_then(|c| c.parse::<u64>().ok());
        match (seen, old) {
            (Some(s), Some(o)) => Some((s + 1).max(o).to_string()),
            (Some(s), None) => Some((s + 1).to_string()),
            (None, _) => cursor.map(String::from),
        }
    }

    /// SePay pages by moving its cursor.
    fn page_from(&self, cursor: Option<&str>, pulled: &[Pulled]) -> Option<String> {
        self.next_cursor(cursor, pulled)
    }

    fn valid_cursor(&self, cursor: &str) -> bool {
        cursor.len() <= 19 && cursor.parse::<u64>().is_ok()
    }

    fn cursor_rule(&self) -> &'static str {
        "a SePay cursor is a transaction id"
    }
}

fn read_sepay(v: &serde_json::Value, account: &str) -> Result<Page, FeedError> {
    use feed::{dong, id_text, line, text};
    let status = v.get("status").and_then(|s| s.as_i64());
    if status.is_some_and(|s| s != 200) || v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(FeedError::Sender(
            v.get("error")
                .filter(|e| !e.is_null())
                .map(|e| e.to_string())
                .unwrap_or_else(|| format!("status {}", status.unwrap_or_default())),
        ));
    }
    let list = v
        .get("transactions")
        .and_then(|t| t.as_array())
        .ok_or_else(|| FeedError::Shape("no transactions array".into()))?;
    let mut page = Page {
        more: list.len() >= SEPAY_LIMIT,
        ..Page::default()
    };
    for (i, t) in list.iter().enumerate() {
        if text(t, "account_number").is_some_and(|a| !same_account(&a, account)) {
            continue;
        }
        let signed = dong(t.get("amount_in")).and_then(|inflow| {
            let outflow = dong(t.get("amount_out"))?;
            match (inflow, outflow) {
                (i, 0) if i > 0 => Ok(i),
                (0, o) if o > 0 => Ok(-o),
                (0, 0) => Ok(0),
                _ => Err("both amount_in and amount_out are set".into()),
            }
        });
        match line(
            id_text(t.get("id")),
            signed,
            text(t, "transaction_date"),
            text(t, "transaction_content"),
        ) {
            Ok((txn_id, mut l)) => {
                l.line_no = i + 1;
                l.bank_ref = text(t, "reference_number");
                l.balance_after = dong(t.get("accumulated"))
                    .ok()
                    .and_then(|b| Vnd::new(b).ok());
                page.pulled.push(Pulled {
                    txn_id,
                    order_ref: text(t, "code"),
                    line: l,
                });
            }
            Err(s) => page.skipped.push(s),
        }
    }
    Ok(page)
}

