//! Running the govmomi vCenter simulator through the Go launcher.

use std::fmt::Write as _;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::launcher::launcher_path;

/// How long the launcher may take to create its inventory and start listening.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Simulator::stop`] waits for the launcher to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one inventory command ([`Simulator::rename_vm`], ...) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(40);
/// How much of the launcher's output is kept for error messages.
const LOG_LIMIT: usize = 64 * 1024;

/// What the simulator pretends to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A vCenter (`simulator.VPX()`; `about.apiType` is `VirtualCenter`).
    #[default]
    Vpx,
    /// A standalone ESXi host (`simulator.ESX()`; `about.apiType` is `HostAgent`).
    Esx,
}

/// How to start a [`Simulator`]. `None` keeps govmomi's default for the model.
///
/// Counts follow govmomi's `Model`: `datacenters`, and per datacenter `clusters`,
/// `standalone_hosts` and `datastores` (each datastore is mounted on every host of its
/// datacenter, and a datacenter without hosts gets none); `hosts_per_cluster` per
/// cluster; `vms` per standalone host and per cluster (in the cluster's root resource
/// pool), not per cluster host. VPX defaults: 1 datacenter, 1 cluster of 3 hosts, 1
/// standalone host, 1 datastore, 2 VMs each, so 4 hosts and 4 VMs. ESX: 1 host, 1
/// datastore, 2 VMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatorOptions {
    pub mode: Mode,
    pub datacenters: Option<u32>,
    pub clusters: Option<u32>,
    pub hosts_per_cluster: Option<u32>,
    pub standalone_hosts: Option<u32>,
    pub vms: Option<u32>,
    pub datastores: Option<u32>,
    /// When set, the simulator accepts only this user name and password; otherwise any
    /// non-empty pair.
    pub credentials: Option<(String, String)>,
    /// Added to every SOAP call.
    pub delay_ms: u64,
    /// Added to calls of the named methods (`("RetrievePropertiesEx", 2000)`).
    pub method_delay: Vec<(String, u64)>,
    /// Sessions idle this long expire (the simulator checks on a timer, so expiry takes
    /// up to twice this).
    pub session_idle_timeout: Option<Duration>,
    /// Subject alternative names of the served certificate: IP addresses or DNS names.
    pub sans: Vec<String>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            mode: Mode::Vpx,
            datacenters: None,
            clusters: None,
            hosts_per_cluster: None,
            standalone_hosts: None,
            vms: None,
            datastores: None,
            credentials: None,
            delay_ms: 0,
            method_delay: Vec::new(),
            session_idle_timeout: None,
            sans: vec!["127.0.0.1".to_owned()],
        }
    }
}

impl SimulatorOptions {
    fn args(&self) -> Vec<String> {
        let mut args = vec![format!(
            "-mode={}",
            match self.mode {
                Mode::Vpx => "vpx",
                Mode::Esx => "esx",
            }
        )];
        let counts = [
            ("dc", self.datacenters),
            ("cluster", self.clusters),
            ("ch", self.hosts_per_cluster),
            ("host", self.standalone_hosts),
            ("vm", self.vms),
            ("ds", self.datastores),
        ];
        for (flag, value) in counts {
            if let Some(value) = value {
                args.push(format!("-{flag}={value}"));
            }
        }
        if let Some((user, password)) = &self.credentials {
            args.push(format!("-username={user}"));
            args.push(format!("-password={password}"));
        }
        if self.delay_ms > 0 {
            args.push(format!("-delay={}", self.delay_ms));
        }
        if !self.method_delay.is_empty() {
            let list: Vec<String> = self
                .method_delay
                .iter()
                .map(|(method, ms)| format!("{method}={ms}"))
                .collect();
            args.push(format!("-method-delay={}", list.join(",")));
        }
        if let Some(timeout) = self.session_idle_timeout.filter(|t| !t.is_zero()) {
            args.push(format!("-idle-timeout={}ms", timeout.as_millis().max(1)));
        }
        args.push(format!("-san={}", self.sans.join(",")));
        args
    }
}

/// The simulator's inventory, counted from its own object registry after creation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    pub datacenters: u64,
    pub clusters: u64,
    pub hosts: u64,
    pub vms: u64,
    pub datastores: u64,
    /// `about.apiType`: `VirtualCenter` or `HostAgent`.
    pub api_type: String,
}

/// The launcher's ready line.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ready {
    url: String,
    host: String,
    port: u16,
    ca_pem: String,
    leaf_sha256: String,
    inventory: Inventory,
}

