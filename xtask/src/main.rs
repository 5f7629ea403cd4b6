//! `cargo xtask`: the project's automation, written in Rust so it runs wherever cargo does.
//!
//! Each subcommand lives in its own module and parses its own arguments, so adding one
//! touches only the dispatch table below.

mod actionlint;
mod bench;
mod demo;
mod dist;
mod flux;
mod fuzz;
mod go_cache;
mod kube;
mod sandbox;
mod test;

use anyhow::{Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  actionlint        check .github/workflows with actionlint (built from the Go module proxy)
  bench <name>      run a benchmark (`cargo xtask bench` lists them)
  demo              start the sandbox, bootstrap it with the plugin, show Flux Ready (stays up)
  dist              build the release archive(s) and render the krew manifests
  flux build        build the cached source-controller, kustomize-controller and flux binaries
  fuzz [--seconds N|--smoke]  run each libFuzzer target (default 60 s each), print executions
  krew build        build the cached krew and validate-krew-manifest test binaries
  kube build        build the cached kube-apiserver, kubectl and etcd test binaries
  sandbox up|down   run the local Azure DevOps + clusters sandbox (`cargo xtask sandbox` for more)
  test [ARGS]       install what the suite needs, build the kube and Flux binaries, run every test
  test-platforms    cross-build the linux/arm64 and windows/amd64 archives, run them under qemu and wine";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = args
        .split_first()
        .map_or(("", &[][..]), |(c, r)| (c.as_str(), r));
    match command {
        "actionlint" => actionlint::run(rest),
        "bench" => bench::run(rest),
        "demo" => demo::run(rest),
        "dist" => dist::run(rest),
        "flux" => flux::run(rest),
        "fuzz" => fuzz::run(rest),
        "krew" => dist::krew::run(rest),
        "kube" => kube::run(rest),
        "sandbox" => sandbox::run(rest),
        "test" => test::run(rest),
        "test-platforms" => test::run_platforms(rest),
        "" | "help" | "--help" | "-h" => {
            #[expect(clippy::print_stdout, reason = "xtask's usage text is its output")]
            {
                println!("{USAGE}");
            }
            Ok(())
        }
        other => bail!("unknown xtask command `{other}`\n\n{USAGE}"),
    }
}
