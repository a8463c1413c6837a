//! [`ReadView`]: everything the assistant surface can reach, and nothing that writes.

use crate::api::alerts::{alert_page, AlertPage};
use crate::api::connections::{connection_items, ConnectionItem};
use crate::api::error::ApiError;
use crate::api::feeds::{check_feed, history_page, metric_series, Feed, HistoryPage};
use crate::api::platforms::descriptors;
use crate::api::resources::resource_page;
use crate::auth::{hash_token, Scope};
use crate::secrets::SecretBox;
use crate::state::AppState;
use crate::store::{AlertQuery, HistoryQuery, ResourceJson, ResourceQuery, Store};
use chrono::{DateTime, Utc};
use pylon_core::feeds::{MetricName, MetricSeries};
use pylon_core::{PlatformDescriptor, Registry};
use serde_json::Value;
use std::sync::Arc;

/// The read functions of the HTTP API, bound to one store. Its fields are private and its
/// methods only read, so code holding a `ReadView` cannot change anything.
#[derive(Clone)]
pub struct ReadView {
    store: Arc<dyn Store>,
    secrets: Arc<SecretBox>,
    /// Read for descriptors and capabilities only; no method hands out a provider, which
    /// could be asked to test or poll.
    registry: Arc<Registry>,
    platforms: Arc<[&'static PlatformDescriptor]>,
}

/// What a token may do on the assistant surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStanding {
    Admitted,
    Unknown,
    MissingScope,
}

impl ReadView {
    pub fn new(store: Arc<dyn Store>, secrets: Arc<SecretBox>, registry: Arc<Registry>) -> Self {
        Self {
            store,
            secrets,
            platforms: descriptors(&registry).into(),
            registry,
        }
    }

    pub fn from_state(state: &AppState) -> Self {
        Self::new(
            state.store.clone(),
            state.secrets.clone(),
            state.registry.clone(),
        )
    }

    pub fn platforms(&self) -> &[&'static PlatformDescriptor] {
        &self.platforms
    }

    /// Connections of every platform (or of `platform`), each platform's oldest first.
    pub async fn connections(
        &self,
        platform: Option<&str>,
    ) -> Result<Vec<ConnectionItem>, ApiError> {
        let mut items = Vec::new();
        for descriptor in self.platforms.iter() {
            if platform.is_some_and(|p| p != descriptor.platform) {
                continue;
            }
            items.extend(
                connection_items(self.store.as_ref(), &self.secrets, descriptor.platform).await?,
            );
        }
        Ok(items)
    }

    pub async fn resource_page(
        &self,
        query: ResourceQuery,
    ) -> Result<(Vec<ResourceJson>, Option<String>), ApiError> {
        Ok(resource_page(self.store.as_ref(), query).await?)
    }

    pub async fn resource(&self, id: &str) -> Result<Option<Value>, ApiError> {
        Ok(self.store.get_resource(id).await?)
    }

    pub async fn alert_page(&self, query: AlertQuery) -> Result<AlertPage, ApiError> {
        Ok(alert_page(self.store.as_ref(), query).await?)
    }

    /// A page of a resource's event and task history, newest first; `not_supported` when its
    /// provider collects none, as over HTTP.
    pub async fn history_page(&self, query: HistoryQuery) -> Result<HistoryPage, ApiError> {
        check_feed(
            self.store.as_ref(),
            &self.registry,
            &query.resource_id,
            Feed::History,
        )
        .await?;
        Ok(history_page(self.store.as_ref(), query).await?)
    }

    /// A resource's metric series over `[since, until]`, at most `max_points` points each.
    pub async fn metric_series(
        &self,
        resource_id: &str,
        metric: Option<MetricName>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        max_points: u32,
    ) -> Result<Vec<MetricSeries>, ApiError> {
        check_feed(
            self.store.as_ref(),
            &self.registry,
            resource_id,
            Feed::Metrics,
        )
        .await?;
        Ok(metric_series(
            self.store.as_ref(),
            resource_id,
            metric,
            since,
            until,
            max_points,
        )
        .await?)
    }

    /// Whether `token` is a live token holding `monitoring:read`. Read on every stdio
    /// request, so a revoked token stops working at once, as it does over HTTP.
    pub async fn token_standing(&self, token: &str) -> Result<TokenStanding, ApiError> {
        let Some(record) = self.store.find_token_by_hash(&hash_token(token)).await? else {
            return Ok(TokenStanding::Unknown);
        };
        let admitted = record
            .scopes
            .iter()
            .any(|scope| Scope::parse(scope) == Some(Scope::MonitoringRead));
        Ok(if admitted {
            TokenStanding::Admitted
        } else {
            TokenStanding::MissingScope
        })
    }
}