/// A running govmomi vCenter simulator on `https://127.0.0.1:<port>/sdk`.
///
/// Dropping it kills the process; [`Simulator::stop`] shuts it down cleanly.
#[derive(Debug)]
pub struct Simulator {
    ready: Ready,
    child: Child,
    /// The launcher's command channel: stdin for commands, and the replies its stdout
    /// reader picks out. `None` once [`Simulator::stop`] has closed stdin.
    commands: tokio::sync::Mutex<Option<(ChildStdin, mpsc::UnboundedReceiver<String>)>>,
    log: Log,
    log_tasks: Vec<JoinHandle<()>>,
    // Holds the datastores' directories (the launcher's TMPDIR); removed on drop.
    _tmp: tempfile::TempDir,
}

impl Simulator {
    /// Builds the launcher if needed, starts the simulator and waits until it listens.
    ///
    /// # Panics
    ///
    /// When the launcher cannot be built or started, exits, or does not report ready
    /// within 60 s; the message includes the launcher's stderr.
    pub async fn start(options: SimulatorOptions) -> Simulator {
        let bin = match tokio::task::spawn_blocking(launcher_path).await {
            Ok(bin) => bin,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("building the simulator launcher was cancelled: {e}"),
        };
        let tmp = tempfile::Builder::new()
            .prefix("pylon-vcsim-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));

        let args = options.args();
        let mut child = Command::new(&bin)
            .args(&args)
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        let log = Log::default();
        let stderr_task = tokio::spawn(log.clone().collect(stderr, ""));
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(READY_TIMEOUT, stdout.read_line(&mut line)).await;

        let failure = match read {
            Ok(Ok(0)) => "exited without reporting ready".to_owned(),
            Ok(Ok(_)) => match serde_json::from_str::<Ready>(line.trim_end()) {
                Ok(ready) => {
                    // Keep draining stdout: a Go program writing to a closed pipe dies.
                    let (replies_tx, replies) = mpsc::unbounded_channel();
                    let stdout_task = tokio::spawn(
                        log.clone()
                            .collect_with_replies(stdout, "stdout: ", replies_tx),
                    );
                    return Simulator {
                        ready,
                        child,
                        commands: tokio::sync::Mutex::new(stdin.map(|stdin| (stdin, replies))),
                        log,
                        log_tasks: vec![stderr_task, stdout_task],
                        _tmp: tmp,
                    };
                }
                Err(e) => {
                    format!("printed a ready line that is not the expected JSON ({e}): {line:?}")
                }
            },
            Ok(Err(e)) => format!("cannot read its stdout: {e}"),
            Err(_) => format!("did not report ready within {READY_TIMEOUT:?}"),
        };

        // Failed: stop it and collect what it said.
        let _ = child.start_kill();
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), stderr_task).await;
        let status = match status {
            Ok(Ok(status)) => describe(status),
            _ => "unknown exit status".to_owned(),
        };
        panic!(
            "the vCenter simulator ({} {}) {failure}; {status}\n--- stderr ---\n{}",
            bin.display(),
            args.join(" "),
            log.text()
        );
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &str {
        &self.ready.host
    }

    pub fn port(&self) -> u16 {
        self.ready.port
    }

    /// `https://127.0.0.1:<port>/sdk`.
    pub fn url(&self) -> &str {
        &self.ready.url
    }

