//! Spam folder discovery against providers' naming, end to end: every lab seed here files all
//! mail into its spam folder, so `spam` with the right folder means discovery found it.

use crate::support::{Probe, Seed, Seeds};

/// (seed, the seed as configured, folder as reported)
fn rows() -> [(&'static str, Seed, &'static str); 4] {
    [
        // Yahoo-like: `Bulk`, no \Junk attribute, found by the yahoo profile's names.
        (
            "yahoo",
            Seed::new("yahoo", "yahoo@yahoolike.lab.test")
                .provider("yahoo")
                .mx("127.0.0.1:2525")
                .lab_imap("yahoo"),
            "Bulk",
        ),
        // German GMX-like: `Spamverdacht`, no attribute, found among the built-in names.
        ("gmxlike", Seed::lab("gmxlike"), "Spamverdacht"),
        // Gmail-like: `[Gmail]/Spam` under a \Noselect parent, marked \Junk.
        ("gmaillike", Seed::lab("gmaillike"), "[Gmail]/Spam"),
        // A name only the user knows, non-ASCII, on the wire in modified UTF-7.
        (
            "umlaut",
            Seed::lab("umlaut").imap_key("spam_folder", "\"Unerwünscht\""),
            "Unerwünscht",
        ),
    ]
}

#[test]
fn spam_folders_are_found_by_attribute_name_or_config() {
    let rows = rows();
    let seeds = Seeds::lab("10s")
        .lab_sender()
        .seeds(rows.iter().map(|(_, seed, _)| seed.clone()));
    let out = Probe::new()
        .lab()
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .expect_exit(1)
        .run();
    let json = out.json();
    for (seed, _, folder) in rows {
        let m = crate::support::message_for(&json, seed);
        assert_eq!(m["verdict"], "spam", "{seed}: {m:#}");
        assert_eq!(m["folder"], folder, "{seed}: {m:#}");
    }
}
