//! SePay bank-account watcher: one JSON POST per transaction on the watched account, with
//! `Authorization: Apikey <key>`. Any 2xx ends the delivery; SePay retries others up to 7 times
//! over about 33 minutes.

use super::*;

pub fn verify(inbound: &Inbound<'_>, secrets: &[Secret]) -> Result<(), VerifyError> {
    let header = inbound
        .header("authorization")
        .ok_or(VerifyError::Missing("Authorization header"))?;
    let key = header
        .strip_prefix("Apikey ")
        .or_else(|| header.strip_prefix("apikey "))
        .ok_or(VerifyError::Malformed("Authorization header"))?
        .trim();
    // Compare every configured key in full, so timing does not say which one nearly matched.
    let matched = secrets.iter().fold(subtle::Choice::from(0), |acc, s| {
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

pub fn parse(inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
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
        provider: ProviderId::Sepay,
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
