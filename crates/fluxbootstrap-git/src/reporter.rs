//! Progress reporting, so the binary can draw transfer progress without this crate printing.

/// Direction of a transfer being reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Objects being received from the remote (clone, fetch).
    Receiving,
    /// Objects being sent to the remote (push).
    Sending,
}

/// Receives transfer progress; every method has a no-op default.
pub trait Reporter: Sync {
    /// `done` of `total` objects have been transferred in `phase`.
    fn transfer(&self, phase: Phase, done: usize, total: usize) {
        let _ = (phase, done, total);
    }

    /// A network operation failed transiently with `error` and runs again after `delay`, as
    /// attempt `attempt` of at most `of`.
    fn retrying(&self, error: &str, attempt: u32, of: u32, delay: std::time::Duration) {
        let _ = (error, attempt, of, delay);
    }
}

/// A [`Reporter`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReporter;

impl Reporter for NoReporter {}
