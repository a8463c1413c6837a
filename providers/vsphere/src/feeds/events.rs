//! Events through an `EventHistoryCollector` (GUIDE section 5).
//!
//! Each poll creates a collector over the whole inventory (root folder, all recursion) with
//! `beginTime` at the newest event already read, pages through it with `ReadNextEvents`, and
//! destroys it, whatever happened. A collector per poll rather than per session: vCenter
//! limits open collectors per session, and a collector kept open between polls moves its
//! read position as new events arrive, which servers implement differently (the simulator
//! rebuilds its page); a fresh one with a time filter reads the same everywhere.
//!
//! Events are keyed by vCenter's event `key`, which only grows. The time filter is
//! inclusive and the simulator ignores it, so events with a key not above the stored one are
//! dropped here; the host drops any duplicate id besides.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use pylon_core::feeds::HistoryKind;
use pylon_core::FailureCategory;
use serde::{Deserialize, Serialize};

use super::{FeedError, RawHistory};
use crate::client::{Stage, VcenterSession};
use crate::inventory::request::{close_method, open_method, push_moref, push_text};
use crate::inventory::types::MoRef;
use crate::inventory::xml::{local_name, Cursor, XmlError};

/// Events per `ReadNextEvents` call (vCenter's maximum page).
pub(crate) const PAGE_SIZE: u32 = 1000;
/// Pages read at most in one poll; the rest waits for the next poll, so a vCenter with a
/// large backlog is caught up over a few polls instead of in one long one.
pub(crate) const MAX_PAGES_PER_POLL: usize = 10;
/// How far back the first poll of a new connection reads.
pub(crate) const FIRST_READ_HOURS: i64 = 24;

/// The newest event stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventPosition {
    pub key: i64,
    pub at: DateTime<Utc>,
}

/// New events of one poll and where the feed stands after them (`None`: unchanged).
#[derive(Debug, Default)]
pub(crate) struct EventsRead {
    pub records: Vec<RawHistory>,
    pub position: Option<EventPosition>,
    /// Events the answer held that could not be read (no key or time), left out.
    pub unreadable: usize,
}

/// Reads the events newer than `after`.
pub(crate) async fn read_new(
    session: &VcenterSession,
    after: Option<&EventPosition>,
) -> Result<EventsRead, FeedError> {
    let manager = session.event_manager().ok_or_else(|| {
        FeedError::new(
            FailureCategory::Unsupported,
            "this endpoint has no EventManager",
        )
    })?;
    let begin = after.map_or_else(|| Utc::now() - Duration::hours(FIRST_READ_HOURS), |p| p.at);
    let create = create_collector(&manager, &session.root_folder(), begin);
    let answer = call(session, "CreateCollectorForEvents", &create).await?;
    let collector = crate::inventory::xml::parse_moref_response(
        answer.as_bytes(),
        "CreateCollectorForEventsResponse",
    )
    .map_err(|e| FeedError::unreadable("CreateCollectorForEvents", &e))?;
    let read = read_pages(session, &collector).await;
    // Collectors count against a per-session limit: destroy it even when reading failed.
    let destroy = close_method(
        open_method("DestroyCollector", &collector),
        "DestroyCollector",
    );
    if let Err(error) = call(session, "DestroyCollector", &destroy).await {
        tracing::debug!(detail = %error.detail, "destroying the event collector failed");
    }
    let (events, unreadable) = read?;
    Ok(new_events(events, after, unreadable))
}

async fn read_pages(
    session: &VcenterSession,
    collector: &MoRef,
) -> Result<(Vec<ReadEvent>, usize), FeedError> {
    let mut events = Vec::new();
    let mut unreadable = 0;
    let mut body = open_method("ReadNextEvents", collector);
    push_text(&mut body, "maxCount", &PAGE_SIZE.to_string());
    let body = close_method(body, "ReadNextEvents");
    for _ in 0..MAX_PAGES_PER_POLL {
        let answer = call(session, "ReadNextEvents", &body).await?;
        let page = parse_events(answer.as_bytes())
            .map_err(|e| FeedError::unreadable("ReadNextEvents", &e))?;
        let count = page.events.len() + page.unreadable;
        unreadable += page.unreadable;
        events.extend(page.events);
        if count < PAGE_SIZE as usize {
            break;
        }
    }
    Ok((events, unreadable))
}

