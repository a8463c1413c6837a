//! The event and task feeds against the simulator, and the task history collector through
//! recorded answers (the simulator has none: it answers `CreateCollectorForTasks` with a
//! fault, so the session falls back to `recentTask`).

use crate::support::*;
use pylon_core::feeds::{FeedCursor, Feeds, HistoryKind, HistoryRecord};
use pylon_core::model::Projection;
use pylon_core::provider::ProviderSession;
use pylon_vcsim::{FaultProxy, FaultResponse, FaultRule, Simulator, SimulatorOptions};
use std::collections::BTreeSet;

const CONNECTION: &str = "conn-history";

async fn poll_feeds(session: &mut Box<dyn ProviderSession>) -> (Projection, Feeds) {
    poll_with_feeds(session, CONNECTION).await
}

fn resource_id(projection: &Projection, name: &str) -> String {
    projection
        .resources
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no resource named {name}"))
        .id
        .clone()
}

fn ids(records: &[HistoryRecord]) -> BTreeSet<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

#[tokio::test]
async fn a_power_off_is_an_event_and_a_task_on_the_vm_and_a_new_session_resumes_without_duplicates()
{
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = recording_proxy(&sim).await;
    let mut session = open(&proxy).await;
    let (projection, first) = poll_feeds(&mut session).await;
    assert!(first.issues.is_empty(), "{:?}", first.issues);
    let vm = resource_id(&projection, "DC0_H0_VM0");

    sim.power_off_vm("DC0_H0_VM0").await;
    let (_, second) = poll_feeds(&mut session).await;
    assert!(second.issues.is_empty(), "{:?}", second.issues);
    let event = second
        .history
        .iter()
        .find(|r| r.kind == HistoryKind::Event && r.record_type == "VmPoweredOffEvent")
        .unwrap_or_else(|| panic!("no power-off event in {:#?}", second.history));
    assert_eq!(event.resource_id.as_deref(), Some(vm.as_str()));
    assert_eq!(event.connection_id, CONNECTION);
    assert!(event.message.contains("DC0_H0_VM0"), "{}", event.message);
    assert!(event.id.starts_with("event-"));
    let task = second
        .history
        .iter()
        .find(|r| r.kind == HistoryKind::Task && r.record_type.contains("powerOff"))
        .unwrap_or_else(|| panic!("no power-off task in {:#?}", second.history));
    assert_eq!(task.resource_id.as_deref(), Some(vm.as_str()));
    // The simulator has no task history collector: asked once, then recentTask.
    let sent = proxy.requests();
    assert_eq!(
        sent.iter()
            .filter(|m| *m == "CreateCollectorForTasks")
            .count(),
        1,
        "{sent:?}"
    );
    // Every event collector created is destroyed.
    assert_eq!(
        sent.iter()
            .filter(|m| *m == "CreateCollectorForEvents")
            .count(),
        sent.iter().filter(|m| *m == "DestroyCollector").count(),
        "{sent:?}"
    );

    // Nothing new happened: the next poll brings nothing the first two did not.
    let (_, third) = poll_feeds(&mut session).await;
    let seen: BTreeSet<String> = ids(&first.history)
        .union(&ids(&second.history))
        .cloned()
        .collect();
    assert!(
        ids(&third.history).is_subset(&seen),
        "a quiet poll re-reported events: {:?}",
        ids(&third.history).difference(&seen).collect::<Vec<_>>()
    );
    assert!(third.history.iter().all(|r| r.kind == HistoryKind::Task) || third.history.is_empty());

    // A new session (a restart) resumes from the cursor: no event twice, and the next power
    // change is seen.
    let cursor: FeedCursor = third.cursor.clone();
    session.close().await;
    let mut resumed = open(&proxy).await;
    resumed.resume(&cursor);
    sim.power_on_vm("DC0_H0_VM0").await;
    let (_, after_restart) = poll_feeds(&mut resumed).await;
    let events_after: BTreeSet<String> = after_restart
        .history
        .iter()
        .filter(|r| r.kind == HistoryKind::Event)
        .map(|r| r.id.clone())
        .collect();
    assert!(
        events_after.is_disjoint(&seen),
        "events read again after the restart: {:?}",
        events_after.intersection(&seen).collect::<Vec<_>>()
    );
    assert!(
        after_restart
            .history
            .iter()
            .any(|r| r.record_type == "VmPoweredOnEvent"
                && r.resource_id.as_deref() == Some(vm.as_str())),
        "{:#?}",
        after_restart.history
    );
    resumed.close().await;
}

/// A `TaskInfo` as vCenter's task history collector returns it.
fn task_info(key: u32, state: &str, seconds: u32) -> String {
    format!(
        "<returnval><key>task-{key}</key><task type=\"Task\">task-{key}</task>\
         <descriptionId>VirtualMachine.powerOff</descriptionId>\
         <entity type=\"VirtualMachine\">vm-54</entity><entityName>DC0_H0_VM0</entityName>\
         <state>{state}</state><reason xsi:type=\"TaskReasonUser\"><userName>alice</userName></reason>\
         <queueTime>2030-01-01T00:00:{seconds:02}Z</queueTime></returnval>"
    )
}

