//! `probe init` for custom domains: the provider is found from the domain's MX hosts, asked of
//! the lab's DNS (docker/lab/dns/dnsmasq.conf, "probe init" block).

use crate::support::Probe;

#[test]
fn init_finds_a_custom_domains_provider_from_its_mx() {
    // address, what the seed's comment must say, provider line (None: unknown)
    let table = [
        (
            "ann@workspace.lab.test",
            "gmail (the domain's MX is aspmx.l.google.com)",
            Some("provider: gmail"),
        ),
        (
            "bo@m365.lab.test",
            "outlook (the domain's MX is m365-lab-test.mail.protection.outlook.com)",
            Some("provider: outlook"),
        ),
        (
            "cy@selfhosted.lab.test",
            "provider not recognised (MX mx.lab.test)",
            None,
        ),
        (
            "di@nowhere.lab.test",
            "provider not recognised (no MX found)",
            None,
        ),
    ];
    let mut probe = Probe::new().lab().args([
        "--config",
        "seeds.yaml",
        "init",
        "--resolver",
        "127.0.0.1:5353",
        "--from",
        "p@sender.lab.test",
    ]);
    for row in &table {
        probe = probe.arg(row.0);
    }
    let ran = probe.expect_exit(0).run();
    let text = std::fs::read_to_string(ran.dir().join("seeds.yaml")).unwrap();
    for (address, why, provider) in table {
        // The seed's lines: its comment down to its password line.
        let start = text
            .find(&format!("  # {address}:"))
            .unwrap_or_else(|| panic!("no seed for {address}:\n{text}"));
        let end = start + text[start..].find("    password:").unwrap();
        let block = &text[start..end];
        assert!(block.contains(why), "{address}: {why}\n{block}");
        match provider {
            Some(line) => assert!(block.contains(line), "{address}: {line}\n{block}"),
            None => assert!(
                block.contains("host: \"imap."),
                "{address}: an IMAP host guess\n{block}"
            ),
        }
    }
}
