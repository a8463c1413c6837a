//! Building and caching the Go launcher (`go/main.go`).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{env, fs};

use sha2::{Digest, Sha256};

/// The launcher's source, embedded so that the binary's name always matches its source.
const MAIN_GO: &str = include_str!("../go/main.go");

/// Where Debian's golang-github-vmware-govmomi-dev puts the Go sources.
const GOPATH: &str = "/usr/share/gocode";
const SIMULATOR_SOURCE: &str = "/usr/share/gocode/src/github.com/vmware/govmomi/simulator";

const INSTALL_HINT: &str = "run scripts/install-test-deps.sh (the README's test command does this)";

/// A lock directory older than this belongs to a builder that died.
const STALE_LOCK: Duration = Duration::from_secs(300);
/// How long to wait for another process's build before building anyway.
const WAIT_FOR_OTHER_BUILD: Duration = Duration::from_secs(240);

/// Returns the path of the launcher binary, building it first if needed.
///
/// `PYLON_VCSIM_BIN` names a prebuilt launcher to use instead. Otherwise the binary is
/// `$CARGO_TARGET_DIR/pylon-vcsim/pylon-vcsim-<hash of main.go>` (or under
/// `<workspace>/target`), built at most once per process and shared between processes.
/// This blocks while Go builds (about 20 s the first time); call it from
/// `spawn_blocking` in async code.
///
/// # Panics
///
/// When Go or the govmomi sources are missing, or `go build` fails (with its output).
pub fn launcher_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(resolve_launcher).clone()
}

fn resolve_launcher() -> PathBuf {
    if let Some(bin) = env::var_os("PYLON_VCSIM_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "PYLON_VCSIM_BIN is set to {}, which is not a file",
            bin.display()
        );
        return bin;
    }

    let dir = target_dir().join("pylon-vcsim");
    let final_path = dir.join(format!("pylon-vcsim-{}", source_hash()));
    if final_path.is_file() {
        return final_path;
    }
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    build_once(&dir, &final_path);
    final_path
}

/// The first 16 hex digits of the SHA-256 of `main.go`.
fn source_hash() -> String {
    hex::encode(&Sha256::digest(MAIN_GO.as_bytes())[..8])
}

fn workspace_root() -> PathBuf {
    // tests/vcsim -> the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    let configured = env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_DIR").map(PathBuf::from));
    match configured {
        Some(dir) if dir.is_absolute() => dir,
        // cargo resolves a relative CARGO_TARGET_DIR against its working directory,
        // normally the workspace root; tests run in the crate directory.
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// A name that no other process or thread uses at the same time.
fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

/// Builds unless another process is building; then waits for its result.
fn build_once(dir: &Path, final_path: &Path) {
    let lock = final_path.with_extension("lock");
    let deadline = Instant::now() + WAIT_FOR_OTHER_BUILD;
    loop {
        match fs::create_dir(&lock) {
            Ok(()) => {
                let _guard = RemoveDirOnDrop(&lock);
                if !final_path.is_file() {
                    build(dir, final_path);
                }
                return;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if final_path.is_file() {
                    return;
                }
                let stale = fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|modified| modified.elapsed().ok())
                    .is_some_and(|age| age > STALE_LOCK);
                if stale {
                    let _ = fs::remove_dir(&lock);
                    continue;
                }
                if Instant::now() > deadline {
                    // Safe without the lock: the binary is renamed into place atomically.
                    build(dir, final_path);
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot create the build lock {}: {e}", lock.display()),
        }
    }
}

struct RemoveDirOnDrop<'a>(&'a Path);

impl Drop for RemoveDirOnDrop<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(self.0);
    }
}

fn build(dir: &Path, final_path: &Path) {
    match Command::new("go").arg("version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`go version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("Go is not installed: {INSTALL_HINT}")
        }
        Err(e) => panic!("cannot run `go version`: {e}"),
    }
    assert!(
        Path::new(SIMULATOR_SOURCE).is_dir(),
        "the govmomi simulator sources are missing ({SIMULATOR_SOURCE}): {INSTALL_HINT}"
    );

    let suffix = unique_suffix();
    let src = dir.join(format!("src-{suffix}"));
    let _src_guard = RemoveDirOnDrop(&src);
    fs::create_dir_all(&src).unwrap_or_else(|e| panic!("cannot create {}: {e}", src.display()));
    fs::write(src.join("main.go"), MAIN_GO)
        .unwrap_or_else(|e| panic!("cannot write main.go into {}: {e}", src.display()));

    let file_name = final_path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("the launcher file name is ASCII");
    let tmp = dir.join(format!("{file_name}.tmp-{suffix}"));

    let output = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&tmp)
        .arg("main.go")
        .current_dir(&src)
        .env("GOPATH", GOPATH)
        .env("GO111MODULE", "off")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOFLAGS", "")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `go build`: {e}"));
    if !output.status.success() {
        let _ = fs::remove_file(&tmp);
        panic!(
            "building the simulator launcher failed ({}): GOPATH={GOPATH} GO111MODULE=off \
             go build -o {} main.go (in {})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            tmp.display(),
            src.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    fs::rename(&tmp, final_path).unwrap_or_else(|e| {
        let _ = fs::remove_file(&tmp);
        panic!(
            "cannot move the launcher from {} to {}: {e}",
            tmp.display(),
            final_path.display()
        )
    });
}
