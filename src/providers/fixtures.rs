//! The senders' own signed samples (fixtures/providers, made with the `vnpay` and
//! `standardwebhooks` packages, Casso's published sample, and the documented HMACs): each must
//! verify with its secret and normalise to the right payment, and a one-byte change in the body,
//! the signature or the signed timestamp must be refused.

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

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/providers/",
            $path
        ))
    };
}

fn secrets() -> serde_json::Value {
    serde_json::from_str(fixture!("secrets.json")).unwrap()
}

fn key(v: &serde_json::Value) -> Secret {
    Secret {
        key: v.as_str().unwrap().as_bytes().to_vec(),
        access_key: None,
        scheme: None,
    }
}

/// A `{"headers": {…}, "body": "…"}` fixture.
fn delivery(text: &str) -> (Vec<(String, String)>, String) {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let headers = v["headers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    (headers, v["body"].as_str().unwrap().to_string())
}

fn flip(s: &str, at: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    // Swap between two ASCII digits or letters so the text stays valid UTF-8.
    b[at] = match b[at] {
        b'0' => b'1',
        b'a'..=b'y' | b'A'..=b'Y' | b'1'..=b'8' => b[at] + 1,
        _ => b'0',
    };
    String::from_utf8(b).unwrap_or_else(|_| s.to_string())
}

/// Verifies the original, then refuses a change in the body, in each header value that carries a
/// signature or timestamp.
fn check(
    provider: ProviderId,
    headers: &[(String, String)],
    query: &str,
    body: &str,
    secrets: &[Secret],
    now: DateTime<Utc>,
    signed_headers: &[&str],
) {
    let inbound = Inbound {
        query,
        headers,
        body: body.as_bytes(),
    };
    assert_eq!(
        verify(provider, &inbound, secrets, now),
        Ok(()),
        "{provider:?} original"
    );
    if !body.is_empty() && provider != sepay::ID {
        let pos = body
            .find("1235000")
            .or_else(|| body.find("599000"))
            .unwrap_or(body.len() / 2);
        let tampered = flip(body, pos);
        assert!(
            verify(
                provider,
                &Inbound {
                    query,
                    headers,
                    body: tampered.as_bytes()
                },
                secrets,
                now
            )
            .is_err(),
            "{provider:?} body"
        );
    }
    if !query.is_empty() {
        let pos = query.find("vnp_Amount=").unwrap() + "vnp_Amount=".len();
        let tampered = flip(query, pos);
        assert!(
            verify(
                provider,
                &Inbound {
                    query: &tampered,
                    headers,
                    body: body.as_bytes()
                },
                secrets,
                now
            )
            .is_err(),
            "{provider:?} query"
        );
        let pos = query.find("vnp_SecureHash=").unwrap() + "vnp_SecureHash=".len() + 3;
        let tampered = flip(query, pos);
        assert!(
            verify(
                provider,
                &Inbound {
                    query: &tampered,
                    headers,
                    body: body.as_bytes()
                },
                secrets,
                now
            )
            .is_err(),
            "{provider:?} hash"
        );
    }
    for name in signed_headers {
        let (i, (_, value)) = headers
            .iter()
            .enumerate()
            .find(|(_, (n, _))| n == name)
            .unwrap();
        let last = value.len() - 2;
        let mut hs = headers.to_vec();
        hs[i].1 = flip(value, last);
        assert!(
            verify(
                provider,
                &Inbound {
                    query,
                    headers: &hs,
                    body: body.as_bytes()
                },
                secrets,
                now
            )
            .is_err(),
            "{provider:?} header {name}"
        );
    }
}

#[test]
fn vnpay_samples_signed_by_the_vnpay_package() {
    let s = secrets();
    let secret = [key(&s["vnpay"]["hash_secret"])];
    let now = Utc::now();
    for (name, q) in [
        ("success", fixture!("vnpay/ipn-success.query")),
        ("cancelled", fixture!("vnpay/ipn-cancelled.query")),
        ("unicode", fixture!("vnpay/ipn-unicode.query")),
    ] {
        let q = q.trim();
        check(vnpay::ID, &[], q, "", &secret, now, &[]);
        let n = parse(
            vnpay::ID,
            &Inbound {
                query: q,
                headers: &[],
                body: b"",
            },
        )
        .unwrap();
        assert_eq!(n.account.as_deref(), Some("FEERTEST"), "{name}");
        match name {
            "cancelled" => assert!(matches!(n.outcome, Outcome::Failed { .. })),
            _ => assert_eq!(n.outcome, Outcome::Paid, "{name}"),
        }
    }
    let n = parse(
        vnpay::ID,
        &Inbound {
            query: fixture!("vnpay/ipn-success.query").trim(),
            headers: &[],
            body: b"",
        },
    )
    .unwrap();
    assert_eq!(
        (n.amount.dong(), n.order_ref.as_deref()),
        (1_235_000, Some("QD3CFPSA"))
    );
}

#[test]
fn standard_webhooks_samples_signed_by_the_standardwebhooks_package() {
    let s = secrets();
    let current = [key(&s["standard_webhooks"]["secret"])];
    for text in [
        fixture!("standard-webhooks/payment-succeeded.json"),
        fixture!("standard-webhooks/payment-refunded.json"),
    ] {
        let (hs, body) = delivery(text);
        let ts: i64 = hs
            .iter()
            .find(|(n, _)| n == "webhook-timestamp")
            .unwrap()
            .1
            .parse()
            .unwrap();
        let now = DateTime::from_timestamp(ts + 30, 0).unwrap();
        check(
            standard_webhooks::ID,
            &hs,
            "",
            &body,
            &current,
            now,
            &["webhook-signature", "webhook-timestamp", "webhook-id"],
        );
        assert_eq!(
            verify(
                standard_webhooks::ID,
                &Inbound {
                    query: "",
                    headers: &hs,
                    body: body.as_bytes()
                },
                &current,
                now + chrono::Duration::minutes(10)
            ),
            Err(VerifyError::Expired)
        );
    }
    let (hs, body) = delivery(fixture!("standard-webhooks/payment-succeeded-rotated.json"));
    let ts: i64 = hs
        .iter()
        .find(|(n, _)| n == "webhook-timestamp")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let now = DateTime::from_timestamp(ts, 0).unwrap();
    let new_only = [key(&s["standard_webhooks"]["rotation_new_secret"])];
    assert_eq!(
        verify(
            standard_webhooks::ID,
            &Inbound {
                query: "",
                headers: &hs,
                body: body.as_bytes()
            },
            &new_only,
            now
        ),
        Ok(())
    );
    let n = parse(
        standard_webhooks::ID,
        &Inbound {
            query: "",
            headers: &hs,
            body: body.as_bytes(),
        },
    )
    .unwrap();
    assert_eq!((n.txn_id.as_str(), n.amount.dong()), ("SW-000127", 467_500));
}

#[test]
fn momo_zalopay_sepay_samples() {
    let s = secrets();
    let momo = [Secret {
        key: s["momo"]["secret_key"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec(),
        access_key: Some(s["momo"]["access_key"].as_str().unwrap().into()),
        scheme: None,
    }];
    let now = Utc::now();
    check(
        momo::ID,
        &[],
        "",
        fixture!("momo/ipn-success.json"),
        &momo,
        now,
        &[],
    );
    check(
        momo::ID,
        &[],
        "",
        fixture!("momo/ipn-failed.json"),
        &momo,
        now,
        &[],
    );
    let n = parse(
        momo::ID,
        &Inbound {
            query: "",
            headers: &[],
            body: fixture!("momo/ipn-success.json").as_bytes(),
        },
    )
    .unwrap();
    assert_eq!((n.amount.dong(), n.outcome), (1_235_000, Outcome::Paid));
    assert!(matches!(
        parse(
            momo::ID,
            &Inbound {
                query: "",
                headers: &[],
                body: fixture!("momo/ipn-failed.json").as_bytes()
            }
        )
        .unwrap()
        .outcome,
        Outcome::Failed { .. }
    ));

    let zalo = [key(&s["zalopay"]["key2"])];
    check(
        zalopay::ID,
        &[],
        "",
        fixture!("zalopay/callback-success.json"),
        &zalo,
        now,
        &[],
    );
    let n = parse(
        zalopay::ID,
        &Inbound {
            query: "",
            headers: &[],
            body: fixture!("zalopay/callback-success.json").as_bytes(),
        },
    )
    .unwrap();
    assert_eq!(n.account.as_deref(), Some("99999"));

    let sepay = [key(&s["sepay"]["api_key"])];
    for text in [
        fixture!("sepay/transfer-in.json"),
        fixture!("sepay/transfer-in-memo-only.json"),
        fixture!("sepay/transfer-out.json"),
    ] {
        let (hs, body) = delivery(text);
        check(sepay::ID, &hs, "", &body, &sepay, now, &["authorization"]);
    }
    let (hs, body) = delivery(fixture!("sepay/transfer-out.json"));
    assert_eq!(
        parse(
            sepay::ID,
            &Inbound {
                query: "",
                headers: &hs,
                body: body.as_bytes()
            }
        )
        .unwrap()
        .outcome,
        Outcome::Outgoing
    );
}

#[test]
fn casso_samples_including_cassos_own_published_vector() {
    let s = secrets();
    let (hs, body) = delivery(fixture!("casso/public-sample-vector.json"));
    let public = [key(&s["casso"]["public_sample_checksum_key"])];
    let now = DateTime::from_timestamp_millis(1_727_948_258_788).unwrap();
    check(
        casso::ID,
        &hs,
        "",
        &body,
        &public,
        now,
        &["x-casso-signature"],
    );
    let ours = [key(&s["casso"]["checksum_key"])];
    for text in [
        fixture!("casso/transfer-in.json"),
        fixture!("casso/transfer-in-empty-reference.json"),
    ] {
        let (hs, body) = delivery(text);
        let t: i64 = hs[0]
            .1
            .split(',')
            .next()
            .unwrap()
            .trim_start_matches("t=")
            .parse()
            .unwrap();
        let now = DateTime::from_timestamp_millis(t + 1000).unwrap();
        check(
            casso::ID,
            &hs,
            "",
            &body,
            &ours,
            now,
            &["x-casso-signature"],
        );
        let n = parse(
            casso::ID,
            &Inbound {
                query: "",
                headers: &hs,
                body: body.as_bytes(),
            },
        )
        .unwrap();
        assert_eq!(n.outcome, Outcome::Paid);
    }
}
