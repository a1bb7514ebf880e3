//! Fee schedules (a provider's published terms and each school's agreements), the cash and
//! fee-policy settings, and what a parent may pay with.

use super::ledger::{stored_terms, vietnam};
use super::{get_bool, now, Store};
use crate::audit::{self, Chain, Entry};
use crate::coverage::{Unit, FEE_SCHEDULES};
use crate::domain::account::AccountState;
use crate::domain::fee::{quote, Bearer, Channel, PartialTerms};
use crate::domain::money::Vnd;
use crate::domain::vietqr;
use crate::error::{Error, Result};
use crate::store::invoices::Invoice;
use crate::store::org::School;
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

pub use super::accounts::SchoolAccount;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeeSchedule {
    pub id: i64,
    pub provider: String,
    pub channel: Channel,
    /// Absent for the provider's published terms; set for a school's own agreement.
    pub school_id: Option<i64>,
    pub effective_from: String,
    /// Exclusive; absent while in force.
    pub effective_to: Option<String>,
    /// Decimal string, e.g. "1.1" for 1.1 %.
    pub percent: Option<String>,
    #[schema(value_type = Option<i64>)]
    pub fixed: Option<Vnd>,
    #[schema(value_type = Option<i64>)]
    pub min: Option<Vnd>,
    #[schema(value_type = Option<i64>)]
    pub max: Option<Vnd>,
    pub bearer: Option<Bearer>,
    pub note: Option<String>,
    pub created_at: String,
}

