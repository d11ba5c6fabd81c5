//! Which C calls leave this thread's `vault_last_error` untouched (docs/CONFIGURATION.md and
//! docs/C-API.md): the accessors of the last error itself, the constant and
//! informational calls and the frees. Every other call sets it (failure) or clears it (success).

use std::ffi::{CStr, CString};
use std::ptr;

use credvault::ffi;

fn last_error() -> Option<String> {
    let p = ffi::vault_last_error();
    // SAFETY: NULL or the thread's NUL-terminated message, valid until the next call.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Makes a config error the thread's last error and returns its message.
fn fail() -> String {
    let bad = CString::new("{\"client_id\":\"abc\"}").unwrap();
    // SAFETY: a valid NUL-terminated string.
    assert_eq!(unsafe { ffi::vault_provider_new(bad.as_ptr()) }, 0);
    last_error().expect("an error is recorded")
}

#[test]
fn accessors_constants_and_frees_leave_the_last_error_alone() {
    let untouched: [(&str, &dyn Fn()); 8] = [
        ("vault_last_error", &|| {
            ffi::vault_last_error();
        }),
        ("vault_last_oauth_error", &|| {
            ffi::vault_last_oauth_error();
        }),
        ("vault_last_status", &|| {
            ffi::vault_last_status();
        }),
        ("vault_status_name", &|| {
            ffi::vault_status_name(3);
        }),
        ("vault_version", &|| {
            ffi::vault_version();
        }),
        ("vault_key_memory_locked", &|| {
            ffi::vault_key_memory_locked();
        }),
        // SAFETY: NULL is a no-op.
        ("vault_token_free", &|| unsafe {
            ffi::vault_token_free(ptr::null_mut())
        }),
        // SAFETY: NULL is a no-op.
        ("vault_string_free", &|| unsafe {
            ffi::vault_string_free(ptr::null_mut())
        }),
    ];
    for (name, call) in untouched {
        let before = fail();
        call();
        assert_eq!(last_error().as_deref(), Some(before.as_str()), "{name}");
        assert_eq!(
            ffi::vault_last_status(),
            credvault::Status::InvalidConfig,
            "{name}"
        );
    }
}

#[test]
fn other_calls_set_or_clear_it() {
    // A call that fails replaces it; one that succeeds clears it (here: invalidating a handle
    // that does not exist, then one that does).
    fail();
    assert_eq!(
        ffi::vault_invalidate(0),
        credvault::Status::InvalidHandle as i32
    );
    assert!(last_error().unwrap().contains("handle"));
    let cfg = CString::new(
        "{\"token_url\":\"http://127.0.0.1:9/t\",\"client_id\":\"abc\",\"client_secret\":\"s\"}",
    )
    .unwrap();
    // SAFETY: a valid NUL-terminated string.
    let h = unsafe { ffi::vault_provider_new(cfg.as_ptr()) };
    assert_ne!(h, 0);
    assert_eq!(last_error(), None, "a successful call clears it");
    fail();
    assert_eq!(ffi::vault_invalidate(h), 0);
    assert_eq!(last_error(), None);
    assert_eq!(ffi::vault_provider_free(h), 0);
}
