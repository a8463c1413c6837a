//! Tasks: through a `TaskHistoryCollector` where the endpoint has one (vCenter), else from
//! `TaskManager.recentTask` (the simulator, which answers `CreateCollectorForTasks` with a
//! fault; GUIDE section 6).
//!
//! Only finished tasks (`success` or `error`) are recorded: history is append-only, so a
//! task recorded while running would read "running" forever. The position is therefore the
//! queue time of the oldest task still unfinished when last read (or of the newest task
//! read, when none was): every poll re-reads from there, and the host drops the finished
//! tasks it already holds (ids are `task-<key>`).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use pylon_core::feeds::HistoryKind;
use pylon_core::FailureCategory;
use serde::{Deserialize, Serialize};

use super::{FeedError, RawHistory};
use crate::client::{SessionError, Stage, VcenterSession};
use crate::inventory::request::{close_method, open_method, push_moref, push_text};
use crate::inventory::types::MoRef;
use crate::inventory::xml::{local_name, parse_moref_response, visit_prop_sets, Cursor, XmlError};

/// Tasks per `ReadNextTasks` call.
pub(crate) const PAGE_SIZE: u32 = 500;
/// Pages read at most in one poll.
pub(crate) const MAX_PAGES_PER_POLL: usize = 10;
/// How far back the first poll of a new connection reads.
pub(crate) const FIRST_READ_HOURS: i64 = 24;

/// Where the task feed resumes: tasks queued at or after this time are read again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TaskPosition {
    pub since: DateTime<Utc>,
}

/// How this session reads tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum TaskSource {
    /// Not known yet: try the history collector first.
    #[default]
    Unknown,
    HistoryCollector,
    /// The endpoint has no task history collector; read `recentTask`.
    RecentTasks,
}

/// What a polling session remembers of its task feed.
#[derive(Debug, Default)]
pub(crate) struct TaskSession {
    source: TaskSource,
    /// Finished tasks this session delivered that are still at or after the position, with
    /// their queue times: they come back on every re-read and are not delivered twice.
    delivered: HashMap<String, DateTime<Utc>>,
}

/// Finished tasks of one poll and where the feed stands after them.
#[derive(Debug, Default)]
pub(crate) struct TasksRead {
    pub records: Vec<RawHistory>,
    pub position: Option<TaskPosition>,
}

/// Reads the tasks queued since `after`.
pub(crate) async fn read_new(
    session: &VcenterSession,
    state: &mut TaskSession,
    after: Option<&TaskPosition>,
) -> Result<TasksRead, FeedError> {
    let source = &mut state.source;
    let manager = session.task_manager().ok_or_else(|| {
        FeedError::new(
            FailureCategory::Unsupported,
            "this endpoint has no TaskManager",
        )
    })?;
    let since = after.map_or_else(
        || Utc::now() - Duration::hours(FIRST_READ_HOURS),
        |p| p.since,
    );
    let tasks = match *source {
        TaskSource::RecentTasks => read_recent(session, &manager).await?,
        TaskSource::HistoryCollector | TaskSource::Unknown => {
            match read_history(session, &manager, &session.root_folder(), since).await {
                Ok(tasks) => {
                    *source = TaskSource::HistoryCollector;
                    tasks
                }
                Err(CollectorError::Missing) if *source == TaskSource::Unknown => {
                    tracing::debug!(
                        "no task history collector on this endpoint; reading recentTask"
                    );
                    *source = TaskSource::RecentTasks;
                    read_recent(session, &manager).await?
                }
                Err(CollectorError::Missing) => {
                    return Err(FeedError::new(
                        FailureCategory::Protocol,
                        "the task history collector disappeared",
                    ))
                }
                Err(CollectorError::Failed(error)) => return Err(error),
            }
        }
    };
    let mut read = finished_since(tasks, since);
    read.records.retain(|record| {
        state
            .delivered
            .insert(record.id.clone(), record.at)
            .is_none()
    });
    if let Some(position) = &read.position {
        state
            .delivered
            .retain(|_, queued| *queued >= position.since);
    }
    Ok(read)
}

