//! What `probe` shows on stderr while a run goes on. On a terminal, a status line redrawn in
//! place (`polling: 4/6 done (gmail 1/2, -: 3/4) 0:07 / 0:15`) under the per-message lines;
//! elsewhere, plain lines only, without control characters. The library only emits
//! [`Progress`] events; all terminal handling is here.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io::{IsTerminal as _, Stderr, Write};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::run::Progress;
use crate::verdict::Verdict;

/// How often the status line is redrawn while polling.
pub const TICK: Duration = Duration::from_millis(250);
/// Redraws closer together than this wait for the next tick.
const MIN_GAP: Duration = Duration::from_millis(200);
/// Providers named in the status line; the rest are summed up as `+N`.
const MAX_PROVIDERS: usize = 4;
/// Returns to the start of the line and clears it.
const CLEAR: &str = "\r\x1b[K";

/// Prints progress events: status line on a terminal, plain lines otherwise.
pub struct Renderer<W: Write = Stderr> {
    out: W,
    terminal: bool,
    color: bool,
    /// Seed name to provider name (`-` for none).
    providers: HashMap<String, &'static str>,
    status: Option<Status>,
    /// Whether the status line is on screen now.
    shown: bool,
    last_draw: Option<Instant>,
    /// The status line as last drawn.
    last_text: String,
}

/// The state of a poll.
struct Status {
    started: Instant,
    timeout: Duration,
    /// (seed, provider, decided) in the run's order.
    seeds: Vec<(String, &'static str, bool)>,
}

impl Renderer<Stderr> {
    /// The renderer for stderr: terminal mode when stderr is a terminal, colour unless
    /// `NO_COLOR` is set (and not empty).
    pub fn stderr(config: &Config) -> RefCell<Self> {
        let err = std::io::stderr();
        let terminal = err.is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        RefCell::new(Renderer::new(err, terminal, terminal && !no_color, config))
    }
}

impl<W: Write> Renderer<W> {
    /// A renderer writing to `out`.
    pub fn new(out: W, terminal: bool, color: bool, config: &Config) -> Self {
        let providers = config
            .seeds
            .iter()
            .map(|s| (s.name.clone(), s.provider_name()))
            .collect();
        Self::with_providers(out, terminal, color, providers)
    }

    fn with_providers(
        out: W,
        terminal: bool,
        color: bool,
        providers: HashMap<String, &'static str>,
    ) -> Self {
        Renderer {
            out,
            terminal,
            color,
            providers,
            status: None,
            shown: false,
            last_draw: None,
            last_text: String::new(),
        }
    }

    /// Shows one event.
    pub fn event(&mut self, p: Progress<'_>) {
        self.event_at(p, Instant::now());
    }

    /// Redraws the status line (elapsed time); call every [`TICK`].
    pub fn tick(&mut self) {
        self.tick_at(Instant::now());
    }

    /// Takes the status line off the screen, so what follows starts on a clean line.
    pub fn finish(&mut self) {
        self.clear();
        self.status = None;
        let _ = self.out.flush();
    }

    fn event_at(&mut self, p: Progress<'_>, now: Instant) {
        if let Progress::Polling { seeds, timeout, .. } = &p {
            self.status = Some(Status {
                started: now,
                // Whole seconds, rounded up: the wait left after sending is rarely round.
                timeout: Duration::from_secs(
                    timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0),
                ),
                seeds: seeds
                    .iter()
                    .map(|s| (s.clone(), self.provider(s), false))
                    .collect(),
            });
        }
        if let (Progress::Decided { seed, .. }, Some(status)) = (&p, &mut self.status)
            && let Some(entry) = status
                .seeds
                .iter_mut()
                .find(|(s, _, done)| s == seed && !done)
        {
            entry.2 = true;
        }
        self.clear();
        let line = self.line(&p);
        let _ = writeln!(self.out, "{line}");
        if self
            .last_draw
            .is_none_or(|t| now.duration_since(t) >= MIN_GAP)
        {
            self.draw(now);
        }
        let _ = self.out.flush();
    }

    fn tick_at(&mut self, now: Instant) {
        self.draw(now);
        let _ = self.out.flush();
    }

    fn provider(&self, seed: &str) -> &'static str {
        self.providers.get(seed).copied().unwrap_or("-")
    }

    fn clear(&mut self) {
        if self.shown {
            let _ = write!(self.out, "{CLEAR}");
            self.shown = false;
        }
    }

    fn draw(&mut self, now: Instant) {
        if !self.terminal {
            return;
        }
        let Some(text) = self.status_line(now) else {
            return;
        };
        if self.shown && text == self.last_text {
            return;
        }
        let _ = write!(self.out, "{CLEAR}{text}");
        self.shown = true;
        self.last_draw = Some(now);
        self.last_text = text;
    }

    /// `polling: 4/6 done (gmail 1/2, gmx 1/1, -: 2/3) 0:07 / 0:15`
    fn status_line(&self, now: Instant) -> Option<String> {
        let status = self.status.as_ref()?;
        let mut providers: Vec<(&str, usize, usize)> = Vec::new();
        for (_, provider, done) in &status.seeds {
            let i = match providers.iter().position(|(p, _, _)| p == provider) {
                Some(i) => i,
                None => {
                    providers.push((provider, 0, 0));
                    providers.len() - 1
                }
            };
            providers[i].1 += usize::from(*done);
            providers[i].2 += 1;
        }
        let done: usize = providers.iter().map(|p| p.1).sum();
        let total = status.seeds.len();
        let mut parts: Vec<String> = providers
            .iter()
            .take(MAX_PROVIDERS)
            .map(|(p, d, t)| {
                let sep = if *p == "-" { ":" } else { "" };
                format!("{p}{sep} {d}/{t}")
            })
            .collect();
        if providers.len() > MAX_PROVIDERS {
            parts.push(format!("+{}", providers.len() - MAX_PROVIDERS));
        }
        Some(format!(
            "polling: {done}/{total} done ({}) {} / {}",
            parts.join(", "),
            clock(
                now.saturating_duration_since(status.started)
                    .min(status.timeout)
            ),
            clock(status.timeout),
        ))
    }

    /// The line for an event, as printed above the status line (or alone).
    fn line(&self, p: &Progress<'_>) -> String {
        match p {
            Progress::Sent { seed, ending } => format!("sent {seed}: {ending}"),
            Progress::Polling {
                pending,
                accounts,
                timeout,
                ..
            } => format!(
                "polling {accounts} mailbox(es) for {pending} message(s), for up to {}",
                humantime::format_duration(Duration::from_secs(timeout.as_secs()))
            ),
            Progress::Decided { seed, verdict } => match (self.color, color_of(*verdict)) {
                (true, Some(code)) => format!("{seed}: \x1b[{code}m{verdict}\x1b[0m"),
                _ => format!("{seed}: {verdict}"),
            },
            Progress::PollProblem {
                seeds,
                error,
                fatal,
            } => format!(
                "{}: {error}{}",
                seeds.join(", "),
                if *fatal {
                    " (giving up on this mailbox)"
                } else {
                    ""
                }
            ),
        }
    }
}

