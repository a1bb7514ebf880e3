//! The `feerecon` command: the HTTP service and the tools an administrator or accountant runs.

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use feerecon::audit;
use feerecon::config::{AuditKeyConfig, DbConfig, LogFormat, SecretKeyConfig, ServeConfig};
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

// A school's index is millions of small allocations kept for hours beside short-lived request
// ones; glibc's allocator spent a fifth of the intake writer's time on its free lists there
// (`perf`, benches/recon.rs), mimalloc's size-class pages do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    #[command(flatten)]
    audit_keys: AuditKeyConfig,
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
    /// Recompute every audit chain (hashes, and MACs when the secret key is here) and compare it
    /// with the signed checkpoints: those in the database and those in --checkpoints. Names what
    /// was done (changed, deleted, forged, truncated, rewritten, chain deleted); non-zero exit
    /// when anything is wrong.
    VerifyAudit {
        /// A file of signed checkpoints, as `feerecon checkpoints` prints them: every chain must
        /// extend every checkpoint in it.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The key the checkpoints must be signed with (`name+keyid+base64`, as
        /// `feerecon checkpoints --key` prints it); by default this installation's own.
        #[arg(long)]
        vkey: Option<String>,
    },
    /// Print the latest signed checkpoint of every chain (C2SP signed notes, one after another)
    /// from the database or, with --server, from the API. Keep them: `verify-audit
    /// --checkpoints FILE` proves the chains still extend them.
    Checkpoints {
        /// The service's base URL (`https://…`): download with an auditor's or admin's token
        /// instead of reading the database.
        #[arg(long)]
        server: Option<String>,
        /// The API token for --server.
        #[arg(long, env = "FEERECON_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Sign the chains that moved since their last checkpoint first (from the database).
        #[arg(long, conflicts_with = "server")]
        sign: bool,
        /// Print the verifier key instead of the checkpoints.
        #[arg(long)]
        key: bool,
    },
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
    // Whatever writes audit records MACs them with the key derived from the secret key.
    if !matches!(
        cli.command,
        Some(Command::VerifyAudit { .. } | Command::Verify | Command::Checkpoints { .. })
    ) {
        let sealer = cli.keys.sealer().map_err(|e| anyhow!(e))?;
        audit::install_mac_key(sealer.audit_mac_key());
    }
    match cli.command {
        None => serve(cli.serve, &cli.keys, &cli.audit_keys, &db_url).await,
        Some(Command::Serve(cfg)) => serve(cfg, &cli.keys, &cli.audit_keys, &db_url).await,
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
        Some(Command::VerifyAudit { checkpoints, vkey }) => {
            let keys = VerifyKeys::new(&cli.keys, &cli.audit_keys, vkey.as_deref())?;
            verify_audit(&db_url, &keys, checkpoints.as_deref()).await
        }
        Some(Command::Verify) => {
            let keys = VerifyKeys::new(&cli.keys, &cli.audit_keys, None)?;
            verify(&db_url, &keys).await
        }
        Some(Command::Checkpoints {
            server,
            token,
            sign,
            key,
        }) => checkpoints(&db_url, &cli.audit_keys, server, token, sign, key).await,
        Some(Command::Reconcile {
            school,
            date,
            close,
        }) => reconcile(&db_url, &cli.audit_keys, &school, date.as_deref(), close).await,
    }
}

