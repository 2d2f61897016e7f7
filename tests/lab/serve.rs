//! `probe serve` against the lab: scheduled runs are made and stored one after the other, every
//! endpoint answers as documented, `/metrics` passes Prometheus's own parser (promtool), the
//! pages render in headless Chromium, `POST /runs` needs the token, and a serve stopped by
//! SIGTERM mid-run has that run finished by the next start.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::html::chromium;
use crate::support::lab::lab_sh;
use crate::support::net::wait_for;
use crate::support::probe::Running;
use crate::support::{Probe, Seeds, show_output};

const PROMTOOL: &str = "/opt/seedprobe-prometheus/usr/bin/promtool";
const TOKEN: &str = "lab-serve-token-0123456789";

/// An answer: status, head (lower-cased), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`): a client small enough to
/// read, so the test depends on no HTTP library but the server's.
fn http(port: u16, method: &str, path: &str, auth: Option<&str>) -> Option<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: 0\r\n{auth}\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some(Answer {
        status: head.split(' ').nth(1)?.parse().ok()?,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

fn get(port: u16, path: &str) -> Answer {
    http(port, "GET", path, None).unwrap_or_else(|| panic!("no answer to GET {path}"))
}

/// A free loopback port (bound and released: probe binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of a sample without labels in an exposition text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The lab's six seeds; `serve.token` when `token` is set.
fn config(token: bool) -> String {
    let mut yaml = Seeds::lab_six("3s").yaml();
    if token {
        yaml.push_str("serve:\n  token: { env: PROBE_SERVE_TOKEN }\n");
    }
    yaml
}

fn serve(probe: Probe, port: u16, every: &str) -> Running {
    let running = probe
        .lab()
        .env("PROBE_SERVE_TOKEN", TOKEN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--every",
            every,
        ])
        .spawn();
    wait_for("probe serve's /healthz", Duration::from_secs(30), || {
        http(port, "GET", "/healthz", None).filter(|a| a.status == 200)
    });
    running
}

fn sigterm(running: &Running) {
    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn store(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("store.sqlite")).unwrap()
}

/// (id, started_at, finished_at) of every finished run, oldest first.
fn finished_runs(dir: &Path) -> Vec<(String, i64, i64)> {
    let db = store(dir);
    let mut stmt = db
        .prepare(
            "SELECT id, started_at, finished_at FROM runs WHERE finished_at IS NOT NULL
             ORDER BY started_at",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn ensure_promtool() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let out = lab_sh("install-promtool");
        assert!(
            out.status.success(),
            "lab.sh install-promtool: {}",
            show_output(&out)
        );
    });
}

