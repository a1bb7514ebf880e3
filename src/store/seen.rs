//! What a batch of payments must know of the database once it holds its schools' ledger locks,
//! read in one statement: each school's audit-chain length (to catch its book up), the payments
//! already recorded under the batch's provider references, the statement credits booked under
//! its bank references, what the invoices that given allocations name still owe, and the open
//! reviews of the schools whose payments the engine decides.
//!
//! On PostgreSQL every statement is a round trip that the one intake writer waits for, with the
//! ledger locks held; these were five. The branches of the `UNION ALL` have different shapes,
//! so each returns its rows as one JSON object beside the branch's name.
//!
//! Planned each time with the values at hand (`persistent(false)`): a plan cached while the
//! payments table was small reads every payment of a provider instead of probing both key
//! columns.

use super::{backend_of, Backend, Tx};
use crate::audit::Chain;
use crate::domain::money::Vnd;
use crate::error::{Error, Result};
use crate::plan::intake::{Allocate, Balance, Booked, OpenReview, StatementCredit};
use crate::store::record::Job;
use chrono::Utc;
use serde::Deserialize;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Values per statement, so that no statement's parameter list grows without bound.
const VALUES_PER_STATEMENT: usize = 1_000;
/// Values per branch.
const VALUES_PER_BRANCH: usize = 500;

/// What [`read`] found.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// school id → its audit chain's length (0 for a chain not begun), for each school asked.
    pub chain_seqs: HashMap<i64, i64>,
    /// (provider, provider reference) → the payment recorded under it.
    pub booked: HashMap<(String, String), Booked>,
    pub statement_credits: Vec<StatementCredit>,
    /// invoice → what it still owes, for each open invoice a given allocation names.
    pub balances: HashMap<i64, Balance>,
    /// In payment order.
    pub open_reviews: Vec<OpenReview>,
}

