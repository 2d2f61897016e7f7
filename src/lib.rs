//! seedprobe: measure where your mail lands.
//!
//! The flow, one module per step:
//!
//! 1. [`config`]: read and check the seeds file. Plain data: it says where each secret is, and
//!    reads none.
//! 2. [`secrets`]: read those secrets into a [`secrets::Credential`] (a password, or an OAuth
//!    2.0 access token from the provider's token endpoint) for IMAP login and SMTP AUTH alike.
//! 3. [`run::plan`]: before anything is sent, the run is planned once: credentials read, each
//!    seed's IMAP account and TLS configuration ([`tls`], one per CA file), the SMTP route and
//!    settings.
//! 4. [`message`]: compose one message per seed, tagged with a unique [`message::Token`].
//! 5. [`send`]: deliver it over SMTP (straight to the MX, or through the user's relay),
//!    recording every reply and the TLS details.
//! 6. [`poll`]: log into each seed mailbox over IMAP, find each message by its token, note
//!    the folder and the headers that matter ([`evidence`] reads them). In relay mode,
//!    [`downstream`] reads the relay's DSNs and follows its log.
//! 7. [`verdict`]: the one place that turns that evidence into `inbox`, `spam_tagged`, `spam`,
//!    `deferred`, `rejected` or `missing`.
//! 8. [`store`]: every run, attempt, observation and verdict in SQLite, written as it happens.
//! 9. [`report`]: a terminal table, JSON, CSV, HTML or metrics from the store; [`compare`]
//!    sets two runs side by side.
//!
//! Beside the flow, [`check`] (`probe check`) looks at the sending IP's and domain's DNS and
//! their listings on DNS block and allow lists before anything is sent, and [`bounce`]
//! (`probe bounce`) reads bounce messages and classifies each failed recipient's reason by
//! [`reason`]; [`maillog`] (`probe maillog`) summarises a Postfix log per provider with the
//! same reasons. [`rescue`] (`probe rescue`) moves a run's spam-folder messages back to INBOX,
//! as a user's "not spam" click does: the one change probe ever makes to a seed mailbox.
//!
//! [`serve`] (`probe serve`) makes the runs on a schedule, in-process, and serves their
//! reports, comparisons and Prometheus metrics over HTTP.
//!
//! [`run`] ties the steps together; [`cli`] is the `probe` command line and owns exit codes.
//! [`table`] says which lines of the data tables compiled in (`*.tsv`) are rows.
//! The modules form no cycle (a test below checks it): `secrets`, `table` and `tls` are
//! leaves, `config` uses only `secrets`, and `run` and `cli` sit on top.
#![deny(missing_docs)]

pub mod bounce;
pub mod check;
pub mod cli;
pub mod compare;
pub mod config;
pub mod downstream;
pub mod evidence;
pub mod maillog;
pub mod message;
pub mod poll;
pub mod reason;
pub mod report;
pub mod rescue;
pub mod run;
pub mod secrets;
pub mod send;
pub mod serve;
pub mod store;
pub mod table;
pub mod tls;
pub mod verdict;

#[cfg(test)]
mod module_graph {
    //! The top-level modules form no cycle: each step of the flow depends only on the ones
    //! below it (`secrets` and `tls` at the bottom, `run` and `cli` at the top). A cycle makes
    //! two modules one in all but name, which is how `config` and `poll` once tangled.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    type Graph = BTreeMap<String, BTreeSet<String>>;

    /// Every `crate::<module>` reference in `src/**/*.rs`, per top-level module, comments
    /// excepted (a doc link is not a dependency). `lib.rs` and `main.rs` are the roots.
    fn graph(src: &Path) -> Graph {
        let mut graph = Graph::new();
        let mut files = vec![src.to_owned()];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let relative = path.strip_prefix(src).unwrap();
            let Some(first) = relative.iter().next().and_then(|c| c.to_str()) else {
                continue;
            };
            if path.extension().is_none_or(|e| e != "rs") || ["lib.rs", "main.rs"].contains(&first)
            {
                continue;
            }
            let module = first.trim_end_matches(".rs").to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            // Code only, whole: a `use crate::{...}` group may span lines.
            let code: String = text
                .lines()
                .map(|line| line.split(" // ").next().unwrap_or(""))
                .filter(|code| !code.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let uses = graph.entry(module.clone()).or_default();
            uses.extend(references(&code).into_iter().filter(|m| *m != module));
        }
        graph
    }

    /// The modules named right after `crate::` in code: `crate::a::X`, `crate::{a, b::Y}`.
    fn references(code: &str) -> Vec<String> {
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let mut found = Vec::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            match rest.strip_prefix('{') {
                Some(group) => {
                    // Only the top level of the group: `{a::{X, Y}, b}` names a and b.
                    let mut depth = 0;
                    let mut start = 0;
                    for (j, c) in group.char_indices() {
                        match c {
                            '{' => depth += 1,
                            '}' if depth == 0 => {
                                found.push(ident(&group[start..j]));
                                break;
                            }
                            '}' => depth -= 1,
                            ',' if depth == 0 => {
                                found.push(ident(&group[start..j]));
                                start = j + 1;
                            }
                            _ => {}
                        }
                    }
                }
                None => found.push(ident(rest)),
            }
        }
        found.retain(|m| !m.is_empty() && m != "self");
        found
    }

    /// A cycle, as `a -> b -> a`, if the graph has one.
    fn find_cycle(graph: &Graph) -> Option<String> {
        fn visit<'a>(
            graph: &'a Graph,
            node: &'a str,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<String> {
            if let Some(at) = path.iter().position(|n| *n == node) {
                let mut cycle = path[at..].to_vec();
                cycle.push(node);
                return Some(cycle.join(" -> "));
            }
            if !done.insert(node) {
                return None;
            }
            path.push(node);
            for next in graph.get(node).into_iter().flatten() {
                if let Some(cycle) = visit(graph, next, path, done) {
                    return Some(cycle);
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        graph
            .keys()
            .find_map(|start| visit(graph, start, &mut Vec::new(), &mut done))
    }

    #[test]
    fn top_level_modules_form_no_cycle() {
        let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        assert!(graph.contains_key("run") && graph.contains_key("secrets"));
        assert!(graph["config"].contains("secrets"), "{graph:?}");
        if let Some(cycle) = find_cycle(&graph) {
            panic!("module cycle: {cycle}");
        }
    }

    #[test]
    fn secrets_is_a_leaf_below_config() {
        let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        let below: BTreeSet<String> = ["tls".to_owned()].into();
        assert_eq!(graph["secrets"], below, "secrets may use only tls");
    }

    #[test]
    fn references_and_cycles_are_found() {
        assert_eq!(references("use crate::config::{Imap, X};"), ["config"]);
        assert_eq!(
            references("use crate::{config::{self, Seed}, poll, self};"),
            ["config", "poll"]
        );
        assert_eq!(
            references("let x = crate::tls::Trust::load(crate::secrets::y);"),
            ["tls", "secrets"]
        );
        assert_eq!(
            references("use crate::{\n    config::X,\n    poll,\n};"),
            ["config", "poll"]
        );
        let graph: Graph = [
            ("config", &["poll", "secrets"][..]),
            ("poll", &["config"][..]),
            ("secrets", &[][..]),
        ]
        .into_iter()
        .map(|(m, uses)| (m.to_owned(), uses.iter().map(|u| u.to_string()).collect()))
        .collect();
        assert_eq!(
            find_cycle(&graph).as_deref(),
            Some("config -> poll -> config")
        );
    }
}
