//! `cargo xtask bench keygen`: RSA-4096 generation here versus `ssh-keygen` in the same run.
//!
//! Issue 4 sets the bar at "no slower than `ssh-keygen -t rsa -b 4096`". Prime search makes
//! single runs noisy, so each side runs several times and the medians are compared.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix("--runs=").and_then(|n| n.parse().ok()))
        .unwrap_or(7);
    let bits = 4096;

    let ours: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let pair = fluxbootstrap_auth::generate_rsa(bits).expect("RSA generation works");
            let elapsed = start.elapsed();
            assert!(pair.public_openssh.starts_with("ssh-rsa "));
            elapsed
        })
        .collect();
    let ours = median(ours);
    println!("fluxbootstrap-auth RSA-{bits}: median {ours:.3?} over {runs} runs");

    let dir = tempfile::tempdir().expect("a temp dir can be created");
    let mut theirs = Vec::new();
    for i in 0..runs {
        let path = dir.path().join(format!("key{i}"));
        let start = Instant::now();
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "rsa", "-b", &bits.to_string(), "-N", "", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => theirs.push(start.elapsed()),
            _ => {
                println!("ssh-keygen is not available; no comparison");
                return;
            }
        }
    }
    let theirs = median(theirs);
    println!("ssh-keygen -t rsa -b {bits}:   median {theirs:.3?} over {runs} runs");
    println!(
        "ratio ours/ssh-keygen: {:.2} ({})",
        ours.as_secs_f64() / theirs.as_secs_f64(),
        if ours <= theirs {
            "no slower: target met"
        } else {
            "slower than ssh-keygen"
        }
    );
}
