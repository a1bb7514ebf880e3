//! Who may see and do what. Roles and scopes as the store and HTTP layers check them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the installation: departments, schools, tokens.
    Admin,
    /// One school: invoices, imports, reconciliation, corrections.
    Accountant,
    /// One school: records cash and reads invoices.
    Cashier,
    /// One department, read-only, across its schools.
    Auditor,
    /// The students of one parent link (one student, or a family), read-only; signed in by
    /// exchanging the link for a session, never with an API token.
    Parent,
}

super::catalog::text_enum!(Role { Admin => "admin", Accountant => "accountant", Cashier => "cashier", Auditor => "auditor", Parent => "parent" });

/// The data a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    School(i64),
    Department(i64),
    /// The students of parent link `id`: the store joins the link (and its expiry and
    /// revocation) into every query a parent makes. It sees no school, department or token.
    Family(i64),
}

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub token_id: i64,
    pub role: Role,
    pub scope: Scope,
    /// The cookie session the request came with; `None` for a bearer token.
    pub session_id: Option<i64>,
}

/// What a school is, as far as access goes.
#[derive(Debug, Clone, Copy)]
pub struct SchoolRef {
    pub id: i64,
    pub department_id: i64,
}

impl Caller {
    pub fn can_see_school(&self, school: SchoolRef) -> bool {
        match self.scope {
            Scope::All => true,
            Scope::School(id) => id == school.id,
            Scope::Department(id) => id == school.department_id,
            Scope::Family(_) => false,
        }
    }

    pub fn can_see_department(&self, department_id: i64) -> bool {
        match self.scope {
            Scope::All => true,
            Scope::Department(id) => id == department_id,
            // A school's staff read their department's catalog through their school.
            Scope::School(_) | Scope::Family(_) => false,
        }
    }

    /// A short, log-safe name of the caller for audit records.
    pub fn actor(&self) -> String {
        if let Scope::Family(link) = self.scope {
            return format!("parent_link:{link}");
        }
        format!("token:{}:{}", self.token_id, self.role.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_limit_what_is_seen() {
        let school = SchoolRef {
            id: 7,
            department_id: 2,
        };
        let other = SchoolRef {
            id: 8,
            department_id: 3,
        };
        let acct = Caller {
            token_id: 1,
            role: Role::Accountant,
            scope: Scope::School(7),
            session_id: None,
        };
        let aud = Caller {
            token_id: 2,
            role: Role::Auditor,
            scope: Scope::Department(2),
            session_id: None,
        };
        let admin = Caller {
            token_id: 3,
            role: Role::Admin,
            scope: Scope::All,
            session_id: None,
        };
        assert!(acct.can_see_school(school) && !acct.can_see_school(other));
        assert!(aud.can_see_school(school) && !aud.can_see_school(other));
        assert!(admin.can_see_school(other));
        assert!(
            aud.can_see_department(2) && !aud.can_see_department(3) && !acct.can_see_department(2)
        );
    }
}
