//! The test kit's own promises: a failing Probe row names every mismatch at once, and the
//! seeds builder writes what probe reads.

use crate::support::{Probe, Seed, Seeds};

#[test]
fn a_probe_row_reports_every_mismatch_before_it_panics() {
    let row = std::panic::catch_unwind(|| {
        Probe::new()
            .arg("--help")
            .expect_exit(3)
            .stdout_has("no such text")
            .stderr_has("nor this")
            .stdout_lacks("Usage:")
            .run()
    });
    let Err(panic) = row else {
        panic!("the row should fail");
    };
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    for mismatch in [
        "exit code Some(0), expected 3",
        "stdout lacks \"no such text\"",
        "stderr lacks \"nor this\"",
        "stdout has \"Usage:\"",
        // The output follows, so the row needs no rerun to be understood.
        "probe --help\nstatus: exit status: 0\n--- stdout\n",
    ] {
        assert!(
            message.contains(mismatch),
            "{mismatch:?} not in:\n{message}"
        );
    }
}

#[test]
fn the_seeds_builder_writes_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = Seeds::lab("10s")
        .lab_sender()
        .via_lab_dns()
        .seeds([
            Seed::new("plain", "plain@example.org")
                .provider("gmx")
                .mx("127.0.0.1:2525")
                .imap_server("127.0.0.1", 1143)
                .tls("none")
                .imap_key("spam_folder", "\"Unerwünscht\""),
            Seed::new("env", "env@example.org"),
        ])
        .write(dir.path());
    // Loading checks the schema; secrets are only resolved when a run needs them.
    let config = seedprobe::config::Config::load(&path)
        .unwrap_or_else(|e| panic!("{e}\n{}", std::fs::read_to_string(&path).unwrap()));
    let names: Vec<_> = config.seeds.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["plain", "env"]);
    assert_eq!(config.seeds[0].imap.port, 1143);
}
