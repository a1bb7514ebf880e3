//! Round trips with locally signed deliveries, tampering, expiry, rotation, and parsers that
//! never panic. The fixtures signed by the senders' own packages are tested in `fixtures.rs`.

use super::*;

/// The registry's sender of `id`, for the tests.
fn of(id: ProviderId) -> &'static dyn Sender {
    sender(id).expect("a known sender")
}

fn verify(
    id: ProviderId,
    inbound: &Inbound<'_>,
    secrets: &[Secret],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    of(id).verify(inbound, secrets, now)
}

fn parse(id: ProviderId, inbound: &Inbound<'_>) -> Result<Notification, ParseError> {
    super::parse(of(id), inbound)
}
use base64::Engine as _;
use chrono::Duration;
use proptest::prelude::*;

fn secret(k: &str) -> Secret {
    Secret {
        key: k.as_bytes().to_vec(),
        access_key: Some("ACCESSKEY".into()),
        scheme: None,
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-09-10T01:30:05Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every single-byte change of `body` must fail verification (or parsing of the verified shape).
fn tamper_each_byte(
    provider: ProviderId,
    hs: &[(String, String)],
    query: &str,
    body: &[u8],
    secrets: &[Secret],
) {
    for i in (0..body.len()).step_by(7) {
        let mut b = body.to_vec();
        b[i] = if b[i] == b'1' { b'2' } else { b'1' };
        let inbound = Inbound {
            query,
            headers: hs,
            body: &b,
        };
        assert!(
            verify(provider, &inbound, secrets, now()).is_err(),
            "{provider:?}: byte {i} changed and still verified"
        );
    }
}

#[test]
fn momo_round_trip() {
    let fields = r#""partnerCode":"MOMOFEER","orderId":"QD3CFPSA","requestId":"QD3CFPSA-1","amount":1235000,"orderInfo":"Hoc phi QD3CFPSA","orderType":"momo_wallet","transId":4088878653,"resultCode":0,"message":"Thành công.","payType":"qr","responseTime":1757467805000,"extraData":"""#;
    let raw = "accessKey=ACCESSKEY&amount=1235000&extraData=&message=Thành công.&orderId=QD3CFPSA&orderInfo=Hoc phi QD3CFPSA&orderType=momo_wallet&partnerCode=MOMOFEER&payType=qr&requestId=QD3CFPSA-1&responseTime=1757467805000&resultCode=0&transId=4088878653";
    let sig = hex::encode(hmac_sha256(b"momo-secret", raw.as_bytes()));
    let body = format!("{{{fields},\"signature\":\"{sig}\"}}");
    let inbound = Inbound {
        query: "",
        headers: &[],
        body: body.as_bytes(),
    };
    assert_eq!(
        verify(momo::ID, &inbound, &[secret("momo-secret")], now()),
        Ok(())
    );
    let n = parse(momo::ID, &inbound).unwrap();
    assert_eq!(
        (n.txn_id.as_str(), n.amount.dong(), n.outcome.clone()),
        ("4088878653", 1_235_000, Outcome::Paid)
    );
    tamper_each_byte(momo::ID, &[], "", body.as_bytes(), &[secret("momo-secret")]);
    assert_eq!(of(momo::ID).answer(Answer::AlreadyBooked).status, 204);
}

#[test]
fn zalopay_round_trip() {
    let data = r#"{"app_id":2553,"app_trans_id":"250910_QD3CFPSA","app_time":1757467800000,"app_user":"feerecon","amount":1235000,"embed_data":"{}","item":"[]","zp_trans_id":250910000012345,"server_time":1757467805000,"channel":38,"merchant_user_id":"u1","user_fee_amount":0,"discount_amount":0}"#;
    let mac = hex::encode(hmac_sha256(b"key2", data.as_bytes()));
    let body = serde_json::json!({"data": data, "mac": mac, "type": 1}).to_string();
    let inbound = Inbound {
        query: "",
        headers: &[],
        body: body.as_bytes(),
    };
    assert_eq!(
        verify(
            zalopay::ID,
            &inbound,
            &[secret("other"), secret("key2")],
            now()
        ),
        Ok(())
    );
    let n = parse(zalopay::ID, &inbound).unwrap();
    assert_eq!(
        (n.txn_id.as_str(), n.order_ref.as_deref(), n.fee),
        ("250910000012345", Some("250910_QD3CFPSA"), None)
    );
    // `type` is outside ZaloPay's signed `data`; everything before it is covered.
    let signed = &body.as_bytes()[..body.find("\"type\"").unwrap()];
    let tail = &body.as_bytes()[signed.len()..];
    for i in (0..signed.len()).step_by(5) {
        let mut b = signed.to_vec();
        b[i] = if b[i] == b'1' { b'2' } else { b'1' };
        b.extend_from_slice(tail);
        let inbound = Inbound {
            query: "",
            headers: &[],
            body: &b,
        };
        assert!(
            verify(zalopay::ID, &inbound, &[secret("key2")], now()).is_err(),
            "byte {i}"
        );
    }
    assert_eq!(
        of(zalopay::ID).answer(Answer::AlreadyBooked).body,
        r#"{"return_code":2,"return_message":"already processed"}"#
    );
}

#[test]
fn zalopay_user_fee_is_the_payers() {
    let data = r#"{"app_id":2553,"app_trans_id":"250910_QD3CFPSA","app_time":1757467800000,"app_user":"u","amount":1235000,"embed_data":"{}","item":"[]","zp_trans_id":250910000012345,"server_time":1757467805000,"channel":38,"merchant_user_id":"u1","user_fee_amount":11000,"discount_amount":0}"#;
    let body = serde_json::json!({"data": data, "mac": "00", "type": 1}).to_string();
    let n = parse(
        zalopay::ID,
        &Inbound {
            query: "",
            headers: &[],
            body: body.as_bytes(),
        },
    )
    .unwrap();
    assert_eq!(
        (n.fee.map(|f| f.dong()), n.fee_bearer),
        (Some(11_000), Some(crate::domain::fee::Bearer::Parent))
    );
}

#[test]
fn sepay_checks_the_api_key() {
    let body = r#"{"id":92704,"gateway":"MBBank","transactionDate":"2025-09-10 08:30:00","accountNumber":"0071000123456","subAccount":null,"code":"QD3CFPSA","content":"QD3CFPSA NGUYEN VAN BO","transferType":"in","transferAmount":1235000,"accumulated":19077000,"referenceCode":"FT25253123456789","description":"BankAPINotify QD3CFPSA"}"#;
    let good = headers(&[("authorization", "Apikey sepay-key-1")]);
    let inbound = Inbound {
        query: "",
        headers: &good,
        body: body.as_bytes(),
    };
    assert_eq!(
        verify(
            sepay::ID,
            &inbound,
            &[secret("sepay-key-0"), secret("sepay-key-1")],
            now()
        ),
        Ok(())
    );
    for bad in [
        vec![],
        headers(&[("authorization", "Apikey sepay-key-2")]),
        headers(&[("authorization", "Bearer sepay-key-1")]),
    ] {
        let inbound = Inbound {
            query: "",
            headers: &bad,
            body: body.as_bytes(),
        };
        assert!(verify(sepay::ID, &inbound, &[secret("sepay-key-1")], now()).is_err());
    }
    let n = parse(sepay::ID, &inbound).unwrap();
    assert_eq!(
        (
            n.txn_id.as_str(),
            n.account.as_deref(),
            n.order_ref.as_deref()
        ),
        ("92704", Some("0071000123456"), Some("QD3CFPSA"))
    );
    assert_eq!(n.occurred_at.to_rfc3339(), "2025-09-10T01:30:00+00:00");
    let out = body.replace("\"in\"", "\"out\"");
    assert_eq!(
        parse(
            sepay::ID,
            &Inbound {
                query: "",
                headers: &good,
                body: out.as_bytes()
            }
        )
        .unwrap()
        .outcome,
        Outcome::Outgoing
    );
    let frac = body.replace("1235000,", "1235000.5,");
    assert_eq!(
        parse(
            sepay::ID,
            &Inbound {
                query: "",
                headers: &good,
                body: frac.as_bytes()
            }
        )
        .unwrap_err(),
        ParseError::Amount(AmountError::Fractional)
    );
}

#[test]
fn casso_signs_the_sorted_compact_body() {
    // Spaced and unsorted as sent; signed over the sorted compact form.
    let body = r#"{ "error": 0, "data": { "id": 3270, "reference": "", "description": "QD3CFPSA Nguyễn Minh Anh 6A1", "amount": 1235000, "runningBalance": 5000000, "transactionDateTime": "2025-09-10 08:30:00", "accountNumber": "0071000123456", "bankName": "Vietcombank", "bankAbbreviation": "VCB", "virtualAccountNumber": "", "virtualAccountName": "", "counterAccountName": "NGUYEN VAN BO", "counterAccountNumber": "190363", "counterAccountBankId": "970415", "counterAccountBankName": "VietinBank" } }"#;
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let canon = casso::canonical_json(&v);
    assert!(
        canon.starts_with(
            r#"{"data":{"accountNumber":"0071000123456","amount":1235000,"bankAbbreviation""#
        ),
        "{canon}"
    );
    let t = now().timestamp_millis();
    let sig = hex::encode(hmac_sha512(b"casso-key", format!("{t}.{canon}").as_bytes()));
    let hs = headers(&[("x-casso-signature", &format!("t={t},v1={sig}"))]);
    let inbound = Inbound {
        query: "",
        headers: &hs,
        body: body.as_bytes(),
    };
    assert_eq!(
        verify(casso::ID, &inbound, &[secret("casso-key")], now()),
        Ok(())
    );
    assert_eq!(
        verify(
            casso::ID,
            &inbound,
            &[secret("casso-key")],
            now() + Duration::minutes(6)
        ),
        Err(VerifyError::Expired)
    );
    let other_t = headers(&[("x-casso-signature", &format!("t={},v1={sig}", t + 1))]);
    assert_eq!(
        verify(
            casso::ID,
            &Inbound {
                query: "",
                headers: &other_t,
                body: body.as_bytes()
            },
            &[secret("casso-key")],
            now()
        ),
        Err(VerifyError::Mismatch)
    );
    tamper_each_byte(casso::ID, &hs, "", body.as_bytes(), &[secret("casso-key")]);
    let n = parse(casso::ID, &inbound).unwrap();
    assert_eq!(
        (
            n.txn_id.as_str(),
            n.bank_ref.clone(),
            n.payer_name.as_deref()
        ),
        ("3270", None, Some("NGUYEN VAN BO"))
    );
}

#[test]
fn standard_webhooks_round_trip_with_rotation() {
    let old = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let new = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([9u8; 32])
    );
    let body = r#"{"type":"payment.succeeded","data":{"transaction_id":"SW-000123","account":"0071000123456","amount":1235000,"currency":"VND","memo":"QD3CFPSA","booked_at":"2025-09-10T08:30:00+07:00","fee":0}}"#;
    let ts = now().timestamp().to_string();
    let sign = |k: &str| {
        let key = base64::engine::general_purpose::STANDARD
            .decode(k.trim_start_matches("whsec_"))
            .unwrap();
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD
                .encode(hmac_sha256(&key, format!("msg_1.{ts}.{body}").as_bytes()))
        )
    };
    let hs = headers(&[
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", &ts),
        (
            "webhook-signature",
            &format!("{} {}", sign(&old), sign(&new)),
        ),
    ]);
    let inbound = Inbound {
        query: "",
        headers: &hs,
        body: body.as_bytes(),
    };
    let only_new = Secret {
        key: new.as_bytes().to_vec(),
        access_key: None,
        scheme: None,
    };
    assert_eq!(
        verify(
            standard_webhooks::ID,
            &inbound,
            std::slice::from_ref(&only_new),
            now()
        ),
        Ok(())
    );
    assert_eq!(
        verify(
            standard_webhooks::ID,
            &inbound,
            std::slice::from_ref(&only_new),
            now() - Duration::minutes(10)
        ),
        Err(VerifyError::Expired)
    );
    tamper_each_byte(standard_webhooks::ID, &hs, "", body.as_bytes(), &[only_new]);
    let n = parse(standard_webhooks::ID, &inbound).unwrap();
    assert_eq!(
        (n.amount.dong(), n.fee.map(|f| f.dong())),
        (1_235_000, Some(0))
    );
    let usd = body.replace("\"VND\"", "\"USD\"");
    assert!(matches!(
        parse(
            standard_webhooks::ID,
            &Inbound {
                query: "",
                headers: &hs,
                body: usd.as_bytes()
            }
        ),
        Err(ParseError::Currency(_))
    ));
}