/// The finished tasks queued at or after `since`, oldest first, and the next position.
fn finished_since(tasks: Vec<ReadTask>, since: DateTime<Utc>) -> TasksRead {
    let mut tasks: Vec<ReadTask> = tasks.into_iter().filter(|t| t.queued >= since).collect();
    tasks.sort_by(|a, b| (a.queued, &a.key).cmp(&(b.queued, &b.key)));
    let oldest_unfinished = tasks
        .iter()
        .filter(|t| !t.finished())
        .map(|t| t.queued)
        .min();
    let newest = tasks.iter().map(|t| t.queued).max();
    let position = oldest_unfinished
        .or(newest)
        .map(|since| TaskPosition { since });
    TasksRead {
        records: tasks
            .into_iter()
            .filter(ReadTask::finished)
            .map(ReadTask::into_raw)
            .collect(),
        position,
    }
}

enum CollectorError {
    /// The endpoint does not implement task history collectors.
    Missing,
    Failed(FeedError),
}

async fn read_history(
    session: &VcenterSession,
    manager: &MoRef,
    root: &MoRef,
    since: DateTime<Utc>,
) -> Result<Vec<ReadTask>, CollectorError> {
    let create = create_collector(manager, root, since);
    let answer = match session
        .call_raw(Stage::Inventory, "CreateCollectorForTasks", &create)
        .await
    {
        Ok(answer) => answer,
        Err(error) if is_missing_method(&error) => return Err(CollectorError::Missing),
        Err(error) => {
            return Err(CollectorError::Failed(FeedError::failed_call(
                "CreateCollectorForTasks",
                &error,
            )))
        }
    };
    let collector = parse_moref_response(answer.as_bytes(), "CreateCollectorForTasksResponse")
        .map_err(|e| {
            CollectorError::Failed(FeedError::unreadable("CreateCollectorForTasks", &e))
        })?;
    let read = read_pages(session, &collector).await;
    // Collectors count against a per-session limit: destroy it even when reading failed.
    let destroy = close_method(
        open_method("DestroyCollector", &collector),
        "DestroyCollector",
    );
    if let Err(error) = session
        .call_raw(Stage::Inventory, "DestroyCollector", &destroy)
        .await
    {
        tracing::debug!(%error, "destroying the task collector failed");
    }
    read.map_err(CollectorError::Failed)
}

async fn read_pages(
    session: &VcenterSession,
    collector: &MoRef,
) -> Result<Vec<ReadTask>, FeedError> {
    let mut body = open_method("ReadNextTasks", collector);
    push_text(&mut body, "maxCount", &PAGE_SIZE.to_string());
    let body = close_method(body, "ReadNextTasks");
    let mut tasks = Vec::new();
    for _ in 0..MAX_PAGES_PER_POLL {
        let answer = session
            .call_raw(Stage::Inventory, "ReadNextTasks", &body)
            .await
            .map_err(|error| FeedError::failed_call("ReadNextTasks", &error))?;
        let page = parse_task_page(answer.as_bytes())
            .map_err(|e| FeedError::unreadable("ReadNextTasks", &e))?;
        let count = page.len();
        tasks.extend(page);
        if count < PAGE_SIZE as usize {
            break;
        }
    }
    Ok(tasks)
}

/// `recentTask` of the task manager and each task's `info`, in one `RetrievePropertiesEx`
/// that traverses from the manager to its tasks.
async fn read_recent(
    session: &VcenterSession,
    manager: &MoRef,
) -> Result<Vec<ReadTask>, FeedError> {
    let body = recent_tasks_request(&session.property_collector(), manager);
    let answer = session
        .call_raw(Stage::Inventory, "RetrievePropertiesEx", &body)
        .await
        .map_err(|error| FeedError::failed_call("RetrievePropertiesEx", &error))?;
    parse_task_infos(answer.as_bytes())
        .map_err(|e| FeedError::unreadable("RetrievePropertiesEx", &e))
}

fn is_missing_method(error: &SessionError) -> bool {
    matches!(error, SessionError::Fault { fault, .. }
        if fault.type_.map(|t| matches!(t.as_str(), "MethodNotFound" | "NotImplemented" | "NotSupported")).unwrap_or(false))
}