fn soap(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope \
         xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>{inner}\
         </soapenv:Body></soapenv:Envelope>"
    )
}

fn task_page(tasks: &[String]) -> FaultResponse {
    FaultResponse::Garbage(soap(&format!(
        "<ReadNextTasksResponse xmlns=\"urn:vim25\">{}</ReadNextTasksResponse>",
        tasks.concat()
    )))
}

/// vCenter's task history collector, from recorded answers: a full page (500) makes the
/// session read the next one, a running task is not recorded until it finishes, and the
/// collector is destroyed after each poll.
#[tokio::test]
async fn the_task_history_collector_is_paged_and_running_tasks_wait() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = recording_proxy(&sim).await;
    let full_page: Vec<String> = (1..=500).map(|k| task_info(k, "success", 1)).collect();
    let last_page = vec![task_info(501, "success", 2), task_info(502, "running", 3)];
    proxy.add_rule(FaultRule {
        method: "CreateCollectorForTasks".into(),
        response: FaultResponse::Garbage(soap(
            "<CreateCollectorForTasksResponse xmlns=\"urn:vim25\">\
             <returnval type=\"TaskHistoryCollector\">session[1]task-collector</returnval>\
             </CreateCollectorForTasksResponse>",
        )),
    });
    proxy.add_rule(FaultRule {
        method: "ReadNextTasks".into(),
        response: FaultResponse::Sequence(vec![
            task_page(&full_page),
            task_page(&last_page),
            // The second poll's collector: the running task has finished.
            task_page(&[task_info(501, "success", 2), task_info(502, "success", 3)]),
        ]),
    });
    proxy.add_rule(FaultRule {
        method: "DestroyCollector".into(),
        response: FaultResponse::Sequence(vec![FaultResponse::Forward]),
    });
    let mut session = open(&proxy).await;
    let (_, first) = poll_feeds(&mut session).await;
    let tasks: Vec<&HistoryRecord> = first
        .history
        .iter()
        .filter(|r| r.kind == HistoryKind::Task)
        .collect();
    assert_eq!(tasks.len(), 501, "two pages, the running task left out");
    assert!(tasks.iter().all(|t| t.user.as_deref() == Some("alice")));
    assert!(!tasks.iter().any(|t| t.id == "task-502"));
    let sent = proxy.requests();
    assert_eq!(
        sent.iter().filter(|m| *m == "ReadNextTasks").count(),
        2,
        "{sent:?}"
    );

    let (_, second) = poll_feeds(&mut session).await;
    let second_tasks: BTreeSet<String> = second
        .history
        .iter()
        .filter(|r| r.kind == HistoryKind::Task)
        .map(|r| r.id.clone())
        .collect();
    // Re-read from the running task's queue time: it is recorded now, and 501, read again,
    // is not delivered twice.
    assert_eq!(
        second_tasks,
        BTreeSet::from(["task-502".to_owned()]),
        "{second_tasks:?}"
    );
    let sent = proxy.requests();
    assert_eq!(
        sent.iter()
            .filter(|m| *m == "CreateCollectorForTasks")
            .count(),
        2,
        "a collector per poll: {sent:?}"
    );
    let bodies = proxy.request_bodies();
    let destroyed = bodies
        .iter()
        .filter(|(method, body)| method == "DestroyCollector" && body.contains("task-collector"))
        .count();
    assert_eq!(destroyed, 2, "every task collector is destroyed");
    session.close().await;
}

/// A feed that fails does not fail the poll: the inventory is projected, the failure is an
/// issue, and the next poll reads the feed again.
#[tokio::test]
async fn an_unreadable_event_feed_is_an_issue_not_a_failed_poll() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy: FaultProxy = recording_proxy(&sim).await;
    proxy.add_rule(FaultRule {
        method: "ReadNextEvents".into(),
        response: FaultResponse::Sequence(vec![
            FaultResponse::Garbage("<html>proxy error</html>".into()),
            FaultResponse::Forward,
        ]),
    });
    let mut session = open(&proxy).await;
    let (projection, feeds) = poll_feeds(&mut session).await;
    assert_eq!(
        projection.resources.len() as u64,
        sim.inventory().hosts + sim.inventory().vms + sim.inventory().datastores
    );
    assert_eq!(feeds.issues.len(), 1, "{:?}", feeds.issues);
    assert_eq!(feeds.issues[0].stage, "feeds");
    assert!(
        feeds.issues[0].message.contains("events"),
        "{}",
        feeds.issues[0].message
    );
    let (_, next) = poll_feeds(&mut session).await;
    assert!(next.issues.is_empty(), "{:?}", next.issues);
    assert!(
        next.history.iter().any(|r| r.kind == HistoryKind::Event),
        "the events are read on the next poll"
    );
    session.close().await;
}
