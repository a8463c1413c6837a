//! Benchmark support: what the inventory read Pylon performs costs on the wire alone.
//!
//! `just bench` compares Pylon's first collection (through the API, parsing, projection and
//! the store included) with this floor: the same session set-up and the same
//! `RetrievePropertiesEx` request (same views, same property paths, built by the same code),
//! with the answer's bytes received but never parsed. Not part of the provider contract.

use crate::classify::classify;
use crate::client::{SessionOptions, VcenterSession};
use crate::config::VsphereTarget;
use crate::inventory::paths::INVENTORY_TYPES;
use crate::inventory::request::{self, InventorySpec};
use crate::poll::{call, create_views, read_failure, ReadError};
use pylon_core::{ConnectionConfig, ProviderError};
use std::time::{Duration, Instant};

/// The cost of one raw inventory read.
#[derive(Debug, Clone, Copy)]
pub struct RawRead {
    /// Connect, `RetrieveServiceContent` and `Login`.
    pub login: Duration,
    /// `CreateContainerView` per type, then `RetrievePropertiesEx` and any
    /// `ContinueRetrievePropertiesEx` pages, every byte received.
    pub read: Duration,
    /// Bytes of all inventory answers.
    pub bytes: usize,
    pub pages: usize,
}

/// Logs in with `config`, reads the inventory as a poll's first read does without parsing
/// the answers, and logs out.
pub async fn raw_inventory_read(config: &ConnectionConfig) -> Result<RawRead, ProviderError> {
    let target = VsphereTarget::from_config(config)?;
    let options = SessionOptions {
        connect_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(300),
    };
    let started = Instant::now();
    let session = VcenterSession::open(&target, &options)
        .await
        .map_err(|error| classify(&error, &target))?;
    let login = started.elapsed();
    let outcome = read(&session, &target).await;
    session.close().await;
    let (read, bytes, pages) = outcome?;
    Ok(RawRead {
        login,
        read,
        bytes,
        pages,
    })
}

async fn read(
    session: &VcenterSession,
    target: &VsphereTarget,
) -> Result<(Duration, usize, usize), ProviderError> {
    let failed = |error: ReadError| read_failure(error, target);
    let started = Instant::now();
    // The same views and the same request a poll's first read makes.
    let views = create_views(session).await.map_err(failed)?;
    let collector = session.property_collector();
    let spec = InventorySpec {
        views: &views,
        types: INVENTORY_TYPES,
    };
    let mut body = request::retrieve_properties_ex(&collector, &spec, None);
    let mut method = "RetrievePropertiesEx";
    let (mut bytes, mut pages) = (0, 0);
    loop {
        let answer = call(session, method, &body).await.map_err(failed)?;
        bytes += answer.len();
        pages += 1;
        // The only `token` element of the answer is the result's own (properties arrive
        // as name/val pairs), so finding it needs no parse.
        match continuation_token(&answer) {
            Some(token) => {
                method = "ContinueRetrievePropertiesEx";
                body = request::continue_retrieve_properties_ex(&collector, token);
            }
            None => return Ok((started.elapsed(), bytes, pages)),
        }
    }
}

fn continuation_token(answer: &str) -> Option<&str> {
    let start = answer.rfind("<token>")? + "<token>".len();
    let end = answer[start..].find("</token>")? + start;
    Some(&answer[start..end])
}
