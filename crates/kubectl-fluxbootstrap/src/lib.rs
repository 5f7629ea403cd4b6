//! The `kubectl fluxbootstrap` plugin: argument parsing, the printer, prompts, exit codes,
//! and the composition of the auth, Azure DevOps, git, manifests and cluster crates.
//!
//! This is the only crate that parses arguments, prints, prompts or decides an exit code.

mod bootstrap;
mod bundle;
mod cli;
mod commands;
mod credentials;
mod duration;
mod error;
mod host_keys;
mod inputs;
mod printer;
mod prompt;
mod reporters;
mod repository;
mod source_secret;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::Cli;
use crate::error::exit_code;
use crate::printer::Printer;

/// Runs the plugin with `args` (including `argv[0]`) and returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    let mut command = Cli::command();
    let display_name = display_name(args.first());
    command = command.bin_name(display_name);
    let matches = match command.try_get_matches_from(&args) {
        Ok(matches) => matches,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                exit_code::USAGE
            } else {
                exit_code::SUCCESS
            };
        }
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return exit_code::USAGE;
        }
    };
    let namespace_given = std::iter::successors(Some(&matches), |m| m.subcommand().map(|(_, m)| m))
        .any(|m| m.value_source("namespace") == Some(clap::parser::ValueSource::CommandLine));
    commands::follow_kube_context_namespace(&mut cli, namespace_given);
    if let Err(err) = cli.check_contexts() {
        let _ = err.print();
        return exit_code::USAGE;
    }
    let printer = Printer::from_args(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            printer.stderr(format_args!(
                "error: failed to start the async runtime: {err}"
            ));
            return exit_code::USAGE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            result = commands::dispatch(cli, printer) => result,
            _ = tokio::signal::ctrl_c() => Err(error::Interrupted.into()),
        }
    });
    // Let blocking git work finish so its temporary clone is removed, but do not hang on it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => exit_code::SUCCESS,
        Err(err) if is_broken_pipe(&err) => exit_code::SUCCESS,
        Err(err) => error::report(printer, &err),
    }
}

/// `kubectl fluxbootstrap` when run as a kubectl plugin (argv[0] is `kubectl-…`), else the
/// file name, so usage lines match how the user invoked us.
fn display_name(argv0: Option<&OsString>) -> String {
    let file = argv0
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "kubectl-fluxbootstrap".to_owned());
    let file = file.strip_suffix(".exe").unwrap_or(&file);
    match file.strip_prefix("kubectl-") {
        Some(plugin) => format!("kubectl {}", plugin.replace('_', "-")),
        None => file.to_owned(),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_display_name_follows_argv0() {
        let name = |s: &str| display_name(Some(&OsString::from(s)));
        assert_eq!(
            name("/home/u/.krew/bin/kubectl-fluxbootstrap"),
            "kubectl fluxbootstrap"
        );
        assert_eq!(name("kubectl-flux_bootstrap.exe"), "kubectl flux-bootstrap");
        assert_eq!(name("./fluxbootstrap"), "fluxbootstrap");
    }
}

/// The layering ARCHITECTURE.md states, checked on the sources so a change that breaks it
/// fails here rather than in review.
#[cfg(test)]
mod architecture_tests {
    use std::path::Path;

    fn sources(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(sources(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((
                    path.display().to_string(),
                    fs_err::read_to_string(&path).unwrap(),
                ));
            }
        }
        out
    }

    /// No command imports another command or its helpers: what two commands share lives
    /// outside `commands`.
    #[test]
    fn no_command_imports_another() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
        let files = sources(&dir);
        assert!(files.len() >= 7, "the commands were not found in {dir:?}");
        for (path, text) in files {
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                assert!(
                    !line.contains("commands::") && !line.contains("super::"),
                    "{path} imports a sibling command: {line}"
                );
            }
        }
    }

    /// Library crates never prompt, draw progress or parse arguments: the crates that do are
    /// dependencies of this crate alone.
    #[test]
    fn libraries_never_prompt_print_or_parse_arguments() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut libraries = 0;
        for entry in fs_err::read_dir(&crates).unwrap() {
            let manifest = entry.unwrap().path().join("Cargo.toml");
            let Ok(text) = fs_err::read_to_string(&manifest) else {
                continue;
            };
            if text.contains("name = \"kubectl-fluxbootstrap\"") {
                continue;
            }
            libraries += 1;
            let dependencies = text.split("[dev-dependencies]").next().unwrap_or_default();
            for binary_only in ["dialoguer", "indicatif", "anstream", "owo-colors", "clap"] {
                assert!(
                    !dependencies
                        .lines()
                        .any(|l| l.trim_start().starts_with(&format!("{binary_only} "))
                            || l.trim_start().starts_with(&format!("{binary_only}."))),
                    "{} depends on {binary_only}, which only the binary may use",
                    manifest.display()
                );
            }
        }
        assert!(
            libraries >= 8,
            "the library crates were not found in {crates:?}"
        );
    }
}
