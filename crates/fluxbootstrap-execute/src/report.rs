//! What a run did, in one type for every output: the flux-style closing lines, the
//! per-cluster table of a fleet and `--output json` (one schema, documented in the README).
//!
//! The error type `E` is the caller's: its plan building fails clusters with its own errors
//! (preflight), and this crate's [`crate::ExecuteError`] converts into it.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::time::{Duration, Instant};

use fluxbootstrap_cluster::{ApplyReport, Change};
use serde_json::{Value, json};

/// What happened to one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Something changed on the cluster.
    Bootstrapped,
    /// Everything was already as wanted.
    UpToDate,
    /// Preflight, the Secret or the repository step failed before anything was applied to
    /// the cluster.
    Skipped,
    /// The cluster failed after the repository changed.
    Failed,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Bootstrapped => "bootstrapped",
            Outcome::UpToDate => "up to date",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// Objects one cluster's run touched.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Objects created.
    pub created: usize,
    /// Objects changed.
    pub configured: usize,
    /// Objects already as wanted.
    pub unchanged: usize,
    /// Requests that wrote to the API server.
    pub writes: usize,
    /// Whether the source Secret or the pull Secret changed.
    pub secret_changed: bool,
}

impl Counts {
    /// Objects and Secrets the run changed.
    pub fn changed(self) -> usize {
        self.created + self.configured + usize::from(self.secret_changed)
    }

    /// Counts a Secret write that changed the Secret.
    pub fn add_secret_change(&mut self) {
        self.writes += 1;
        self.secret_changed = true;
    }

    /// Adds what one apply did.
    pub fn add(&mut self, report: &ApplyReport) {
        self.writes += report.writes;
        for entry in &report.entries {
            match entry.change {
                Change::Created => self.created += 1,
                Change::Configured => self.configured += 1,
                Change::Unchanged => self.unchanged += 1,
            }
        }
    }
}

/// One cluster's row.
#[derive(Debug)]
pub struct Row<E> {
    /// The target's place in the selection: rows are shown in this order.
    pub index: usize,
    /// The cluster's kubeconfig context.
    pub context: String,
    /// Its `--path`.
    pub path: String,
    /// What happened.
    pub outcome: Outcome,
    /// What was touched.
    pub counts: Counts,
    /// Time spent on the cluster, preflight included.
    pub duration: Duration,
    /// Its phases' timings (`install`, `apply`, `wait`).
    pub timings: Vec<(&'static str, Duration)>,
    /// Why it was not bootstrapped.
    pub error: Option<E>,
}

impl<E: Display> Row<E> {
    /// A cluster left alone because `error` happened before anything was applied to it.
    pub fn skipped(
        index: usize,
        context: String,
        path: String,
        duration: Duration,
        error: E,
    ) -> Self {
        Row {
            index,
            context,
            path,
            outcome: Outcome::Skipped,
            counts: Counts::default(),
            duration,
            timings: Vec::new(),
            error: Some(error),
        }
    }

    fn json(&self) -> Value {
        json!({
            "context": self.context,
            "path": self.path,
            "result": self.outcome.word(),
            "objects": {
                "created": self.counts.created,
                "configured": self.counts.configured,
                "unchanged": self.counts.unchanged,
            },
            "secretChanged": self.counts.secret_changed,
            "changed": self.counts.changed(),
            "writes": self.counts.writes,
            "durationSeconds": self.duration.as_secs_f64(),
            "timings": seconds(&self.timings),
            "error": self.error.as_ref().map(|e| format!("{e:#}")),
        })
    }
}

/// What a run did.
#[derive(Debug)]
pub struct Report<E> {
    /// When the run began.
    pub started: Instant,
    /// The repository's HTTPS URL.
    pub repository: String,
    /// The branch.
    pub branch: String,
    /// The authentication mode's name.
    pub mode: &'static str,
    /// Whether nothing was to be written.
    pub dry_run: bool,
    /// The commits pushed.
    pub commits: Vec<String>,
    /// Clones made (one per run).
    pub clones: usize,
    /// The run's phases' timings.
    pub timings: Vec<(&'static str, Duration)>,
    /// One per selected cluster.
    pub rows: Vec<Row<E>>,
    /// Why the repository step failed; every cluster is then skipped.
    pub repository_error: Option<E>,
}

impl<E: Display> Report<E> {
    /// Records how long the phase that began at `since` took.
    pub fn time(&mut self, phase: &'static str, since: Instant) {
        self.timings.push((phase, since.elapsed()));
    }

