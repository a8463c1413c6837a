//! `pylon mcp`: the assistant surface over stdio, for an assistant that starts Pylon as a
//! local child process.
//!
//! It reads the same configuration as `pylon serve` (so the same database and secret key)
//! and acts with the API token in the `mcp_token` key (`PYLON_MCP_TOKEN`), which must hold
//! `monitoring:read`: the same rule as `POST /mcp`, and revoking the token ends its access
//! on the next request. It starts no scheduler and serves no HTTP: it reads what a running
//! `pylon serve` has stored. Logs go to stderr, since stdout carries the protocol.

use super::server::{Admission, AssistantServer};
use super::view::{ReadView, TokenStanding};
use crate::bootstrap::open_store;
use crate::config::Config;
use crate::secrets::SecretBox;
use anyhow::{bail, Context};
use pylon_core::Registry;
use rmcp::ServiceExt;
use std::sync::Arc;

/// Serves MCP on stdin/stdout until the client closes its end.
pub async fn serve(config: Config, registry: Registry) -> anyhow::Result<()> {
    let Some(token) = config.mcp_token.clone() else {
        bail!(
            "pylon mcp needs an API token with the monitoring:read scope in the `mcp_token` \
             key (or PYLON_MCP_TOKEN)"
        );
    };
    let key_path = config.secret_key_path();
    if !key_path.exists() {
        // Creating a key here would make every stored secret unreadable to `pylon serve`.
        bail!(
            "no secret key at {}: run `pylon serve` with this configuration first",
            key_path.display()
        );
    }
    let store = open_store(&config).await?;
    let secrets = Arc::new(SecretBox::load_or_create(&key_path)?);
    let view = ReadView::new(store, secrets, Arc::new(registry));
    match view.token_standing(token.expose()).await? {
        TokenStanding::Admitted => {}
        TokenStanding::Unknown => bail!("the token in `mcp_token` is unknown or revoked"),
        TokenStanding::MissingScope => {
            bail!("the token in `mcp_token` lacks the monitoring:read scope")
        }
    }
    tracing::info!("serving MCP on stdio");
    let server = AssistantServer::new(view, Admission::Token(token));
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP client did not initialise")?;
    running
        .waiting()
        .await
        .context("the MCP session ended with an error")?;
    tracing::info!("MCP client disconnected");
    Ok(())
}
