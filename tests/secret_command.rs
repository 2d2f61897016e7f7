//! A password command that hangs is stopped: at the IMAP timeout, or at once on Ctrl-C.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::net::{Sentinel, wait_for};
use crate::support::{Probe, Seed, Seeds};

/// A seeds file whose one seed reads its password from `command`, with a 1 s IMAP timeout
/// unless `imap_timeout` says otherwise.
fn yaml(mx: &str, imap_timeout: &str, command: &str) -> String {
    Seeds::new()
        .timing("imap_timeout", imap_timeout)
        .seed(Seed::new("hang", "user@hang.test").mx(mx))
        .yaml()
        .replace(
            "{ env: SEEDPROBE_TEST_PW }",
            &format!("{{ command: \"{command}\" }}"),
        )
}

/// The shell the command ran in writes its pid here, then waits; `sleep` is its child.
const HANG: &str = "echo $$ > cmd.pid; sleep 30; echo pw";

fn command_pid(dir: &Path) -> u32 {
    wait_for("the command's pid", Duration::from_secs(10), || {
        std::fs::read_to_string(dir.join("cmd.pid"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    })
}

fn gone(pid: u32) {
    wait_for("the command to be stopped", Duration::from_secs(5), || {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
}

#[test]
fn a_hanging_password_command_is_stopped_at_the_imap_timeout() {
    let sentinel = Sentinel::new();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // Its `sleep` would hold probe's stderr open if it outlived probe: finishing proves it did
    // not.
    Probe::in_dir(dir.path())
        .config_text(yaml(&sentinel.addr(), "1s", HANG))
        .args(["run", "--all"])
        .expect_exit(2)
        .stderr_has("password command `echo $$ > cmd.pid; sleep 30; echo pw` failed")
        .stderr_has("did not finish within 1s")
        .spawn()
        .finish(Duration::from_secs(20));
    assert!(started.elapsed() < Duration::from_secs(15));
    gone(command_pid(dir.path()));
    assert!(!sentinel.was_contacted());
}

#[test]
fn ctrl_c_stops_a_hanging_password_command() {
    let sentinel = Sentinel::new();
    let dir = tempfile::tempdir().unwrap();
    let running = Probe::in_dir(dir.path())
        .config_text(yaml(&sentinel.addr(), "60s", HANG))
        .args(["run", "--all"])
        .expect_exit(130)
        .stderr_has("interrupted")
        .spawn();
    let pid = command_pid(dir.path());
    let status = std::process::Command::new("kill")
        .args(["-INT", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    running.finish(Duration::from_secs(10));
    gone(pid);
    assert!(!sentinel.was_contacted());
}
