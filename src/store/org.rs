//! Departments (education offices) and their schools.

use super::{now, paginate, Page, Store};
use crate::audit::{self, Chain, Entry};
use crate::domain::access::{Caller, SchoolRef, Scope};
use crate::domain::code::SchoolPrefix;
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Department {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct School {
    pub id: i64,
    pub department_id: i64,
    pub code: String,
    pub name: String,
    /// The prefix of every payment code of this school's invoices.
    pub payment_prefix: String,
    pub created_at: String,
}

impl School {
    pub fn as_ref(&self) -> SchoolRef {
        SchoolRef {
            id: self.id,
            department_id: self.department_id,
        }
    }
}

fn department(r: &AnyRow) -> Result<Department> {
    Ok(Department {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
    })
}

fn school(r: &AnyRow) -> Result<School> {
    Ok(School {
        id: r.try_get("id")?,
        department_id: r.try_get("department_id")?,
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        payment_prefix: r.try_get("payment_prefix")?,
        created_at: r.try_get("created_at")?,
    })
}

const SCHOOL_COLS: &str = "id, department_id, code, name, payment_prefix, created_at";

impl Store {
    pub async fn create_department(
        &self,
        actor: &str,
        code: &str,
        name: &str,
    ) -> Result<Department> {
        let mut tx = self.begin().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM departments WHERE code = $1")
                .bind(code)
                .fetch_optional(&mut *tx)
                .await?;
        if existing.is_some() {
            return Err(Error::conflict(
                "department_code_taken",
                format!("a department with code {code} exists"),
            ));
        }
        let row = sqlx::query("INSERT INTO departments (code, name, created_at) VALUES ($1, $2, $3) RETURNING id, code, name, created_at")
            .bind(code)
            .bind(name)
            .bind(now())
            .fetch_one(&mut *tx)
            .await?;
        let d = department(&row)?;
        audit::record(
            &mut tx,
            &Chain::System,
            Entry {
                actor,
                action: "department.create",
                entity: "department",
                entity_id: Some(d.id),
                details: json!({"code": d.code}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(d)
    }

    pub async fn department_in_scope(&self, caller: &Caller, id: i64) -> Result<Department> {
        // A school's staff see no department; an auditor only theirs: in the query, so a
        // department outside the scope costs what a missing one does.
        let (only, none) = match caller.scope {
            Scope::All => (None, false),
            Scope::Department(d) => (Some(d), false),
            Scope::School(_) | Scope::Family(_) => (None, true),
        };
        let row = sqlx::query(
            "SELECT id, code, name, created_at FROM departments WHERE id = $1 AND ($2 IS NULL OR id = $2) AND $3 = 0",
        )
        .bind(id)
        .bind(only)
        .bind(i64::from(none))
        .fetch_optional(self.reader())
        .await?;
        match row {
            Some(r) => department(&r),
            None => Err(Error::not_found("department_not_found", "department")),
        }
    }

    pub async fn list_departments(
        &self,
        caller: &Caller,
        page: Page,
    ) -> Result<(Vec<Department>, Option<String>)> {
        let only = match caller.scope {
            Scope::All => None,
            Scope::Department(id) => Some(id),
            Scope::School(_) | Scope::Family(_) => return Ok((vec![], None)),
        };
        let rows = sqlx::query(
            "SELECT id, code, name, created_at FROM departments WHERE id > $1 AND ($2 IS NULL OR id = $2) ORDER BY id LIMIT $3",
        )
        .bind(page.after)
        .bind(only)
        .bind(page.limit + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(department).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page, |d| d.id))
    }

    pub async fn create_school(
        &self,
        actor: &str,
        department_id: i64,
        code: &str,
        name: &str,
        prefix: &SchoolPrefix,
    ) -> Result<School> {
        let mut tx = self.begin().await?;
        let dept: Option<i64> = sqlx::query_scalar("SELECT id FROM departments WHERE id = $1")
            .bind(department_id)
            .fetch_optional(&mut *tx)
            .await?;
        if dept.is_none() {
            return Err(Error::invalid(
                "unknown_department",
                format!("there is no department {department_id}"),
            ));
        }
        let clash = sqlx::query(
            "SELECT code, payment_prefix FROM schools WHERE code = $1 OR payment_prefix = $2",
        )
        .bind(code)
        .bind(prefix.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = clash {
            let taken: String = r.try_get("code")?;
            return Err(if taken == code {
                Error::conflict(
                    "school_code_taken",
                    format!("a school with code {code} exists"),
                )
            } else {
                Error::conflict(
                    "payment_prefix_taken",
                    format!(
                        "payment prefix {} belongs to another school",
                        prefix.as_str()
                    ),
                )
            });
        }
        let row = sqlx::query(&format!(
            "INSERT INTO schools (department_id, code, name, payment_prefix, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING {SCHOOL_COLS}"
        ))
        .bind(department_id)
        .bind(code)
        .bind(name)
        .bind(prefix.as_str())
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        let s = school(&row)?;
        sqlx::query("INSERT INTO counters (school_id, name, value) VALUES ($1, 'invoice', 0)")
            .bind(s.id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            &Chain::System,
            Entry {
                actor,
                action: "school.create",
                entity: "school",
                entity_id: Some(s.id),
                details: json!({"code": s.code, "department_id": department_id, "payment_prefix": s.payment_prefix}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(s)
    }

    /// The school, if it exists and the caller may see it; otherwise 404 either way.
    pub async fn school_in_scope(&self, caller: &Caller, id: i64) -> Result<School> {
        let (school_id, department) = super::scope_binds(caller.scope);
        let row = sqlx::query(&format!(
            "SELECT {SCHOOL_COLS} FROM schools s WHERE s.id = $1 AND ($2 IS NULL OR s.id = $2) AND ($3 IS NULL OR s.department_id = $3)"
        ))
        .bind(id)
        .bind(school_id)
        .bind(department)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| school(&r))
            .transpose()?
            .ok_or(Error::not_found("school_not_found", "school"))
    }

    /// The school, for work done on no caller's behalf (a scheduled pull).
    pub async fn school_by_id(&self, id: i64) -> Result<School> {
        let row = sqlx::query(&format!("SELECT {SCHOOL_COLS} FROM schools WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| school(&r))
            .transpose()?
            .ok_or(Error::not_found("school_not_found", "school"))
    }

    pub async fn school_by_code(&self, code: &str) -> Result<School> {
        let row = sqlx::query(&format!(
            "SELECT {SCHOOL_COLS} FROM schools WHERE code = $1"
        ))
        .bind(code)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| school(&r))
            .transpose()?
            .ok_or(Error::not_found("school_not_found", "school"))
    }

    pub async fn list_schools(
        &self,
        caller: &Caller,
        department_id: Option<i64>,
        page: Page,
    ) -> Result<(Vec<School>, Option<String>)> {
        let (only_school, only_dept) = match caller.scope {
            Scope::All => (None, department_id),
            Scope::School(id) => (Some(id), department_id),
            Scope::Family(_) => return Ok((vec![], None)),
            Scope::Department(id) => {
                if department_id.is_some_and(|d| d != id) {
                    return Ok((vec![], None));
                }
                (None, Some(id))
            }
        };
        let rows = sqlx::query(&format!(
            "SELECT {SCHOOL_COLS} FROM schools WHERE id > $1 AND ($2 IS NULL OR id = $2) AND ($3 IS NULL OR department_id = $3)
             ORDER BY id LIMIT $4"
        ))
        .bind(page.after)
        .bind(only_school)
        .bind(only_dept)
        .bind(page.limit + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(school).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page, |s| s.id))
    }
}

impl Store {
    pub async fn department_id_by_code(&self, code: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM departments WHERE code = $1")
                .bind(code)
                .fetch_optional(self.reader())
                .await?,
        )
    }
}