impl<W: Write> Drop for Renderer<W> {
    /// An interrupted run (Ctrl-C drops everything) leaves no status line for the prompt.
    fn drop(&mut self) {
        self.finish();
    }
}

/// Runs `fut` (a poll reporting to `ui`), redrawing the status line every [`TICK`] meanwhile.
pub async fn ticking<W: Write, F: Future>(ui: &RefCell<Renderer<W>>, fut: F) -> F::Output {
    if !ui.borrow().terminal {
        return fut.await;
    }
    let mut fut = std::pin::pin!(fut);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tick.tick() => ui.borrow_mut().tick(),
        }
    }
}

/// ANSI colour (foreground) per verdict.
fn color_of(verdict: Verdict) -> Option<u8> {
    match verdict {
        Verdict::Inbox => Some(32),
        Verdict::SpamTagged | Verdict::Spam | Verdict::Deferred => Some(33),
        Verdict::Rejected | Verdict::Missing => Some(31),
    }
}

/// `m:ss` (or `h:mm:ss`).
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer(terminal: bool, color: bool) -> Renderer<Vec<u8>> {
        let providers = [
            ("g1", "gmail"),
            ("g2", "gmail"),
            ("x1", "gmx"),
            ("a", "-"),
            ("b", "-"),
            ("c", "-"),
        ]
        .into_iter()
        .map(|(s, p)| (s.to_owned(), p))
        .collect();
        Renderer::with_providers(Vec::new(), terminal, color, providers)
    }

    fn drive(r: &mut Renderer<Vec<u8>>) -> Instant {
        let t0 = Instant::now();
        let seeds: Vec<String> = ["g1", "g2", "x1", "a", "b", "c"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        r.event_at(
            Progress::Polling {
                pending: 6,
                seeds: &seeds,
                accounts: 6,
                timeout: Duration::from_secs(15),
            },
            t0,
        );
        for (i, seed) in ["g1", "x1", "a", "b"].into_iter().enumerate() {
            r.event_at(
                Progress::Decided {
                    seed,
                    verdict: Verdict::Inbox,
                },
                t0 + Duration::from_secs(1 + i as u64),
            );
        }
        t0
    }

    fn text(r: &Renderer<Vec<u8>>) -> String {
        String::from_utf8(r.out.clone()).unwrap()
    }

    #[test]
    fn terminal_mode_draws_the_status_line() {
        let mut r = renderer(true, false);
        let t0 = drive(&mut r);
        r.tick_at(t0 + Duration::from_millis(7300));
        let out = text(&r);
        let line = "polling: 4/6 done (gmail 1/2, gmx 1/1, -: 2/3) 0:07 / 0:15";
        assert!(out.ends_with(&format!("\r\x1b[K{line}")), "{out:?}");
        assert_eq!(
            r.status_line(t0 + Duration::from_secs(7)).as_deref(),
            Some(line)
        );
        // Each verdict is a line of its own, after the status line was cleared.
        assert!(out.contains("\r\x1b[Kx1: inbox\n"), "{out:?}");
        assert!(!out.contains("\x1b[3"), "colour without asking: {out:?}");
        r.finish();
        assert!(text(&r).ends_with("0:15\r\x1b[K"), "{:?}", text(&r));
    }

    #[test]
    fn terminal_mode_colours_verdicts_unless_told_not_to() {
        let mut r = renderer(true, true);
        drive(&mut r);
        assert!(text(&r).contains("g1: \x1b[32minbox\x1b[0m\n"));
    }

    #[test]
    fn plain_mode_has_no_control_characters() {
        let mut r = renderer(false, false);
        let t0 = drive(&mut r);
        r.tick_at(t0 + Duration::from_secs(7));
        r.finish();
        let out = text(&r);
        assert!(!out.contains('\r') && !out.contains('\x1b'), "{out:?}");
        assert_eq!(
            out,
            "polling 6 mailbox(es) for 6 message(s), for up to 15s\n\
             g1: inbox\nx1: inbox\na: inbox\nb: inbox\n"
        );
    }

    #[test]
    fn clock_formats() {
        assert_eq!(clock(Duration::from_secs(7)), "0:07");
        assert_eq!(clock(Duration::from_secs(75)), "1:15");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    }
}
