//! Progress bars for transfers (PROTOCOL.md §9.3).
//!
//! A bar is drawn on stderr only when the transfer is still running after
//! [`PROGRESS_DELAY`], and only when enabled: per connection
//! ([`crate::ClientBuilder::with_progress`]), else by the global switch [`set_progress`],
//! else automatically when stderr is a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a transfer must run before its bar appears.
pub const PROGRESS_DELAY: Duration = Duration::from_millis(100);

const AUTO: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

static GLOBAL: AtomicU8 = AtomicU8::new(AUTO);

/// Sets the process-wide progress switch: `Some(true)` always show bars (even when stderr
/// is not a terminal), `Some(false)` never, `None` (the default) only on a terminal.
/// A connection built with [`crate::ClientBuilder::with_progress`] ignores this switch.
pub fn set_progress(enabled: Option<bool>) {
    let v = match enabled {
        None => AUTO,
        Some(true) => ON,
        Some(false) => OFF,
    };
    GLOBAL.store(v, Ordering::Relaxed);
}

/// Current value of the process-wide switch (see [`set_progress`]).
pub fn progress() -> Option<bool> {
    match GLOBAL.load(Ordering::Relaxed) {
        ON => Some(true),
        OFF => Some(false),
        _ => None,
    }
}

/// Whether a bar should be drawn, and whether drawing must be forced on a non-terminal.
fn decide(per_connection: Option<bool>) -> Option<bool> {
    match per_connection.or_else(progress) {
        Some(false) => None,
        Some(true) => Some(!std::io::stderr().is_terminal()),
        None => std::io::stderr().is_terminal().then_some(false),
    }
}

/// Progress of one transfer; cheap when no bar is ever shown.
pub(crate) struct Progress {
    /// `None` when bars are disabled; `Some(force)` otherwise.
    mode: Option<bool>,
    start: Instant,
    total: Option<u64>,
    position: u64,
    description: String,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts tracking a transfer described as e.g. `Slice: /PartType1/Coordinates`.
    pub(crate) fn new(per_connection: Option<bool>, description: String) -> Self {
        Progress {
            mode: decide(per_connection),
            start: Instant::now(),
            total: None,
            position: 0,
            description,
            bar: None,
        }
    }

    /// Sets the expected number of bytes once known.
    pub(crate) fn set_total(&mut self, total: u64) {
        self.total = Some(total);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Records `n` more bytes transferred.
    pub(crate) fn inc(&mut self, n: u64) {
        self.position += n;
        if let Some(bar) = &self.bar {
            bar.set_position(self.position);
            return;
        }
        if let Some(force) = self.mode
            && self.start.elapsed() >= PROGRESS_DELAY
        {
            self.bar = Some(self.make_bar(force));
        }
    }

    fn make_bar(&self, force: bool) -> ProgressBar {
        let target = if force {
            ProgressDrawTarget::term_like(Box::new(StderrTerm))
        } else {
            ProgressDrawTarget::stderr()
        };
        let (template, len) = match self.total {
            Some(t) => (
                "{msg} {bar:30} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
                Some(t),
            ),
            None => (
                "{msg} {spinner} {binary_bytes} ({binary_bytes_per_sec})",
                None,
            ),
        };
        let bar = ProgressBar::with_draw_target(len, target);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_message(self.description.clone());
        bar.set_position(self.position);
        bar
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Minimal terminal on stderr used when bars are forced on a non-terminal.
#[derive(Debug)]
struct StderrTerm;

impl StderrTerm {
    /// `ESC [ n <dir>`; nothing for n = 0 (terminals read a 0 count as 1).
    fn move_cursor(&self, n: usize, dir: char) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        indicatif::TermLike::write_str(self, &format!("\x1b[{n}{dir}"))
    }
}

impl indicatif::TermLike for StderrTerm {
    fn width(&self) -> u16 {
        80
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'D')
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().write_all(s.as_bytes())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.write_str("\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().flush()
    }
}
