//! Students of a school.

use super::{now, paginate, Page, Store};
use crate::audit::{self, Chain, Entry};
use crate::domain::import::KnownStudent;
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Student {
    pub id: i64,
    pub school_id: i64,
    pub student_code: String,
    pub full_name: String,
    pub class_name: String,
    /// Links siblings: students of one family share it.
    pub family_key: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub struct NewStudent {
    pub student_code: String,
    pub full_name: String,
    pub class_name: String,
    pub family_key: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct StudentFilter {
    pub class_name: Option<String>,
    pub family_key: Option<String>,
    pub student_code: Option<String>,
}

const COLS: &str =
    "id, school_id, student_code, full_name, class_name, family_key, created_at, updated_at";

fn student(r: &AnyRow) -> Result<Student> {
    Ok(Student {
        id: r.try_get("id")?,
        school_id: r.try_get("school_id")?,
        student_code: r.try_get("student_code")?,
        full_name: r.try_get("full_name")?,
        class_name: r.try_get("class_name")?,
        family_key: r.try_get("family_key")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn create_student(
        &self,
        actor: &str,
        school_id: i64,
        s: NewStudent,
    ) -> Result<Student> {
        let mut tx = self.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM students WHERE school_id = $1 AND student_code = $2",
        )
        .bind(school_id)
        .bind(&s.student_code)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_some() {
            return Err(Error::conflict(
                "student_code_taken",
                format!("student {} exists in this school", s.student_code),
            ));
        }
        let t = now();
        let row = sqlx::query(&format!(
            "INSERT INTO students (school_id, student_code, full_name, class_name, family_key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {COLS}"
        ))
        .bind(school_id)
        .bind(&s.student_code)
        .bind(&s.full_name)
        .bind(&s.class_name)
        .bind(&s.family_key)
        .bind(&t)
        .fetch_one(&mut *tx)
        .await?;
        let st = student(&row)?;
        // The audit log names the student by id only: a record outlives the student's erasure
        // and is read by auditors across schools, so it holds no name and no code.
        audit::record(
            &mut tx,
            &Chain::School(school_id),
            Entry {
                actor,
                action: "student.create",
                entity: "student",
                entity_id: Some(st.id),
                details: json!({}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(st)
    }

    pub async fn student_in_school(&self, school_id: i64, id: i64) -> Result<Student> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM students WHERE id = $1 AND school_id = $2"
        ))
        .bind(id)
        .bind(school_id)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| student(&r))
            .transpose()?
            .ok_or(Error::not_found("student_not_found", "student"))
    }

    pub async fn list_students(
        &self,
        school_id: i64,
        f: &StudentFilter,
        page: Page,
    ) -> Result<(Vec<Student>, Option<String>)> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM students WHERE school_id = $1 AND id > $2
               AND ($3 IS NULL OR class_name = $3) AND ($4 IS NULL OR family_key = $4) AND ($5 IS NULL OR student_code = $5)
             ORDER BY id LIMIT $6"
        ))
        .bind(school_id)
        .bind(page.after)
        .bind(&f.class_name)
        .bind(&f.family_key)
        .bind(&f.student_code)
        .bind(page.limit + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(student).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page, |s| s.id))
    }

    /// Every student of the school, by code, for an import.
    pub(crate) async fn known_students(
        tx: &mut super::Tx,
        school_id: i64,
    ) -> Result<HashMap<String, KnownStudent>> {
        let rows = sqlx::query("SELECT id, student_code, full_name, class_name, family_key FROM students WHERE school_id = $1")
            .bind(school_id)
            .fetch_all(&mut **tx)
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            out.insert(
                r.try_get("student_code")?,
                KnownStudent {
                    id: r.try_get("id")?,
                    full_name: r.try_get("full_name")?,
                    class_name: r.try_get("class_name")?,
                    family_key: r.try_get("family_key")?,
                },
            );
        }
        Ok(out)
    }
}