    /// The PEM of the throwaway CA that signed the served certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ready.ca_pem
    }

    /// Lowercase hex SHA-256 of the served leaf certificate's DER.
    pub fn leaf_sha256(&self) -> &str {
        &self.ready.leaf_sha256
    }

    pub fn inventory(&self) -> &Inventory {
        &self.ready.inventory
    }

    /// What the launcher has written to stderr (and any stray stdout) so far: the
    /// simulator logs unknown objects and methods there. Keeps the last 64 KiB.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Renames the one VM called `name` through the simulator's API (`Rename_Task`).
    ///
    /// # Panics
    ///
    /// When no single VM has that name or the task fails.
    pub async fn rename_vm(&self, name: &str, new_name: &str) {
        self.command(&["rename-vm", name, new_name]).await;
    }

    /// Powers off the one VM called `name` (`PowerOffVM_Task`).
    pub async fn power_off_vm(&self, name: &str) {
        self.command(&["power-off-vm", name]).await;
    }

    /// Takes a snapshot called `snapshot` of the one VM called `name`
    /// (`CreateSnapshot_Task`, without memory or quiescing); it becomes the current one.
    pub async fn snapshot_vm(&self, name: &str, snapshot: &str) {
        self.command(&["snapshot-vm", name, snapshot]).await;
    }

    /// Sets the `overallStatus` (`green`, `yellow`, `red` or `gray`) of the one object of
    /// `kind` (`VirtualMachine`, `HostSystem` or `Datastore`) called `name`. No vSphere method
    /// does this, so the launcher changes its registry directly; property collectors see the
    /// change like any other.
    pub async fn set_overall_status(&self, kind: &str, name: &str, status: &str) {
        self.command(&["set-status", kind, name, status]).await;
    }

    /// Replaces the `triggeredAlarmState` of the one object of `kind` called `name` with one
    /// alarm `Alarm:<alarm>` in `status` (`red`, `yellow`, `green`), triggered now, or with
    /// nothing for `none`. The simulator has no alarms, so the alarm itself does not exist.
    pub async fn set_triggered_alarm(&self, kind: &str, name: &str, alarm: &str, status: &str) {
        self.command(&["set-alarm", kind, name, alarm, status])
            .await;
    }

    /// Powers on the one VM called `name` (`PowerOnVM_Task`).
    pub async fn power_on_vm(&self, name: &str) {
        self.command(&["power-on-vm", name]).await;
    }

    /// Sends one command line to the launcher and waits for its reply.
    async fn command(&self, words: &[&str]) {
        assert!(
            words
                .iter()
                .all(|word| !word.is_empty() && !word.contains(char::is_whitespace)),
            "simulator command arguments are single words: {words:?}"
        );
        let line = words.join(" ");
        let mut guard = self.commands.lock().await;
        let (stdin, replies) = guard.as_mut().expect("the simulator is stopping");
        let exchange = async {
            stdin.write_all(format!("{line}\n").as_bytes()).await?;
            stdin.flush().await?;
            Ok::<_, std::io::Error>(replies.recv().await)
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, exchange).await {
            Ok(Ok(Some(reply))) if reply == "ok" => {}
            Ok(Ok(Some(reply))) => panic!("simulator command `{line}` failed: {reply}"),
            Ok(Ok(None)) => panic!(
                "the simulator exited during `{line}`\n--- stderr ---\n{}",
                self.log.text()
            ),
            Ok(Err(e)) => panic!("cannot send `{line}` to the simulator: {e}"),
            Err(_) => panic!("simulator command `{line}` took over {COMMAND_TIMEOUT:?}"),
        }
    }

    /// Closes the launcher's stdin and waits for it to shut the simulator down.
    ///
    /// # Panics
    ///
    /// When it does not exit within 15 s or exits unsuccessfully.
    pub async fn stop(mut self) {
        drop(self.commands.get_mut().take());
        let status = match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("cannot wait for the vCenter simulator to exit: {e}"),
            Err(_) => {
                let _ = self.child.start_kill();
                panic!(
                    "the vCenter simulator did not exit within {STOP_TIMEOUT:?} of closing its \
                     stdin; killed it\n--- stderr ---\n{}",
                    self.log.text()
                );
            }
        };
        for task in self.log_tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        assert!(
            status.success(),
            "the vCenter simulator exited unsuccessfully on stop: {}\n--- stderr ---\n{}",
            describe(status),
            self.log.text()
        );
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // kill_on_drop kills the child; the log tasks end at EOF.
        for task in &self.log_tasks {
            task.abort();
        }
    }
}

fn describe(status: ExitStatus) -> String {
    format!("exit status: {status}")
}

/// The tail of the launcher's output, shared with the tasks that read it.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<String>>);

impl Log {
    fn text(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn push_line(&self, prefix: &str, line: &str) {
        let Ok(mut text) = self.0.lock() else { return };
        let _ = writeln!(text, "{prefix}{}", line.trim_end());
        if text.len() > LOG_LIMIT {
            let mut cut = text.len() - LOG_LIMIT;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text.drain(..cut);
        }
    }

    async fn collect<R: AsyncRead + Unpin>(self, reader: R, prefix: &'static str) {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => self.push_line(prefix, &String::from_utf8_lossy(&buf)),
            }
        }
    }

    /// Like [`Log::collect`], but hands the launcher's command replies to `replies`.
    async fn collect_with_replies<R: AsyncRead + Unpin>(
        self,
        reader: R,
        prefix: &'static str,
        replies: mpsc::UnboundedSender<String>,
    ) {
        #[derive(Deserialize)]
        struct Reply {
            reply: String,
        }
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    match serde_json::from_str::<Reply>(line.trim_end()) {
                        Ok(reply) => {
                            let _ = replies.send(reply.reply);
                        }
                        Err(_) => self.push_line(prefix, &line),
                    }
                }
            }
        }
    }
}