async fn reconcile(
    db_url: &str,
    audit_keys: &AuditKeyConfig,
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
    if close {
        // Every daily close is checkpointed, from the CLI as from the API.
        let signer = audit_keys.signer().map_err(|e| anyhow!(e))?;
        let chain = audit::Chain::School(school.id).key();
        if let Err(e) = feerecon::checkpoint::sign_chain(&store, &signer, &chain).await {
            eprintln!("the day is closed but its checkpoint was not signed: {e}");
        }
    }
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

async fn serve(
    cfg: ServeConfig,
    keys: &SecretKeyConfig,
    audit_keys: &AuditKeyConfig,
    db_url: &str,
) -> anyhow::Result<()> {
    cfg.validate().map_err(|e| anyhow!(e))?;
    if db_url.starts_with("postgres") && keys.secret_key.is_none() {
        tracing::warn!("FEERECON_SECRET_KEY is not set: using a key file; every instance sharing this database needs the same key");
    }
    if db_url.starts_with("postgres") && audit_keys.audit_signing_key.is_none() {
        tracing::warn!("FEERECON_AUDIT_SIGNING_KEY is not set: using a key file; every instance sharing this database needs the same key");
    }
    let sealer = keys.sealer().map_err(|e| anyhow!(e))?;
    let signer = std::sync::Arc::new(audit_keys.signer().map_err(|e| anyhow!(e))?);
    let store = open(db_url).await?;
    // Ledger rows from before coverage existed are committed to once, before anything else.
    match feerecon::coverage::baseline(&store).await {
        Ok(Some(n)) => tracing::info!(units = n, "ledger coverage baseline recorded"),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not record the ledger coverage baseline"),
    }
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
    state.checkpoints = signer.clone();
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
    // Signs the audit chains that moved, at start and hourly.
    let signing = feerecon::checkpoint::spawn(store.clone(), signer);
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
    signing.abort();
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

async fn verify(db_url: &str, keys: &VerifyKeys) -> anyhow::Result<()> {
    let audit = verify_audit(db_url, keys, None).await;
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

/// The keys a verification uses, each only if it is here: verifying never creates a key (a new
/// key would make every MAC look forged).
struct VerifyKeys {
    /// Checks MACs.
    mac: bool,
    /// Checks checkpoint signatures.
    checkpoints: Option<feerecon::checkpoint::NoteVerifier>,
}

impl VerifyKeys {
    fn new(
        keys: &SecretKeyConfig,
        audit_keys: &AuditKeyConfig,
        vkey: Option<&str>,
    ) -> anyhow::Result<Self> {
        let mac = if keys.secret_key.is_some() || keys.secret_key_file.exists() {
            let sealer = keys.sealer().map_err(|e| anyhow!(e))?;
            audit::install_mac_key(sealer.audit_mac_key());
            true
        } else {
            false
        };
        let checkpoints = match vkey {
            Some(v) => Some(
                feerecon::checkpoint::NoteVerifier::from_vkey(v)
                    .map_err(|e| anyhow!("--vkey: {e}"))?,
            ),
            None if audit_keys.audit_signing_key.is_some()
                || audit_keys.audit_signing_key_file.exists() =>
            {
                Some(audit_keys.signer().map_err(|e| anyhow!(e))?.verifier())
            }
            None => None,
        };
        Ok(Self { mac, checkpoints })
    }
}

fn kind_name(kind: audit::ProblemKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn verify_audit(
    db_url: &str,
    keys: &VerifyKeys,
    file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let store = open(db_url).await?;
    let mut broken = 0;
    if !keys.mac {
        println!("no secret key here (FEERECON_SECRET_KEY or its file): MACs are not checked, so a forged append with correct hashes is not detected");
    }
    // Chain -> what vouches for it: the checkpoints in the file, then those stored.
    let mut anchors: std::collections::BTreeMap<String, Vec<audit::Anchor>> = Default::default();
    if let Some(path) = file {
        let Some(verifier) = &keys.checkpoints else {
            bail!("--checkpoints needs the key they are signed with: --vkey, or this installation's FEERECON_AUDIT_SIGNING_KEY");
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("while reading {}", path.display()))?;
        let notes = feerecon::checkpoint::split_notes(&text);
        if notes.is_empty() {
            bail!("{} holds no checkpoint", path.display());
        }
        for (i, note) in notes.iter().enumerate() {
            match verifier.open(note) {
                Ok(cp) => anchors.entry(cp.chain).or_default().push(audit::Anchor {
                    size: cp.size,
                    head: cp.head,
                    source: format!("checkpoint {} of {}", i + 1, path.display()),
                }),
                Err(e) => {
                    broken += 1;
                    println!(
                        "checkpoint {} of {}: bad_checkpoint: {e}",
                        i + 1,
                        path.display()
                    );
                }
            }
        }
    }
    let mut bad = std::collections::HashMap::new();
    if let Some(v) = &keys.checkpoints {
        for chain in audit::chains(&store).await? {
            let (stored, b) = feerecon::checkpoint::stored_anchors(&store, v, &chain).await?;
            anchors.entry(chain.clone()).or_default().extend(stored);
            bad.insert(chain, b);
        }
    }
    let anchors: std::collections::HashMap<_, _> = anchors.into_iter().collect();
    for mut r in audit::verify_all(&store, None, anchors).await? {
        for b in bad.remove(&r.chain).unwrap_or_default() {
            r.add_problem(audit::ProblemKind::BadCheckpoint, None, b);
        }
        if r.intact {
            println!(
                "{:<16} {:>8} records  intact ({} checkpoint(s))",
                r.chain, r.records, r.checkpoints
            );
        } else {
            broken += 1;
            println!(
                "{:<16} {:>8} records  BROKEN{}",
                r.chain,
                r.records,
                r.first_bad_seq
                    .map(|s| format!(" at seq {s}"))
                    .unwrap_or_default()
            );
            for p in &r.problems {
                println!("    {}: {}", kind_name(p.kind), p.message);
            }
        }
    }
    if broken > 0 {
        bail!("{broken} audit chain(s) or checkpoint(s) do not verify");
    }
    Ok(())
}

async fn checkpoints(
    db_url: &str,
    audit_keys: &AuditKeyConfig,
    server: Option<String>,
    token: Option<String>,
    sign: bool,
    key: bool,
) -> anyhow::Result<()> {
    if let Some(base) = server {
        let base = base.trim_end_matches('/');
        let client = reqwest::Client::new();
        let path = if key {
            "/api/v1/audit/checkpoints/key"
        } else {
            "/api/v1/audit/checkpoints"
        };
        let mut req = client.get(format!("{base}{path}"));
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.context("while calling the service")?;
        let status = resp.status();
        let text = resp.text().await.context("while reading the answer")?;
        if !status.is_success() {
            bail!("the service answered {status}");
        }
        let v: serde_json::Value = serde_json::from_str(&text).context("the answer is not JSON")?;
        if key {
            println!("{}", v["vkey"].as_str().unwrap_or_default());
        } else {
            for c in v.as_array().map(Vec::as_slice).unwrap_or_default() {
                print!("{}", c["note"].as_str().unwrap_or_default());
                println!();
            }
        }
        return Ok(());
    }
    let signer = audit_keys.signer().map_err(|e| anyhow!(e))?;
    if key {
        println!("{}", signer.verifier().vkey());
        return Ok(());
    }
    let store = open(db_url).await?;
    if sign {
        let n = feerecon::checkpoint::sign_all(&store, &signer)
            .await
            .map_err(|e| anyhow!(e.to_string()))?;
        eprintln!("{n} chain(s) signed");
    }
    for c in feerecon::checkpoint::latest(&store, None)
        .await
        .map_err(|e| anyhow!(e.to_string()))?
    {
        print!("{}", c.note);
        println!();
    }
    Ok(())
}
