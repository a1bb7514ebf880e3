//! Parent links and what a parent reads with one. Every query of a parent joins the link
//! (`FAMILY`), with its revocation and expiry, so an object of another family is not found
//! rather than found and refused: a foreign invoice, payment or student costs the same look-up
//! as a missing one.

use super::sessions::hash_secret;
use super::{format_time, paginate, Page, Store};
use crate::audit::{self, Chain, Entry};
use crate::domain::parent_link::PREFIX_LEN;
use crate::error::{Error, Result};
use crate::store::invoices::Invoice;
use crate::store::ledger::Payment;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

/// Students `s` of parent link `$L` while it is in force at `$N`: the link's student, or every
/// student of its school sharing its family key.
fn family(link: &str, now: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM parent_links l WHERE l.id = {link} AND l.revoked_at IS NULL AND l.expires_at > {now}
                 AND l.school_id = s.school_id AND (l.student_id = s.id OR l.family_key = s.family_key))"
    )
}

/// Whose a link is: one student, or the students of a family.
#[derive(Debug, Clone)]
pub enum LinkTarget {
    Student(i64),
    Family(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Active,
    Expired,
    Revoked,
}

/// A parent link as the accountant lists it: never its token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParentLink {
    pub id: i64,
    pub school_id: i64,
    /// For one student; absent for a family link.
    pub student_id: Option<i64>,
    /// For every student of the school with this family key; absent for a student link.
    pub family_key: Option<String>,
    /// Whose link it is, e.g. "Mẹ".
    pub label: String,
    /// The token's first characters, to tell printed links apart. Not a secret, not enough
    /// to open the link.
    pub token_prefix: String,
    /// Shown, with the school's name, when the link is opened after it expired or was revoked.
    pub contact: Option<String>,
    /// When it stops working (midnight after its last day, Asia/Ho_Chi_Minh).
    pub expires_at: String,
    pub state: LinkState,
    pub created_at: String,
    pub created_by: String,
    /// The link this one was issued in place of (revoked when this one was issued).
    pub replaces_link_id: Option<i64>,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

const LINK_COLS: &str = "id, school_id, student_id, family_key, label, token_prefix, contact, expires_at, created_at, created_by, replaces_link_id, revoked_at, revoked_by";

fn link(r: &AnyRow, now: &str) -> Result<ParentLink> {
    let expires_at: String = r.try_get("expires_at")?;
    let revoked_at: Option<String> = r.try_get("revoked_at")?;
    let state = if revoked_at.is_some() {
        LinkState::Revoked
    } else if expires_at.as_str() <= now {
        LinkState::Expired
    } else {
        LinkState::Active
    };
    Ok(ParentLink {
        id: r.try_get("id")?,
        school_id: r.try_get("school_id")?,
        student_id: r.try_get("student_id")?,
        family_key: r.try_get("family_key")?,
        label: r.try_get("label")?,
        token_prefix: r.try_get("token_prefix")?,
        contact: r.try_get("contact")?,
        expires_at,
        state,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        replaces_link_id: r.try_get("replaces_link_id")?,
        revoked_at,
        revoked_by: r.try_get("revoked_by")?,
    })
}

/// A new link token: 32 random bytes from the OS, unpadded base64url (43 characters).
pub fn generate_link_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A link to issue.
pub struct NewLink {
    pub target: LinkTarget,
    pub label: String,
    pub contact: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub replaces_link_id: Option<i64>,
}

/// What a presented link token opens.
pub enum Opened {
    /// No link has this token (or it is not a token at all).
    Missing,
    /// It was a link, and is over: the school's name and contact, nothing else.
    Gone {
        school_name: String,
        contact: Option<String>,
    },
    /// In force: link id and its school.
    Valid { link_id: i64, school_id: i64 },
}

/// A student as their parent sees them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FamilyStudent {
    pub id: i64,
    pub school_id: i64,
    pub school_name: String,
    pub student_code: String,
    pub full_name: String,
    pub class_name: String,
}