#[test]
fn no_secret_is_a_configuration_error_not_a_pass() {
    let inbound = Inbound {
        query: "",
        headers: &[],
        body: b"{}",
    };
    for p in [
        vnpay::ID,
        momo::ID,
        zalopay::ID,
        sepay::ID,
        casso::ID,
        standard_webhooks::ID,
    ] {
        assert_eq!(verify(p, &inbound, &[], now()), Err(VerifyError::NoSecret));
    }
}

const ALL: [ProviderId; 6] = [
    vnpay::ID,
    momo::ID,
    zalopay::ID,
    sepay::ID,
    casso::ID,
    standard_webhooks::ID,
];

proptest! {
    #[test]
    fn parsers_never_panic_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..400), q in "\\PC{0,80}") {
        let hs = headers(&[("authorization", "Apikey k"), ("x-casso-signature", "t=1,v1=00"), ("webhook-id", "a"), ("webhook-timestamp", "1"), ("webhook-signature", "v1,AA==")]);
        for p in ALL {
            let inbound = Inbound { query: &q, headers: &hs, body: &body };
            let _ = verify(p, &inbound, &[secret("k")], now());
            let _ = parse(p, &inbound);
        }
    }

    #[test]
    fn parsers_never_panic_on_json_shapes(v in arb_json()) {
        let body = v.to_string();
        for p in ALL {
            let inbound = Inbound { query: "", headers: &[], body: body.as_bytes() };
            let _ = parse(p, &inbound);
            let wrapped = serde_json::json!({"data": v.clone(), "error": 0, "type": "payment.succeeded"}).to_string();
            let _ = parse(p, &Inbound { query: "", headers: &[], body: wrapped.as_bytes() });
        }
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let keys = prop_oneof![
        Just("amount"),
        Just("id"),
        Just("transId"),
        Just("transferAmount"),
        Just("transferType"),
        Just("data"),
        Just("transactionDate"),
        Just("accountNumber"),
        Just("resultCode"),
        Just("responseTime"),
        Just("zp_trans_id"),
        Just("server_time")
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(keys.clone().prop_map(String::from), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every sender's reply for every kind of answer, as README's table lists them. A booked
/// delivery and its retry both end the sender's flow; refusals before booking never look like
/// a booking; "send again later" is what each sender retries on.
#[test]
fn each_sender_answers_as_it_documents() {
    use Answer::*;
    let all = [
        Booked,
        AlreadyBooked,
        Noted,
        UnknownAccount,
        OtherAccount,
        InvalidAmount,
        BadSignature,
        Malformed,
        RetryLater,
        TooMany,
    ];
    let table: [(ProviderId, [&str; 10]); 6] = [
        (
            vnpay::ID,
            [
                "200 00", "200 02", "200 00", "200 01", "200 01", "200 04", "200 97", "200 99",
                "200 99", "200 99",
            ],
        ),
        (
            momo::ID,
            [
                "204", "204", "204", "404", "422", "422", "401", "400", "503", "429",
            ],
        ),
        (
            zalopay::ID,
            [
                "200 1", "200 2", "200 1", "200 -1", "200 -1", "200 -1", "200 -1", "200 -1",
                "200 0", "200 0",
            ],
        ),
        (
            sepay::ID,
            [
                "200", "200", "200", "404", "422", "422", "401", "400", "503", "429",
            ],
        ),
        (
            casso::ID,
            [
                "200", "200", "200", "404", "422", "422", "401", "400", "503", "429",
            ],
        ),
        (
            standard_webhooks::ID,
            [
                "200", "200", "200", "404", "422", "422", "401", "400", "503", "429",
            ],
        ),
    ];
    for (id, want) in table {
        for (answer, want) in all.iter().zip(want) {
            let r = of(id).answer(*answer);
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            let code = match (body.get("RspCode"), body.get("return_code")) {
                (Some(c), _) => format!(" {}", c.as_str().unwrap_or_default()),
                (_, Some(c)) => format!(" {c}"),
                _ => String::new(),
            };
            assert_eq!(format!("{}{code}", r.status), want, "{id} {answer:?}");
            assert_eq!(
                r.retry_after.is_some(),
                r.status == 503 || r.status == 429,
                "{id} {answer:?}: Retry-After goes with 503 and 429"
            );
        }
    }
    assert_eq!(SENDERS.len(), 6, "every sender is in the table");
}
