//! Benchmark support: what the inventory read Pylon performs costs on the wire alone.
//!
//! `just bench` compares Pylon's first collection (through the API, parsing, projection and
//! the store included) with this floor: the same session set-up and the same
//! `RetrievePropertiesEx` request (same views, same property paths, built by the same code),
//! with the answer's bytes received but never parsed. It also measures performance
//! collection cycles ([`perf_cycles`]) by the same code a poll runs. Not part of the provider
//! contract.

use crate::classify::classify;
use crate::client::{SessionOptions, VcenterSession};
use crate::config::VsphereTarget;
use crate::feeds::perf::{PerfPosition, PerfSession};
use crate::inventory::paths::INVENTORY_TYPES;
use crate::inventory::request::{self, InventorySpec};
use crate::inventory::xml::parse_retrieve_result;
use crate::inventory::InventorySnapshot;
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

/// One performance collection cycle as [`perf_cycles`] measured it.
#[derive(Debug, Clone)]
pub struct PerfCycle {
    /// Hosts, VMs and datastores asked.
    pub entities: usize,
    /// `QueryPerf` calls.
    pub query_calls: usize,
    /// Set-up calls (counters, `maxQueryMetrics`): the first cycle of a session only.
    pub setup_calls: usize,
    /// Bytes of all answers.
    pub bytes: usize,
    /// Samples kept.
    pub samples: usize,
    /// Series (resource and metric) the samples belong to.
    pub series: usize,
    pub elapsed: Duration,
    /// The issues the cycle reported, as messages.
    pub issues: Vec<String>,
}

/// Logs in with `config`, reads the inventory as a poll's first read does, then runs
/// `cycles` performance collection cycles `pause` apart (the first from a fresh position,
/// so it reads the last five minutes; later ones resume from the previous), and logs out.
pub async fn perf_cycles(
    config: &ConnectionConfig,
    cycles: usize,
    pause: Duration,
) -> Result<Vec<PerfCycle>, ProviderError> {
    let target = VsphereTarget::from_config(config)?;
    let options = SessionOptions {
        connect_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(300),
    };
    let session = VcenterSession::open(&target, &options)
        .await
        .map_err(|error| classify(&error, &target))?;
    let outcome = measure_perf(&session, &target, cycles, pause).await;
    session.close().await;
    outcome
}

async fn measure_perf(
    session: &VcenterSession,
    target: &VsphereTarget,
    cycles: usize,
    pause: Duration,
) -> Result<Vec<PerfCycle>, ProviderError> {
    let failed = |error: ReadError| read_failure(error, target);
    let views = create_views(session).await.map_err(failed)?;
    let collector = session.property_collector();
    let spec = InventorySpec {
        views: &views,
        types: INVENTORY_TYPES,
    };
    let mut results = Vec::new();
    let mut body = request::retrieve_properties_ex(&collector, &spec, None);
    let mut method = "RetrievePropertiesEx";
    loop {
        let answer = call(session, method, &body).await.map_err(failed)?;
        let page = parse_retrieve_result(answer.as_bytes())
            .map_err(|e| failed(ReadError::Malformed(method, e.to_string())))?;
        let token = page.token.clone();
        results.push(page);
        match token {
            Some(token) => {
                method = "ContinueRetrievePropertiesEx";
                body = request::continue_retrieve_properties_ex(&collector, &token);
            }
            None => break,
        }
    }
    let snapshot = InventorySnapshot::from_results(results);
    let mut perf = PerfSession::default();
    let mut position = PerfPosition::default();
    let mut measured = Vec::with_capacity(cycles);
    for cycle in 0..cycles {
        if cycle > 0 {
            tokio::time::sleep(pause).await;
        }
        let read = perf.read(session, &snapshot, &position).await;
        position = read.position;
        let stats = perf.last_cycle().unwrap_or_default();
        measured.push(PerfCycle {
            entities: stats.entities,
            query_calls: stats.query_calls,
            setup_calls: stats.setup_calls,
            bytes: stats.bytes,
            samples: stats.samples,
            series: read.samples.len(),
            elapsed: stats.elapsed,
            issues: read.issues.into_iter().map(|issue| issue.message).collect(),
        });
    }
    Ok(measured)
}
