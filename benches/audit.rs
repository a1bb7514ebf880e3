//! Audit verification benchmark: one school's chain of 1,000,000 MACed records (payment records'
//! size), written through `audit::record_many`,
//! then verified as `feerecon verify-audit` does: every hash and MAC recomputed, the chain
//! compared with a signed checkpoint, and the ledger's coverage checked. SQLite, and PostgreSQL
//! when `FEERECON_BENCH_POSTGRES_URL` (or `FEERECON_TEST_POSTGRES_URL`) is set.
//! Run: `cargo bench --bench audit` (`-- --records N` for another size, `-- --sqlite 0` for
//! PostgreSQL only).

mod support;

use feerecon::audit::{self, Anchor, Chain, Entry};
use feerecon::checkpoint::CheckpointSigner;
use feerecon::sealer::Sealer;
use feerecon::store::Store;
use std::collections::HashMap;
use std::time::Instant;

async fn run(label: &str, url: &str, records: usize) {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let chain = Chain::School(1);
    let start = Instant::now();
    let per_tx = 10_000;
    let mut written = 0;
    while written < records {
        let n = per_tx.min(records - written);
        let mut tx = store.begin().await.expect("begin");
        let entries: Vec<(Chain, Entry<'_>)> = (0..n)
            .map(|i| {
                let k = written + i;
                (
                    chain.clone(),
                    Entry {
                        actor: "token:2:cashier",
                        action: "payment.record",
                        entity: "payment",
                        entity_id: Some(k as i64 + 1),
                        details: serde_json::json!({"channel": "cash", "provider": "cash", "amount": 935000,
                            "receipt_no": format!("PT-2025-{k:07}"), "allocations": [[k + 1, 935000]], "method": "cash_desk",
                            "fees": []}),
                    },
                )
            })
            .collect();
        audit::record_many(&mut tx, entries).await.expect("append");
        tx.commit().await.expect("commit");
        written += n;
    }
    println!(
        "{label:<10} {records} records written in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let signer = CheckpointSigner::ephemeral("bench");
    let heads = audit::heads(&store).await.expect("heads");
    let (key, size, head) = heads.first().expect("one chain").clone();
    let note = signer.sign(&key, size, &head).expect("sign");
    let cp = signer.verifier().open(&note).expect("open");

    let start = Instant::now();
    let r = audit::verify(&store, &key).await.expect("verify");
    let alone = start.elapsed().as_secs_f64();
    assert!(r.intact && r.records == records as i64, "{r:?}");
    println!(
        "{label:<10} verify one chain (hashes and MACs): {alone:.2} s, {:.0} records/s",
        records as f64 / alone
    );
    let start = Instant::now();
    let anchors = HashMap::from([(
        cp.chain.clone(),
        vec![Anchor {
            size: cp.size,
            head: cp.head.clone(),
            source: "checkpoint".into(),
        }],
    )]);
    let reports = audit::verify_all(&store, None, anchors)
        .await
        .expect("verify all");
    let all = start.elapsed().as_secs_f64();
    assert!(reports.iter().all(|r| r.intact), "{reports:?}");
    println!("{label:<10} verify-audit as run (checkpoint and ledger coverage too): {all:.2} s");
    store.close().await;
}

#[tokio::main]
async fn main() {
    if !support::benchmarking() {
        return;
    }
    let records = support::arg("--records", 1_000_000);
    feerecon::audit::install_mac_key(
        Sealer::from_base64(&Sealer::generate_key())
            .expect("key")
            .audit_mac_key(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    if support::arg("--sqlite", 1) == 1 {
        run(
            "sqlite",
            &format!("sqlite://{}/bench.db", dir.path().display()),
            records,
        )
        .await;
    }
    match support::postgres().await {
        None => println!("postgres   skipped: set FEERECON_BENCH_POSTGRES_URL"),
        Some(db) => {
            run("postgres", &db.url, records).await;
            db.drop_db().await;
        }
    }
}
