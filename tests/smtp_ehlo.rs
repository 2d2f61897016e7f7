//! `probe smtp`'s default EHLO name: never `localhost` when a better name is known (issue 9,
//! item 5). Needs no lab: the kit's holding server keeps what the client said.

use crate::support::Probe;
use crate::support::smtp::Holder;

/// This machine's name as the kernel has it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn default_ehlo_is_the_fqdn_or_the_senders_domain() {
    let server = Holder::start();
    let host = host_name();
    let want = if host.contains('.') {
        format!("EHLO {host}")
    } else {
        "EHLO sender.example".to_owned()
    };
    Probe::new()
        .args(["smtp", "--to", "seed@example.net"])
        .args(["--from", "probe@sender.example", "--server", &server.mx()])
        .args(["--quit-after", "ehlo", "--timeout", "10s"])
        .expect_exit(0)
        .stdout_has(format!("-> {want}"))
        .run();
    let said: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.to_ascii_uppercase().starts_with("EHLO"))
        .collect();
    assert_eq!(said, [want]);
}