    /// The rows in selection order, whatever order the clusters finished in.
    pub fn sort(&mut self) {
        self.rows.sort_by_key(|r| r.index);
    }

    /// How many clusters were not bootstrapped.
    pub fn failed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Skipped | Outcome::Failed))
            .count()
    }

    /// `--output json`: one schema for one cluster and for many.
    pub fn json(&self) -> Value {
        json!({
            "repository": self.repository,
            "branch": self.branch,
            "mode": self.mode,
            "dryRun": self.dry_run,
            "commits": self.commits,
            "clones": self.clones,
            "writes": self.rows.iter().map(|r| r.counts.writes).sum::<usize>(),
            "clusters": self.rows.iter().map(Row::json).collect::<Vec<_>>(),
            "durationSeconds": self.started.elapsed().as_secs_f64(),
            "timings": seconds(&self.timings),
        })
    }

    /// The closing table: context, result, objects changed, duration, error.
    pub fn table(&self) -> String {
        let header = ["CONTEXT", "RESULT", "CHANGED", "DURATION", "ERROR"];
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.context.clone(),
                    r.outcome.word().to_owned(),
                    if r.outcome == Outcome::Skipped {
                        "-".to_owned()
                    } else {
                        r.counts.changed().to_string()
                    },
                    format!("{:.1}s", r.duration.as_secs_f64()),
                    r.error
                        .as_ref()
                        .map(|e| format!("{e:#}"))
                        .unwrap_or_default(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cols: [&str; 5]| {
            let mut out = String::new();
            for (i, (cell, width)) in cols.iter().zip(widths).enumerate() {
                if i == 4 {
                    out.push_str(cell);
                } else {
                    let _ = write!(out, "{cell:<width$}  ");
                }
            }
            out.trim_end().to_owned()
        };
        let mut out = line(header);
        for row in &cells {
            out.push('\n');
            out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
        }
        out
    }
}

fn seconds(timings: &[(&'static str, Duration)]) -> BTreeMap<&'static str, f64> {
    timings.iter().map(|(k, d)| (*k, d.as_secs_f64())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let row = |index, context: &str, outcome, error: Option<&str>| Row {
            index,
            context: context.to_owned(),
            path: "./x".to_owned(),
            outcome,
            counts: Counts {
                created: 3,
                ..Counts::default()
            },
            duration: Duration::from_millis(1500),
            timings: Vec::new(),
            error: error.map(str::to_owned),
        };
        let report = Report {
            started: Instant::now(),
            repository: String::new(),
            branch: "main".to_owned(),
            mode: "token",
            dry_run: false,
            commits: Vec::new(),
            clones: 1,
            timings: Vec::new(),
            rows: vec![
                row(0, "admin", Outcome::Bootstrapped, None),
                row(
                    1,
                    "unreachable",
                    Outcome::Skipped,
                    Some("connection refused"),
                ),
            ],
            repository_error: None,
        };
        assert_eq!(
            report.table(),
            "CONTEXT      RESULT        CHANGED  DURATION  ERROR\n\
             admin        bootstrapped  3        1.5s\n\
             unreachable  skipped       -        1.5s      connection refused"
        );
        assert_eq!(report.json()["clusters"][1]["error"], "connection refused");
        assert_eq!(report.failed(), 1);
    }
}
