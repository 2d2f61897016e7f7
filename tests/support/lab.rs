//! The real lab: start it once, find its files, keep it steady while tests use it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The lab's state directory, as `docker/lab/lab.sh` uses it.
pub fn lab_dir() -> PathBuf {
    std::env::var_os("SEEDPROBE_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/seedprobe-lab"))
}

/// Runs `docker/lab/lab.sh ARG` and returns what it said.
pub fn lab_sh(arg: &str) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/lab/lab.sh");
    Command::new("bash")
        .arg(&script)
        .arg(arg)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
}

/// Starts the lab (installing packages when missing) once per test process; `lab.sh` itself
/// serialises concurrent starts and is a no-op when the lab is already up.
pub fn ensure_lab() {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = STARTED.get_or_init(|| {
        let out = lab_sh("start");
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "docker/lab/lab.sh start failed ({}); run it by hand as root to see why:\n{}{}",
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
    let path = password_file(local);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The lab's password file for `local`.
pub fn password_file(local: &str) -> PathBuf {
    lab_dir().join("secrets").join(format!("{local}.pass"))
}

/// The lab CA, which signed every lab server's certificate.
pub fn lab_ca() -> PathBuf {
    lab_dir().join("tls/ca.pem")
}

/// Held shared while a test needs the lab steady (every probe the kit runs), exclusively by a
/// test that disrupts it (restarting Dovecot), so that the disruption hits no other test.
static STEADY: RwLock<()> = RwLock::new(());

/// The lab stays up while this is held (tests of this process only).
pub fn steady() -> RwLockReadGuard<'static, ()> {
    STEADY.read().unwrap_or_else(|e| e.into_inner())
}

/// No other test of this process uses the lab while this is held. Never run a probe or call
/// [`steady`] while holding it.
pub fn disrupt() -> RwLockWriteGuard<'static, ()> {
    STEADY.write().unwrap_or_else(|e| e.into_inner())
}

/// The lab servers' certificate (for 127.0.0.1, signed by [`lab_ca`]), for a fake that a lab
/// server must trust.
pub fn lab_server_cert() -> super::tls::Cert {
    static CERT: OnceLock<super::tls::Cert> = OnceLock::new();
    *CERT.get_or_init(|| {
        // Read once and kept for the process, as the embedded test PKI is.
        let read = |name: &str| -> &'static str {
            let text = std::fs::read_to_string(lab_dir().join("tls").join(name)).unwrap();
            Box::leak(text.into_boxed_str())
        };
        super::tls::Cert {
            pem: read("server.pem"),
            key: read("server.key"),
        }
    })
}
