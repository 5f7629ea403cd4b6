//! Entry point of `kubectl-fluxbootstrap`; everything happens in [`kubectl_fluxbootstrap::run`].

fn main() {
    let code = kubectl_fluxbootstrap::run(std::env::args_os());
    #[expect(clippy::exit, reason = "the binary's single exit point")]
    std::process::exit(code);
}