/// Keeps the events above `after`, oldest first, each key once.
fn new_events(
    events: Vec<ReadEvent>,
    after: Option<&EventPosition>,
    unreadable: usize,
) -> EventsRead {
    let floor = after.map_or(i64::MIN, |p| p.key);
    let by_key: BTreeMap<i64, ReadEvent> = events
        .into_iter()
        .filter(|event| event.key > floor)
        .map(|event| (event.key, event))
        .collect();
    let position = by_key.values().next_back().map(|newest| EventPosition {
        key: newest.key,
        at: newest.at,
    });
    EventsRead {
        records: by_key.into_values().map(ReadEvent::into_raw).collect(),
        position,
        unreadable,
    }
}

async fn call(
    session: &VcenterSession,
    method: &'static str,
    body: &str,
) -> Result<String, FeedError> {
    session
        .call_raw(Stage::Inventory, method, body)
        .await
        .map_err(|error| FeedError::failed_call(method, &error))
}

/// `CreateCollectorForEvents` over every entity, from `begin` on. The `EventFilterSpec`
/// members follow the WSDL's sequence order (entity, time, ..., maxCount).
fn create_collector(manager: &MoRef, root: &MoRef, begin: DateTime<Utc>) -> String {
    let mut out = open_method("CreateCollectorForEvents", manager);
    out.push_str("<filter><entity>");
    push_moref(&mut out, "entity", root);
    out.push_str("<recursion>all</recursion></entity><time>");
    push_text(
        &mut out,
        "beginTime",
        &begin.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    out.push_str("</time>");
    push_text(&mut out, "maxCount", &PAGE_SIZE.to_string());
    out.push_str("</filter>");
    close_method(out, "CreateCollectorForEvents")
}

/// One event as read from a `ReadNextEvents` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadEvent {
    key: i64,
    at: DateTime<Utc>,
    event_type: String,
    message: String,
    user: Option<String>,
    entity: Option<MoRef>,
}

impl ReadEvent {
    fn into_raw(self) -> RawHistory {
        RawHistory {
            id: format!("event-{}", self.key),
            at: self.at,
            kind: HistoryKind::Event,
            record_type: self.event_type,
            message: self.message,
            user: self.user,
            entity: self.entity,
        }
    }
}

#[derive(Debug, Default)]
struct EventPage {
    events: Vec<ReadEvent>,
    unreadable: usize,
}

/// Parses a `ReadNextEventsResponse`. An event without a key or a time is counted as
/// unreadable and left out; anything else it carries that Pylon does not use is skipped, so
/// event types Pylon has never heard of read like any other.
fn parse_events(bytes: &[u8]) -> Result<EventPage, XmlError> {
    let mut cursor = Cursor::new(bytes);
    cursor.enter_response(&["ReadNextEventsResponse", "QueryEventsResponse"])?;
    let mut page = EventPage::default();
    while let Some(child) = cursor.child()? {
        if local_name(&child) != "returnval" {
            cursor.skip()?;
            continue;
        }
        let xsi_type = cursor.attributes(&child)?.xsi_type.map(|t| t.into_owned());
        match read_event(&mut cursor, xsi_type)? {
            Some(event) => page.events.push(event),
            None => page.unreadable += 1,
        }
    }
    cursor.finish()?;
    Ok(page)
}

/// The entity arguments of an event, most specific first: the record is linked to the first
/// one that is a projected resource.
const ENTITY_ARGUMENTS: [(&str, &str); 5] = [
    ("vm", "vm"),
    ("host", "host"),
    ("ds", "datastore"),
    ("computeResource", "computeResource"),
    ("datacenter", "datacenter"),
];

