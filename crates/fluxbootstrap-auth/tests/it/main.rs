//! Integration tests of fluxbootstrap-auth against real tools: a stand-in `az`, `ssh-keygen`
//! and the harness's SSH server.

mod azure_cli;
mod keys;
mod known_hosts;
