//! Against the harness git server.
