//! The `probe` command line: parse, call the library, print, and map the result to an exit
//! code. The only place that prints to stdout, and the only place that uses `anyhow`.

mod bounce;
mod check;
mod compare;
mod completions;
mod exit;
mod history;
mod init;
mod maillog;
mod metrics;
mod progress;
mod rescue;
mod seeds;
mod serve;
mod smtp;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

pub use exit::Exit;
pub use smtp::{QuitAfterArg, SmtpArgs};

use crate::config::Config;
use crate::report::RunReport;
use crate::run::{self, Plan, RunError};
use crate::store::{Location, Store};
use crate::verdict::Verdict;

/// Measure where your mail lands: send tagged test messages to seed mailboxes, find them over
/// IMAP, and report inbox, spam, deferred, rejected or missing for each.
#[derive(Debug, Parser)]
#[command(name = "probe", version, about, long_about = None)]
pub struct Cli {
    /// The seeds file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "PROBE_CONFIG",
        default_value = "seeds.yaml"
    )]
    pub config: PathBuf,
    /// The store: a SQLite file [default: in the user's data directory], or a PostgreSQL
    /// database shared by several probe hosts, postgres://USER@HOST[:PORT]/DB (password from
    /// PGPASSWORD or ~/.pgpass).
    #[arg(long, global = true, env = "PROBE_STORE", value_name = "PATH|URL")]
    pub store: Option<String>,
    /// More logging on stderr (-v info, -vv debug). PROBE_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send one tagged message to each chosen seed; print the run id.
    Send(SendArgs),
    /// Poll the seed mailboxes for a run's messages until each has a verdict.
    Poll(PollArgs),
    /// Send, then poll, then show the verdicts.
    Run(SendArgs),
    /// One SMTP dialogue, swaks-style, printed as it happens; needs no seeds file.
    Smtp(Box<SmtpArgs>),
    /// Seed mailboxes: `probe seeds check` logs into each and reports problems, sending nothing.
    #[command(subcommand)]
    Seeds(seeds::SeedsCommand),
    /// List stored runs, newest first; `--prune-older-than 90d` deletes old ones.
    Runs(history::RunsArgs),
    /// Show a stored run (default: the latest) as a table grouped by provider, JSON or CSV.
    Report(history::ReportArgs),
    /// Compare two runs seed by seed (before/after a migration); exit 1 when any got worse.
    Compare(compare::CompareArgs),
    /// Check the sending IP and domain before sending: PTR, SPF, DKIM, DMARC, DNS lists.
    Check(check::CheckArgs),
    /// Read bounces (files, mboxes, Maildirs, directories, `-`): per failed or delayed
    /// recipient its status, reply code, reason and provider; needs no seeds file.
    Bounce(bounce::BounceArgs),
    /// Write a commented seeds file (--config) for these addresses: each one's provider and
    /// IMAP settings, and a password variable to set; never overwrites without --force.
    Init(init::InitArgs),
    /// Print the shell completion script: `probe completions bash > /etc/bash_completion.d/probe`.
    Completions(completions::CompletionsArgs),
    /// Move a run's spam-folder messages (default: the latest run's) back to INBOX, as a
    /// user's "not spam" click does, and record it: the one command that changes a mailbox.
    Rescue(rescue::RescueArgs),
    /// Print the man page (roff): `probe man > /usr/local/share/man/man1/probe.1`; `--dir`
    /// writes one page per subcommand too.
    Man(completions::ManArgs),
    /// Summarise a Postfix log per provider: delivered, deferred, bounced, rejected, expired
    /// and the top reasons; needs no seeds file.
    Maillog(maillog::MaillogArgs),
    /// Run every seed on a schedule (--every, schedule.every) and serve the reports, the
    /// comparisons and Prometheus metrics over HTTP (--listen) until SIGTERM or Ctrl-C.
    Serve(serve::ServeArgs),
}

/// Which seeds.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SeedChoice {
    /// Every seed in the config.
    #[arg(long)]
    pub all: bool,
    /// Only this seed (repeatable).
    #[arg(long = "seed", value_name = "NAME")]
    pub seeds: Vec<String>,
}

