//! The service against its own OpenAPI document: schemathesis sends what the document allows
//! (and what it does not) to every operation and runs every check (`--checks all`): statuses,
//! content types, headers and bodies as documented, schema-valid requests accepted and
//! schema-violating ones refused, and its stateful phase follows the links between operations.
//! The exceptions, rules JSON Schema cannot state, are listed with their reasons in
//! `schemathesis.toml` beside this file.
//!
//! schemathesis is found through `FEERECON_SCHEMATHESIS` (a path to the binary) or on `PATH`;
//! without it the test says so and passes, as the PostgreSQL tests do without a URL. `.ci/run`
//! installs it. SQLite only: the document is the same on both backends.

use crate::helpers::{Backend, TestApp, ADMIN};
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Examples per operation and phase: enough to reach every operation's rules, small enough to
/// run in about a minute on two cores.
const MAX_EXAMPLES: &str = "30";

/// A fixed seed, so the suite is repeatable; `FEERECON_SCHEMATHESIS_SEED` explores others.
const SEED: &str = "20250901";

fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FEERECON_SCHEMATHESIS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("schemathesis"))
        .find(|candidate| candidate.is_file())
}

#[tokio::test]
async fn the_service_keeps_to_its_openapi_document() {
    let Some(bin) = schemathesis() else {
        eprintln!(
            "skipped: schemathesis not found; set FEERECON_SCHEMATHESIS to its path or put it on PATH (.ci/run installs it)"
        );
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite).await.expect("SQLite");

    // A department, a school with its catalog and September's invoices, so operations are
    // reached beyond 404 (ids from 1, which the coverage phase tries first).
    let sc = app.school("OAS", "QD").await;
    let (s, b) = app
        .post_raw(
            &format!("/api/v1/schools/{}/invoices/import", sc.school_id),
            &sc.accountant,
            "text/csv",
            include_bytes!("../../fixtures/invoices/thcs-2025-09.csv").to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/schemathesis.toml");
    let seed = std::env::var("FEERECON_SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.into());
    // schemathesis keeps a `.hypothesis` folder where it runs: not in the source tree.
    let work = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(&bin);
    command
        .current_dir(work.path())
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", app.base))
        .args(["--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", &seed])
        // One worker: Python 3.11's parser is not thread-safe before 3.11.8 ("AST constructor
        // recursion depth mismatch"), and one is about as fast on two cores.
        .args(["--workers", "1"])
        .env("NO_COLOR", "1");
    let started = std::time::Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("could not run {}: {e}", bin.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .find("=================================== FAILURES")
        .or_else(|| stdout.find("SUMMARY"))
        .map_or(&stdout[..], |at| &stdout[at..]);
    eprintln!("schemathesis (seed {seed}) took {:.0?}", started.elapsed());
    assert!(
        output.status.success(),
        "schemathesis found the service and its document disagree (exit {:?}):\n{summary}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
}
