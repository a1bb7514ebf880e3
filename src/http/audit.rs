//! Verification of the hash-chained audit log.

use super::extract::{Auth, DepartmentReaders};
use super::AppState;
use crate::audit::{self, ChainReport};
use crate::domain::access::Scope;
use crate::error::{ErrorBody, Result};
use crate::store::Page;
use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify_audit))
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "One report per chain the caller may see", body = Vec<ChainReport>), (status = 403, body = ErrorBody)))]
async fn verify_audit(
    State(st): State<AppState>,
    caller: Auth<DepartmentReaders>,
) -> Result<Json<Vec<ChainReport>>> {
    let chains: Vec<String> = match caller.scope {
        Scope::All => audit::chains(&st.store).await?,
        _ => {
            // An auditor verifies the chains of the schools of their department.
            let mut out = Vec::new();
            let mut page = Page {
                after: 0,
                limit: Page::MAX_LIMIT,
            };
            loop {
                let (schools, next) = st.store.list_schools(&caller, None, page).await?;
                out.extend(schools.iter().map(|s| audit::Chain::School(s.id).key()));
                match next.and_then(|n| n.parse().ok()) {
                    Some(after) => page.after = after,
                    None => break,
                }
            }
            out
        }
    };
    let mut reports = Vec::with_capacity(chains.len());
    for chain in chains {
        reports.push(audit::verify(&st.store, &chain).await?);
    }
    Ok(Json(reports))
}