/// Arguments of `send` and `run`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Which seeds.
    #[command(flatten)]
    pub choice: SeedChoice,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Bind outgoing SMTP connections to this local address (overrides sender.source_ip).
    #[arg(long, value_name = "IP")]
    pub source_ip: Option<std::net::IpAddr>,
    /// A name for the run, shown in `probe runs` and reports (e.g. `before-migration`).
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    /// Make no checks of the sending IP and domain with the run (`probe check`'s, made beside
    /// sending by default and stored with the run).
    #[arg(long)]
    pub no_check: bool,
    /// (`run` only) Exit 1 when the inbox share is below this percentage, 0 otherwise.
    #[arg(long, value_name = "PERCENT", value_parser = history::parse_percent)]
    pub fail_under: Option<f64>,
    /// The metrics file option.
    #[command(flatten)]
    pub metrics: metrics::MetricsArgs,
    /// (`run` only) After the verdicts, move the run's spam-folder messages to INBOX as
    /// `probe rescue` does (this changes the seed mailboxes).
    #[arg(long)]
    pub rescue: bool,
}

/// Arguments of `poll`.
#[derive(Debug, Args)]
pub struct PollArgs {
    /// The run [default: the latest unfinished run].
    #[arg(long = "run", value_name = "ID")]
    pub run: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The metrics file option.
    #[command(flatten)]
    pub metrics: metrics::MetricsArgs,
}

