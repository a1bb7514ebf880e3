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
