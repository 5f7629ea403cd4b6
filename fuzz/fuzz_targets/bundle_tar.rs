//! The release archive reader: never panics on any bytes, and never writes anything (it
//! unpacks into memory only).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = fluxbootstrap_release::unpack_bundle(bytes);
});
