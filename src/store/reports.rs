//! Transparency reports: what each channel costs, who bore the fees, cash against cashless, and
//! the policy breaches auditors look for. Read-only aggregate queries, so a department-wide
//! report stays off the per-school write path.

use super::accounts::{account_row, ACCOUNT_COLS};
use super::{get_bool, Store};
use crate::domain::account::AccountState;
use crate::domain::money::Vnd;
use crate::error::{Error, Result};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

/// Which schools a report covers.
#[derive(Debug, Clone, Copy)]
pub enum ReportScope {
    School(i64),
    Department(i64),
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelRow {
    pub channel: String,
    pub provider: String,
    pub payments: i64,
    #[schema(value_type = i64)]
    pub amount: Vnd,
    #[schema(value_type = i64)]
    pub fees_school: Vnd,
    #[schema(value_type = i64)]
    pub fees_parent: Vnd,
    #[schema(value_type = i64)]
    pub fees_provider: Vnd,
    #[schema(value_type = i64)]
    pub fees_total: Vnd,
    /// Fees as a percentage of the amount, 4 decimals.
    pub effective_rate_percent: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CashShare {
    pub cash_payments: i64,
    #[schema(value_type = i64)]
    pub cash_amount: Vnd,
    pub cashless_payments: i64,
    #[schema(value_type = i64)]
    pub cashless_amount: Vnd,
    /// Cash as a percentage of the amount, 2 decimals.
    pub cash_amount_percent: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParentFee {
    pub school_id: i64,
    pub payment_id: i64,
    pub receipt_no: String,
    pub channel: String,
    pub provider: String,
    #[schema(value_type = i64)]
    pub amount: Vnd,
    #[schema(value_type = i64)]
    pub fee: Vnd,
    pub received_at: String,
    /// The department's policy says parents must not bear fees.
    pub breach: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineFinding {
    pub school_id: i64,
    pub invoice_id: i64,
    pub payment_code: String,
    pub period: String,
    pub line_no: i64,
    pub item_code: String,
    #[schema(value_type = i64)]
    pub amount: Vnd,
    #[schema(value_type = Option<i64>)]
    pub cap_per_period: Option<Vnd>,
    pub cap_override_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SchoolFinding {
    pub school_id: i64,
    pub school_code: String,
    pub accepts_cash: bool,
    pub has_own_account: bool,
    pub cash_payments: i64,
    pub finding: String,
}

/// A receiving account proposed, approved, rejected or retired in the period: where parents were
/// told to send money, and who decided it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountChange {
    pub school_id: i64,
    pub account_id: i64,
    pub bank_bin: String,
    /// In full: auditors compare it with the school's own records.
    pub account_number: String,
    pub account_name: String,
    /// As of now, not as of the end of the period.
    pub state: AccountState,
    pub replaces_account_id: Option<i64>,
    pub proposed_by: String,
    pub proposed_at: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub rejected_by: Option<String>,
    pub rejected_at: Option<String>,
    pub reject_reason: Option<String>,
    pub retired_by: Option<String>,
    pub retired_at: Option<String>,
    pub retire_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeeReport {
    pub school_id: Option<i64>,
    pub department_id: Option<i64>,
    /// First day, inclusive, Asia/Ho_Chi_Minh.
    pub from: String,
    /// Last day, inclusive, Asia/Ho_Chi_Minh.
    pub to: String,
    pub channels: Vec<ChannelRow>,
    pub totals: ChannelRow,
    pub cash_share: CashShare,
    pub parents_must_not_bear_fees: bool,
    pub parent_borne_fees: Vec<ParentFee>,
    pub lines_above_cap: Vec<LineFinding>,
    pub voluntary_billed_as_mandatory: Vec<LineFinding>,
    pub schools_without_free_channel: Vec<SchoolFinding>,
    /// Receiving accounts with a step (proposal, approval, rejection, retirement) in the period.
    pub receiving_account_changes: Vec<AccountChange>,
}

fn v(n: i64) -> Result<Vnd> {
    Vnd::new(n).map_err(|e| Error::Internal(format!("report sum: {e}")))
}

fn rate(part: i64, whole: i64, dp: u32) -> String {
    if whole == 0 {
        return "0".into();
    }
    (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole))
        .round_dp(dp)
        .normalize()
        .to_string()
}

/// The UTC instants that bound the Vietnamese days `from`..=`to`.
fn bounds(from: NaiveDate, to: NaiveDate) -> Result<(String, String)> {
    let start = |d: NaiveDate| super::format_time(crate::domain::time::day_start(d));
    let after = to
        .succ_opt()
        .ok_or_else(|| Error::invalid("invalid_period", "the period ends too late"))?;
    Ok((start(from), start(after)))
}

impl Store {
    pub async fn fee_report(
        &self,
        scope: ReportScope,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<FeeReport> {
        let (start, end) = bounds(from, to)?;
        let (school_id, department_id) = match scope {
            ReportScope::School(id) => (Some(id), None),
            ReportScope::Department(id) => (None, Some(id)),
        };
        // Schools in scope, as a filter every query shares.
        let in_scope = "p.school_id IN (SELECT s.id FROM schools s WHERE ($1 IS NULL OR s.id = $1) AND ($2 IS NULL OR s.department_id = $2))";
        let rows = sqlx::query(&format!(
            "SELECT p.channel, p.provider, COUNT(*) AS n, CAST(SUM(p.amount) AS BIGINT) AS amount,
                CAST(COALESCE(SUM(f.fs), 0) AS BIGINT) AS fs, CAST(COALESCE(SUM(f.fp), 0) AS BIGINT) AS fp,
                CAST(COALESCE(SUM(f.fv), 0) AS BIGINT) AS fv
             FROM payments p LEFT JOIN (
                SELECT payment_id, SUM(CASE WHEN borne_by = 'school' THEN amount ELSE 0 END) AS fs,
                    SUM(CASE WHEN borne_by = 'parent' THEN amount ELSE 0 END) AS fp,
                    SUM(CASE WHEN borne_by = 'provider' THEN amount ELSE 0 END) AS fv
                FROM payment_fees GROUP BY payment_id) f ON f.payment_id = p.id
             WHERE {in_scope} AND p.received_at >= $3 AND p.received_at < $4
             GROUP BY p.channel, p.provider ORDER BY p.channel, p.provider"
        ))
        .bind(school_id)
        .bind(department_id)
        .bind(&start)
        .bind(&end)
        .fetch_all(self.reader())
        .await?;
        let mut channels = Vec::new();
        let (mut tn, mut ta, mut ts, mut tp, mut tv) = (0i64, 0i64, 0i64, 0i64, 0i64);
        let (mut cash_n, mut cash_a) = (0i64, 0i64);
        for r in rows {
            let channel: String = r.try_get("channel")?;
            let (n, a, fs, fp, fv): (i64, i64, i64, i64, i64) = (
                r.try_get("n")?,
                r.try_get("amount")?,
                r.try_get("fs")?,
                r.try_get("fp")?,
                r.try_get("fv")?,
            );
            tn += n;
            ta += a;
            ts += fs;
            tp += fp;
            tv += fv;
            if channel == "cash" {
                cash_n += n;
                cash_a += a;
            }
            channels.push(ChannelRow {
                channel,
                provider: r.try_get("provider")?,
                payments: n,
                amount: v(a)?,
                fees_school: v(fs)?,
                fees_parent: v(fp)?,
                fees_provider: v(fv)?,
                fees_total: v(fs + fp + fv)?,
                effective_rate_percent: rate(fs + fp + fv, a, 4),
            });
        }
        let totals = ChannelRow {
            channel: "all".into(),
            provider: "all".into(),
            payments: tn,
            amount: v(ta)?,
            fees_school: v(ts)?,
            fees_parent: v(tp)?,
            fees_provider: v(tv)?,
            fees_total: v(ts + tp + tv)?,
            effective_rate_percent: rate(ts + tp + tv, ta, 4),
        };
        let cash_share = CashShare {
            cash_payments: cash_n,
            cash_amount: v(cash_a)?,
            cashless_payments: tn - cash_n,
            cashless_amount: v(ta - cash_a)?,
            cash_amount_percent: rate(cash_a, ta, 2),
        };

        let policy = match scope {
            ReportScope::Department(id) => id,
            ReportScope::School(id) => {
                sqlx::query_scalar("SELECT department_id FROM schools WHERE id = $1")
                    .bind(id)
                    .fetch_one(self.reader())
                    .await?
            }
        };
        let prow = sqlx::query("SELECT parents_must_not_bear_fees FROM departments WHERE id = $1")
            .bind(policy)
            .fetch_one(self.reader())
            .await?;
        let parents_must_not_bear_fees = get_bool(&prow, "parents_must_not_bear_fees")?;

        let mut parent_borne_fees = Vec::new();
        for r in sqlx::query(&format!(
            "SELECT p.school_id, p.id, p.receipt_no, p.channel, p.provider, p.amount, p.received_at, CAST(SUM(f.amount) AS BIGINT) AS fee
             FROM payments p JOIN payment_fees f ON f.payment_id = p.id
             WHERE {in_scope} AND p.received_at >= $3 AND p.received_at < $4 AND f.borne_by = 'parent' AND f.amount > 0
             GROUP BY p.school_id, p.id, p.receipt_no, p.channel, p.provider, p.amount, p.received_at ORDER BY p.id"
        ))
        .bind(school_id)
        .bind(department_id)
        .bind(&start)
        .bind(&end)
        .fetch_all(self.reader())
        .await?
        {
            parent_borne_fees.push(ParentFee {
                school_id: r.try_get("school_id")?,
                payment_id: r.try_get("id")?,
                receipt_no: r.try_get("receipt_no")?,
                channel: r.try_get("channel")?,
                provider: r.try_get("provider")?,
                amount: v(r.try_get("amount")?)?,
                fee: v(r.try_get("fee")?)?,
                received_at: r.try_get("received_at")?,
                breach: parents_must_not_bear_fees,
            });
        }

        let (first_period, last_period) = (
            from.format("%Y-%m").to_string(),
            to.format("%Y-%m").to_string(),
        );
        let line_query = |condition: &str| {
            format!(
                "SELECT i.school_id, i.id AS invoice_id, i.payment_code, i.period, l.line_no, f.code, l.amount, l.cap_per_period, l.cap_override_reason
                 FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id JOIN fee_items f ON f.id = l.fee_item_id
                 WHERE {} AND i.voided_at IS NULL AND i.period >= $3 AND i.period <= $4 AND {condition} ORDER BY i.id, l.line_no",
                in_scope.replace("p.school_id", "i.school_id")
            )
        };
        let mut findings = Vec::new();
        for condition in [
            "l.above_cap = $5",
            "l.kind = 'charge' AND l.billed_as_mandatory = $5 AND f.mandatory = $6",
        ] {
            let rows = sqlx::query(&line_query(condition))
                .bind(school_id)
                .bind(department_id)
                .bind(&first_period)
                .bind(&last_period)
                .bind(true)
                .bind(false)
                .fetch_all(self.reader())
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(LineFinding {
                    school_id: r.try_get("school_id")?,
                    invoice_id: r.try_get("invoice_id")?,
                    payment_code: r.try_get("payment_code")?,
                    period: r.try_get("period")?,
                    line_no: r.try_get("line_no")?,
                    item_code: r.try_get("code")?,
                    amount: v(r.try_get("amount")?)?,
                    cap_per_period: r
                        .try_get::<Option<i64>, _>("cap_per_period")?
                        .map(v)
                        .transpose()?,
                    cap_override_reason: r.try_get("cap_override_reason")?,
                });
            }
            findings.push(out);
        }
        let voluntary_billed_as_mandatory = findings.pop().unwrap_or_default();
        let lines_above_cap = findings.pop().unwrap_or_default();

        // A school breaches the cash rule when it refuses cash, and offers no free channel at all
        // when, in addition, parents cannot transfer to its own account (one approved, the only
        // kind they are offered); either way with no cash taken over the period.
        let mut schools_without_free_channel = Vec::new();
        for r in sqlx::query(&format!(
            "SELECT s.id, s.code, s.accepts_cash,
                (SELECT COUNT(*) FROM school_accounts a WHERE a.school_id = s.id AND a.state = 'approved') AS accounts,
                (SELECT COUNT(*) FROM payments p WHERE p.school_id = s.id AND p.channel = 'cash' AND p.received_at >= $3 AND p.received_at < $4) AS cash
             FROM schools s WHERE {} ORDER BY s.id",
            in_scope.replace("p.school_id", "s.id")
        ))
        .bind(school_id)
        .bind(department_id)
        .bind(&start)
        .bind(&end)
        .fetch_all(self.reader())
        .await?
        {
            let accepts_cash = get_bool(&r, "accepts_cash")?;
            let accounts: i64 = r.try_get("accounts")?;
            let cash: i64 = r.try_get("cash")?;
            let finding = match (accepts_cash, accounts > 0, cash > 0) {
                (false, false, false) => Some("refuses cash and offers no free channel"),
                (false, true, false) => Some("refuses cash"),
                _ => None,
            };
            if let Some(f) = finding {
                schools_without_free_channel.push(SchoolFinding {
                    school_id: r.try_get("id")?,
                    school_code: r.try_get("code")?,
                    accepts_cash,
                    has_own_account: accounts > 0,
                    cash_payments: cash,
                    finding: f.into(),
                });
            }
        }

        let mut receiving_account_changes = Vec::new();
        for r in sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM school_accounts a WHERE {}
               AND ((a.created_at >= $3 AND a.created_at < $4) OR (a.approved_at >= $3 AND a.approved_at < $4)
                 OR (a.rejected_at >= $3 AND a.rejected_at < $4) OR (a.retired_at >= $3 AND a.retired_at < $4))
             ORDER BY a.school_id, a.id",
            in_scope.replace("p.school_id", "a.school_id")
        ))
        .bind(school_id)
        .bind(department_id)
        .bind(&start)
        .bind(&end)
        .fetch_all(self.reader())
        .await?
        {
            let a = account_row(&r)?;
            receiving_account_changes.push(AccountChange {
                school_id: a.school_id,
                account_id: a.id,
                bank_bin: a.bank_bin,
                account_number: a.account_number,
                account_name: a.account_name,
                state: a.state,
                replaces_account_id: a.replaces_account_id,
                proposed_by: a.proposed_by,
                proposed_at: a.created_at,
                approved_by: a.approved_by,
                approved_at: a.approved_at,
                rejected_by: a.rejected_by,
                rejected_at: a.rejected_at,
                reject_reason: a.reject_reason,
                retired_by: a.retired_by,
                retired_at: a.retired_at,
                retire_reason: a.retire_reason,
            });
        }

        Ok(FeeReport {
            school_id,
            department_id,
            from: from.to_string(),
            to: to.to_string(),
            channels,
            totals,
            cash_share,
            parents_must_not_bear_fees,
            parent_borne_fees,
            lines_above_cap,
            voluntary_billed_as_mandatory,
            schools_without_free_channel,
            receiving_account_changes,
        })
    }
}
