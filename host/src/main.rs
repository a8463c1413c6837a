//! The `pylon` binary: parses the command line, loads configuration and hands over to the
//! library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use pylon_host::config::Config;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "pylon", version, about = "Pylon platform-connector server")]
struct Cli {
    /// TOML configuration file (also `PYLON_CONFIG`).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Serve the read-only MCP assistant surface on stdin/stdout, acting with the API
    /// token in `mcp_token` (`PYLON_MCP_TOKEN`).
    Mcp,
    /// List the registered providers.
    Providers,
    /// Write the JSON Schemas of the public shapes and `openapi.json` into a directory.
    Schema {
        /// Output directory (created if missing); the repository keeps them in `schemas/`.
        #[arg(long, default_value = "schemas")]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
            pylon_host::telemetry::init(&config)?;
            pylon_host::server::serve(config).await
        }
        Command::Mcp => {
            let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
            pylon_host::telemetry::init_to(&config, pylon_host::telemetry::LogOutput::Stderr)?;
            let registry = pylon_core::Registry::from_inventory()?;
            pylon_host::mcp::stdio::serve(config, registry).await
        }
        Command::Providers => {
            let registry = pylon_core::Registry::from_inventory()?;
            for provider in registry.providers() {
                let d = provider.descriptor();
                println!(
                    "{:<16} /api/{}/connections  {} ({:?})",
                    d.platform, d.slug, d.display_name, d.readiness
                );
            }
            Ok(())
        }
        Command::Schema { out } => {
            let registry = pylon_core::Registry::from_inventory()?;
            for path in pylon_host::schema::write_all(&registry, &out)? {
                println!("{}", path.display());
            }
            Ok(())
        }
    }
}