/// `CreateCollectorForTasks` over every entity, queued from `since` on. `TaskFilterSpec`
/// members in WSDL order (entity, time); `TaskFilterSpecByTime` is timeType, beginTime.
fn create_collector(manager: &MoRef, root: &MoRef, since: DateTime<Utc>) -> String {
    let mut out = open_method("CreateCollectorForTasks", manager);
    out.push_str("<filter><entity>");
    push_moref(&mut out, "entity", root);
    out.push_str("<recursion>all</recursion></entity><time><timeType>queuedTime</timeType>");
    push_text(
        &mut out,
        "beginTime",
        &since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    out.push_str("</time></filter>");
    close_method(out, "CreateCollectorForTasks")
}

fn recent_tasks_request(collector: &MoRef, manager: &MoRef) -> String {
    let mut out = open_method("RetrievePropertiesEx", collector);
    out.push_str("<specSet><propSet><type>Task</type><all>false</all><pathSet>info</pathSet></propSet><objectSet>");
    push_moref(&mut out, "obj", manager);
    out.push_str(
        "<skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>recentTasks</name>\
         <type>TaskManager</type><path>recentTask</path><skip>false</skip></selectSet>\
         </objectSet></specSet><options></options>",
    );
    close_method(out, "RetrievePropertiesEx")
}

/// One task as read from a `TaskInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadTask {
    key: String,
    queued: DateTime<Utc>,
    /// `VirtualMachine.powerOff`, or the method name when there is no description id.
    task_type: String,
    entity: Option<MoRef>,
    entity_name: Option<String>,
    state: String,
    user: Option<String>,
    error: Option<String>,
}

impl ReadTask {
    fn finished(&self) -> bool {
        matches!(self.state.as_str(), "success" | "error")
    }

    fn into_raw(self) -> RawHistory {
        let subject = self.entity_name.as_deref().unwrap_or("vCenter");
        let message = match (&self.state[..], &self.error) {
            ("error", Some(error)) => format!("{} on {subject} failed: {error}", self.task_type),
            ("error", None) => format!("{} on {subject} failed", self.task_type),
            _ => format!("{} on {subject} completed", self.task_type),
        };
        let id = if self.key.starts_with("task-") {
            self.key.clone()
        } else {
            format!("task-{}", self.key)
        };
        RawHistory {
            id,
            at: self.queued,
            kind: HistoryKind::Task,
            record_type: self.task_type,
            message,
            user: self.user,
            entity: self.entity,
        }
    }
}

/// Parses a `ReadNextTasksResponse`: `TaskInfo`s as `returnval`s.
fn parse_task_page(bytes: &[u8]) -> Result<Vec<ReadTask>, XmlError> {
    let mut cursor = Cursor::new(bytes);
    cursor.enter_response(&["ReadNextTasksResponse"])?;
    let mut tasks = Vec::new();
    while let Some(child) = cursor.child()? {
        if local_name(&child) == "returnval" {
            tasks.extend(read_task_info(&mut cursor)?);
        } else {
            cursor.skip()?;
        }
    }
    cursor.finish()?;
    Ok(tasks)
}

/// Parses a `RetrievePropertiesExResponse` whose objects are tasks with an `info` property.
fn parse_task_infos(bytes: &[u8]) -> Result<Vec<ReadTask>, XmlError> {
    let mut tasks = Vec::new();
    visit_prop_sets(bytes, |cursor| {
        // `name` precedes `val`; only an `info` value is a TaskInfo (anything else in the
        // answer, such as a proxy's unrelated objects, is not read as one).
        let mut is_info = false;
        while let Some(field) = cursor.child()? {
            match local_name(&field) {
                "name" => is_info = cursor.text()?.trim() == "info",
                "val" if is_info => tasks.extend(read_task_info(cursor)?),
                _ => cursor.skip()?,
            }
        }
        Ok(())
    })?;
    Ok(tasks)
}

