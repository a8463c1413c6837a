//! Process configuration: defaults < TOML file (`--config` or `PYLON_CONFIG`) < `PYLON_*`
//! environment variables, merged by figment.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use pylon_core::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every configuration key. Field names are the TOML keys and, upper-cased with a `PYLON_`
/// prefix, the environment variables.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database, the secret key and the bootstrap admin token.
    pub data_dir: PathBuf,
    /// Database URL; defaults to `sqlite://<data_dir>/pylon.db`.
    pub database_url: Option<String>,
    /// Admin token to install on first start, instead of a generated one.
    #[serde(deserialize_with = "deserialize_secret", default)]
    pub admin_token: Option<SecretString>,
    /// The API token `pylon mcp` (the MCP server on stdio) acts with; it needs the
    /// `monitoring:read` scope. `pylon serve` ignores it: its MCP clients send their own.
    #[serde(deserialize_with = "deserialize_secret", default)]
    pub mcp_token: Option<SecretString>,
    /// File holding the 32-byte key that encrypts secrets at rest; defaults to
    /// `<data_dir>/secret.key` and is generated (mode 0600) when absent.
    pub secret_key_file: Option<PathBuf>,
    /// Log filter in `tracing` env-filter syntax, e.g. `info` or `pylon_host=debug`.
    pub log: String,
    pub log_format: LogFormat,
    /// Upper bound of one connection test, in seconds.
    pub test_timeout_seconds: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Polls running at once across all connections.
    pub max_concurrent_polls: usize,
    /// Upper bound of one poll, in seconds.
    pub poll_timeout_seconds: u64,
    /// Event and task history older than this many days is pruned.
    pub history_retention_days: u32,
    /// At most this many history records are kept per connection (the newest).
    pub history_max_rows: u32,
    /// Performance samples older than this many hours are pruned.
    pub metrics_retention_hours: u32,
    /// Whether event/task history and performance samples are read after each successful
    /// poll (for providers that have them). `false` turns both off for every connection.
    pub collect_feeds: bool,
    /// With several replicas on PostgreSQL: how long a replica's lease on a connection
    /// lasts without renewal, in seconds. A dead replica's connections move to the others
    /// within about this long; renewals run every third of it. Ignored on SQLite.
    pub lease_seconds: u64,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("admin_token", &self.admin_token)
            .field("mcp_token", &self.mcp_token)
            .field("secret_key_file", &self.secret_key_file)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("test_timeout_seconds", &self.test_timeout_seconds)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_concurrent_polls", &self.max_concurrent_polls)
            .field("poll_timeout_seconds", &self.poll_timeout_seconds)
            .field("history_retention_days", &self.history_retention_days)
            .field("history_max_rows", &self.history_max_rows)
            .field("metrics_retention_hours", &self.metrics_retention_hours)
            .field("collect_feeds", &self.collect_feeds)
            .field("lease_seconds", &self.lease_seconds)
            .finish()
    }
}

/// The databases `database_url` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Embedded, one process: the default.
    Sqlite,
    /// Shared by several replicas (scale-out).
    Postgres,
}

impl DatabaseKind {
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Hides a password embedded in a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!(
                "{}://{}@{}",
                &url[..scheme_end],
                SecretString::MASK,
                &url[at + 1..]
            )
        }
        _ => url.to_owned(),
    }
}

fn deserialize_secret<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    let value: Option<String> = Option::deserialize(deserializer)?;
    Ok(value.filter(|v| !v.is_empty()).map(SecretString::new))
}

#[derive(Serialize)]
struct Defaults {
    listen: &'static str,
    data_dir: &'static str,
    log: &'static str,
    log_format: LogFormat,
    test_timeout_seconds: u64,
    max_body_bytes: usize,
    max_concurrent_polls: usize,
    poll_timeout_seconds: u64,
    history_retention_days: u32,
    history_max_rows: u32,
    metrics_retention_hours: u32,
    collect_feeds: bool,
    lease_seconds: u64,
}

/// Bounds of `lease_seconds`: below 3 s a renewal every third of it is too tight for a
/// database round trip; above 10 minutes a dead replica's connections wait too long.
pub const LEASE_SECONDS_RANGE: std::ops::RangeInclusive<u64> = 3..=600;

