//! One plan, one pipeline: every `azdo` run, for one cluster or for a fleet.
//!
//! A single cluster is a fleet of one. [`plan::build`] turns the command line into a
//! [`plan::Plan`]: the resolved inputs, the push credential, one target per selected cluster
//! (preflighted, with its source Secret decided). Building it writes nothing anywhere, and every
//! prompt (the PAT, adding the public key) happens while it is built, before the first commit.
//! [`fluxbootstrap_execute::run`] carries it out: one clone, the component and sync commits,
//! then every target concurrently (at most `--parallel`) in flux's write order: components,
//! Secrets, sync objects, waits. Both fill one [`fluxbootstrap_execute::Report`], which feeds
//! the text output, the per-cluster table and `--output json`.

pub(crate) mod plan;
mod targets;
