//! SePay bank-account watcher: one JSON POST per transaction on the watched account,
//! authenticated by `Authorization: Apikey <key>` or, in SePay's HMAC-SHA256 mode, signed in
//! `X-SePay-Signature`. Any 2xx ends the delivery; SePay retries others up to 7 times over
//! about 33 minutes.

use super::*;

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
