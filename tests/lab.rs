//! The lab harness: start the real Postfix + Dovecot lab once, write seed configs for it,
//! run the `probe` binary.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The lab's state directory, as `docker/lab/lab.sh` uses it.
pub fn lab_dir() -> PathBuf {
    std::env::var_os("SEEDPROBE_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/seedprobe-lab"))
}

/// Starts the lab (installing packages when missing) once per test process; `lab.sh` itself
/// serialises concurrent starts and is a no-op when the lab is already up.
pub fn ensure_lab() {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = STARTED.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/lab/lab.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} start failed ({}); run it by hand as root to see why:\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A lab seed's password, as the lab generated it.
pub fn password(local: &str) -> String {
    let path = lab_dir().join("secrets").join(format!("{local}.pass"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// How a seed reaches its IMAP server in a generated config.
#[derive(Clone, Copy)]
pub enum Imap {
    Implicit,
    Starttls,
    Plain,
}

/// One lab seed: the local part names both the mailbox and the simulated provider
/// (`inbox`, `junk`, `tagged`, `defer`, `reject`, `discard`).
pub struct LabSeed {
    pub local: &'static str,
    pub imap: Imap,
}

pub const ALL_SEEDS: [LabSeed; 6] = [
    LabSeed {
        local: "inbox",
        imap: Imap::Implicit,
    },
    LabSeed {
        local: "junk",
        imap: Imap::Starttls,
    },
    LabSeed {
        local: "tagged",
        imap: Imap::Plain,
    },
    LabSeed {
        local: "defer",
        imap: Imap::Implicit,
    },
    LabSeed {
        local: "reject",
        imap: Imap::Implicit,
    },
    LabSeed {
        local: "discard",
        imap: Imap::Implicit,
    },
];

/// Writes a seeds file for the lab into `dir`; `password` gives each seed's password source.
pub fn write_config(
    dir: &Path,
    timeout: &str,
    seeds: &[LabSeed],
    password: impl Fn(&str) -> String,
) -> PathBuf {
    let lab = lab_dir();
    let mut yaml = format!(
        "sender:\n  from: \"Probe Test <probe@example.org>\"\n  ehlo: probe.example.org\n\
         timing:\n  poll_interval: 1s\n  timeout: {timeout}\n  smtp_timeout: 10s\n  imap_timeout: 10s\nseeds:\n"
    );
    for s in seeds {
        let (host, port, tls) = match s.imap {
            Imap::Implicit => ("127.0.0.1", 1993, "implicit"),
            Imap::Starttls => ("localhost", 1143, "starttls"),
            Imap::Plain => ("127.0.0.1", 1143, "none"),
        };
        yaml.push_str(&format!(
            "  - name: {l}\n    address: {l}@{l}.lab.test\n    mx: \"127.0.0.1:2525\"\n    imap:\n      host: {host}\n      port: {port}\n      tls: {tls}\n      password: {pw}\n      ca_file: {ca}\n",
            l = s.local,
            pw = password(s.local),
            ca = lab.join("tls/ca.pem").display(),
        ));
    }
    let path = dir.join("seeds.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The password source pointing at the lab's password file.
pub fn password_file(local: &str) -> String {
    format!(
        "{{ file: {} }}",
        lab_dir()
            .join("secrets")
            .join(format!("{local}.pass"))
            .display()
    )
}

/// `probe` with the store in `dir` and no inherited PROBE_* settings.
pub fn probe(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_probe"));
    cmd.env_remove("PROBE_CONFIG")
        .env_remove("PROBE_LOG")
        .env("PROBE_STORE", dir.join("store.sqlite"))
        .env("NO_COLOR", "1")
        .current_dir(dir);
    cmd
}

/// Held shared while a test needs the lab steady (every [`run`]), exclusively by a test that
/// disrupts it (restarting Dovecot), so that the disruption hits no other test.
static STEADY: RwLock<()> = RwLock::new(());

/// The lab stays up while this is held (tests of this process only).
pub fn steady() -> RwLockReadGuard<'static, ()> {
    STEADY.read().unwrap_or_else(|e| e.into_inner())
}

/// No other test of this process uses the lab while this is held. Never call [`run`] or
/// [`steady`] while holding it.
pub fn disrupt() -> RwLockWriteGuard<'static, ()> {
    STEADY.write().unwrap_or_else(|e| e.into_inner())
}

/// Runs a command and returns its output, with stdout/stderr shown if an assertion fails.
pub fn run(cmd: &mut Command) -> Output {
    let _steady = steady();
    cmd.output().expect("run probe")
}

/// Output as text for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A loopback port that records whether anyone connected: proof that nothing was contacted.
pub struct Sentinel {
    listener: TcpListener,
}

impl Sentinel {
    pub fn new() -> Sentinel {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Sentinel { listener }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// True if a connection is waiting (the process under test has exited by now, so any
    /// attempt it made is already in the accept queue).
    pub fn was_contacted(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

/// Starts the lab, writes a config for `seeds` in a fresh directory and runs
/// `probe ARGS --config seeds.yaml` there. The directory (with the store) lives as long as the
/// returned guard.
pub fn lab_run(timeout: &str, seeds: &[LabSeed], args: &[&str]) -> (tempfile::TempDir, Output) {
    ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), timeout, seeds, password_file);
    let out = run(probe(dir.path()).args(args).arg("--config").arg(&config));
    (dir, out)
}

/// The JSON report's entry for one seed.
pub fn message_for<'a>(json: &'a serde_json::Value, seed: &str) -> &'a serde_json::Value {
    json["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["seed"] == seed)
        .unwrap_or_else(|| panic!("no message for seed {seed} in {json:#}"))
}

/// A seed entry for a config: `address` polled over implicit TLS with the lab CA, its
/// password from the lab's file for `local`; `mx` is the optional override.
pub fn seed_entry(name: &str, address: &str, local: &str, mx: Option<&str>) -> String {
    let mx = mx.map(|m| format!("    mx: \"{m}\"\n")).unwrap_or_default();
    format!(
        "  - name: {name}\n    address: {address}\n{mx}    imap: {{ host: 127.0.0.1, port: 1993, tls: implicit, password: {pw}, ca_file: {ca} }}\n",
        pw = password_file(local),
        ca = lab_dir().join("tls/ca.pem").display(),
    )
}

/// A whole config: `sender_extra` is YAML added under `sender:` (two-space indented lines).
pub fn config_yaml(sender_extra: &str, timeout: &str, seeds: &[String]) -> String {
    format!(
        "sender:\n  from: \"Probe Test <probe@sender.lab.test>\"\n  ehlo: probe.example.org\n{sender_extra}\
         timing:\n  poll_interval: 1s\n  timeout: {timeout}\n  smtp_timeout: 10s\n  imap_timeout: 10s\nseeds:\n{}",
        seeds.concat()
    )
}

/// Writes `yaml` as seeds.yaml into a fresh directory and runs `probe ARGS --config seeds.yaml`.
pub fn run_yaml(yaml: &str, args: &[&str]) -> (tempfile::TempDir, Output) {
    ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seeds.yaml"), yaml).unwrap();
    let out = run(probe(dir.path())
        .args(args)
        .args(["--config", "seeds.yaml"]));
    (dir, out)
}

/// The JSON report of a run that printed one.
pub fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(out)))
}