/// Entry point of the `probe` binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Ok.into()
            };
        }
    };
    init_logging(cli.verbose);
    // `probe smtp` keeps swaks's exit codes, which this table has no room for.
    if let Command::Smtp(args) = &cli.command {
        return smtp::main(args);
    }
    // `probe bounce` reads files only: no runtime to start, which is most of its time.
    if let Command::Bounce(args) = &cli.command {
        return bounce::main(args).into();
    }
    // `probe maillog` likewise reads files only.
    if let Command::Maillog(args) = &cli.command {
        return maillog::main(args).into();
    }
    match &cli.command {
        Command::Completions(args) => return completions::completions(args).into(),
        Command::Man(args) => return completions::man(args).into(),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("probe: error: cannot start the async runtime: {e}");
            return Exit::ProbeFailure.into();
        }
    };
    // `probe serve` stops on SIGTERM and Ctrl-C itself, finishing cleanly.
    if let Command::Serve(args) = &cli.command {
        return match runtime.block_on(serve::main(&cli, args)) {
            Ok(exit) => exit.into(),
            Err(e) => {
                eprintln!("probe: error: {e:#}");
                exit::for_error(&e).into()
            }
        };
    }
    let result = runtime.block_on(async {
        tokio::select! {
            r = execute(&cli) => r,
            _ = tokio::signal::ctrl_c() => Ok(Exit::Interrupted),
        }
    });
    match result {
        Ok(Exit::Interrupted) => {
            eprintln!(
                "probe: interrupted; what was recorded is kept. Finish the run with `probe poll`."
            );
            Exit::Interrupted.into()
        }
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("probe: error: {e:#}");
            exit::for_error(&e).into()
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "seedprobe=info,warn",
        _ => "seedprobe=debug,info",
    };
    let base = std::env::var("PROBE_LOG").unwrap_or_else(|_| default.to_owned());
    // async-imap traces every command it writes, LOGIN included: never let that through.
    let filter =
        tracing_subscriber::EnvFilter::try_new(format!("{base},async_imap=off,imap_proto=off"))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour only for a person at a terminal: escape codes in a redirected log (a file, the
    // journal) are noise to whoever reads it. NO_COLOR (https://no-color.org) as for progress.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !no_color;
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .finish();
    // No `log` bridge is installed, for the same reason.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

async fn execute(cli: &Cli) -> anyhow::Result<Exit> {
    match &cli.command {
        Command::Smtp(_) => anyhow::bail!("probe smtp runs from main, outside execute"),
        Command::Bounce(_) => anyhow::bail!("probe bounce runs from main, outside execute"),
        Command::Serve(_) => anyhow::bail!("probe serve runs from main, outside execute"),
        Command::Completions(_) | Command::Man(_) => {
            anyhow::bail!("completions and the man page are printed from main, outside execute")
        }
        Command::Init(args) => init::main(&cli.config, args).await,
        Command::Maillog(_) => anyhow::bail!("probe maillog runs from main, outside execute"),
        Command::Seeds(seeds::SeedsCommand::Check(args)) => {
            let config = Config::load(&cli.config)?;
            seeds::check(&config, args).await
        }
        Command::Send(args) => {
            // The whole run is planned (passwords read, TLS set up) though `send` does not
            // poll: a run that could never be polled is refused before anything is sent.
            if args.fail_under.is_some() {
                eprintln!("probe: error: --fail-under applies to `probe run`, not `probe send`");
                return Ok(Exit::Usage);
            }
            if args.rescue {
                eprintln!("probe: error: --rescue applies to `probe run`, not `probe send`");
                return Ok(Exit::Usage);
            }
            let (config, plan, mut store) = prepare(cli, args).await?;
            let seeds = config.select(&args.choice.seeds)?;
            let label = args.label.as_deref();
            let ui = progress::Renderer::stderr(&config);
            let run_id = run::send(&config, &plan, &seeds, &mut store, label, &mut |p| {
                ui.borrow_mut().event(p)
            })
            .await?;
            metrics::write(args.metrics.metrics_file.as_deref(), &store, &run_id, true)?;
            let report = load_report(&store, &run_id)?;
            if args.json {
                print_json(&store, &report)?;
            } else {
                println!("{run_id}");
            }
            // Not-tested seeds are shown by the JSON; the run id alone says nothing of them.
            if !args.json {
                eprint!("{}", report.not_tested_lines());
                eprint!("{}", report.checks_lines());
            }
            let placement = report.placement();
            let refused =
                placement.count(Verdict::Deferred) + placement.count(Verdict::Rejected) > 0;
            let untested = !report.run.not_tested.is_empty();
            Ok(if refused || untested {
                Exit::NotAllInbox
            } else {
                Exit::Ok
            })
        }
        Command::Run(args) => {
            let (config, plan, mut store) = prepare(cli, args).await?;
            let seeds = config.select(&args.choice.seeds)?;
            let label = args.label.as_deref();
            let ui = progress::Renderer::stderr(&config);
            let done = progress::ticking(
                &ui,
                run::send_then_poll(&config, &plan, &seeds, &mut store, label, &mut |p| {
                    ui.borrow_mut().event(p)
                }),
            )
            .await;
            ui.borrow_mut().finish();
            let run::Done { run_id, summary } = done?;
            let metrics_file = args.metrics.metrics_file.as_deref();
            let exit = report_and_metrics(&store, &run_id, args.json, metrics_file, summary)?;
            let exit = history::fail_under(&store, &run_id, args.fail_under, exit)?;
            if !args.rescue {
                return Ok(exit);
            }
            // The run's own exit stands unless the rescue did worse (3 over 1 over 0).
            let rescued = rescue::after_run(&config, &plan, &store, &run_id).await?;
            Ok(
                if rescued.code() > exit.code() && exit != Exit::Interrupted {
                    rescued
                } else {
                    exit
                },
            )
        }
        Command::Check(args) => check::main(&Config::load(&cli.config)?, args).await,
        Command::Runs(args) => history::runs(&mut open_store(cli)?, args),
        Command::Report(args) => history::report(&open_store(cli)?, args, cli.verbose > 0),
        Command::Compare(args) => compare::main(&open_store(cli)?, args),
        Command::Rescue(args) => {
            rescue::main(&Config::load(&cli.config)?, &open_store(cli)?, args).await
        }
        Command::Poll(args) => {
            let config = Config::load(&cli.config)?;
            let store = open_store(cli)?;
            let run_id = match &args.run {
                Some(id) => id.clone(),
                None => store.latest_unfinished_run()?,
            };
            // Confirms the run exists before the plan reads any password.
            store.run(&run_id)?;
            let ui = progress::Renderer::stderr(&config);
            let summary = progress::ticking(
                &ui,
                run::resume(&config, &store, &run_id, &mut |p| ui.borrow_mut().event(p)),
            )
            .await;
            ui.borrow_mut().finish();
            let metrics_file = args.metrics.metrics_file.as_deref();
            report_and_metrics(&store, &run_id, args.json, metrics_file, summary?)
        }
    }
}

/// After polling: prints the report, writes the metrics file.
fn report_and_metrics(
    store: &Store,
    run_id: &str,
    json: bool,
    metrics_file: Option<&std::path::Path>,
    summary: run::PollSummary,
) -> anyhow::Result<Exit> {
    let up = metrics::up(&summary);
    let exit = finish(store, run_id, json, summary)?;
    metrics::write(metrics_file, store, run_id, up)?;
    Ok(exit)
}

/// Everything that can fail before a message leaves: config, seeds, the plan (passwords, TLS),
/// store.
async fn prepare(cli: &Cli, args: &SendArgs) -> anyhow::Result<(Config, Plan, Store)> {
    let choice = &args.choice;
    let mut config = Config::load(&cli.config)?;
    if let Some(ip) = args.source_ip {
        config.sender.source_ip = Some(ip);
    }
    let seeds = config.select(&choice.seeds)?;
    let mut plan = Plan::build(&config, &seeds).await?;
    if !args.no_check {
        match run::RunChecks::new(&config) {
            Ok(checks) => {
                if config.sender.transport == crate::config::Transport::Relay {
                    eprintln!(
                        "probe: note: transport is relay: the checks judge {}, not your relay's address, which receivers see; `probe check --source-ip RELAY_IP` checks that",
                        checks.source_ip()
                    );
                }
                plan = plan.with_checks(checks);
            }
            // Bad checks.lists are a config error (exit 2); anything else only costs the checks.
            Err(e @ run::ChecksError::Lists(_)) => return Err(e.into()),
            Err(e) => eprintln!("probe: warning: no checks with this run: {e}"),
        }
    }
    let store = open_store(cli)?;
    Ok((config, plan, store))
}

fn open_store(cli: &Cli) -> anyhow::Result<Store> {
    Ok(Store::open_at(&store_location(cli)?)?)
}

/// `--store`, `PROBE_STORE` or the default: a SQLite file or a PostgreSQL URL.
fn store_location(cli: &Cli) -> anyhow::Result<Location> {
    Ok(match &cli.store {
        Some(text) => Location::parse(text)?,
        None => Location::Sqlite(
            Store::default_path()
                .context("no home directory to put the store in; give --store or PROBE_STORE")?,
        ),
    })
}

fn load_report(store: &Store, run_id: &str) -> Result<RunReport, RunError> {
    Ok(RunReport {
        run: store.run(run_id)?,
        messages: store.messages(run_id)?,
    })
}

fn finish(
    store: &Store,
    run_id: &str,
    json: bool,
    summary: run::PollSummary,
) -> anyhow::Result<Exit> {
    let report = load_report(store, run_id)?;
    if json {
        print_json(store, &report)?;
    } else {
        print!("{}", report.to_table());
    }
    if summary.accounts > 0 && summary.logged_in == 0 {
        // Say what happened to each mailbox: a refused login, a reset, a stall after login.
        eprintln!("probe: error: no seed mailbox could be polled:");
        for problem in &summary.unpolled {
            eprintln!("  {problem}");
        }
        return Ok(Exit::ProbeFailure);
    }
    // A seed that was not tested did not reach the inbox either.
    Ok(
        if report.placement().all_inbox() && report.run.not_tested.is_empty() {
            Exit::Ok
        } else {
            Exit::NotAllInbox
        },
    )
}

/// The run's JSON document, with each message's rescue: the same document `probe report
/// --format json` prints.
fn print_json(store: &Store, report: &RunReport) -> anyhow::Result<()> {
    let rescues = store.rescues(&report.run.id)?;
    let json = crate::report::json_with_rescues(&report.to_json(), &rescues)?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &json)?;
    writeln!(out)?;
    Ok(())
}
