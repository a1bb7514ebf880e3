//! Verification of the hash-chained audit log, and the signed checkpoints auditors keep.

use super::extract::{ApiQuery, Auth, DepartmentReaders};
use super::AppState;
use crate::audit::{self, ChainReport};
use crate::checkpoint::{self, StoredCheckpoint};
use crate::domain::access::Scope;
use crate::error::{ErrorBody, Result};
use crate::store::Page;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify_audit))
        .routes(routes!(list_checkpoints))
        .routes(routes!(checkpoint_key))
}

/// The chains `caller` may see: every chain for an admin; an auditor's department's schools'.
async fn visible_chains(
    st: &AppState,
    caller: &crate::domain::access::Caller,
) -> Result<Vec<String>> {
    if caller.scope == Scope::All {
        return audit::chains(&st.store).await;
    }
    let mut out = Vec::new();
    let mut page = Page {
        after: 0,
        limit: Page::MAX_LIMIT,
    };
    loop {
        let (schools, next) = st.store.list_schools(caller, None, page).await?;
        out.extend(schools.iter().map(|s| audit::Chain::School(s.id).key()));
        match next.and_then(|n| n.parse().ok()) {
            Some(after) => page.after = after,
            None => break,
        }
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "One report per chain the caller may see: each chain recomputed (hashes and MACs) and compared with the checkpoints the service signed", body = Vec<ChainReport>), (status = 403, body = ErrorBody)))]
async fn verify_audit(
    State(st): State<AppState>,
    caller: Auth<DepartmentReaders>,
) -> Result<Json<Vec<ChainReport>>> {
    let verifier = st.checkpoints.verifier();
    let visible = match caller.scope {
        Scope::All => None,
        _ => Some(visible_chains(&st, &caller).await?),
    };
    let mut anchors = std::collections::HashMap::new();
    let mut bad = std::collections::HashMap::new();
    for chain in audit::chains(&st.store).await? {
        let (a, b) = checkpoint::stored_anchors(&st.store, &verifier, &chain).await?;
        anchors.insert(chain.clone(), a);
        bad.insert(chain, b);
    }
    let mut reports = audit::verify_all(&st.store, visible.as_deref(), anchors).await?;
    for r in &mut reports {
        for b in bad.remove(&r.chain).unwrap_or_default() {
            r.add_problem(audit::ProblemKind::BadCheckpoint, None, b);
        }
    }
    Ok(Json(reports))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckpointQuery {
    /// Only this chain (`system`, `school:<id>`).
    pub chain: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])), params(CheckpointQuery),
    responses((status = 200, description = "The latest signed checkpoint of each chain the caller may see (an auditor: the department's schools). Keep the notes: `feerecon verify-audit --checkpoints FILE` proves the chain still extends them", body = Vec<StoredCheckpoint>),
        (status = 403, body = ErrorBody)))]
async fn list_checkpoints(
    State(st): State<AppState>,
    caller: Auth<DepartmentReaders>,
    ApiQuery(q): ApiQuery<CheckpointQuery>,
) -> Result<Json<Vec<StoredCheckpoint>>> {
    let mut chains = visible_chains(&st, &caller).await?;
    if let Some(c) = &q.chain {
        chains.retain(|x| x == c);
    }
    Ok(Json(checkpoint::latest(&st.store, Some(&chains)).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointKey {
    /// The key name in every signature line and the start of every origin line.
    pub name: String,
    /// The public key in C2SP signed-note verifier form (`name+keyid+base64`), for
    /// `feerecon verify-audit --vkey`.
    pub vkey: String,
}

#[utoipa::path(get, path = "/api/v1/audit/checkpoints/key", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "The public key checkpoints are signed with. Compare it with one obtained out of band (from the operator) before trusting it", body = CheckpointKey),
        (status = 403, body = ErrorBody)))]
async fn checkpoint_key(
    State(st): State<AppState>,
    _caller: Auth<DepartmentReaders>,
) -> Json<CheckpointKey> {
    let v = st.checkpoints.verifier();
    Json(CheckpointKey {
        name: v.name().into(),
        vkey: v.vkey(),
    })
}