/// One `TaskInfo`, just opened. `None` when it lacks a key or a queue time. The `error` is
/// read for its `localizedMessage` only, whatever fault it holds.
fn read_task_info(cursor: &mut Cursor<'_>) -> Result<Option<ReadTask>, XmlError> {
    let mut key = None;
    let mut queued = None;
    let mut description_id = None;
    let mut name = None;
    let mut entity = None;
    let mut entity_name = None;
    let mut state = String::new();
    let mut user = None;
    let mut error = None;
    while let Some(child) = cursor.child()? {
        let field = local_name(&child).to_owned();
        match field.as_str() {
            "key" => key = Some(cursor.text()?.trim().to_owned()),
            "queueTime" => {
                queued = DateTime::parse_from_rfc3339(cursor.text()?.trim())
                    .ok()
                    .map(|t| t.with_timezone(&Utc));
            }
            "descriptionId" => description_id = Some(cursor.text()?.trim().to_owned()),
            "name" => name = Some(cursor.text()?.trim().to_owned()),
            "entity" => entity = Some(cursor.moref(&child)?),
            "entityName" => entity_name = Some(cursor.text()?.trim().to_owned()),
            "state" => state = cursor.text()?.trim().to_owned(),
            "reason" => {
                while let Some(part) = cursor.child()? {
                    if local_name(&part) == "userName" {
                        let text = cursor.text()?.trim().to_owned();
                        user = (!text.is_empty()).then_some(text);
                    } else {
                        cursor.skip()?;
                    }
                }
            }
            "error" => {
                while let Some(part) = cursor.child()? {
                    if local_name(&part) == "localizedMessage" {
                        error = Some(cursor.text()?.trim().to_owned());
                    } else {
                        cursor.skip()?;
                    }
                }
            }
            _ => cursor.skip()?,
        }
    }
    let (Some(key), Some(queued)) = (key, queued) else {
        return Ok(None);
    };
    let task_type = description_id
        .filter(|d| !d.is_empty())
        .or(name)
        .unwrap_or_else(|| "Task".to_owned());
    Ok(Some(ReadTask {
        key,
        queued,
        task_type,
        entity,
        entity_name,
        state,
        user,
        error: error.filter(|e| !e.is_empty()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(inner: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"#
        )
    }

    const FAILED: &str = r#"<key>task-12</key><task type="Task">task-12</task><name>PowerOnVM_Task</name><descriptionId>VirtualMachine.powerOn</descriptionId><entity type="VirtualMachine">vm-54</entity><entityName>web-01</entityName><state>error</state><error><fault xsi:type="InvalidPowerState"><requestedState>poweredOn</requestedState><existingState>poweredOn</existingState></fault><localizedMessage>The attempted operation cannot be performed in the current state (Powered on).</localizedMessage></error><reason xsi:type="TaskReasonUser"><userName>VSPHERE.LOCAL\alice</userName></reason><queueTime>2026-01-02T03:04:05Z</queueTime>"#;
    const RUNNING: &str = r#"<key>task-13</key><descriptionId>VirtualMachine.clone</descriptionId><entity type="VirtualMachine">vm-55</entity><state>running</state><reason xsi:type="TaskReasonSystem"/><queueTime>2026-01-02T03:04:06Z</queueTime>"#;
    const DONE: &str = r#"<key>task-14</key><descriptionId>VirtualMachine.powerOff</descriptionId><entity type="VirtualMachine">vm-56</entity><entityName>db-01</entityName><state>success</state><queueTime>2026-01-02T03:04:07Z</queueTime>"#;

    /// A failed task carries a nested `LocalizedMethodFault`, the shape vim_rs cannot read
    /// (GUIDE 6.1); this reader takes its message.
    #[test]
    fn task_pages_read_failed_tasks_with_their_message() {
        let page = envelope(&format!(
            r#"<ReadNextTasksResponse xmlns="urn:vim25"><returnval>{FAILED}</returnval><returnval>{RUNNING}</returnval><returnval>{DONE}</returnval><returnval><state>success</state></returnval></ReadNextTasksResponse>"#
        ));
        let tasks = parse_task_page(page.as_bytes()).unwrap();
        assert_eq!(tasks.len(), 3, "the task without key and time is left out");
        let since = tasks[0].queued;
        let read = finished_since(tasks, since);
        let ids: Vec<&str> = read.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["task-12", "task-14"], "the running task waits");
        assert_eq!(read.records[0].record_type, "VirtualMachine.powerOn");
        assert_eq!(
            read.records[0].user.as_deref(),
            Some("VSPHERE.LOCAL\\alice")
        );
        assert!(read.records[0]
            .message
            .contains("failed: The attempted operation"));
        assert_eq!(
            read.records[1].message,
            "VirtualMachine.powerOff on db-01 completed"
        );
        // The position stays at the running task so it is read again when it finishes.
        assert_eq!(
            read.position.unwrap().since,
            DateTime::parse_from_rfc3339("2026-01-02T03:04:06Z").unwrap()
        );
    }

    #[test]
    fn recent_tasks_read_from_a_property_answer() {
        let answer = envelope(&format!(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="Task">task-14</obj><propSet><name>info</name><val xsi:type="TaskInfo">{DONE}</val></propSet></objects></returnval></RetrievePropertiesExResponse>"#
        ));
        let tasks = parse_task_infos(answer.as_bytes()).unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].key, "task-14");
        assert_eq!(tasks[0].entity.as_ref().unwrap().value, "vm-56");
        let empty = envelope(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"></RetrievePropertiesExResponse>"#,
        );
        assert!(parse_task_infos(empty.as_bytes()).unwrap().is_empty());
        assert!(parse_task_infos(b"not xml at all").is_err());
    }
}
