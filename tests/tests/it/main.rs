//! Integration tests of the test harness itself, against the real components it starts.

mod demo;
mod git_server;
mod krew;
mod kube;
mod platforms;
mod sandbox;
