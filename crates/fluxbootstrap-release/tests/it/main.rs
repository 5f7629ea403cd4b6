//! Integration tests of release bundle loading: downloads from the harness's
//! GitHub-releases-shaped server, the cache, and hostile archives.

mod archive;
mod download;
