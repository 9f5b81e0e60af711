//! Progress bars for long data transfers (on stderr, only when it is a terminal).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Transfers at least this large get a progress bar.
pub const BAR_THRESHOLD: u64 = 64 << 20;

/// A byte-count progress bar, shown on a terminal for transfers of [`BAR_THRESHOLD`] bytes or
/// more (`FAMFS_PROGRESS=1`: for any size; `=0`: never). It is never drawn when stderr is not a
/// terminal.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

fn wanted(total: u64) -> bool {
    match std::env::var("FAMFS_PROGRESS").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => total >= BAR_THRESHOLD && std::io::stderr().is_terminal(),
    }
}

impl Progress {
    /// A bar for `total` bytes labelled `label` (e.g. "famfs cp: big.bin").
    pub fn new(total: u64, label: &str) -> Progress {
        if !wanted(total) {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(label.to_string());
        Progress { bar: Some(bar) }
    }

    /// Count `n` more bytes done.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
