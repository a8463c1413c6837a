//! Logging set-up from the `log` and `log_format` keys.

use crate::config::{Config, LogFormat};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    Stdout,
    /// For `pylon mcp`, whose stdout carries the protocol and must hold nothing else.
    Stderr,
}

/// Installs the global subscriber writing to stdout. `RUST_LOG`, when set, overrides the
/// `log` key.
pub fn init(config: &Config) -> anyhow::Result<()> {
    init_to(config, LogOutput::Stdout)
}

/// Installs the global subscriber writing to `output`.
pub fn init_to(config: &Config, output: LogOutput) -> anyhow::Result<()> {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| config.log.clone());
    let filter = EnvFilter::try_new(&filter)
        .map_err(|e| anyhow::anyhow!("invalid log filter {filter:?}: {e}"))?;
    let writer = match output {
        LogOutput::Stdout => BoxMakeWriter::new(std::io::stdout),
        LogOutput::Stderr => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
