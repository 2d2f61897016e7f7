//! The `probe` runner: one invocation and what it must do, read as a table row, in the style
//! of the `just` test suite:
//!
//! ```ignore
//! Probe::new().args(["run", "--all"]).config(&seeds).expect_exit(1).stdout_has("spam").run();
//! ```
//!
//! Every mismatch is collected and shown, with the output, before the one panic, so a failing
//! row tells everything at once.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::lab::{ensure_lab, steady};
use super::seeds::Seeds;

/// Where a probe runs: its working directory, which holds its store and seeds file.
enum Workdir {
    Fresh(tempfile::TempDir),
    At(PathBuf),
}

impl Workdir {
    fn path(&self) -> &Path {
        match self {
            Workdir::Fresh(t) => t.path(),
            Workdir::At(p) => p,
        }
    }
}

#[derive(Default)]
struct Checks {
    exit: Option<i32>,
    stdout_has: Vec<String>,
    stdout_lacks: Vec<String>,
    stdout_lines: Vec<String>,
    stdout_empty: bool,
    stderr_has: Vec<String>,
    stderr_lacks: Vec<String>,
}

impl Checks {
    /// Every expectation `out` misses, one line each.
    fn mismatches(&self, out: &Output) -> Vec<String> {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut bad = Vec::new();
        if let Some(code) = self.exit
            && out.status.code() != Some(code)
        {
            bad.push(format!(
                "exit code {:?}, expected {code}",
                out.status.code()
            ));
        }
        for s in &self.stdout_has {
            if !stdout.contains(s.as_str()) {
                bad.push(format!("stdout lacks {s:?}"));
            }
        }
        for s in &self.stdout_lines {
            if !stdout.lines().any(|l| l == s) {
                bad.push(format!("stdout has no line {s:?}"));
            }
        }
        for s in &self.stdout_lacks {
            if stdout.contains(s.as_str()) {
                bad.push(format!("stdout has {s:?}"));
            }
        }
        if self.stdout_empty && !stdout.is_empty() {
            bad.push("stdout is not empty".into());
        }
        for s in &self.stderr_has {
            if !stderr.contains(s.as_str()) {
                bad.push(format!("stderr lacks {s:?}"));
            }
        }
        for s in &self.stderr_lacks {
            if stderr.contains(s.as_str()) {
                bad.push(format!("stderr has {s:?}"));
            }
        }
        bad
    }
}

/// One `probe` invocation: arguments, environment, seeds file and expectations.
#[must_use = "a Probe does nothing until .run()"]
pub struct Probe {
    dir: Workdir,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
    /// The seeds file's text.
    config: Option<String>,
    lab: bool,
    /// Whether `run` and `send` make their checks of the sending IP and domain.
    ip_checks: bool,
    /// What probe reads on standard input (`-` as a path); none: an empty stdin.
    stdin: Option<Vec<u8>>,
    checks: Checks,
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}

impl Probe {
    /// In a fresh directory, kept as long as the [`Ran`] it gives.
    pub fn new() -> Probe {
        Probe::with_dir(Workdir::Fresh(tempfile::tempdir().unwrap()))
    }

    /// In `dir` (its store and seeds file), e.g. a second command on a first one's store.
    pub fn in_dir(dir: &Path) -> Probe {
        Probe::with_dir(Workdir::At(dir.to_owned()))
    }

