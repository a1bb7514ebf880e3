//! The command line, run as a user would: tokens, import with the school code, audit verification.

use crate::helpers::TestApp;
use reqwest::StatusCode;
use std::process::Command;

pub const AUDIT_SIGNING_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

pub fn feerecon(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_feerecon"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        // The service's keys, as the test app has them: the CLI's records carry the same MACs.
        .env("FEERECON_SECRET_KEY", crate::helpers::SEALER_KEY)
        .env("FEERECON_AUDIT_SIGNING_KEY", AUDIT_SIGNING_KEY)
        .output()
        .expect("run feerecon")
}

async fn cli_flow(app: TestApp) {
    let sc = app.school("CLI", "QD").await;
    let fixture = format!(
        "{}/fixtures/invoices/thcs-2025-09.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = feerecon(
        &app.db_url,
        &[
            "import",
            "invoices",
            &fixture,
            "--school",
            &sc.code.to_lowercase(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 invoices created"));
    let out = feerecon(
        &app.db_url,
        &["import", "invoices", &fixture, "--school", &sc.code],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 invoices created, 6 already imported"));
    let bad = format!(
        "{}/fixtures/invoices/bad-rows.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = feerecon(
        &app.db_url,
        &["import", "invoices", &bad, "--school", &sc.code],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Nothing was imported") && err.contains("line 3") && err.contains("line 7"),
        "{err}"
    );
    assert_eq!(app.count("invoices").await, 6);

    let out = feerecon(
        &app.db_url,
        &[
            "token",
            "create",
            "--role",
            "cashier",
            "--school",
            &sc.code,
            "--label",
            "Thủ quỹ",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .split_whitespace()
        .find(|w| w.starts_with("frk_"))
        .expect("token printed");
    let (s, list) = app
        .get(&format!("/api/v1/schools/{}/invoices", sc.school_id), token)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(6));
    let out = feerecon(
        &app.db_url,
        &[
            "token",
            "create",
            "--role",
            "cashier",
            "--label",
            "no school",
        ],
    );
    assert!(!out.status.success());

    // The cash desk from the command line.
    let (_, list) = app
        .get(
            &format!("/api/v1/schools/{}/invoices", sc.school_id),
            &sc.accountant,
        )
        .await;
    let code = list["items"][0]["payment_code"]
        .as_str()
        .expect("code")
        .to_string();
    let out = feerecon(
        &app.db_url,
        &[
            "pay",
            "cash",
            "--school",
            &sc.code,
            "--amount",
            "1.500.000",
            "--invoice",
            &code,
            "--payer",
            "Nguyễn Văn Bố",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("-000001: 1.500.000 ₫ received, 1.235.000 ₫ allocated, credit 265.000 ₫"),
        "{stdout}"
    );
    let out = feerecon(
        &app.db_url,
        &[
            "pay",
            "cash",
            "--school",
            &sc.code,
            "--amount",
            "1000",
            "--invoice",
            "QD2222222",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(app.count("payments").await, 1);

    let out = feerecon(&app.db_url, &["verify-audit"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
}

crate::on_both_backends!(cli, cli_flow);