const DEFAULTS: Defaults = Defaults {
    listen: "127.0.0.1:8080",
    data_dir: "./data",
    log: "info",
    log_format: LogFormat::Text,
    test_timeout_seconds: 15,
    max_body_bytes: 256 * 1024,
    max_concurrent_polls: 8,
    poll_timeout_seconds: 120,
    history_retention_days: 30,
    history_max_rows: 10_000,
    metrics_retention_hours: 6,
    collect_feeds: true,
    lease_seconds: 30,
};

impl Config {
    /// Loads the configuration from defaults, an optional TOML file and the environment.
    /// `file` wins over `PYLON_CONFIG`.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("PYLON_CONFIG").map(PathBuf::from));
        let mut figment = Figment::from(Serialized::defaults(DEFAULTS));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Self = figment
            .merge(Env::prefixed("PYLON_").ignore(&["config"]))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values a type cannot: ranges and schemes.
    fn validate(&self) -> Result<(), Box<figment::Error>> {
        if !LEASE_SECONDS_RANGE.contains(&self.lease_seconds) {
            return Err(Box::new(figment::Error::from(format!(
                "lease_seconds must be between {} and {} (got {})",
                LEASE_SECONDS_RANGE.start(),
                LEASE_SECONDS_RANGE.end(),
                self.lease_seconds
            ))));
        }
        if let Some(url) = &self.database_url {
            if DatabaseKind::of(url).is_none() {
                return Err(Box::new(figment::Error::from(format!(
                    "database_url must start with sqlite:, postgres:// or postgresql:// (got {})",
                    redact_url(url)
                ))));
            }
        }
        Ok(())
    }

    /// Which database `database_url` names.
    pub fn database_kind(&self) -> Option<DatabaseKind> {
        DatabaseKind::of(&self.database_url())
    }

    /// Configuration for tests and embedding: defaults with the given data directory.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            database_url: None,
            admin_token: None,
            mcp_token: None,
            secret_key_file: None,
            log: DEFAULTS.log.to_owned(),
            log_format: DEFAULTS.log_format,
            test_timeout_seconds: DEFAULTS.test_timeout_seconds,
            max_body_bytes: DEFAULTS.max_body_bytes,
            max_concurrent_polls: DEFAULTS.max_concurrent_polls,
            poll_timeout_seconds: DEFAULTS.poll_timeout_seconds,
            history_retention_days: DEFAULTS.history_retention_days,
            history_max_rows: DEFAULTS.history_max_rows,
            metrics_retention_hours: DEFAULTS.metrics_retention_hours,
            collect_feeds: DEFAULTS.collect_feeds,
            lease_seconds: DEFAULTS.lease_seconds,
        }
    }

    /// Feed retention, each bound at least 1 so a zero cannot delete everything at once.
    pub fn feed_retention(&self) -> crate::store::FeedRetention {
        crate::store::FeedRetention {
            history_days: self.history_retention_days.max(1),
            history_rows_per_connection: self.history_max_rows.max(1),
            metrics_hours: self.metrics_retention_hours.max(1),
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("pylon.db").display()))
    }

    pub fn secret_key_path(&self) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join("admin-token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_password_is_redacted_in_debug() {
        assert_eq!(
            redact_url("postgres://user:pw@db:5432/pylon"),
            "postgres://********@db:5432/pylon"
        );
        assert_eq!(
            redact_url("sqlite://./data/pylon.db"),
            "sqlite://./data/pylon.db"
        );
    }

    #[test]
    fn database_kinds_follow_the_url_scheme() {
        for (url, kind) in [
            ("sqlite://./data/pylon.db", Some(DatabaseKind::Sqlite)),
            ("sqlite::memory:", Some(DatabaseKind::Sqlite)),
            ("postgres://u:p@db/pylon", Some(DatabaseKind::Postgres)),
            ("postgresql://db/pylon", Some(DatabaseKind::Postgres)),
            ("mysql://db/pylon", None),
            ("postgres:/db", None),
        ] {
            assert_eq!(DatabaseKind::of(url), kind, "{url}");
        }
    }
}
