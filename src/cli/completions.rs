//! `probe completions SHELL` and `probe man`: the shell completions and the man page, made
//! from the same clap definition the parser uses, so they cannot drift from the real flags.

use std::io::Write as _;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, Exit};

/// Arguments of `probe completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// Prints the completion script for a shell on stdout.
pub fn completions(args: &CompletionsArgs) -> Exit {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "probe", &mut out);
    match out.flush() {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("probe: error: cannot write the completions: {e}");
            Exit::ProbeFailure
        }
    }
}

/// Arguments of `probe man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write probe.1 and a page per subcommand (probe-run.1, ...) into this directory instead
    /// of printing probe.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Prints the man page (roff) on stdout: `probe man > /usr/local/share/man/man1/probe.1`, or
/// writes every page into a directory.
pub fn man(args: &ManArgs) -> Exit {
    if let Some(dir) = &args.dir {
        return match clap_mangen::generate_to(Cli::command(), dir) {
            Ok(()) => Exit::Ok,
            Err(e) => {
                eprintln!(
                    "probe: error: cannot write the man pages into {}: {e}",
                    dir.display()
                );
                Exit::ProbeFailure
            }
        };
    }
    let page = clap_mangen::Man::new(Cli::command());
    let mut buffer = Vec::new();
    let written = page
        .render(&mut buffer)
        .and_then(|()| std::io::stdout().lock().write_all(&buffer));
    match written {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("probe: error: cannot write the man page: {e}");
            Exit::ProbeFailure
        }
    }
}
