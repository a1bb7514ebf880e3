//! Reading a sender's transaction list, for the senders that have one (SePay, Casso): what is
//! asked and how the answer reads. Pure, no I/O; `crate::pull` sends the requests. A pulled
//! transaction becomes a statement line, keyed by the sender's own transaction id (the key its
//! notifications carry), so a transaction pulled and notified is booked once. Each sender's own
//! requests and answers live in its module (`sepay.rs`, `casso.rs`), behind [`Feed`].

use crate::domain::money::Vnd;
use crate::domain::time::local_to_utc;
pub use crate::recon::statement::Pulled;
use crate::recon::statement::{Direction, StatementLine};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::str::FromStr;

/// A source's first run looks this far back.
pub const FIRST_LOOKBACK_DAYS: i64 = 3;
/// A run reads at most this many pages; the rest waits for the next run.
pub const MAX_PAGES_PER_RUN: usize = 20;

/// A sender's transaction-list API.
pub trait Feed: Sync {
    /// The sender's production API.
    fn default_base_url(&self) -> &'static str;
    /// The `Authorization` header for its API key.
    fn authorization(&self, api_key: &str) -> String;
    /// The request for page `page` (0-based within this run), from `from`.
    fn request(
        &self,
        account: &str,
        from: Option<&str>,
        page: usize,
        now: DateTime<Utc>,
    ) -> Request;
    /// Reads one answer: the transactions of `account`, in the sender's order.
    fn read(&self, body: &[u8], account: &str) -> Result<Page, FeedError>;
    /// Where the run after one that read `pulled` (from `cursor`) starts.
    fn next_cursor(&self, cursor: Option<&str>, pulled: &[Pulled]) -> Option<String>;
    /// Where the next page of a run that started at `cursor` and has read `pulled` starts.
    fn page_from(&self, cursor: Option<&str>, pulled: &[Pulled]) -> Option<String>;
    /// Whether an admin may set `cursor`; and what a cursor is, for the error when not.
    fn valid_cursor(&self, cursor: &str) -> bool;
    fn cursor_rule(&self) -> &'static str;
}

/// A transaction the answer listed but that cannot be booked, with why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Skipped {
    pub txn_id: Option<String>,
    pub reason: String,
}

/// One answer, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub pulled: Vec<Pulled>,
    pub skipped: Vec<Skipped>,
    /// Another page follows.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the sender answered with something that is not its documented JSON: {0}")]
    Shape(String),
    #[error("the sender reported an error: {0}")]
    Sender(String),
}

/// Where the next request starts and which page it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Path and query, to append to the source's base URL.
    pub path_and_query: String,
}

/// The first day a source's first run reads.
pub(crate) fn first_day(now: DateTime<Utc>) -> String {
    (crate::domain::time::vietnam_date(now) - chrono::Duration::days(FIRST_LOOKBACK_DAYS))
        .format("%Y-%m-%d")
        .to_string()
}

pub(crate) fn json(body: &[u8]) -> Result<serde_json::Value, FeedError> {
    serde_json::from_slice(body).map_err(|e| FeedError::Shape(e.to_string()))
}

/// Whole đồng from a JSON number or a decimal string (`"2277000.00"`); a fraction is refused.
pub(crate) fn dong(v: Option<&serde_json::Value>) -> Result<i64, String> {
    let d = match v {
        Some(serde_json::Value::Number(n)) => {
            Decimal::from_str(&n.to_string()).map_err(|_| format!("amount {n} is not a number"))?
        }
        Some(serde_json::Value::String(s)) => {
            Decimal::from_str(s.trim()).map_err(|_| format!("amount {s:?} is not a number"))?
        }
        None | Some(serde_json::Value::Null) => Decimal::ZERO,
        Some(other) => return Err(format!("amount {other} is not a number")),
    };
    if !d.fract().is_zero() {
        return Err(format!("amount {d} is not a whole number of đồng"));
    }
    d.to_i64()
        .ok_or_else(|| format!("amount {d} is out of range"))
}

pub(crate) fn id_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Number(n) if n.is_u64() => Some(n.to_string()),
        serde_json::Value::String(s)
            if !s.trim().is_empty()
                && s.trim().len() <= 64
                && s.trim()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Some(s.trim().to_string())
        }
        _ => None,
    }
}

pub(crate) fn text(v: &serde_json::Value, field: &str) -> Option<String> {
    v.get(field)
        .and_then(|x| x.as_str())
        .and_then(crate::domain::text::sender_text)
}

/// Vietnam time, as both senders write it: with seconds, with a `T`, or a bare day.
pub(crate) fn local_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(local_to_utc(t));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| local_to_utc(d.and_time(chrono::NaiveTime::MIN)))
}

