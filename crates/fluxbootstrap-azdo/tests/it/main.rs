//! Integration tests of fluxbootstrap-azdo's REST client against the harness's
//! Azure-DevOps-shaped git server.

mod pats;
mod rest;