impl Store {
    /// Issues a link for a student or a family of `school_id`, in one transaction with its audit
    /// record; with `replaces_link_id`, that link (of the same school, still unrevoked) is
    /// revoked in the same transaction. Returns the link and its token, shown only now.
    pub async fn issue_parent_link(
        &self,
        actor: &str,
        school_id: i64,
        new: NewLink,
        now: DateTime<Utc>,
    ) -> Result<(ParentLink, String)> {
        let at = format_time(now);
        let mut tx = self.begin().await?;
        let (student_id, family_key) = match &new.target {
            LinkTarget::Student(id) => {
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM students WHERE id = $1 AND school_id = $2")
                        .bind(id)
                        .bind(school_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                found.ok_or_else(|| {
                    Error::invalid(
                        "unknown_student",
                        format!("there is no student {id} in this school"),
                    )
                })?;
                (Some(*id), None)
            }
            LinkTarget::Family(key) => {
                let found: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM students WHERE school_id = $1 AND family_key = $2 LIMIT 1",
                )
                .bind(school_id)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
                if found.is_none() {
                    return Err(Error::conflict(
                        "unknown_family",
                        "no student of this school has that family_key",
                    ));
                }
                (None, Some(key.clone()))
            }
        };
        if let Some(old) = new.replaces_link_id {
            let revoked = sqlx::query(
                "UPDATE parent_links SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND school_id = $4 AND revoked_at IS NULL",
            )
            .bind(&at)
            .bind(actor)
            .bind(old)
            .bind(school_id)
            .execute(&mut *tx)
            .await?;
            if revoked.rows_affected() == 0 {
                return Err(Error::conflict(
                    "unknown_parent_link",
                    format!("there is no unrevoked parent link {old} in this school to replace"),
                ));
            }
            end_sessions_of_link(&mut tx, old, &at).await?;
        }
        let token = generate_link_token();
        let row = sqlx::query(&format!(
            "INSERT INTO parent_links (school_id, student_id, family_key, label, token_prefix, token_hash, contact, expires_at, created_at, created_by, replaces_link_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {LINK_COLS}"
        ))
        .bind(school_id)
        .bind(student_id)
        .bind(&family_key)
        .bind(&new.label)
        .bind(&token[..PREFIX_LEN])
        .bind(hash_secret(&token))
        .bind(&new.contact)
        .bind(format_time(new.expires_at))
        .bind(&at)
        .bind(actor)
        .bind(new.replaces_link_id)
        .fetch_one(&mut *tx)
        .await?;
        let l = link(&row, &at)?;
        // Neither the label (it may name a guardian) nor the family key: ids, prefix, expiry.
        let mut entries = vec![(
            Chain::School(school_id),
            Entry {
                actor,
                action: "parent_link.issue",
                entity: "parent_link",
                entity_id: Some(l.id),
                details: json!({"student_id": student_id, "family": family_key.is_some(), "token_prefix": l.token_prefix,
                                "expires_at": l.expires_at, "replaces_link_id": new.replaces_link_id}),
            },
        )];
        if let Some(old) = new.replaces_link_id {
            entries.push((
                Chain::School(school_id),
                Entry {
                    actor,
                    action: "parent_link.revoke",
                    entity: "parent_link",
                    entity_id: Some(old),
                    details: json!({"replaced_by": l.id}),
                },
            ));
        }
        audit::record_many(&mut tx, entries).await?;
        tx.commit().await?;
        Ok((l, token))
    }