/// One listed transaction into a pulled line, or why it cannot be booked.
pub(crate) fn line(
    txn_id: Option<String>,
    signed: Result<i64, String>,
    at: Option<String>,
    memo: Option<String>,
) -> Result<(String, StatementLine), Skipped> {
    let skip = |reason: String| Skipped {
        txn_id: txn_id.clone(),
        reason,
    };
    let id = txn_id
        .clone()
        .ok_or_else(|| skip("no transaction id".into()))?;
    let signed = signed.map_err(skip)?;
    if signed == 0 {
        return Err(skip("an amount of 0 đồng".into()));
    }
    let amount = Vnd::new(signed.unsigned_abs().min(i64::MAX as u64) as i64)
        .map_err(|e| skip(e.to_string()))?;
    let booked_at = at
        .as_deref()
        .and_then(local_time)
        .ok_or_else(|| skip(format!("unreadable time {:?}", at.unwrap_or_default())))?;
    Ok((
        id,
        StatementLine {
            line_no: 0,
            booked_at,
            amount,
            direction: if signed > 0 {
                Direction::Credit
            } else {
                Direction::Debit
            },
            bank_ref: None,
            memo: memo.unwrap_or_default(),
            counterparty: None,
            balance_after: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 9, 10, 3, 0, 0).unwrap()
    }

    #[test]
    fn sepay_documented_answer_reads_as_credits_and_debits() {
        let body = br#"{"status":200,"error":null,"messages":{"success":true},"transactions":[
            {"id":"49682","bank_brand_name":"Vietcombank","account_number":"0071000888888","transaction_date":"2023-05-05 19:59:48",
             "amount_out":"0.00","amount_in":"18067000.00","accumulated":"1200541768.00","transaction_content":"DUONG THUY ANH chuyen tien",
             "reference_number":"677760.050523.080001","code":null,"sub_account":"VCB0011ABC004","bank_account_id":"19"},
            {"id":"49683","account_number":"0071000888888","transaction_date":"2023-05-05 20:10:00",
             "amount_out":"150000.00","amount_in":"0.00","transaction_content":"phi\u0000 thang\u0007 9","reference_number":"X1","code":null},
            {"id":"49684","account_number":"0999999999","transaction_date":"2023-05-05 20:11:00",
             "amount_out":"0.00","amount_in":"5000.00","transaction_content":"other account"}]}"#;
        let page = super::super::sepay::SePay
            .read(body, "0071000888888")
            .unwrap();
        assert!(page.skipped.is_empty());
        assert!(!page.more);
        assert_eq!(page.pulled.len(), 2, "the other account's line is left out");
        let p = &page.pulled[0];
        assert_eq!(p.txn_id, "49682");
        assert_eq!(p.line.amount, Vnd::new(18_067_000).unwrap());
        assert_eq!(p.line.direction, Direction::Credit);
        assert_eq!(p.line.bank_ref.as_deref(), Some("677760.050523.080001"));
        // 19:59:48 in Hanoi is 12:59:48 UTC.
        assert_eq!(
            p.line.booked_at,
            Utc.with_ymd_and_hms(2023, 5, 5, 12, 59, 48).unwrap()
        );
        assert_eq!(page.pulled[1].line.direction, Direction::Debit);
        assert_eq!(page.pulled[1].line.amount, Vnd::new(150_000).unwrap());
        assert_eq!(
            page.pulled[1].line.memo, "phi thang 9",
            "control characters (NUL among them) do not reach the database"
        );
    }

    #[test]
    fn sepay_unbookable_lines_are_skipped_with_a_reason_and_errors_refused() {
        let body = br#"{"status":200,"error":null,"transactions":[
            {"id":"1","transaction_date":"2025-09-01 08:00:00","amount_in":"1000.50","amount_out":"0.00","transaction_content":"x"},
            {"id":"2","transaction_date":"yesterday","amount_in":"1000.00","amount_out":"0.00","transaction_content":"x"},
            {"transaction_date":"2025-09-01 08:00:00","amount_in":"1000.00","amount_out":"0.00"},
            {"id":"4","transaction_date":"2025-09-01 08:00:00","amount_in":"1000.00","amount_out":"5.00"}]}"#;
        let page = super::super::sepay::SePay.read(body, "1").unwrap();
        assert!(page.pulled.is_empty());
        let reasons: Vec<&str> = page.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4);
        assert!(reasons[0].contains("whole number"), "{reasons:?}");
        assert!(reasons[1].contains("unreadable time"), "{reasons:?}");
        assert_eq!(reasons[2], "no transaction id");
        assert!(reasons[3].contains("both"), "{reasons:?}");

        for (body, want) in [
            (&br#"{"status":401,"error":"unauthorized"}"#[..], "Sender"),
            (br#"{"status":200,"error":null}"#, "Shape"),
            (br#"<html>502</html>"#, "Shape"),
        ] {
            let e = super::super::sepay::SePay.read(body, "1").unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{e:?}");
        }
    }

    #[test]
    fn casso_documented_answer_reads_with_pages() {
        let body = r#"{"error":0,"message":"success","data":{"page":1,"pageSize":2,"nextPage":2,"prevPage":0,"totalPages":2,"totalRecords":3,
            "records":[{"id":5789,"tid":"TF2104152395814062","description":"Khanhnm chuyen tien","amount":-193000,"cusum_balance":1070904,
                        "when":"2021-04-15 10:00:00","bankSubAccId":"8007041027107","corresponsiveName":"","accountId":733},
                       {"id":5790,"tid":"","description":"Nguyễn Văn An nộp học phí","amount":350000,"cusum_balance":1420904,
                        "when":"2021-04-15","bankSubAccId":"8007041027107","corresponsiveName":"NGUYEN VAN BO"}]}}"#;
        let page = super::super::casso::Casso
            .read(body.as_bytes(), "8007041027107")
            .unwrap();
        assert!(page.more);
        assert_eq!(page.pulled.len(), 2);
        assert_eq!(page.pulled[0].line.direction, Direction::Debit);
        let credit = &page.pulled[1];
        assert_eq!(credit.txn_id, "5790");
        assert_eq!(credit.line.bank_ref, None, "an empty reference is none");
        assert_eq!(credit.line.counterparty.as_deref(), Some("NGUYEN VAN BO"));
        assert_eq!(credit.line.memo, "Nguyễn Văn An nộp học phí");
        // A bare day is its first instant in Vietnam.
        assert_eq!(
            credit.line.booked_at,
            Utc.with_ymd_and_hms(2021, 4, 14, 17, 0, 0).unwrap()
        );
        let last =
            r#"{"error":0,"message":"success","data":{"page":2,"totalPages":2,"records":[]}}"#;
        assert!(
            !super::super::casso::Casso
                .read(last.as_bytes(), "1")
                .unwrap()
                .more
        );
        let refused = r#"{"error":401,"message":"Invalid API key"}"#;
        assert_eq!(
            super::super::casso::Casso
                .read(refused.as_bytes(), "1")
                .unwrap_err(),
            FeedError::Sender("error 401: Invalid API key".into())
        );
    }

    #[test]
    fn requests_start_from_the_cursor_or_a_few_days_back() {
        let r = super::super::sepay::SePay.request("0071000888888", None, 0, now());
        assert_eq!(
            r.path_and_query,
            "/userapi/transactions/list?account_number=0071000888888&transaction_date_min=2025-09-07&limit=1000"
        );
        let r = super::super::sepay::SePay.request("0071000888888", Some("49683"), 3, now());
        assert!(r.path_and_query.contains("since_id=49683"), "{r:?}");
        let r = super::super::casso::Casso.request("x", Some("2025-09-09"), 1, now());
        assert_eq!(
            r.path_and_query,
            "/v2/transactions?fromDate=2025-09-09&page=2&pageSize=100&sort=ASC"
        );
        assert_eq!(super::super::sepay::SePay.authorization("k"), "Bearer k");
        assert_eq!(super::super::casso::Casso.authorization("k"), "Apikey k");
    }

    fn pulled(id: &str, at: DateTime<Utc>) -> Pulled {
        Pulled {
            txn_id: id.into(),
            order_ref: None,
            line: StatementLine {
                line_no: 1,
                booked_at: at,
                amount: Vnd::new(1).unwrap(),
                direction: Direction::Credit,
                bank_ref: None,
                memo: String::new(),
                counterparty: None,
                balance_after: None,
            },
        }
    }

    #[test]
    fn cursors_only_move_forward() {
        let p = [
            pulled("10", now()),
            pulled("12", now()),
            pulled("11", now()),
        ];
        assert_eq!(
            super::super::sepay::SePay.next_cursor(None, &p).as_deref(),
            Some("13")
        );
        assert_eq!(
            super::super::sepay::SePay
                .next_cursor(Some("20"), &p)
                .as_deref(),
            Some("20")
        );
        assert_eq!(
            super::super::sepay::SePay
                .next_cursor(Some("5"), &[])
                .as_deref(),
            Some("5")
        );
        // 03:00 UTC on 10 September is the 10th in Vietnam.
        assert_eq!(
            super::super::casso::Casso
                .next_cursor(Some("2025-09-01"), &p)
                .as_deref(),
            Some("2025-09-10")
        );
        assert!(super::super::sepay::SePay.valid_cursor("49683"));
        assert!(!super::super::sepay::SePay.valid_cursor("-1"));
        assert!(super::super::casso::Casso.valid_cursor("2025-09-01"));
        assert!(!super::super::casso::Casso.valid_cursor("2025-13-01"));
    }

    proptest! {
        #[test]
        fn any_answer_reads_or_is_refused_without_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = super::super::sepay::SePay.read(&body, "1");
            let _ = super::super::casso::Casso.read(&body, "1");
        }

        #[test]
        fn sepay_amounts_are_whole_dong_or_skipped(whole in 0i64..10_000_000_000, cents in 0u32..100) {
            let body = format!(r#"{{"status":200,"error":null,"transactions":[{{"id":"7","transaction_date":"2025-09-01 08:00:00","amount_in":"{whole}.{cents:02}","amount_out":"0"}}]}}"#);
            let page = super::super::sepay::SePay.read(body.as_bytes(), "1").unwrap();
            if cents == 0 && whole > 0 {
                prop_assert_eq!(page.pulled[0].line.amount.dong(), whole);
            } else {
                prop_assert!(page.pulled.is_empty());
                prop_assert_eq!(page.skipped.len(), 1);
            }
        }
    }
}