    fn with_dir(dir: Workdir) -> Probe {
        Probe {
            dir,
            args: Vec::new(),
            envs: Vec::new(),
            config: None,
            lab: false,
            ip_checks: false,
            stdin: None,
            checks: Checks::default(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Probe {
        self.args.push(arg.into());
        self
    }

    pub fn args<S: Into<OsString>>(mut self, args: impl IntoIterator<Item = S>) -> Probe {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Writes `seeds` as `seeds.yaml` in the directory and adds `--config seeds.yaml`.
    pub fn config(mut self, seeds: &Seeds) -> Probe {
        self.config = Some(seeds.yaml());
        self
    }

    /// [`Probe::config`] with a text no builder would write: a deliberately broken edit of
    /// [`Seeds::yaml`].
    pub fn config_text(mut self, yaml: impl Into<String>) -> Probe {
        self.config = Some(yaml.into());
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Probe {
        self.envs.push((key.into(), Some(value.into())));
        self
    }

    pub fn env_remove(mut self, key: impl Into<OsString>) -> Probe {
        self.envs.push((key.into(), None));
        self
    }

    /// `run` and `send` make their checks of the sending IP and domain. Without this the kit
    /// passes `--no-check`: the checks would ask the seeds file's resolver, or the system's,
    /// which has no network here, and only the tests of the checks look at them.
    pub fn ip_checks(mut self) -> Probe {
        self.ip_checks = true;
        self
    }

    /// Starts the real lab first (once per test process).
    pub fn lab(mut self) -> Probe {
        self.lab = true;
        self
    }

    pub fn expect_exit(mut self, code: i32) -> Probe {
        self.checks.exit = Some(code);
        self
    }

    pub fn stdout_has(mut self, text: impl Into<String>) -> Probe {
        self.checks.stdout_has.push(text.into());
        self
    }

    /// A whole line of stdout is exactly `line`.
    pub fn stdout_line(mut self, line: impl Into<String>) -> Probe {
        self.checks.stdout_lines.push(line.into());
        self
    }

    pub fn stdout_lacks(mut self, text: impl Into<String>) -> Probe {
        self.checks.stdout_lacks.push(text.into());
        self
    }

    pub fn stdout_is_empty(mut self) -> Probe {
        self.checks.stdout_empty = true;
        self
    }

    pub fn stderr_has(mut self, text: impl Into<String>) -> Probe {
        self.checks.stderr_has.push(text.into());
        self
    }

    pub fn stderr_lacks(mut self, text: impl Into<String>) -> Probe {
        self.checks.stderr_lacks.push(text.into());
        self
    }

    /// Feeds `bytes` to probe's standard input.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Probe {
        self.stdin = Some(bytes.into());
        self
    }

    /// Neither stdout nor stderr contains `text` (a secret, typically).
    pub fn output_lacks(self, text: &str) -> Probe {
        self.stdout_lacks(text).stderr_lacks(text)
    }

    /// The command this would run (for wrapping it, e.g. in `script` for a terminal).
    pub fn command(&self) -> Command {
        if self.lab {
            ensure_lab();
        }
        let dir = self.dir.path();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_probe"));
        cmd.env_remove("PROBE_CONFIG")
            .env_remove("PROBE_LOG")
            .env("PROBE_STORE", dir.join("store.sqlite"))
            .env("NO_COLOR", "1")
            .current_dir(dir)
            .args(&self.args);
        let sends = matches!(
            self.args.first().and_then(|a| a.to_str()),
            Some("run" | "send")
        );
        if sends && !self.ip_checks && !self.args.iter().any(|a| a == "--no-check") {
            cmd.arg("--no-check");
        }
        if let Some(yaml) = &self.config {
            // Renamed into place: another probe in this directory may be reading it.
            let tmp = tempfile::NamedTempFile::new_in(dir).unwrap();
            std::fs::write(tmp.path(), yaml).unwrap();
            tmp.persist(dir.join("seeds.yaml")).unwrap();
            cmd.args(["--config", "seeds.yaml"]);
        }
        for (k, v) in &self.envs {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// Runs probe to the end and checks every expectation.
    #[track_caller]
    pub fn run(self) -> Ran {
        let mut cmd = self.command();
        // Shared: a test that restarts lab services waits until no probe is running.
        let out = {
            let _steady = steady();
            match &self.stdin {
                None => cmd.output().expect("run probe"),
                Some(bytes) => {
                    let mut child = cmd
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("run probe");
                    // Written from a thread: probe may fill its stdout before reading all of
                    // its input, and both pipes are bounded.
                    let mut input = child.stdin.take().expect("probe's stdin");
                    let bytes = bytes.clone();
                    let writer = std::thread::spawn(move || {
                        let _ = std::io::Write::write_all(&mut input, &bytes);
                    });
                    let out = child.wait_with_output().expect("run probe");
                    writer.join().expect("stdin writer");
                    out
                }
            }
        };
        self.check(out)
    }

    /// [`Probe::run`] for a test whose fake servers run on its own tokio runtime meanwhile.
    pub async fn run_async(self) -> Ran {
        let cmd = self.command();
        let out = tokio::process::Command::from(cmd)
            .output()
            .await
            .expect("run probe");
        self.check(out)
    }

    /// Starts probe with piped output; [`Running::finish`] checks the expectations.
    pub fn spawn(self) -> Running {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start probe");
        // Drained meanwhile, so that a chatty probe never blocks on a full pipe.
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        Running {
            child,
            pipes: (stdout, stderr),
            probe: self,
        }
    }

    #[track_caller]
    fn check(self, out: Output) -> Ran {
        let bad = self.checks.mismatches(&out);
        let ran = Ran {
            out,
            dir: self.dir,
            args: self.args,
        };
        if !bad.is_empty() {
            panic!("{}\n{}", bad.join("\n"), ran.show());
        }
        ran
    }
}

/// A probe still running.
pub struct Running {
    pub child: Child,
    /// Readers of its stdout and stderr.
    pipes: (JoinHandle<Vec<u8>>, JoinHandle<Vec<u8>>),
    probe: Probe,
}

impl Running {
    /// Waits (bounded, killing it on overrun) and checks the expectations. A fresh directory
    /// lives as long as the returned [`Ran`].
    #[track_caller]
    pub fn finish(mut self, limit: Duration) -> Ran {
        let start = Instant::now();
        while !self.has_ended() {
            if start.elapsed() > limit {
                let ran = self.kill();
                panic!("probe still running after {limit:?}:\n{}", ran.show());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let (probe, out) = self.collect();
        probe.check(out)
    }

    /// Whether probe has exited already.
    pub fn has_ended(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Kills probe (if still running) and gives what it said, checking nothing.
    pub fn kill(mut self) -> Ran {
        let _ = self.child.kill();
        let (probe, out) = self.collect();
        Ran {
            out,
            dir: probe.dir,
            args: probe.args,
        }
    }

    /// Waits for the end and both pipes.
    fn collect(mut self) -> (Probe, Output) {
        let status = self.child.wait().unwrap();
        let out = Output {
            status,
            stdout: self.pipes.0.join().unwrap(),
            stderr: self.pipes.1.join().unwrap(),
        };
        (self.probe, out)
    }

    pub fn dir(&self) -> &Path {
        self.probe.dir.path()
    }
}

/// A finished probe: its output, and its directory (with the store) for as long as this lives.
pub struct Ran {
    pub out: Output,
    dir: Workdir,
    args: Vec<OsString>,
}

impl Ran {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    /// The directory probe ran in (store, seeds file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.show()))
    }

    /// The JSON report's entry for one seed.
    #[track_caller]
    pub fn message(&self, seed: &str) -> Value {
        message_for(&self.json(), seed).clone()
    }

    /// The command line, status and both outputs, for assertion messages.
    pub fn show(&self) -> String {
        show(&self.args, &self.out)
    }
}

fn show(args: &[OsString], out: &Output) -> String {
    format!(
        "probe {}\nstatus: {}\n--- stdout\n{}\n--- stderr\n{}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Any command's output as text, for assertion messages.
pub fn show_output(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The JSON report's entry for one seed.
#[track_caller]
pub fn message_for<'a>(json: &'a Value, seed: &str) -> &'a Value {
    json["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["seed"] == seed)
        .unwrap_or_else(|| panic!("no message for seed {seed} in {json:#}"))
}