#[test]
fn serve_runs_on_schedule_serves_every_endpoint_and_finishes_a_stopped_run() {
    let port = free_port();
    let mut running = serve(Probe::new().config_text(config(false)), port, "2s");
    let dir = running.dir().to_owned();

    // Scheduled runs happen, are stored, and never overlap: each starts after the last ended
    // (a 3 s timeout is longer than the 2 s schedule, so every tick is delayed).
    let runs = wait_for("three scheduled runs", Duration::from_secs(60), || {
        assert!(!running.has_ended(), "probe serve ended");
        let runs = finished_runs(&dir);
        (runs.len() >= 3).then_some(runs)
    });
    for pair in runs.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "runs overlap: {pair:?}");
    }
    let (first, second) = (&runs[0].0, &runs[1].0);

    // Every endpoint, table-style: path, status, content type, a text the body has.
    let compare = format!("/compare?before={first}&after={second}");
    for (path, status, kind, has) in [
        ("/healthz", 200, "text/plain", "ok"),
        (
            "/",
            200,
            "text/html",
            "<section id=\"trend\">\n<figure class=\"trend\"",
        ),
        (
            "/",
            200,
            "text/html",
            &format!("<a href=\"/runs/{first}\">"),
        ),
        (
            &format!("/runs/{first}"),
            200,
            "text/html",
            "<table class=\"matrix\">",
        ),
        (
            &format!("/runs/{first}.json"),
            200,
            "application/json",
            &format!("\"run_id\": \"{first}\""),
        ),
        (
            "/runs/NOSUCHRUN",
            404,
            "text/plain",
            "no run NOSUCHRUN in the store",
        ),
        (
            "/runs/NOSUCHRUN.json",
            404,
            "text/plain",
            "no run NOSUCHRUN",
        ),
        (&compare, 200, "text/plain", "inbox"),
        (
            "/compare?before=NOSUCHRUN&after=X",
            404,
            "text/plain",
            "no run NOSUCHRUN",
        ),
        ("/compare?before=A", 400, "text/plain", "give both runs"),
        (
            "/metrics",
            200,
            "text/plain; version=0.0.4",
            "seedprobe_inbox_ratio{provider=\"-\"}",
        ),
        (
            "/metrics",
            200,
            "text/plain",
            "seedprobe_run_duration_seconds ",
        ),
        ("/nothing/here", 404, "text/plain", "not found"),
    ] {
        let a = get(port, path);
        assert_eq!(a.status, status, "GET {path}: {}", a.body);
        assert!(
            a.head.contains(&format!("content-type: {kind}")),
            "GET {path}: {}",
            a.head
        );
        assert!(a.body.contains(has), "GET {path} lacks {has:?}: {}", a.body);
    }
    // Without serve.token, POST /runs does not exist, token or not.
    for auth in [None, Some(format!("Bearer {TOKEN}"))] {
        let a = http(port, "POST", "/runs", auth.as_deref()).unwrap();
        assert_eq!(a.status, 404, "{}", a.body);
    }

    // Prometheus's own parser and linter.
    ensure_promtool();
    let metrics = get(port, "/metrics").body;
    let mut promtool = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}\n{metrics}",
        show_output(&out)
    );
    assert!(
        sample(&metrics, "seedprobe_serve_runs_total").unwrap() >= 3.0,
        "{metrics}"
    );

    // The pages in a real browser.
    let profile = tempfile::tempdir().unwrap();
    for (path, has) in [
        ("/".to_owned(), format!("href=\"/runs/{first}\"")),
        (
            format!("/runs/{first}"),
            "<table class=\"matrix\">".to_owned(),
        ),
    ] {
        let url = format!("http://127.0.0.1:{port}{path}");
        let out = chromium(profile.path(), &["--dump-dom", &url]);
        assert!(out.status.success(), "{}", show_output(&out));
        let dom = String::from_utf8(out.stdout).unwrap();
        assert!(dom.contains(&has), "{url}: {dom}");
    }

    // SIGTERM mid-run: once a run has sent everything and is polling, stop serve.
    let before = finished_runs(&dir).len();
    let interrupted: String = wait_for("a run polling", Duration::from_secs(60), || {
        store(&dir)
            .query_row(
                "SELECT r.id FROM runs r WHERE r.finished_at IS NULL
                   AND (SELECT COUNT(*) FROM messages m WHERE m.run_id = r.id AND m.state = 'sent') = 6",
                [],
                |r| r.get(0),
            )
            .ok()
    });
    sigterm(&running);
    let ran = running.finish(Duration::from_secs(30));
    assert_eq!(ran.code(), Some(0), "{}", ran.show());
    assert!(
        ran.stderr()
            .contains(&format!("stopped during run {interrupted}")),
        "{}",
        ran.show()
    );
    let unfinished = |id: &str| {
        store(&dir)
            .query_row(
                "SELECT finished_at IS NULL FROM runs WHERE id = ?1",
                [id],
                |r| r.get::<_, bool>(0),
            )
            .unwrap()
    };
    assert!(
        unfinished(&interrupted),
        "the stopped run was finished already"
    );
    assert!(finished_runs(&dir).len() >= before);

    // The next start finishes it before scheduling anything.
    let port = free_port();
    let mut again = serve(Probe::in_dir(&dir).config_text(config(false)), port, "1h");
    wait_for("the stopped run finished", Duration::from_secs(60), || {
        assert!(!again.has_ended(), "probe serve ended");
        (!unfinished(&interrupted)).then_some(())
    });
    let verdicts: i64 = store(&dir)
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE run_id = ?1 AND verdict IS NOT NULL",
            [&interrupted],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(verdicts, 6);
    sigterm(&again);
    let ran = again.finish(Duration::from_secs(30));
    assert!(
        ran.stderr()
            .contains(&format!("finishing run {interrupted}, left unfinished")),
        "{}",
        ran.show()
    );
}

#[test]
fn post_runs_needs_the_token_and_refuses_a_second_run_at_once() {
    let port = free_port();
    // An hour apart: the first run starts at once, and the next only when asked.
    let running = serve(Probe::new().config_text(config(true)), port, "1h");
    let metric = |name: &str| sample(&get(port, "/metrics").body, name);
    wait_for("the first run", Duration::from_secs(60), || {
        (metric("seedprobe_serve_runs_total") == Some(1.0)
            && metric("seedprobe_run_in_progress") == Some(0.0))
        .then_some(())
    });
    for (auth, status) in [
        (None, 401),
        (Some("Bearer wrong-token"), 401),
        (Some(&format!("Bearer {TOKEN}x")[..]), 401),
        (Some(&format!("Basic {TOKEN}")[..]), 401),
        (Some(&format!("Bearer {TOKEN}")[..]), 202),
        // Asked for or going: a second run now would prove nothing the first does not.
        (Some(&format!("Bearer {TOKEN}")[..]), 409),
    ] {
        let a = http(port, "POST", "/runs", auth).unwrap();
        assert_eq!(a.status, status, "{auth:?}: {}", a.body);
        assert!(!a.body.contains(TOKEN), "{}", a.body);
        if status == 401 {
            assert!(a.head.contains("www-authenticate: bearer"), "{}", a.head);
        }
    }
    wait_for("the asked-for run", Duration::from_secs(60), || {
        (metric("seedprobe_serve_runs_total") == Some(2.0)).then_some(())
    });
    sigterm(&running);
    let ran = running.finish(Duration::from_secs(30));
    assert_eq!(ran.code(), Some(0), "{}", ran.show());
    assert!(!ran.stderr().contains(TOKEN), "{}", ran.show());
    assert_eq!(
        ran.stderr().matches("probe serve: run ").count(),
        2,
        "{}",
        ran.show()
    );
}
