//! Start-up: open the store, load the secret key, install the first admin token.

use crate::auth::{generate_token, hash_token, Scope};
use crate::config::{redact_url, Config, DatabaseKind};
use crate::lease::{LeaseCoordinator, LeaseSettings, LeaseStore, Ownership};
use crate::scheduler::{PollScheduler, SchedulerSettings};
use crate::secrets::{write_private_file, SecretBox};
use crate::state::{ApiSettings, AppState};
use crate::store::{PostgresStore, SqliteStore, Store, StoreError, TokenRecord};
use anyhow::{bail, Context};
use pylon_core::Registry;
use std::sync::Arc;
use std::time::Duration as StdDuration;
use std::time::Duration;

/// Builds the application state from configuration and the linked providers, and starts
/// polling every enabled connection.
pub async fn build_state(config: &Config, registry: Registry) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let (store, leases) = open_store_with_leases(config).await?;
    let secrets = SecretBox::load_or_create(&config.secret_key_path())?;
    bootstrap_admin_token(config, store.as_ref()).await?;
    let registry = Arc::new(registry);
    let secrets = Arc::new(secrets);
    // One id per process: a restarted replica is a new replica, and its predecessor's
    // leases expire (or were released on shutdown) like anyone's.
    let ownership = leases.as_ref().map(|leases| {
        let replica_id = uuid::Uuid::now_v7().to_string();
        tracing::info!(%replica_id, lease_seconds = config.lease_seconds, "scale-out: polling only connections this replica leases");
        Ownership::new(replica_id, leases.clone())
    });
    let scheduler = Arc::new(PollScheduler::new(
        store.clone(),
        registry.clone(),
        secrets.clone(),
        SchedulerSettings {
            max_concurrent_polls: config.max_concurrent_polls,
            poll_timeout: Duration::from_secs(config.poll_timeout_seconds.max(1)),
            retention: config.feed_retention(),
            collect_feeds: config.collect_feeds,
        },
        ownership.clone(),
    ));
    scheduler
        .start_all()
        .await
        .context("cannot schedule saved connections")?;
    let lease = match (leases, ownership) {
        (Some(leases), Some(ownership)) => {
            let coordinator = Arc::new(LeaseCoordinator::new(
                leases,
                ownership,
                LeaseSettings {
                    lease: StdDuration::from_secs(config.lease_seconds),
                },
            ));
            coordinator.start(scheduler.clone()).await;
            Some(coordinator)
        }
        _ => None,
    };
    Ok(AppState {
        store,
        registry,
        secrets,
        scheduler,
        lease,
        settings: Arc::new(ApiSettings {
            test_timeout: Duration::from_secs(config.test_timeout_seconds.max(1)),
            max_body_bytes: config.max_body_bytes,
        }),
    })
}

/// Opens the configured database, applying pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(open_store_with_leases(config).await?.0)
}

/// Opens the store `database_url` names: SQLite, or PostgreSQL, whose store also holds the
/// leases of scale-out (returned separately, as only PostgreSQL has them).
pub async fn open_store_with_leases(
    config: &Config,
) -> anyhow::Result<(Arc<dyn Store>, Option<Arc<dyn LeaseStore>>)> {
    let url = config.database_url();
    match config.database_kind() {
        Some(DatabaseKind::Sqlite) => Ok((
            Arc::new(
                SqliteStore::open(&url)
                    .await
                    .context("cannot open the database")?,
            ),
            None,
        )),
        Some(DatabaseKind::Postgres) => {
            let store = Arc::new(PostgresStore::open(&url).await.with_context(|| {
                format!("cannot open the PostgreSQL database {}", redact_url(&url))
            })?);
            Ok((store.clone(), Some(store)))
        }
        None => bail!(
            "unsupported database_url {}: use sqlite://... or postgres://...",
            redact_url(&url)
        ),
    }
}

/// On first start (no tokens at all) installs an admin token holding every scope: the
/// configured `admin_token`, or a generated one written to `data_dir/admin-token` (0600).
pub async fn bootstrap_admin_token(config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    if store.token_count().await? > 0 {
        return Ok(());
    }
    let hash = match &config.admin_token {
        Some(token) => {
            tracing::info!("installed the configured admin token");
            hash_token(token.expose())
        }
        None => {
            let new_token = generate_token();
            let path = config.admin_token_path();
            if path.exists() {
                std::fs::remove_file(&path).with_context(|| {
                    format!(
                        "cannot replace the stale admin token file {}",
                        path.display()
                    )
                })?;
            }
            write_private_file(&path, format!("{}\n", new_token.token.expose()).as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated the admin token; read it from this file");
            new_token.hash
        }
    };
    let inserted = store
        .insert_token(&TokenRecord {
            id: uuid::Uuid::now_v7().to_string(),
            name: "admin".into(),
            scopes: Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect(),
            token_hash: hash,
            created_at: chrono::Utc::now(),
            last_used_at: None,
        })
        .await;
    match inserted {
        Ok(()) => Ok(()),
        // Replicas starting together on one database with the same configured token: the
        // first one installed it.
        Err(StoreError::Database(error)) if store.token_count().await? > 0 => {
            tracing::debug!(%error, "another replica installed the admin token first");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}
