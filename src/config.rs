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
}

impl ServeConfig {
    /// Checks what clap cannot, naming the variable at fault.
    pub fn validate(&self) -> Result<(), String> {
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
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    create_private_dir(dir).map_err(|e| {
                        format!(
                            "FEERECON_SECRET_KEY_FILE: cannot create {}: {e}",
                            dir.display()
                        )
                    })?;
                }
                let key = crate::sealer::Sealer::generate_key();
                write_private(path, &key).map_err(|e| {
                    format!(
                        "FEERECON_SECRET_KEY_FILE: cannot write {}: {e}",
                        path.display()
                    )
                })?;
                key
            }
            Err(e) => {
                return Err(format!(
                    "FEERECON_SECRET_KEY_FILE: cannot read {}: {e}",
                    path.display()
                ))
            }
        };
        crate::sealer::Sealer::from_base64(&text)
            .map_err(|e| format!("FEERECON_SECRET_KEY_FILE {}: {e}", path.display()))
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
