//! Integration tests of the manifest renderer: golden files of flux v2.9.4, parity with
//! the real `kubectl kustomize` on flux's overlay, and a server-side apply to a real
//! kube-apiserver.

mod apply;
mod golden;
mod overlay;
mod support;
