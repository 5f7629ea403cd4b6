//! Integration tests of `fluxbootstrap-git`: every result is checked with the real `git` CLI.
//!
//! `local` runs against bare repositories on disk (file transport), `server` against the
//! harness's Azure-DevOps-shaped git server over real HTTPS and SSH.

mod local;
mod server;
mod support;
