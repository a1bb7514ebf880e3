//! VNPay IPN: a GET whose query parameters are the notification. `vnp_SecureHash` is the
//! lower-case hex HMAC-SHA512, under the merchant's hash secret, of the other `vnp_` parameters
//! (without `vnp_SecureHash` and `vnp_SecureHashType`, empty values dropped) sorted by name and
//! form-URL-encoded (`k=v&…`, space as `+`), as the `vnpay` package builds it.

use super::*;
use std::collections::BTreeMap;

/// The decoded parameters; a repeated name is refused (one of the copies would go unsigned).
fn params(query: &str) -> Result<BTreeMap<String, String>, &'static str> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err("query (a parameter appears twice)");
        }
    }
    Ok(out)
}

/// The string VNPay signs.
pub fn canonical(params: &BTreeMap<String, String>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(k, v)| {
        k.as_str() != "vnp_SecureHash" && k.as_str() != "vnp_SecureHashType" && !v.is_empty()
    }) {
        s.append_pair(k, v);
    }
    s.finish()
}

/// VNPay's payment gateway (IPN).
pub struct VnPay;

pub const ID: ProviderId = ProviderId::named("vnpay");

impl Sender for VnPay {
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
    let p = params(inbound.query).map_err(VerifyError::Malformed)?;
    let presented = p
        .get("vnp_SecureHash")
        .ok_or(VerifyError::Missing("vnp_SecureHash"))?;
    let msg = canonical(&p);
    if secrets
        .iter()
        .any(|s| same(&hex::encode(hmac_sha512(&s.key, msg.as_bytes())), presented))
    {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

fn parse(inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
    let p = params(inbound.query).map_err(|_| ParseError::Invalid("query"))?;
    let get = |k: &'static str| {
        p.get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or(ParseError::Missing(k))
    };
    let raw_amount = get("vnp_Amount")?;
    if !raw_amount.bytes().all(|b| b.is_ascii_digit()) || raw_amount.len() > 17 {
        return Err(ParseError::Invalid("vnp_Amount"));
    }
    let hundredths: i64 = raw_amount
        .parse()
        .map_err(|_| ParseError::Invalid("vnp_Amount"))?;
    // VNPay sends VND × 100; a remainder means a broken or forged message, never "round it".
    if hundredths % 100 != 0 {
        return Err(ParseError::Amount(AmountError::Fractional));
    }
    let amount = Vnd::non_negative(hundredths / 100).map_err(ParseError::Amount)?;
    let response = get("vnp_ResponseCode")?;
    let status = p
        .get("vnp_TransactionStatus")
        .map(String::as_str)
        .unwrap_or(response);
    let outcome = if response == "00" && status == "00" {
        Outcome::Paid
    } else {
        Outcome::Failed {
            code: format!("{response}/{status}"),
        }
    };
    let occurred_at = vietnam_time(get("vnp_PayDate")?, "%Y%m%d%H%M%S")
        .ok_or(ParseError::Invalid("vnp_PayDate"))?;
    Ok(Notification {
        provider: ID,
        txn_id: get("vnp_TransactionNo")?.to_string(),
        account: Some(get("vnp_TmnCode")?.to_string()),
        order_ref: Some(get("vnp_TxnRef")?.to_string()),
        amount,
        payer_name: None,
        memo: p.get("vnp_OrderInfo").cloned(),
        occurred_at,
        fee: None,
        fee_bearer: None,
        outcome,
        channel: Channel::Card,
        bank_ref: p.get("vnp_BankTranNo").cloned().filter(|v| !v.is_empty()),
    })
}

/// VNPay reads `RspCode` (codes as its `vnpay` package names them): `00` and `02` end the flow,
/// anything else makes it call the IPN again. Money is booked whatever review it needs, so a
/// booked IPN is `00` and its retry `02`; `01` and `04` are only for what is refused before
/// anything is booked; `99` asks for a retry.
fn reply(answer: Answer) -> Reply {
    let (code, message) = match answer {
        Answer::Booked | Answer::Noted => ("00", "Confirm Success"),
        Answer::AlreadyBooked => ("02", "Order already confirmed"),
        Answer::UnknownAccount | Answer::OtherAccount => ("01", "Order not found"),
        Answer::InvalidAmount => ("04", "Invalid amount"),
        Answer::BadSignature => ("97", "Invalid signature"),
        Answer::Malformed | Answer::RetryLater | Answer::TooMany => ("99", "Unknown error"),
    };
    Reply::json(
        200,
        serde_json::json!({"RspCode": code, "Message": message}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(query_without_hash: &str, secret: &[u8]) -> String {
        let p = params(query_without_hash).unwrap();
        let h = hex::encode(hmac_sha512(secret, canonical(&p).as_bytes()));
        format!("{query_without_hash}&vnp_SecureHash={h}")
    }

    const BASE: &str = "vnp_Amount=123500000&vnp_BankCode=NCB&vnp_OrderInfo=Thanh+toan+QD3CFPSA&vnp_PayDate=20250910083000\
        &vnp_ResponseCode=00&vnp_TmnCode=FEERTEST&vnp_TransactionNo=14012345&vnp_TransactionStatus=00&vnp_TxnRef=QD3CFPSA";

    #[test]
    fn verifies_and_normalises() {
        let q = sign(BASE, b"secret");
        let inbound = Inbound {
            query: &q,
            headers: &[],
            body: b"",
        };
        let old = Secret {
            key: b"old".to_vec(),
            access_key: None,
        scheme: None,
        };
        let new = Secret {
            key: b"secret".to_vec(),
            access_key: None,
        scheme: None,
        };
        assert_eq!(verify(&inbound, &[old.clone(), new]), Ok(()));
        assert_eq!(verify(&inbound, &[old]), Err(VerifyError::Mismatch));
        let n = parse(&inbound).unwrap();
        assert_eq!(
            (n.amount.dong(), n.txn_id.as_str(), n.order_ref.as_deref()),
            (1_235_000, "14012345", Some("QD3CFPSA"))
        );
        assert_eq!(n.occurred_at.to_rfc3339(), "2025-09-10T01:30:00+00:00");
        assert_eq!(n.outcome, Outcome::Paid);
    }

    #[test]
    fn refuses_fractions_duplicates_and_failed_outcomes_are_not_paid() {
        let q = sign(&BASE.replace("123500000", "123500050"), b"k");
        assert_eq!(
            parse(&Inbound {
                query: &q,
                headers: &[],
                body: b""
            })
            .unwrap_err(),
            ParseError::Amount(AmountError::Fractional)
        );
        let dup = format!("{}&vnp_Amount=1", sign(BASE, b"k"));
        assert!(matches!(
            verify(
                &Inbound {
                    query: &dup,
                    headers: &[],
                    body: b""
                },
                &[Secret {
                    key: b"k".to_vec(),
                    access_key: None,
                scheme: None,
                }]
            ),
            Err(VerifyError::Malformed(_))
        ));
        let q = sign(
            &BASE.replace("vnp_ResponseCode=00", "vnp_ResponseCode=24"),
            b"k",
        );
        assert_eq!(
            parse(&Inbound {
                query: &q,
                headers: &[],
                body: b""
            })
            .unwrap()
            .outcome,
            Outcome::Failed {
                code: "24/00".into()
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(q in "\\PC{0,300}") {
            let inbound = Inbound { query: &q, headers: &[], body: b"" };
            let _ = verify(&inbound, &[Secret { key: b"k".to_vec(), access_key: None, scheme: None }]);
            let _ = parse(&inbound);
        }
    }
}
