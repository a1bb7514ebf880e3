//! The fee-item catalog, per department (applies to all its schools) and per school.

use super::{get_bool, now, Store};
use crate::audit::{self, Chain, Entry};
use crate::domain::catalog::{Cadence, Category, FeeItem};
use crate::domain::money::Vnd;
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeeItemRecord {
    pub id: i64,
    /// Set for a department-wide item.
    pub department_id: Option<i64>,
    /// Set for a school's own item.
    pub school_id: Option<i64>,
    pub code: String,
    pub name: String,
    pub category: Category,
    /// Legal basis in words, e.g. "NQ 18/2025/NQ-HĐND, Điều 2, khoản 15".
    pub legal_basis: Option<String>,
    pub mandatory: bool,
    pub cadence: Cadence,
    /// Maximum amount per billing period, in đồng.
    #[schema(value_type = Option<i64>)]
    pub cap_per_period: Option<Vnd>,
    pub created_at: String,
}

/// A new catalog item, already validated.
pub struct NewFeeItem {
    pub code: String,
    pub name: String,
    pub category: Category,
    pub legal_basis: Option<String>,
    pub mandatory: bool,
    pub cadence: Cadence,
    pub cap_per_period: Option<Vnd>,
}

#[derive(Debug, Clone, Copy)]
pub enum Owner {
    Department(i64),
    School { id: i64, department_id: i64 },
}

const COLS: &str = "id, department_id, school_id, code, name, category, legal_basis, mandatory, cadence, cap_per_period, created_at";

fn record(r: &AnyRow) -> Result<FeeItemRecord> {
    let bad = |what: &str| Error::Internal(format!("unknown {what} in fee_items"));
    Ok(FeeItemRecord {
        id: r.try_get("id")?,
        department_id: r.try_get("department_id")?,
        school_id: r.try_get("school_id")?,
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        category: Category::from_db(&r.try_get::<String, _>("category")?)
            .ok_or_else(|| bad("category"))?,
        legal_basis: r.try_get("legal_basis")?,
        mandatory: get_bool(r, "mandatory")?,
        cadence: Cadence::from_db(&r.try_get::<String, _>("cadence")?)
            .ok_or_else(|| bad("cadence"))?,
        cap_per_period: r
            .try_get::<Option<i64>, _>("cap_per_period")?
            .map(Vnd::new)
            .transpose()
            .map_err(|_| bad("cap"))?,
        created_at: r.try_get("created_at")?,
    })
}

impl FeeItemRecord {
    pub fn rule(&self) -> FeeItem {
        FeeItem {
            id: self.id,
            code: self.code.clone(),
            name: self.name.clone(),
            category: self.category,
            mandatory: self.mandatory,
            cadence: self.cadence,
            cap_per_period: self.cap_per_period,
        }
    }
}

impl Store {
    pub async fn create_fee_item(
        &self,
        actor: &str,
        owner: Owner,
        item: NewFeeItem,
    ) -> Result<FeeItemRecord> {
        let mut tx = self.begin().await?;
        // A school item may not shadow a department item of the same code, nor the reverse:
        // an invoice line names its item by code and must mean one thing.
        let (dept_id, school_id, dept_of_school) = match owner {
            Owner::Department(d) => (Some(d), None, None),
            Owner::School { id, department_id } => (None, Some(id), Some(department_id)),
        };
        let clash: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM fee_items WHERE code = $1 AND (
                 department_id = $2 OR school_id = $3 OR department_id = $4
                 OR school_id IN (SELECT id FROM schools WHERE department_id = $2))",
        )
        .bind(&item.code)
        .bind(dept_id)
        .bind(school_id)
        .bind(dept_of_school)
        .fetch_optional(&mut *tx)
        .await?;
        if clash.is_some() {
            return Err(Error::conflict(
                "fee_item_code_taken",
                format!(
                    "item code {} is already in this catalog (department or school)",
                    item.code
                ),
            ));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO fee_items (department_id, school_id, code, name, category, legal_basis, mandatory, cadence, cap_per_period, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLS}"
        ))
        .bind(dept_id)
        .bind(school_id)
        .bind(&item.code)
        .bind(&item.name)
        .bind(item.category.as_str())
        .bind(&item.legal_basis)
        .bind(item.mandatory)
        .bind(item.cadence.as_str())
        .bind(item.cap_per_period.map(Vnd::dong))
        .bind(now())
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let rec = record(&row)?;
        let chain = school_id.map(Chain::School).unwrap_or(Chain::System);
        audit::record(
            &mut tx,
            &chain,
            Entry {
                actor,
                action: "fee_item.create",
                entity: "fee_item",
                entity_id: Some(rec.id),
                details: json!({"code": rec.code, "cap_per_period": rec.cap_per_period, "mandatory": rec.mandatory, "cadence": rec.cadence}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(rec)
    }

    pub async fn department_fee_items(&self, department_id: i64) -> Result<Vec<FeeItemRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM fee_items WHERE department_id = $1 ORDER BY code"
        ))
        .bind(department_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(record).collect()
    }

    /// What a school may bill: its department's items and its own.
    pub async fn school_fee_items(
        &self,
        school_id: i64,
        department_id: i64,
    ) -> Result<Vec<FeeItemRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM fee_items WHERE school_id = $1 OR department_id = $2 ORDER BY code"
        ))
        .bind(school_id)
        .bind(department_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(record).collect()
    }

    pub async fn school_catalog(
        &self,
        school_id: i64,
        department_id: i64,
    ) -> Result<HashMap<String, FeeItem>> {
        Ok(self
            .school_fee_items(school_id, department_id)
            .await?
            .into_iter()
            .map(|r| (r.code.clone(), r.rule()))
            .collect())
    }
}
