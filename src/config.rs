//! Configuration: command-line flags, each with an environment variable and a documented default.

use clap::{Args, ValueEnum};
use std::net::SocketAddr;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/feerecon.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, Args)]
pub struct DbConfig {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host:port/db`.
    #[arg(long = "database-url", env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[arg(long, env = "FEERECON_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// An admin API token to accept (at least 32 characters). Without it, the first start
    /// creates one and prints it once.
    #[arg(
        long = "admin-token",
        env = "FEERECON_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    #[command(flatten)]
    pub limits: LimitsConfig,
    #[command(flatten)]
    pub sessions: SessionConfig,
}

/// Where parents and staff reach the service, and how long their sessions last.
#[derive(Debug, Clone, Args)]
pub struct SessionConfig {
    /// The address parents and staff reach the service at, as printed in parent links
    /// (`https://hocphi.example.edu.vn`). With `https` the session cookie is `__Host-` and
    /// `Secure`; `http` is for a service on the loopback address only. Requests whose `Origin`
    /// is another are refused on cookie sessions.
    #[arg(
        long = "public-url",
        env = "FEERECON_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,
    /// Minutes a staff session lasts at most, however busy.
    #[arg(long, env = "FEERECON_SESSION_MINUTES", default_value_t = 480)]
    pub session_minutes: u32,
    /// Minutes a parent session lasts at most (the link opens a new one).
    #[arg(long, env = "FEERECON_PARENT_SESSION_MINUTES", default_value_t = 120)]
    pub parent_session_minutes: u32,
    /// Minutes a session lasts unused.
    #[arg(long, env = "FEERECON_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: u32,
}

impl SessionConfig {
    /// The settings the HTTP layer uses, or what is wrong, naming the variable.
    pub fn settings(&self) -> Result<crate::http::session::SessionSettings, String> {
        for (name, v) in [
            ("FEERECON_SESSION_MINUTES", self.session_minutes),
            (
                "FEERECON_PARENT_SESSION_MINUTES",
                self.parent_session_minutes,
            ),
            ("FEERECON_SESSION_IDLE_MINUTES", self.session_idle_minutes),
        ] {
            if v == 0 {
                return Err(format!("{name} must be more than 0"));
            }
        }
        let mut s = crate::http::session::SessionSettings::for_url(&self.public_url)
            .map_err(|e| format!("FEERECON_PUBLIC_URL: {e}"))?;
        s.staff_ttl = chrono::Duration::minutes(i64::from(self.session_minutes));
        s.parent_ttl = chrono::Duration::minutes(i64::from(self.parent_session_minutes));
        s.idle = chrono::Duration::minutes(i64::from(self.session_idle_minutes));
        Ok(s)
    }
}

/// What the service will take from clients, and for how long.
#[derive(Debug, Clone, Args)]
pub struct LimitsConfig {
    /// Connections open at once; past it a new connection is answered 503 and closed.
    #[arg(long, env = "FEERECON_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers; also the longest a kept-alive
    /// connection may sit idle.
    #[arg(long, env = "FEERECON_HEADER_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_timeout_seconds: u64,
    /// Seconds a client has to send a request's body.
    #[arg(long, env = "FEERECON_BODY_TIMEOUT_SECONDS", default_value_t = 30)]
    pub body_timeout_seconds: u64,
    /// API requests in progress at once; past it 503 with Retry-After.
    #[arg(long, env = "FEERECON_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// On SIGTERM, seconds requests in flight may take before their connections are closed.
    #[arg(long, env = "FEERECON_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,
    /// Refused webhook deliveries per client address per second (after a burst of 10 times as
    /// many); past it they are answered "too many" and not archived.
    #[arg(
        long,
        env = "FEERECON_WEBHOOK_REFUSALS_PER_SECOND",
        default_value_t = 10
    )]
    pub webhook_refusals_per_second: u32,
    /// Verified webhook deliveries per provider account per second (after a burst of twice as
    /// many).
    #[arg(
        long,
        env = "FEERECON_WEBHOOK_ACCOUNT_PER_SECOND",
        default_value_t = 1000
    )]
    pub webhook_account_per_second: u32,
    /// Days refused webhook deliveries are kept in the archive (30 at least).
    #[arg(long, env = "FEERECON_ARCHIVE_RETENTION_DAYS", default_value_t = 30)]
    pub archive_retention_days: u32,
}

impl LimitsConfig {
    pub fn server(&self) -> crate::http::limits::ServerLimits {
        use std::time::Duration;
        crate::http::limits::ServerLimits {
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_secs(self.header_timeout_seconds),
            body_read_timeout: Duration::from_secs(self.body_timeout_seconds),
            max_in_flight: self.max_in_flight,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            ..Default::default()
        }
    }

    pub fn webhooks(&self) -> crate::http::limits::WebhookRates {
        crate::http::limits::WebhookRates {
            refusals_burst: self.webhook_refusals_per_second.saturating_mul(10),
            refusals_per_second: self.webhook_refusals_per_second,
            account_burst: self.webhook_account_per_second.saturating_mul(2),
            account_per_second: self.webhook_account_per_second,
        }
    }

