//! `probe bounce`: print what bounce messages say, one line per failed or delayed recipient.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;

use super::Exit;
use crate::bounce::{self, Bounce};

/// Arguments of `bounce`.
#[derive(Debug, Args)]
pub struct BounceArgs {
    /// Files (one message or an mbox), Maildirs, directories of messages, or `-` for stdin.
    #[arg(value_name = "PATH", default_value = "-")]
    pub paths: Vec<PathBuf>,
    /// Print a JSON array of objects instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Reads every path; exit 2 when one could not be read (the others are still reported).
pub fn main(args: &BounceArgs) -> Exit {
    let mut found: Vec<Bounce> = Vec::new();
    let mut exit = Exit::Ok;
    for path in &args.paths {
        let read = match bounce::read_bounces(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("probe: error: {e}");
                exit = Exit::Usage;
                continue;
            }
        };
        for (file, bounces) in read {
            match bounces {
                Some(list) => found.extend(list),
                None => eprintln!("probe: {file}: not a bounce, skipped"),
            }
        }
    }
    // Standard output flushes at every newline; pretty JSON has several per recipient.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &found)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        found.iter().try_for_each(|b| writeln!(out, "{}", line(b)))
    };
    // A closed pipe (`| head`) is the reader's choice, not an error worth a message.
    if let Err(e) = written.and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("probe: error: cannot write the output: {e}");
        return Exit::ProbeFailure;
    }
    exit
}

/// One recipient as a tab-free line: every field, `-` where unknown, control characters
/// escaped so a hostile diagnostic cannot rewrite the terminal.
fn line(b: &Bounce) -> String {
    let or_dash = |v: Option<&str>| v.unwrap_or("-").escape_debug().to_string();
    format!(
        "{}  {}  {}  {}  {}  {}  {}  {}  {}",
        b.file.escape_debug(),
        or_dash(b.recipient.as_deref()),
        b.action,
        or_dash(b.status.as_deref()),
        b.reply_code.map_or("-".to_owned(), |c| c.to_string()),
        b.reason,
        or_dash(b.remote_mta.as_deref()),
        or_dash(b.provider),
        or_dash(b.diagnostic.as_deref()),
    )
}
