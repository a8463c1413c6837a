//! Serving: bind, serve, and stop gracefully on SIGTERM or Ctrl-C.

use crate::api::app;
use crate::bootstrap::build_state;
use crate::config::Config;
use anyhow::Context;
use pylon_core::Registry;

/// Runs the server until a shutdown signal, then finishes in-flight requests and returns.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let registry = Registry::from_inventory().context("provider registry is inconsistent")?;
    let state = build_state(&config, registry).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let platforms: Vec<&str> = state
        .registry
        .providers()
        .iter()
        .map(|p| p.descriptor().platform)
        .collect();
    tracing::info!(%address, ?platforms, data_dir = %config.data_dir.display(), "pylon listening");
    let scheduler = state.scheduler.clone();
    let lease = state.lease.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    // Polls finish first while the lease loop keeps their leases renewed; then every lease
    // is given back so other replicas take over at once.
    scheduler.shutdown().await;
    if let Some(lease) = lease {
        lease.shutdown().await;
    }
    tracing::info!("pylon stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
