//! The `feerecon` command: the HTTP service and the tools an administrator or accountant runs.

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use feerecon::audit;
use feerecon::config::{DbConfig, LogFormat, SecretKeyConfig, ServeConfig};
use feerecon::domain::access::{Role, Scope};
use feerecon::domain::code::PaymentCode;
use feerecon::domain::fee::Channel;
use feerecon::domain::money::Vnd;
use feerecon::store::invoices::ImportProgress;
use feerecon::store::ledger::{NewPayment, Recorded};
use feerecon::store::Store;
use feerecon::{app, AppState};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "feerecon",
    version,
    about = "School-fee payments reconciled to the đồng; cash on an equal footing; every fee itemised."
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a command, `feerecon` serves.
    #[command(flatten)]
    serve: ServeConfig,
    #[command(flatten)]
    db: DbConfig,
    #[command(flatten)]
    keys: SecretKeyConfig,
    /// Log format.
    #[arg(
        long = "log-format",
        env = "FEERECON_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve(ServeConfig),
    /// Apply database migrations and exit (serve also applies them at start).
    Migrate,
    /// Import data from a file.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Record a payment at the cash desk.
    #[command(subcommand)]
    Pay(PayCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Recompute every audit chain and report whether it is intact.
    VerifyAudit,
    /// Check the books: every audit chain intact, and every payment with credit either
    /// allocated or in the review queue. Non-zero exit when anything is wrong.
    Verify,
    /// A school's day: what was recorded (by channel, fees by bearer, matches, open exceptions);
    /// with `--close`, close it.
    Reconcile {
        /// The school's code.
        #[arg(long)]
        school: String,
        /// YYYY-MM-DD (Asia/Ho_Chi_Minh); yesterday when absent.
        #[arg(long)]
        date: Option<String>,
        /// Close the day: its summary is frozen and audited.
        #[arg(long)]
        close: bool,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Invoices from a CSV file, one row per invoice line (columns in the README). All or nothing.
    Invoices {
        file: PathBuf,
        /// The school's code.
        #[arg(long)]
        school: String,
    },
}

#[derive(Subcommand)]
enum PayCommand {
    /// Cash received at the school office; prints the receipt number.
    Cash {
        /// The school's code.
        #[arg(long)]
        school: String,
        /// Whole đồng received, e.g. 1235000 or 1.235.000.
        #[arg(long)]
        amount: String,
        /// An invoice it pays, by payment code, optionally with the amount: `QD3CFPSA` (its
        /// open balance) or `QD3CFPSA=500000`. Repeat for several invoices.
        #[arg(long = "invoice")]
        invoices: Vec<String>,
        /// The payer's name as given.
        #[arg(long)]
        payer: Option<String>,
        /// Who recorded it, for the audit log (defaults to "cli").
        #[arg(long, default_value = "cli")]
        cashier: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once.
    Create {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// School code, for accountant and cashier tokens.
        #[arg(long)]
        school: Option<String>,
        /// Department code, for auditor tokens.
        #[arg(long)]
        department: Option<String>,
        #[arg(long)]
        label: String,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::from_db(s).ok_or_else(|| "role is admin, accountant, cashier or auditor".into())
}

fn init_tracing(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let db_url = cli.db.database_url.clone();
    match cli.command {
        None => serve(cli.serve, &cli.keys, &db_url).await,
        Some(Command::Serve(cfg)) => serve(cfg, &cli.keys, &db_url).await,
        Some(Command::Migrate) => {
            open(&db_url).await?;
            println!("migrations applied");
            Ok(())
        }
        Some(Command::Import(ImportCommand::Invoices { file, school })) => {
            import_invoices(&db_url, &file, &school).await
        }
        Some(Command::Pay(cmd)) => pay(&db_url, cmd).await,
        Some(Command::Token(cmd)) => token(&db_url, cmd).await,
        Some(Command::VerifyAudit) => verify_audit(&db_url).await,
        Some(Command::Verify) => verify(&db_url).await,
        Some(Command::Reconcile {
            school,
            date,
            close,
        }) => reconcile(&db_url, &school, date.as_deref(), close).await,
    }
}

async fn reconcile(
    db_url: &str,
    school: &str,
    date: Option<&str>,
    close: bool,
) -> anyhow::Result<()> {
    let store = open(db_url).await?;
    let school = store
        .school_by_code(school)
        .await
        .map_err(|e| anyhow!(e.to_string()))?;
    let today = chrono::Utc::now()
        .with_timezone(&feerecon::domain::time::vietnam())
        .date_naive();
    let day = match date {
        Some(d) => feerecon::store::days::parse_day(d).map_err(|e| anyhow!(e.to_string()))?,
        None => today - chrono::Duration::days(1),
    };
    let result = if close {
        store.close_day("cli", &school, day, today).await
    } else {
        store.day(school.id, day).await
    }
    .map_err(|e| anyhow!(e.to_string()))?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

async fn open(db_url: &str) -> anyhow::Result<Store> {
    let store = Store::connect(db_url)
        .await
        .with_context(|| "while connecting to DATABASE_URL")?;
    store.migrate().await.context("while applying migrations")?;
    Ok(store)
}

async fn serve(cfg: ServeConfig, keys: &SecretKeyConfig, db_url: &str) -> anyhow::Result<()> {
    cfg.validate().map_err(|e| anyhow!(e))?;
    if db_url.starts_with("postgres") && keys.secret_key.is_none() {
        tracing::warn!("FEERECON_SECRET_KEY is not set: using a key file; every instance sharing this database needs the same key");
    }
    let sealer = keys.sealer().map_err(|e| anyhow!(e))?;
    let store = open(db_url).await?;
    // A database written before the engine decided in the recording transaction may hold
    // payments nobody will see: they go through the engine once, now.
    match store.sweep_unaccounted().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(payments = n, "unaccounted payments put through the engine"),
        Err(e) => tracing::error!(error = %e, "could not sweep unaccounted payments"),
    }
    if let Some(token) = store.bootstrap_admin(cfg.admin_token.as_deref()).await? {
        // Printed once, to the terminal, never to the log.
        println!("No admin token was active (first start, or FEERECON_ADMIN_TOKEN removed): an admin API token was created. Keep it; it is not shown again:\n\n    {token}\n");
    }
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("while binding {}", cfg.listen))?;
    tracing::info!(listen = %listener.local_addr()?, backend = ?store.backend(), "feerecon listening");
    let mut state = AppState::new(store.clone(), sealer);
    state.server_limits = cfg.limits.server();
    state.webhook_limits = feerecon::http::limits::WebhookLimits::new(cfg.limits.webhooks());
    state.sessions = cfg.sessions.settings().map_err(|e| anyhow!(e))?;
    // Pulls SePay and Casso accounts whose notifications may have been missed.
    let scheduler =
        feerecon::pull::spawn(store.clone(), state.sealer.clone(), state.puller.clone());
    let purge = feerecon::retention::spawn(
        store.clone(),
        chrono::Duration::days(i64::from(cfg.limits.archive_retention_days)),
    );
    let (limits, intake) = (state.server_limits.clone(), state.intake.clone());
    feerecon::http::server::serve(listener, app(state), &limits, shutdown_signal()).await;
    // Connections are closed: what the writers still hold is written or, its sender gone,
    // dropped; whatever is not done by then was never acknowledged.
    if !intake.close(std::time::Duration::from_secs(5)).await {
        tracing::warn!(
            "the intake writers did not finish in time; unacknowledged deliveries are dropped"
        );
    }
    scheduler.abort();
    purge.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

async fn import_invoices(db_url: &str, file: &PathBuf, school_code: &str) -> anyhow::Result<()> {
    let store = open(db_url).await?;
    let school = store
        .school_by_code(&school_code.trim().to_ascii_uppercase())
        .await
        .map_err(|_| anyhow!("no school with code {school_code}"))?;
    let bytes = std::fs::read(file).with_context(|| format!("while reading {}", file.display()))?;
    let bar = ProgressBar::new_spinner().with_message("reading");
    let progress = {
        let bar = bar.clone();
        move |p: ImportProgress| match p {
            ImportProgress::Parsed { rows } => {
                bar.set_message(format!("{rows} rows read; checking"))
            }
            ImportProgress::Written { invoices, of } => {
                if bar.length() != Some(of) {
                    bar.set_length(of);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{bar:40} {pos}/{len} invoices written ({per_sec})",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                }
                bar.set_position(invoices);
            }
        }
    };
    let result = store
        .import_invoices("cli", &school, &bytes, &progress)
        .await;
    bar.finish_and_clear();
    match result {
        Ok(s) => {
            println!(
                "{} rows: {} invoices created, {} already imported, {} students created, {} updated (file sha256 {})",
                s.rows, s.invoices_created, s.invoices_unchanged, s.students_created, s.students_updated, s.file_sha256
            );
            Ok(())
        }
        Err(feerecon::error::Error::Import(feerecon::domain::import::ImportError::Rows(rows))) => {
            eprintln!("Nothing was imported. Fix these rows and import the file again:");
            for r in &rows {
                eprintln!(
                    "  line {}{}: {}",
                    r.line,
                    r.column
                        .as_ref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default(),
                    r.message
                );
            }
            bail!("{} row problem(s)", rows.len())
        }
        Err(e) => Err(anyhow!(e.to_string())),
    }
}

async fn pay(db_url: &str, cmd: PayCommand) -> anyhow::Result<()> {
    let PayCommand::Cash {
        school,
        amount,
        invoices,
        payer,
        cashier,
    } = cmd;
    let store = open(db_url).await?;
    let school = store
        .school_by_code(&school.trim().to_ascii_uppercase())
        .await
        .map_err(|_| anyhow!("no school with code {school}"))?;
    let amount = Vnd::parse_text(&amount).map_err(|e| anyhow!("amount {e}"))?;
    let mut allocations = Vec::new();
    for spec in &invoices {
        let (code, part) = match spec.split_once('=') {
            Some((c, a)) => (
                c,
                Some(Vnd::parse_text(a).map_err(|e| anyhow!("{spec}: amount {e}"))?),
            ),
            None => (spec.as_str(), None),
        };
        let code = PaymentCode::parse(code).map_err(|e| anyhow!("{code}: {e}"))?;
        let (id, school_id) = store
            .invoice_by_code(&code)
            .await?
            .ok_or_else(|| anyhow!("no invoice with payment code {code}"))?;
        if school_id != school.id {
            bail!("invoice {code} belongs to another school");
        }
        let open = store
            .invoice_in_school(school.id, id)
            .await
            .map_err(|e| anyhow!(e.to_string()))?
            .outstanding;
        allocations.push((id, part.unwrap_or(open)));
    }
    let p = NewPayment {
        channel: Channel::Cash,
        provider: "cash".into(),
        provider_ref: None,
        bank_ref: None,
        payer_name: payer,
        memo: None,
        amount,
        received_at: chrono::Utc::now(),
        reported_fee: None,
        allocate: feerecon::plan::intake::Allocate::Given {
            allocations,
            method: feerecon::domain::ledger::AllocationMethod::CashDesk,
        },
        reported_fee_bearer: None,
        credited_account: None,
    };
    let (Recorded::Created(id) | Recorded::Duplicate(id)) = store
        .record_payment(&format!("cli:{cashier}"), &school, p)
        .await
        .map_err(|e| anyhow!(e.to_string()))?;
    let p = store
        .payment(id)
        .await
        .map_err(|e| anyhow!(e.to_string()))?;
    println!(
        "receipt {}: {} received, {} allocated, credit {}",
        p.receipt_no, p.amount, p.allocated, p.unallocated_credit
    );
    Ok(())
}

async fn token(db_url: &str, cmd: TokenCommand) -> anyhow::Result<()> {
    let store = open(db_url).await?;
    match cmd {
        TokenCommand::Create {
            role,
            school,
            department,
            label,
        } => {
            let scope = match (role, school, department) {
                (Role::Admin, None, None) => Scope::All,
                (Role::Accountant | Role::Cashier, Some(code), None) => {
                    Scope::School(store.school_by_code(&code.to_ascii_uppercase()).await.map_err(|_| anyhow!("no school with code {code}"))?.id)
                }
                (Role::Auditor, None, Some(code)) => {
                    let id = store.department_id_by_code(&code.to_ascii_uppercase()).await?.ok_or_else(|| anyhow!("no department with code {code}"))?;
                    Scope::Department(id)
                }
                _ => bail!("admin takes neither --school nor --department; accountant and cashier take --school; auditor takes --department"),
            };
            let (info, token) = store
                .create_token("cli", role, scope, label.trim())
                .await
                .map_err(|e| anyhow!(e.to_string()))?;
            println!(
                "token {} ({}) created. Keep it; it is not shown again:\n\n    {token}\n",
                info.id,
                role.as_str()
            );
        }
        TokenCommand::List => {
            for t in store.list_tokens().await? {
                let scope = match (t.school_id, t.department_id) {
                    (Some(s), _) => format!("school {s}"),
                    (None, Some(d)) => format!("department {d}"),
                    (None, None) => "all".into(),
                };
                let state = match (&t.revoked_at, t.configured) {
                    (Some(r), _) => format!("revoked {r}"),
                    (None, true) => "active, FEERECON_ADMIN_TOKEN".into(),
                    (None, false) => "active".into(),
                };
                println!(
                    "{:>5}  {:<10}  {:<16}  {}  ({state})",
                    t.id,
                    t.role.as_str(),
                    scope,
                    t.label
                );
            }
        }
        TokenCommand::Revoke { id } => {
            store
                .revoke_token("cli", id)
                .await
                .map_err(|e| anyhow!(e.to_string()))?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}

async fn verify(db_url: &str) -> anyhow::Result<()> {
    let audit = verify_audit(db_url).await;
    let store = open(db_url).await?;
    let unaccounted = store.unaccounted_payments().await?;
    if unaccounted.is_empty() {
        println!("every payment with credit is allocated or in the review queue");
    } else {
        println!(
            "{} payment(s) with credit are neither allocated nor in the review queue: {}",
            unaccounted.len(),
            unaccounted
                .iter()
                .map(|(id, _)| id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    audit?;
    if !unaccounted.is_empty() {
        bail!("the ledger's invariant does not hold");
    }
    Ok(())
}

async fn verify_audit(db_url: &str) -> anyhow::Result<()> {
    let store = open(db_url).await?;
    let mut broken = 0;
    for chain in audit::chains(&store).await? {
        let r = audit::verify(&store, &chain).await?;
        if r.intact {
            println!("{:<16} {:>8} records  intact", r.chain, r.records);
        } else {
            broken += 1;
            println!(
                "{:<16} {:>8} records  BROKEN at seq {}",
                r.chain,
                r.records,
                r.first_bad_seq.unwrap_or_default()
            );
        }
    }
    if broken > 0 {
        bail!("{broken} audit chain(s) do not verify");
    }
    Ok(())
}
