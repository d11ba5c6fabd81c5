//! Shared set-up of the benchmarks: a local `credvault idp` and a C-ABI provider whose 1024-character
//! token is already cached. Included with `#[path]` by each bench (not a bench target itself:
//! Cargo only discovers `benches/*.rs` and `benches/*/main.rs`).
#![allow(dead_code, unused_unsafe)]

use std::ffi::{CStr, CString};

use serde_json::json;

use crate::common::Idp;

/// Bytes of randomness the idp puts in a token: base64url of 768 bytes is 1024 characters.
pub const TOKEN_BYTES: usize = 768;
pub const TOKEN_LEN: usize = 1024;

/// A running idp and a provider handle with a cached 1024-character token.
pub struct Fixture {
    pub idp: Idp,
    pub handle: u64,
}

impl Fixture {
    pub fn new() -> Fixture {
        let idp = Idp::start_with(&[]);
        idp.add_client(json!({
            "dialect": "oauth",
            "client_id": "bench-client",
            "client_secret": "bench-secret",
            "lifetime_s": 3600,
            "token_bytes": TOKEN_BYTES,
        }));
        let handle = cached_provider(&idp);
        assert_eq!(idp.tokens_issued(), 1);
        Fixture { idp, handle }
    }

    /// Checks that the measured calls were all served from the cache (no fetch, no refresh).
    pub fn assert_no_refetch(&self) {
        assert_eq!(
            self.idp.tokens_issued(),
            1,
            "a token was fetched during the benchmark"
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // SAFETY: the handle is live and freed once.
        unsafe { credvault::ffi::vault_provider_free(self.handle) };
    }
}

/// A new C-ABI provider of `bench-client` at `idp`, its 1024-character token fetched and cached
/// (one token request).
pub fn cached_provider(idp: &Idp) -> u64 {
    let config = json!({
        "token_url": idp.url("/oauth/token"),
        "client_id": "bench-client",
        "client_secret": "bench-secret",
    })
    .to_string();
    let config = CString::new(config).unwrap();
    // SAFETY: a NUL-terminated string.
    let handle = unsafe { credvault::ffi::vault_provider_new(config.as_ptr()) };
    assert_ne!(handle, 0, "vault_provider_new failed: {}", last_error());

    // Prime the cache (the one network fetch) and check what it holds.
    // SAFETY: a live handle; the returned string is freed once.
    unsafe {
        let p = credvault::ffi::vault_get_token(handle);
        assert!(
            !p.is_null(),
            "first vault_get_token failed: {}",
            last_error()
        );
        assert_eq!(
            CStr::from_ptr(p).to_bytes().len(),
            TOKEN_LEN,
            "token length"
        );
        credvault::ffi::vault_token_free(p);
    }
    handle
}

pub fn last_error() -> String {
    let p = credvault::ffi::vault_last_error();
    if p.is_null() {
        return "(no error)".into();
    }
    // SAFETY: a library-owned NUL-terminated string, valid until the next call on this thread.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}