pub struct NewSchedule {
    pub provider: String,
    pub channel: Channel,
    pub school_id: Option<i64>,
    pub effective_from: String,
    pub effective_to: Option<String>,
    pub terms: PartialTerms,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VietQr {
    /// The EMVCo payload to render as a QR code; banking apps scan it.
    pub payload: String,
    pub bank_bin: String,
    pub account_number: String,
    pub account_name: String,
    #[schema(value_type = i64)]
    pub amount: Vnd,
    /// The transfer memo the QR fills in: the invoice's payment code.
    pub purpose: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentOption {
    pub channel: Channel,
    /// `cash`, `bank` (a plain transfer to the school's own account) or a provider.
    pub provider: String,
    pub description: String,
    /// What the parent would pay in fees on top of the amount, whole đồng.
    #[schema(value_type = i64)]
    pub parent_fee: Vnd,
    pub parent_fee_formatted: String,
    /// How the fee is computed and who bears it.
    pub fee_note: String,
    pub free_for_parent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vietqr: Option<VietQr>,
}

fn schedule(r: &AnyRow) -> Result<FeeSchedule> {
    let t = stored_terms(r)?;
    Ok(FeeSchedule {
        id: r.try_get("id")?,
        provider: r.try_get("provider")?,
        channel: Channel::from_db(&r.try_get::<String, _>("channel")?)
            .ok_or_else(|| Error::Internal("stored channel".into()))?,
        school_id: r.try_get("school_id")?,
        effective_from: r.try_get("effective_from")?,
        effective_to: r.try_get("effective_to")?,
        percent: t.percent.map(|p| p.normalize().to_string()),
        fixed: t.fixed,
        min: t.min,
        max: t.max,
        bearer: t.bearer,
        note: r.try_get("note")?,
        created_at: r.try_get("created_at")?,
    })
}

const SCHEDULE_COLS: &str = "id, provider, channel, school_id, effective_from, effective_to, percent, fixed_fee, min_fee, max_fee, bearer, note, created_at";

impl Store {
    pub async fn create_fee_schedule(&self, actor: &str, s: NewSchedule) -> Result<FeeSchedule> {
        let mut tx = self.begin().await?;
        if let Some(id) = s.school_id {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM schools WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            found.ok_or_else(|| {
                Error::invalid("unknown_school", format!("there is no school {id}"))
            })?;
        }
        // Two schedules for one provider, channel and school may not be in force on the same day.
        let far = "9999-12-31";
        let overlap: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM fee_schedules WHERE provider = $1 AND channel = $2
               AND ((school_id IS NULL AND $3 IS NULL) OR school_id = $3)
               AND effective_from < $4 AND COALESCE(effective_to, $5) > $6",
        )
        .bind(&s.provider)
        .bind(s.channel.as_str())
        .bind(s.school_id)
        .bind(s.effective_to.as_deref().unwrap_or(far))
        .bind(far)
        .bind(&s.effective_from)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(other) = overlap {
            return Err(Error::conflict(
                "schedule_overlap",
                format!("schedule {other} is in force for part of that period; end it first"),
            ));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO fee_schedules (provider, channel, school_id, effective_from, effective_to, percent, fixed_fee, min_fee, max_fee, bearer,
                note, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {SCHEDULE_COLS}"
        ))
        .bind(&s.provider)
        .bind(s.channel.as_str())
        .bind(s.school_id)
        .bind(&s.effective_from)
        .bind(&s.effective_to)
        .bind(s.terms.percent.map(|p| p.normalize().to_string()))
        .bind(s.terms.fixed.map(Vnd::dong))
        .bind(s.terms.min.map(Vnd::dong))
        .bind(s.terms.max.map(Vnd::dong))
        .bind(s.terms.bearer.map(|b| b.as_str()))
        .bind(&s.note)
        .bind(now())
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let sch = schedule(&row)?;
        let chain = s.school_id.map(Chain::School).unwrap_or(Chain::System);
        audit::record_covering(
            &mut tx,
            &chain,
            Entry {
                actor,
                action: "fee_schedule.create",
                entity: "fee_schedule",
                entity_id: Some(sch.id),
                details: json!(sch),
            },
            &[Unit::new(FEE_SCHEDULES, sch.id)],
        )
        .await?;
        tx.commit().await?;
        Ok(sch)
    }

    /// Published schedules and, with `school_id`, that school's agreements.
    pub async fn fee_schedules(
        &self,
        school_id: Option<i64>,
        all_schools: bool,
    ) -> Result<Vec<FeeSchedule>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLS} FROM fee_schedules WHERE school_id IS NULL OR school_id = $1 OR $2 = 1 ORDER BY provider, channel, school_id, effective_from"
        ))
        .bind(school_id)
        .bind(i64::from(all_schools))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(schedule).collect()
    }

    pub async fn set_accepts_cash(&self, actor: &str, school_id: i64, accepts: bool) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE schools SET accepts_cash = $1 WHERE id = $2")
            .bind(accepts)
            .bind(school_id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            &Chain::School(school_id),
            Entry {
                actor,
                action: "school.accepts_cash",
                entity: "school",
                entity_id: Some(school_id),
                details: json!({"accepts_cash": accepts}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_parent_fee_policy(
        &self,
        actor: &str,
        department_id: i64,
        parents_must_not_bear_fees: bool,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE departments SET parents_must_not_bear_fees = $1 WHERE id = $2")
            .bind(parents_must_not_bear_fees)
            .bind(department_id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            &Chain::System,
            Entry {
                actor,
                action: "department.fee_policy",
                entity: "department",
                entity_id: Some(department_id),
                details: json!({"parents_must_not_bear_fees": parents_must_not_bear_fees}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn accepts_cash(&self, school_id: i64) -> Result<bool> {
        let row = sqlx::query("SELECT accepts_cash FROM schools WHERE id = $1")
            .bind(school_id)
            .fetch_one(self.reader())
            .await?;
        get_bool(&row, "accepts_cash")
    }

    /// Every way the school accepts to pay `invoice`, with the fee the parent would bear under
    /// the terms in force today: free options first, then by fee, then by name (no provider is
    /// favoured).
    pub async fn payment_options(
        &self,
        school: &School,
        invoice: &Invoice,
    ) -> Result<Vec<PaymentOption>> {
        let amount = if invoice.outstanding.dong() > 0 {
            invoice.outstanding
        } else {
            Vnd::ZERO
        };
        let mut out = Vec::new();
        if self.accepts_cash(school.id).await? {
            out.push(PaymentOption {
                channel: Channel::Cash,
                provider: "cash".into(),
                description: "Tiền mặt tại văn phòng trường (cash at the school office)".into(),
                parent_fee: Vnd::ZERO,
                parent_fee_formatted: Vnd::ZERO.formatted(),
                fee_note: "no fee".into(),
                free_for_parent: true,
                vietqr: None,
            });
        }
        // Only an account a second person approved is ever shown to a parent.
        for a in self
            .school_accounts_in(school.id, Some(AccountState::Approved))
            .await?
        {
            let payload = vietqr::transfer_payload(
                &a.bank_bin,
                &a.account_number,
                (amount.dong() > 0).then_some(amount.dong()),
                &invoice.payment_code,
            )
            .map_err(|e| Error::Internal(format!("VietQR for account {}: {e}", a.id)))?;
            out.push(PaymentOption {
                channel: Channel::BankTransfer,
                provider: "bank".into(),
                description: format!("Chuyển khoản vào tài khoản của trường {} (plain transfer to the school's account); nội dung: {}", a.account_number, invoice.payment_code),
                parent_fee: Vnd::ZERO,
                parent_fee_formatted: Vnd::ZERO.formatted(),
                fee_note: "no fee from the school or an intermediary".into(),
                free_for_parent: true,
                vietqr: Some(VietQr {
                    payload,
                    bank_bin: a.bank_bin,
                    account_number: a.account_number,
                    account_name: a.account_name,
                    amount,
                    purpose: invoice.payment_code.clone(),
                }),
            });
        }
        let today = chrono::Utc::now()
            .with_timezone(&vietnam())
            .format("%Y-%m-%d")
            .to_string();
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLS} FROM fee_schedules WHERE (school_id IS NULL OR school_id = $1)
               AND effective_from <= $2 AND (effective_to IS NULL OR effective_to > $2) ORDER BY provider, channel"
        ))
        .bind(school.id)
        .bind(&today)
        .fetch_all(self.reader())
        .await?;
        let mut providers = Vec::new();
        for r in rows.iter().filter(|r| {
            r.try_get::<Option<i64>, _>("school_id")
                .ok()
                .flatten()
                .is_some()
        }) {
            // A school accepts a provider when it has an agreement with it in force.
            let provider: String = r.try_get("provider")?;
            let channel: String = r.try_get("channel")?;
            let published = rows
                .iter()
                .find(|p| {
                    p.try_get::<Option<i64>, _>("school_id")
                        .ok()
                        .flatten()
                        .is_none()
                        && p.try_get::<String, _>("provider").ok().as_deref()
                            == Some(provider.as_str())
                        && p.try_get::<String, _>("channel").ok().as_deref()
                            == Some(channel.as_str())
                })
                .map(stored_terms)
                .transpose()?;
            let Some(terms) = stored_terms(r)?.over(published.as_ref()) else {
                continue;
            };
            let q = quote(amount, &terms).map_err(|e| Error::Internal(e.to_string()))?;
            let parent_fee = if terms.bearer == Bearer::Parent {
                q.amount
            } else {
                Vnd::ZERO
            };
            let channel = Channel::from_db(&channel)
                .ok_or_else(|| Error::Internal("stored channel".into()))?;
            providers.push(PaymentOption {
                channel,
                provider: provider.clone(),
                description: format!("{provider} ({})", channel.as_str()),
                parent_fee,
                parent_fee_formatted: parent_fee.formatted(),
                fee_note: format!(
                    "{} = {}, borne by the {}",
                    q.basis,
                    q.amount,
                    terms.bearer.as_str()
                ),
                free_for_parent: parent_fee == Vnd::ZERO,
                vietqr: None,
            });
        }
        providers.sort_by(|a, b| {
            a.parent_fee
                .cmp(&b.parent_fee)
                .then_with(|| a.provider.cmp(&b.provider))
        });
        out.extend(providers);
        Ok(out)
    }
}