    pub async fn list_parent_links(
        &self,
        school_id: i64,
        student_id: Option<i64>,
        page: Page,
        now: DateTime<Utc>,
    ) -> Result<(Vec<ParentLink>, Option<String>)> {
        let at = format_time(now);
        // A student's links are theirs and their family's.
        let rows = sqlx::query(&format!(
            "SELECT {LINK_COLS} FROM parent_links p WHERE p.school_id = $1 AND p.id > $2
               AND ($3 IS NULL OR p.student_id = $3 OR p.family_key IN (SELECT family_key FROM students WHERE id = $3 AND school_id = $1))
             ORDER BY p.id LIMIT $4"
        ))
        .bind(school_id)
        .bind(page.after)
        .bind(student_id)
        .bind(page.limit + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows
            .iter()
            .map(|r| link(r, &at))
            .collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page, |l| l.id))
    }

    /// Revokes one link of `school_id` and ends its sessions, with its audit record.
    pub async fn revoke_parent_link(
        &self,
        actor: &str,
        school_id: i64,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<ParentLink> {
        let at = format_time(now);
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE parent_links SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND school_id = $4 AND revoked_at IS NULL",
        )
        .bind(&at)
        .bind(actor)
        .bind(id)
        .bind(school_id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLS} FROM parent_links WHERE id = $1 AND school_id = $2"
        ))
        .bind(id)
        .bind(school_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::not_found("parent_link_not_found", "parent link"))?;
        let l = link(&row, &at)?;
        if updated.rows_affected() == 0 {
            return Err(Error::conflict(
                "parent_link_already_revoked",
                format!("parent link {id} is already revoked"),
            ));
        }
        let ended = end_sessions_of_link(&mut tx, id, &at).await?;
        audit::record(
            &mut tx,
            &Chain::School(school_id),
            Entry {
                actor,
                action: "parent_link.revoke",
                entity: "parent_link",
                entity_id: Some(id),
                details: json!({"sessions_ended": ended}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(l)
    }

    /// What `token` opens. One code path whatever the token: hash it, one look-up by the hash,
    /// then decide on the row (or its absence), so a wrong, an expired and a revoked token cost
    /// the same. The hash is the key: there is no comparison of secrets to time.
    pub async fn open_parent_link(&self, token: &str, now: DateTime<Utc>) -> Result<Opened> {
        let row = sqlx::query(
            "SELECT l.id, l.school_id, l.expires_at, l.revoked_at, l.contact, s.name AS school_name
             FROM parent_links l JOIN schools s ON s.id = l.school_id WHERE l.token_hash = $1",
        )
        .bind(hash_secret(token))
        .fetch_optional(self.reader())
        .await?;
        let Some(r) = row else {
            return Ok(Opened::Missing);
        };
        let expires_at: String = r.try_get("expires_at")?;
        let revoked_at: Option<String> = r.try_get("revoked_at")?;
        if revoked_at.is_some() || expires_at <= format_time(now) {
            return Ok(Opened::Gone {
                school_name: r.try_get("school_name")?,
                contact: r.try_get("contact")?,
            });
        }
        Ok(Opened::Valid {
            link_id: r.try_get("id")?,
            school_id: r.try_get("school_id")?,
        })
    }

    /// The students of link `link_id` while it is in force.
    pub async fn family_students(
        &self,
        link_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<FamilyStudent>> {
        let rows = sqlx::query(&format!(
            "SELECT s.id, s.school_id, sc.name AS school_name, s.student_code, s.full_name, s.class_name
             FROM students s JOIN schools sc ON sc.id = s.school_id WHERE {} ORDER BY s.id",
            family("$1", "$2")
        ))
        .bind(link_id)
        .bind(format_time(now))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FamilyStudent {
                    id: r.try_get("id")?,
                    school_id: r.try_get("school_id")?,
                    school_name: r.try_get("school_name")?,
                    student_code: r.try_get("student_code")?,
                    full_name: r.try_get("full_name")?,
                    class_name: r.try_get("class_name")?,
                })
            })
            .collect()
    }

    /// (invoice id, school id) of the family's invoices, newest first; with `only`, that one.
    async fn family_invoice_ids(
        &self,
        link_id: i64,
        now: DateTime<Utc>,
        only: Option<i64>,
    ) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(&format!(
            "SELECT i.id, i.school_id FROM invoices i JOIN students s ON s.id = i.student_id
             WHERE ($3 IS NULL OR i.id = $3) AND {} ORDER BY i.id DESC",
            family("$1", "$2")
        ))
        .bind(link_id)
        .bind(format_time(now))
        .bind(only)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("school_id")?)))
            .collect()
    }

    /// The family's invoices with their lines, newest first.
    pub async fn family_invoices(&self, link_id: i64, now: DateTime<Utc>) -> Result<Vec<Invoice>> {
        let mut out = Vec::new();
        for (id, school) in self.family_invoice_ids(link_id, now, None).await? {
            out.push(self.invoice_in_school(school, id).await?);
        }
        Ok(out)
    }

    /// One invoice of the family; another family's is not found, as a missing one.
    pub async fn family_invoice(
        &self,
        link_id: i64,
        now: DateTime<Utc>,
        id: i64,
    ) -> Result<Invoice> {
        match self
            .family_invoice_ids(link_id, now, Some(id))
            .await?
            .first()
        {
            Some((id, school)) => self.invoice_in_school(*school, *id).await,
            None => Err(Error::not_found("invoice_not_found", "invoice")),
        }
    }

    /// One payment that paid an invoice of the family, and the family's invoices it paid;
    /// another's is not found, as a missing one.
    pub async fn family_payment(
        &self,
        link_id: i64,
        now: DateTime<Utc>,
        id: i64,
    ) -> Result<(Payment, Vec<i64>)> {
        let invoices: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT a.invoice_id FROM allocations a JOIN invoices i ON i.id = a.invoice_id
             JOIN students s ON s.id = i.student_id WHERE a.payment_id = $3 AND {} ORDER BY a.invoice_id",
            family("$1", "$2")
        ))
        .bind(link_id)
        .bind(format_time(now))
        .bind(id)
        .fetch_all(self.reader())
        .await?;
        if invoices.is_empty() {
            return Err(Error::not_found("payment_not_found", "payment"));
        }
        Ok((self.payment(id).await?, invoices))
    }

    /// The legal basis of each fee item an invoice bills.
    pub async fn legal_bases(&self, invoice_id: i64) -> Result<HashMap<i64, Option<String>>> {
        let rows = sqlx::query(
            "SELECT id, legal_basis FROM fee_items WHERE id IN (SELECT fee_item_id FROM invoice_lines WHERE invoice_id = $1)",
        )
        .bind(invoice_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("legal_basis")?)))
            .collect()
    }
}

/// Ends the sessions a link opened; returns how many.
async fn end_sessions_of_link(tx: &mut super::Tx, link_id: i64, at: &str) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = 'link revoked' WHERE parent_link_id = $2 AND ended_at IS NULL",
    )
    .bind(at)
    .bind(link_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}