    fn validate(&self) -> Result<(), String> {
        let positive = [
            ("FEERECON_MAX_CONNECTIONS", self.max_connections as u64),
            (
                "FEERECON_HEADER_TIMEOUT_SECONDS",
                self.header_timeout_seconds,
            ),
            ("FEERECON_BODY_TIMEOUT_SECONDS", self.body_timeout_seconds),
            ("FEERECON_MAX_IN_FLIGHT", self.max_in_flight as u64),
            (
                "FEERECON_SHUTDOWN_GRACE_SECONDS",
                self.shutdown_grace_seconds,
            ),
            (
                "FEERECON_WEBHOOK_REFUSALS_PER_SECOND",
                u64::from(self.webhook_refusals_per_second),
            ),
            (
                "FEERECON_WEBHOOK_ACCOUNT_PER_SECOND",
                u64::from(self.webhook_account_per_second),
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be more than 0"));
        }
        if self.archive_retention_days < 30 {
            return Err("FEERECON_ARCHIVE_RETENTION_DAYS must be 30 or more (the database keeps refused deliveries that long)".into());
        }
        Ok(())
    }
}

impl ServeConfig {
    /// Checks what clap cannot, naming the variable at fault.
    pub fn validate(&self) -> Result<(), String> {
        self.limits.validate()?;
        self.sessions.settings()?;
        if let Some(t) = &self.admin_token {
            if t.trim().len() < 32 || t.chars().any(char::is_whitespace) {
                return Err(
                    "FEERECON_ADMIN_TOKEN must be at least 32 characters without spaces".into(),
                );
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the key that seals provider secrets comes from. It is never stored in the database.
#[derive(Debug, Clone, Args)]
pub struct SecretKeyConfig {
    /// The key, base64 of 32 bytes (`openssl rand -base64 32`). Several instances sharing one
    /// database must share this key.
    #[arg(
        long = "secret-key",
        env = "FEERECON_SECRET_KEY",
        hide_env_values = true,
        global = true
    )]
    pub secret_key: Option<String>,
    /// Without FEERECON_SECRET_KEY: a file holding the key, created (mode 0600) if missing.
    #[arg(
        long = "secret-key-file",
        env = "FEERECON_SECRET_KEY_FILE",
        default_value = "data/secret.key",
        global = true
    )]
    pub secret_key_file: std::path::PathBuf,
}

impl SecretKeyConfig {
    pub fn sealer(&self) -> Result<crate::sealer::Sealer, String> {
        if let Some(k) = &self.secret_key {
            return crate::sealer::Sealer::from_base64(k)
                .map_err(|e| format!("FEERECON_SECRET_KEY: {e}"));
        }
        let path = &self.secret_key_file;
        let text = read_or_create_key(
            path,
            "FEERECON_SECRET_KEY_FILE",
            crate::sealer::Sealer::generate_key,
        )?;
        crate::sealer::Sealer::from_base64(&text)
            .map_err(|e| format!("FEERECON_SECRET_KEY_FILE {}: {e}", path.display()))
    }
}

/// Where the key that signs audit checkpoints comes from. It is never stored in the database,
/// and it is another key than the secret key: whoever can read the service's secret key (and so
/// MAC audit records) still cannot sign a checkpoint if this one is kept elsewhere.
#[derive(Debug, Clone, Args)]
pub struct AuditKeyConfig {
    /// The Ed25519 signing key, base64 of its 32-byte seed. Instances sharing a database share it.
    #[arg(
        long = "audit-signing-key",
        env = "FEERECON_AUDIT_SIGNING_KEY",
        hide_env_values = true,
        global = true
    )]
    pub audit_signing_key: Option<String>,
    /// Without FEERECON_AUDIT_SIGNING_KEY: a file holding the key, created (mode 0600) if missing.
    #[arg(
        long = "audit-signing-key-file",
        env = "FEERECON_AUDIT_SIGNING_KEY_FILE",
        default_value = "data/audit-signing.key",
        global = true
    )]
    pub audit_signing_key_file: std::path::PathBuf,
    /// The log's name: the start of every checkpoint's origin line and its signature's key name.
    #[arg(
        long = "audit-log-name",
        env = "FEERECON_AUDIT_LOG_NAME",
        default_value = "feerecon",
        global = true
    )]
    pub audit_log_name: String,
}

impl AuditKeyConfig {
    pub fn signer(&self) -> Result<crate::checkpoint::CheckpointSigner, String> {
        use crate::checkpoint::CheckpointSigner;
        if let Some(k) = &self.audit_signing_key {
            return CheckpointSigner::from_base64(&self.audit_log_name, k)
                .map_err(|e| format!("FEERECON_AUDIT_SIGNING_KEY: {e}"));
        }
        let path = &self.audit_signing_key_file;
        let text = read_or_create_key(
            path,
            "FEERECON_AUDIT_SIGNING_KEY_FILE",
            crate::checkpoint::generate_key,
        )?;
        CheckpointSigner::from_base64(&self.audit_log_name, &text)
            .map_err(|e| format!("FEERECON_AUDIT_SIGNING_KEY_FILE {}: {e}", path.display()))
    }
}

/// The key in `path`, or a new one from `generate` written there (mode 0600, its folder 0700)
/// when the file does not exist. Errors name `var`, never the key.
fn read_or_create_key(
    path: &std::path::Path,
    var: &str,
    generate: fn() -> String,
) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_private_dir(dir)
                    .map_err(|e| format!("{var}: cannot create {}: {e}", dir.display()))?;
            }
            let key = generate();
            write_private(path, &key)
                .map_err(|e| format!("{var}: cannot write {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("{var}: cannot read {}: {e}", path.display())),
    }
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Creates `dir` and any missing parents with mode 0700 (the data folder holds the database and
/// the key). A folder that already exists is left as it is: its mode is the operator's choice.
#[cfg(unix)]
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Creates `path` empty with mode 0600 if it does not exist (an empty file is an empty SQLite
/// database); an existing file is left as it is.
#[cfg(unix)]
pub fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
pub fn create_private_file(_path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}