enum Branch<'a> {
    Chains(&'a [String]),
    Refs(&'a str, &'a [&'a str]),
    /// Bank references of credits to accounts of `schools`.
    Credits(&'a [String]),
    Balances(&'a [i64]),
    Reviews(&'a [i64]),
}

impl Branch<'_> {
    fn values(&self, schools: usize) -> usize {
        match self {
            Branch::Chains(keys) => keys.len(),
            Branch::Refs(_, refs) => refs.len() + 1,
            Branch::Credits(refs) => refs.len() + schools,
            Branch::Balances(ids) => ids.len(),
            Branch::Reviews(ids) => ids.len(),
        }
    }
}

#[derive(Deserialize)]
struct ChainRow {
    chain: String,
    seq: i64,
}

#[derive(Deserialize)]
struct RefRow {
    id: i64,
    school_id: i64,
    amount: i64,
    provider: String,
    reference: String,
}

#[derive(Deserialize)]
struct CreditRow {
    id: i64,
    school_id: i64,
    amount: i64,
    reference: String,
    account_number: String,
    booked_at: String,
}

#[derive(Deserialize)]
struct BalanceRow {
    id: i64,
    school_id: i64,
    open: i64,
}

#[derive(Deserialize)]
struct ReviewRow {
    school_id: i64,
    payment_id: i64,
    claims: Option<String>,
    suggestions: Option<String>,
}

/// Reads what `jobs` need, the chain lengths of `chains_of` and the open reviews of
/// `reviews_of`, inside the caller's transaction, which holds the schools' ledger locks.
pub(super) async fn read(
    tx: &mut Tx,
    jobs: &[&Job],
    chains_of: &BTreeSet<i64>,
    reviews_of: &BTreeSet<i64>,
) -> Result<Seen> {
    let chain_keys: Vec<String> = chains_of
        .iter()
        .map(|id| Chain::School(*id).key())
        .collect();
    let school_of_chain: HashMap<&str, i64> = chain_keys
        .iter()
        .map(String::as_str)
        .zip(chains_of.iter().copied())
        .collect();

    let mut by_provider: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for j in jobs {
        if let Some(r) = &j.payment.provider_ref {
            by_provider
                .entry(j.payment.provider.as_str())
                .or_default()
                .insert(r.as_str());
        }
    }
    let by_provider: Vec<(&str, Vec<&str>)> = by_provider
        .into_iter()
        .map(|(p, refs)| (p, refs.into_iter().collect()))
        .collect();
    // Credits from statements are looked for under the bank references that jobs from account
    // watchers carry: a notification coming after the statement is the same transfer.
    let watched: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| j.payment.credited_account.is_some() && j.payment.bank_ref.is_some())
        .collect();
    let schools: Vec<i64> = watched
        .iter()
        .map(|j| j.school.id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let bank_refs: Vec<String> = watched
        .iter()
        .filter_map(|j| j.payment.bank_ref.as_deref())
        .map(|r| r.trim().to_uppercase())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let invoices: Vec<i64> = jobs
        .iter()
        .filter_map(|j| match &j.payment.allocate {
            Allocate::Given { allocations, .. } => Some(allocations.iter().map(|(i, _)| *i)),
            Allocate::Engine { .. } => None,
        })
        .flatten()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let review_schools: Vec<i64> = reviews_of.iter().copied().collect();

    let mut branches: Vec<Branch> = Vec::new();
    branches.extend(chain_keys.chunks(VALUES_PER_BRANCH).map(Branch::Chains));
    for (provider, refs) in &by_provider {
        branches.extend(
            refs.chunks(VALUES_PER_BRANCH)
                .map(|c| Branch::Refs(provider, c)),
        );
    }
    branches.extend(bank_refs.chunks(VALUES_PER_BRANCH).map(Branch::Credits));
    branches.extend(invoices.chunks(VALUES_PER_BRANCH).map(Branch::Balances));
    branches.extend(
        review_schools
            .chunks(VALUES_PER_BRANCH)
            .map(Branch::Reviews),
    );

    let postgres = backend_of(tx) == Backend::Postgres;
    let mut seen = Seen::default();
    let mut rest = branches.as_slice();
    while !rest.is_empty() {
        let mut values = 0;
        let mut take = 0;
        for b in rest {
            let n = b.values(schools.len());
            if take > 0 && values + n > VALUES_PER_STATEMENT {
                break;
            }
            values += n;
            take += 1;
        }
        let (now, later) = rest.split_at(take);
        rest = later;
        let sql = statement(now, schools.len(), postgres);
        let mut q = sqlx::query(&sql).persistent(false);
        for b in now {
            match b {
                Branch::Chains(keys) => {
                    for k in *keys {
                        q = q.bind(k.as_str());
                    }
                }
                Branch::Refs(provider, refs) => {
                    q = q.bind(*provider);
                    for r in *refs {
                        q = q.bind(*r);
                    }
                }
                Branch::Credits(refs) => {
                    for id in &schools {
                        q = q.bind(*id);
                    }
                    for r in *refs {
                        q = q.bind(r.as_str());
                    }
                }
                Branch::Balances(ids) | Branch::Reviews(ids) => {
                    for id in *ids {
                        q = q.bind(*id);
                    }
                }
            }
        }
        for row in q.fetch_all(&mut **tx).await? {
            let kind: String = row.try_get("kind")?;
            let json: String = row.try_get("row")?;
            seen.add(&kind, &json, &school_of_chain)?;
        }
    }
    for id in chains_of {
        seen.chain_seqs.entry(*id).or_insert(0);
    }
    seen.open_reviews.sort_by_key(|r| r.payment_id);
    Ok(seen)
}

impl Seen {
    fn add(&mut self, kind: &str, json: &str, school_of_chain: &HashMap<&str, i64>) -> Result<()> {
        fn parse<'a, T: Deserialize<'a>>(json: &'a str) -> Result<T> {
            serde_json::from_str(json).map_err(|e| Error::Internal(format!("read row: {e}")))
        }
        match kind {
            "chain" => {
                let r: ChainRow = parse(json)?;
                if let Some(id) = school_of_chain.get(r.chain.as_str()) {
                    self.chain_seqs.insert(*id, r.seq);
                }
            }
            "ref" => {
                let r: RefRow = parse(json)?;
                self.booked.insert(
                    (r.provider, r.reference),
                    Booked {
                        id: r.id,
                        school_id: r.school_id,
                        amount: r.amount,
                    },
                );
            }
            "statement" => {
                let r: CreditRow = parse(json)?;
                self.statement_credits.push(StatementCredit {
                    payment_id: r.id,
                    school_id: r.school_id,
                    account_number: r.account_number,
                    bank_ref: r.reference,
                    amount: r.amount,
                    booked_at: chrono::DateTime::parse_from_rfc3339(&r.booked_at)
                        .map_err(|e| Error::Internal(format!("stored time: {e}")))?
                        .with_timezone(&Utc),
                });
            }
            "balance" => {
                let r: BalanceRow = parse(json)?;
                self.balances.insert(
                    r.id,
                    Balance {
                        school_id: r.school_id,
                        open: Vnd::new(r.open)
                            .map_err(|e| Error::Internal(format!("stored balance: {e}")))?,
                    },
                );
            }
            "review" => {
                let r: ReviewRow = parse(json)?;
                self.open_reviews.push(super::recon::open_review(
                    r.school_id,
                    r.payment_id,
                    r.claims.as_deref(),
                    r.suggestions.as_deref(),
                ));
            }
            other => return Err(Error::Internal(format!("read row of kind {other}"))),
        }
        Ok(())
    }
}

/// The `UNION ALL` of `branches`, each selecting `kind` and `row` (a JSON object), with
/// parameters numbered in branch order.
fn statement(branches: &[Branch], schools: usize, postgres: bool) -> String {
    let mut next = 0;
    let mut list = |n: usize| -> String {
        let l: Vec<String> = (0..n).map(|i| format!("${}", next + i + 1)).collect();
        next += n;
        l.join(",")
    };
    let object = |fields: &[(&str, &str)]| -> String {
        let pairs: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("'{name}', {value}"))
            .collect();
        if postgres {
            format!("CAST(json_build_object({}) AS TEXT)", pairs.join(", "))
        } else {
            format!("json_object({})", pairs.join(", "))
        }
    };
    let mut sql = Vec::with_capacity(branches.len());
    for b in branches {
        sql.push(match b {
            Branch::Chains(keys) => format!(
                "SELECT 'chain' AS kind, {} AS row FROM audit_chains WHERE chain IN ({})",
                object(&[("chain", "chain"), ("seq", "seq")]),
                list(keys.len())
            ),
            Branch::Refs(_, refs) => {
                let provider = list(1);
                format!(
                    "SELECT 'ref' AS kind, {} AS row FROM payments
                     WHERE provider = {provider} AND provider_ref IN ({})",
                    object(&[
                        ("id", "id"),
                        ("school_id", "school_id"),
                        ("amount", "amount"),
                        ("provider", "provider"),
                        ("reference", "provider_ref"),
                    ]),
                    list(refs.len())
                )
            }
            Branch::Credits(refs) => {
                let school_list = list(schools);
                format!(
                    "SELECT 'statement' AS kind, {} AS row
                     FROM statement_lines l JOIN school_accounts a ON a.id = l.account_id
                     WHERE l.account_id IN (SELECT id FROM school_accounts WHERE school_id IN ({school_list}))
                       AND UPPER(l.bank_ref) IN ({}) AND l.matched_by = 'created' AND l.payment_id IS NOT NULL",
                    object(&[
                        ("id", "l.payment_id"),
                        ("school_id", "l.school_id"),
                        ("amount", "l.amount"),
                        ("reference", "UPPER(l.bank_ref)"),
                        ("account_number", "a.account_number"),
                        ("booked_at", "l.booked_at"),
                    ]),
                    list(refs.len())
                )
            }
            Branch::Balances(ids) => format!(
                "SELECT 'balance' AS kind, {} AS row FROM invoices i
                 WHERE i.voided_at IS NULL AND i.id IN ({})",
                object(&[
                    ("id", "i.id"),
                    ("school_id", "i.school_id"),
                    (
                        "open",
                        "i.total - CAST(COALESCE((SELECT SUM(a.amount) FROM allocations a WHERE a.invoice_id = i.id), 0) AS BIGINT)"
                    ),
                ]),
                list(ids.len())
            ),
            Branch::Reviews(ids) => format!(
                "SELECT 'review' AS kind, {} AS row FROM exceptions
                 WHERE status = 'open' AND school_id IN ({})",
                object(&[
                    ("school_id", "school_id"),
                    ("payment_id", "payment_id"),
                    ("claims", "claims"),
                    ("suggestions", "CASE WHEN claims IS NULL THEN suggestions END"),
                ]),
                list(ids.len())
            ),
        });
    }
    sql.join(" UNION ALL ")
}
