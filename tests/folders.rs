//! Spam folder discovery against providers' naming, end to end: every lab seed here files all
//! mail into its spam folder, so `spam` with the right folder means discovery found it.

use crate::lab::{config_yaml, json_of, lab_dir, message_for, password_file, run_yaml, show};

/// (seed, address, extra seed fields, extra imap fields, folder as reported)
const ROWS: &[(&str, &str, &str, &str, &str)] = &[
    // Yahoo-like: `Bulk`, no \Junk attribute, found by the yahoo profile's names.
    (
        "yahoo",
        "yahoo@yahoolike.lab.test",
        "    provider: yahoo\n",
        "",
        "Bulk",
    ),
    // German GMX-like: `Spamverdacht`, no attribute, found among the built-in names.
    (
        "gmxlike",
        "gmxlike@gmxlike.lab.test",
        "",
        "",
        "Spamverdacht",
    ),
    // Gmail-like: `[Gmail]/Spam` under a \Noselect parent, marked \Junk.
    (
        "gmaillike",
        "gmaillike@gmaillike.lab.test",
        "",
        "",
        "[Gmail]/Spam",
    ),
    // A name only the user knows, non-ASCII, on the wire in modified UTF-7.
    (
        "umlaut",
        "umlaut@umlaut.lab.test",
        "",
        ", spam_folder: \"Unerwünscht\"",
        "Unerwünscht",
    ),
];

#[test]
fn spam_folders_are_found_by_attribute_name_or_config() {
    let ca = lab_dir().join("tls/ca.pem");
    let seeds: Vec<String> = ROWS
        .iter()
        .map(|(name, address, seed_extra, imap_extra, _)| {
            let local = address.split('@').next().unwrap();
            format!(
                "  - name: {name}\n    address: {address}\n{seed_extra}    mx: \"127.0.0.1:2525\"\n    imap: {{ host: 127.0.0.1, port: 1993, tls: implicit, password: {pw}, ca_file: {ca}{imap_extra} }}\n",
                pw = password_file(local),
                ca = ca.display()
            )
        })
        .collect();
    let (_dir, out) = run_yaml(&config_yaml("", "10s", &seeds), &["run", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json = json_of(&out);
    for (seed, _, _, _, folder) in ROWS {
        let m = message_for(&json, seed);
        assert_eq!(m["verdict"], "spam", "{seed}: {m:#}");
        assert_eq!(m["folder"], *folder, "{seed}: {m:#}");
    }
}
