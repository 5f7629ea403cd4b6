//! Entry point of `kubectl-fluxbootstrap`; everything happens in [`kubectl_fluxbootstrap::run`].

/// The static musl release builds use mimalloc: musl's allocator maps and unmaps memory for
/// most allocations, which made it over a third of `--help`'s run time (`cargo xtask bench
/// binary`); glibc's allocator does not have that cost.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = kubectl_fluxbootstrap::run(std::env::args_os());
    std::process::exit(code);
}