fn read_event(
    cursor: &mut Cursor<'_>,
    xsi_type: Option<String>,
) -> Result<Option<ReadEvent>, XmlError> {
    let mut key = None;
    let mut at = None;
    let mut type_id = None;
    let mut message = String::new();
    let mut user = None;
    let mut entities: Vec<(usize, MoRef)> = Vec::new();
    while let Some(child) = cursor.child()? {
        let name = local_name(&child).to_owned();
        match name.as_str() {
            "key" => key = cursor.text()?.trim().parse::<i64>().ok(),
            "createdTime" => {
                at = DateTime::parse_from_rfc3339(cursor.text()?.trim())
                    .ok()
                    .map(|t| t.with_timezone(&Utc));
            }
            "userName" => {
                let text = cursor.text()?;
                let text = text.trim();
                user = (!text.is_empty()).then(|| text.to_owned());
            }
            "fullFormattedMessage" => message = cursor.text()?.trim().to_owned(),
            // `EventEx` and `ExtendedEvent` name their real type here.
            "eventTypeId" => type_id = Some(cursor.text()?.trim().to_owned()),
            argument => match ENTITY_ARGUMENTS.iter().position(|(a, _)| *a == argument) {
                Some(rank) => {
                    let inner = ENTITY_ARGUMENTS[rank].1;
                    while let Some(part) = cursor.child()? {
                        if local_name(&part) == inner {
                            entities.push((rank, cursor.moref(&part)?));
                        } else {
                            cursor.skip()?;
                        }
                    }
                }
                None => cursor.skip()?,
            },
        }
    }
    let (Some(key), Some(at)) = (key, at) else {
        return Ok(None);
    };
    entities.sort_by_key(|(rank, _)| *rank);
    let event_type = type_id
        .filter(|t| !t.is_empty())
        .or(xsi_type)
        .unwrap_or_else(|| "Event".to_owned());
    Ok(Some(ReadEvent {
        key,
        at,
        event_type,
        message,
        user,
        entity: entities.into_iter().next().map(|(_, entity)| entity),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><ReadNextEventsResponse xmlns="urn:vim25">
<returnval xsi:type="VmPoweredOffEvent"><key>7</key><chainId>7</chainId><createdTime>2026-01-02T03:04:05.123Z</createdTime><userName>root</userName>
<datacenter><name>DC0</name><datacenter type="Datacenter">datacenter-2</datacenter></datacenter>
<host><name>DC0_H0</name><host type="HostSystem">host-21</host></host>
<vm><name>DC0_H0_VM0</name><vm type="VirtualMachine">vm-54</vm></vm>
<fullFormattedMessage>DC0_H0_VM0 on DC0_H0 in DC0 is powered off</fullFormattedMessage></returnval>
<returnval xsi:type="EventEx"><key>9</key><createdTime>2026-01-02T03:05:00Z</createdTime><userName></userName><eventTypeId>com.vmware.vc.SomethingNew</eventTypeId><fullFormattedMessage>new &amp; shiny</fullFormattedMessage><futureField><nested>1</nested></futureField></returnval>
<returnval xsi:type="UserLoginSessionEvent"><chainId>8</chainId><createdTime>2026-01-02T03:04:06Z</createdTime></returnval>
</ReadNextEventsResponse></soapenv:Body></soapenv:Envelope>"#;

    #[test]
    fn events_are_read_with_their_most_specific_entity_and_unknown_types_kept() {
        let page = parse_events(PAGE.as_bytes()).unwrap();
        assert_eq!(page.unreadable, 1, "the event without a key is counted");
        assert_eq!(page.events.len(), 2);
        let off = &page.events[0];
        assert_eq!(off.key, 7);
        assert_eq!(off.event_type, "VmPoweredOffEvent");
        assert_eq!(off.user.as_deref(), Some("root"));
        assert_eq!(off.entity.as_ref().unwrap().value, "vm-54");
        assert_eq!(off.message, "DC0_H0_VM0 on DC0_H0 in DC0 is powered off");
        let new = &page.events[1];
        assert_eq!(new.event_type, "com.vmware.vc.SomethingNew");
        assert_eq!(new.user, None);
        assert_eq!(new.entity, None);
        assert_eq!(new.message, "new & shiny");
    }

    #[test]
    fn only_events_above_the_position_are_kept_oldest_first() {
        let page = parse_events(PAGE.as_bytes()).unwrap();
        let at = page.events[0].at;
        let mut events = page.events.clone();
        events.reverse();
        events.push(page.events[0].clone()); // a duplicate
        let read = new_events(events.clone(), None, 0);
        let ids: Vec<&str> = read.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["event-7", "event-9"]);
        assert_eq!(read.position.as_ref().unwrap().key, 9);
        let later = new_events(events, Some(&EventPosition { key: 7, at }), 0);
        assert_eq!(later.records.len(), 1);
        assert_eq!(later.records[0].id, "event-9");
        let none = new_events(Vec::new(), Some(&EventPosition { key: 9, at }), 0);
        assert!(none.records.is_empty() && none.position.is_none());
    }

    #[test]
    fn faults_and_garbage_are_errors_not_panics() {
        assert!(parse_events(b"<html>nope</html>").is_err());
        assert!(parse_events(b"").is_err());
        let truncated = &PAGE.as_bytes()[..PAGE.len() / 2];
        assert!(parse_events(truncated).is_err());
    }
}
