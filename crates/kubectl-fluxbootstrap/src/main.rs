//! Entry point of `kubectl-fluxbootstrap`; everything happens in [`kubectl_fluxbootstrap::run`].

fn main() {
    let code = kubectl_fluxbootstrap::run(std::env::args_os());
    std::process::exit(code);
}
