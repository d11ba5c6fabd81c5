//! The C ABI: the only place with `extern "C"` functions. It converts and nothing else: argument
//! checks, the panic boundary, and C strings and buffers in and out. The state behind a handle
//! (the provider table, each thread's memo and last-served table) and the serve logic live in
//! `handles`; the thread-local outcome of the last call lives in `error::last`.
//!
//! The conventions of the C API (status returns, the `err_buf` forms, who frees what, threads,
//! fork) are written once, in `docs/C-API.md`; this module implements them. Every function
//! catches panics, validates its pointers and reports a status. Two shapes: the simple calls
//! return a value or NULL/0 and leave the error in the thread's last error
//! ([`value_or_error`]); the status calls return a `vault_status` and also write the message
//! and the OAuth code into the caller's `err_buf` ([`status_call`]). Every call that can fail
//! has a status form.
//!
//! What a call returns when it fails, or when a panic is caught, follows from its return type
//! ([`Failure`]). Every `extern "C"` item is written out in full: cbindgen does not expand macros.
//!
//! The doc comments of the `extern "C"` items are the header's C documentation (cbindgen copies
//! them as `/** */` comments): each states its pointer contract as a plain sentence rather than
//! under a Rust `# Safety` heading, hence the `missing_safety_doc` allowance below. The Rust-side
//! discipline stays in the `// SAFETY:` comments of the bodies.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use zeroize::Zeroize;

use crate::cache::CachedToken;
use crate::error::{last, Error, Status};
use crate::handles::{self, Wait};
use crate::provider::Provider;

// ---------------------------------------------------------------------------------------------
// The panic boundary and the call shapes.

/// What an entry point returns when it fails with `Error` (or a panic is caught): NULL for
/// pointers, 0 for handles, the status for status returns. It never panics.
trait Failure {
    fn failure(e: &Error) -> Self;
}

impl<T> Failure for *mut T {
    fn failure(_: &Error) -> Self {
        ptr::null_mut()
    }
}

impl<T> Failure for *const T {
    fn failure(_: &Error) -> Self {
        ptr::null()
    }
}

/// A provider handle: 0 is never one.
impl Failure for u64 {
    fn failure(_: &Error) -> Self {
        0
    }
}

impl Failure for Status {
    fn failure(e: &Error) -> Self {
        e.status()
    }
}

/// The `int32_t` of `vault_key_memory_locked`: a caught panic gives `VAULT_STATUS_INTERNAL`.
impl Failure for i32 {
    fn failure(e: &Error) -> Self {
        e.status() as i32
    }
}

impl Failure for () {
    fn failure(_: &Error) -> Self {}
}

/// Runs `f` behind the panic boundary. A caught panic is recorded as `Status::Internal` in the
/// thread's last error and becomes the return type's failure value. Nothing here can panic:
/// `last::set` never does (see `error::last`), and the panic's payload is dropped behind a
/// boundary of its own (a payload whose `Drop` panics is leaked instead).
#[inline(always)]
fn guard<T: Failure>(f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => caught_panic(payload),
    }
}

/// A panic reached the boundary (kept out of line: the hit path stays small).
#[cold]
#[inline(never)]
fn caught_panic<T: Failure>(payload: Box<dyn std::any::Any + Send>) -> T {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    failed(Error::internal(
        "internal error: a panic was caught at the C boundary",
    ))
}

/// Records `e` as the thread's last error; the return type's failure value.
#[cold]
#[inline(never)]
fn failed<T: Failure>(e: Error) -> T {
    last::set(&e);
    T::failure(&e)
}

/// The simple calls: the value, or the type's failure value with the error in the thread's last
/// error (`vault_last_error`, `vault_last_status`, `vault_last_oauth_error`).
#[inline(always)]
fn value_or_error<T: Failure>(f: impl FnOnce() -> Result<T, Error>) -> T {
    guard(|| match f() {
        Ok(v) => {
            last::clear();
            v
        }
        Err(e) => failed(e),
    })
}

/// The status calls: the status, with the message (and the OAuth error code after it) in the
/// caller's `err_buf` as well as in the thread's last error.
///
/// # Safety
/// `err_buf` must be NULL or `err_len` writable bytes.
#[inline(always)]
unsafe fn status_call(
    err_buf: *mut c_char,
    err_len: usize,
    f: impl FnOnce() -> Result<(), Error>,
) -> Status {
    guard(|| match f() {
        Ok(()) => {
            last::clear();
            // SAFETY: the caller promises err_buf is NULL or err_len writable bytes.
            unsafe { write_message(err_buf, err_len, "", "") };
            Status::Ok
        }
        Err(e) => {
            last::set(&e);
            let code = e.oauth_error().unwrap_or("");
            // SAFETY: as above.
            unsafe { write_message(err_buf, err_len, e.message(), code) };
            e.status()
        }
    })
}

/// Writes `msg` NUL-terminated into `buf`, truncated on a UTF-8 boundary, then, when a byte is
/// left after that NUL, the OAuth error code `code` as a second NUL-terminated string: the whole
/// code if it fits, else (and after a truncated message) an empty string. So whenever
/// `strlen(buf) + 1 < len`, a second string follows. NULL/0 is a no-op.
///
/// # Safety
/// `buf` must be NULL or point to `len` writable bytes.
unsafe fn write_message(buf: *mut c_char, len: usize, msg: &str, code: &str) {
    if buf.is_null() || len == 0 {
        return;
    }
    let mut n = msg.len().min(len - 1);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: n < len bytes are writable, per the caller's promise.
    unsafe {
        ptr::copy_nonoverlapping(msg.as_ptr(), buf as *mut u8, n);
        *buf.add(n) = 0;
    }
    let rest = len - n - 1;
    if rest == 0 {
        return;
    }
    let fits = n == msg.len() && !code.contains('\0') && code.len() < rest;
    let m = if fits { code.len() } else { 0 };
    // SAFETY: n + 1 + m < len bytes are writable, per the caller's promise.
    unsafe {
        let second = buf.add(n + 1);
        ptr::copy_nonoverlapping(code.as_ptr(), second as *mut u8, m);
        *second.add(m) = 0;
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments in: C strings and out-pointers.

/// A required NUL-terminated UTF-8 argument.
///
/// # Safety
/// `s` must be NULL or a NUL-terminated string.
unsafe fn arg_str<'a>(s: *const c_char, what: &str) -> Result<&'a str, Error> {
    // SAFETY: passed through.
    let Some(s) = (unsafe { opt_cstr(s) }) else {
        return Err(Error::new(
            Status::InvalidArgument,
            format!("{what} is NULL"),
        ));
    };
    s.to_str().map_err(|_| {
        Error::new(
            Status::InvalidArgument,
            format!("{what} is not valid UTF-8"),
        )
    })
}

/// An optional C string: `None` for NULL.
///
/// # Safety
/// `s` must be NULL or a NUL-terminated string valid for `'a`.
unsafe fn opt_cstr<'a>(s: *const c_char) -> Option<&'a CStr> {
    // SAFETY: non-NULL and NUL-terminated per the caller's promise.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) })
}

/// A required out-pointer, checked for NULL.
///
/// # Safety
/// `p` must be NULL or valid for writes of a `T` for `'a`.
unsafe fn out_ptr<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Error> {
    // SAFETY: non-NULL and writable per the caller's promise.
    unsafe { p.as_mut() }
        .ok_or_else(|| Error::new(Status::InvalidArgument, format!("{what} is NULL")))
}

/// An optional out-pointer: written when not NULL.
///
/// # Safety
/// `p` must be NULL or valid for writes of a `T`.
unsafe fn write_opt<T>(p: *mut T, value: T) {
    // SAFETY: non-NULL and writable per the caller's promise.
    if let Some(p) = unsafe { p.as_mut() } {
        *p = value;
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens out.

fn create(config_json: *const c_char) -> Result<u64, Error> {
    // SAFETY: the caller promises a NUL-terminated string or NULL.
    let json = unsafe { arg_str(config_json, "config_json") }?;
    handles::create(Provider::new(json)?)
}

/// What a token call writes.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// The access token.
    Token,
    /// `"<token_type> <token>"`.
    Authorization,
}

fn shape_len(t: &CachedToken, shape: Shape) -> usize {
    match shape {
        Shape::Token => t.token.len(),
        Shape::Authorization => t.token_type.len() + 1 + t.token.len(),
    }
}

/// Writes the token in `shape` into `out` (exactly `shape_len` bytes).
fn write_shape(t: &CachedToken, shape: Shape, out: &mut [u8]) -> Result<(), Error> {
    let prefix = match shape {
        Shape::Token => 0,
        Shape::Authorization => {
            let n = t.token_type.len();
            out[..n].copy_from_slice(t.token_type.as_bytes());
            out[n] = b' ';
            n + 1
        }
    };
    t.token.open_into(&mut out[prefix..])
}

/// A malloc'd NUL-terminated string of `n` bytes that `write` fills (freed by
/// `vault_token_free` / `vault_string_free`); if `write` fails, the bytes are wiped and freed.
fn malloc_nul(
    n: usize,
    write: impl FnOnce(&mut [u8]) -> Result<(), Error>,
) -> Result<*mut c_char, Error> {
    // SAFETY: plain allocation; checked for NULL below.
    let p = unsafe { libc::malloc(n + 1) } as *mut u8;
    if p.is_null() {
        return Err(Error::internal("out of memory"));
    }
    // SAFETY: p points to n + 1 freshly allocated bytes that nothing else references.
    let buf = unsafe { std::slice::from_raw_parts_mut(p, n + 1) };
    if let Err(e) = write(&mut buf[..n]) {
        buf.zeroize();
        // SAFETY: p came from malloc above and is freed once.
        unsafe { libc::free(p as *mut libc::c_void) };
        return Err(e);
    }
    buf[n] = 0;
    Ok(p as *mut c_char)
}

/// Allocates a NUL-terminated copy of the token in `shape` (freed by `vault_token_free`).
fn alloc_shape(t: &CachedToken, shape: Shape) -> Result<*mut c_char, Error> {
    malloc_nul(shape_len(t, shape), |buf| write_shape(t, shape, buf))
}

fn get_alloc(handle: u64, shape: Shape) -> Result<*mut c_char, Error> {
    handles::serve(handle, Wait::Yes, |t| alloc_shape(t, shape))
}

/// # Safety
/// `out` must be NULL or writable.
unsafe fn get_ex(provider: u64, shape: Shape, out: *mut *mut c_char) -> Result<(), Error> {
    // SAFETY: the caller's promise, passed through.
    let out = unsafe { out_ptr(out, "out pointer") }?;
    *out = ptr::null_mut();
    *out = get_alloc(provider, shape)?;
    Ok(())
}

/// # Safety
/// `buf` must be NULL or `buf_len` writable bytes; `out_len` NULL or writable.
unsafe fn get_into(
    handle: u64,
    shape: Shape,
    wait: Wait,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> Result<(), Error> {
    if buf.is_null() && buf_len > 0 {
        return Err(Error::new(
            Status::InvalidArgument,
            "buf is NULL but buf_len is not 0",
        ));
    }
    handles::serve(handle, wait, |t| {
        let n = shape_len(t, shape);
        // SAFETY: out_len is NULL or writable per the caller's promise.
        unsafe { write_opt(out_len, n) };
        if buf_len < n + 1 {
            return Err(Error::new(
                Status::BufferTooSmall,
                format!("buffer of {buf_len} bytes is too small: {} needed", n + 1),
            ));
        }
        // SAFETY: buf has buf_len >= n + 1 writable bytes per the caller's promise.
        let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, n + 1) };
        write_shape(t, shape, &mut out[..n])?;
        out[n] = 0;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// The simple calls.

/// Creates a provider from its JSON configuration (see README "Configuration").
///
/// Returns a handle, never 0 on success; 0 on failure (`vault_last_error` says why, and
/// `vault_provider_new_ex` through the call: the message names the field and the rule, never a
/// secret). Fetches nothing: the first token request happens on the first `vault_get_token`.
/// The caller keeps ownership of `config_json` and should wipe it: the library keeps only
/// sealed copies of the secrets.
///
/// `config_json` must be NULL or a NUL-terminated string, readable for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn vault_provider_new(config_json: *const c_char) -> u64 {
    value_or_error(|| create(config_json))
}

/// Frees a provider and wipes its secrets. Returns 0 (`VAULT_STATUS_OK`), or
/// `VAULT_STATUS_INVALID_HANDLE` for a zero, unknown or already freed handle: the status is the
/// whole report. Calls already running on the provider in other threads complete normally.
#[no_mangle]
pub extern "C" fn vault_provider_free(provider: u64) -> Status {
    value_or_error(|| handles::free(provider).map(|()| Status::Ok))
}

/// Returns the provider's access token: from the cache when one is valid (no network wait),
/// otherwise after the single in-flight fetch. A NUL-terminated string owned by the caller, to
/// be released with `vault_token_free`; NULL on failure (see `vault_last_error`; the `_ex` and
/// `_into` forms report it through the call).
#[no_mangle]
pub extern "C" fn vault_get_token(provider: u64) -> *mut c_char {
    value_or_error(|| get_alloc(provider, Shape::Token))
}

/// Like `vault_get_token`, but returns the `Authorization` header value:
/// `"<token_type> <token>"`, e.g. `"Bearer eyJ..."`. Free with `vault_token_free`.
#[no_mangle]
pub extern "C" fn vault_get_authorization(provider: u64) -> *mut c_char {
    value_or_error(|| get_alloc(provider, Shape::Authorization))
}

/// Wipes and frees a string returned by `vault_get_token`, `vault_get_authorization` or their
/// `_ex` forms. NULL is a no-op. Passing any other pointer is undefined behaviour, as with free().
///
/// `token` must be NULL or a string returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vault_token_free(token: *mut c_char) {
    guard(|| {
        if token.is_null() {
            return;
        }
        // SAFETY: the caller passes a string this library allocated with malloc; it is
        // NUL-terminated and its length is the allocation's length minus one.
        unsafe {
            let n = libc::strlen(token);
            std::slice::from_raw_parts_mut(token as *mut u8, n).zeroize();
            libc::free(token as *mut libc::c_void);
        }
        // libc's strlen leaves the token's bytes it read in vector registers, which a signal
        // or a first call through the PLT would save onto the stack.
        crate::secret::clear_vector_registers();
    })
}

/// Drops the provider's cached token after the API answered 401 with it, so the next call
/// fetches a new one; also ends a failure cool-down. Drops only the token this thread last
/// received from `provider` if that is still the cached one: when many threads invalidate the
/// same token, one new token is fetched, and a token that was already replaced is left alone.
/// Each thread remembers its last token from each of the 64 providers that served it most
/// recently (being served again makes a provider the most recent); a thread that has received
/// no token from `provider`, or tokens from 64 other providers since, drops whatever is cached.
/// Returns 0, or `VAULT_STATUS_INVALID_HANDLE` (the status is the whole report).
#[no_mangle]
pub extern "C" fn vault_invalidate(provider: u64) -> Status {
    value_or_error(|| handles::invalidate(provider).map(|()| Status::Ok))
}

/// This thread's last error message, or NULL if the last call succeeded. Owned by the library,
/// valid until the next credvault call on this thread. Never contains a secret.
#[no_mangle]
pub extern "C" fn vault_last_error() -> *const c_char {
    guard(last::message)
}

/// The RFC 6749 `error` code (`"invalid_client"`, `"invalid_scope"`, ...) the identity provider
/// sent with this thread's last error, or NULL if the last call succeeded or its error carried
/// no code. Visible ASCII, at most 64 bytes. Owned by the library, valid until the next
/// credvault call on this thread. The status-returning calls put the same code into `err_buf`,
/// after the message's NUL.
#[no_mangle]
pub extern "C" fn vault_last_oauth_error() -> *const c_char {
    guard(last::oauth_error)
}

/// This thread's last status (0 if the last call succeeded).
#[no_mangle]
pub extern "C" fn vault_last_status() -> Status {
    guard(last::status)
}

/// The name of a status code (`"VAULT_STATUS_TIMEOUT"`), or `"VAULT_STATUS_UNKNOWN"`. Static.
#[no_mangle]
pub extern "C" fn vault_status_name(status: i32) -> *const c_char {
    guard(|| {
        Status::from_i32(status)
            .map_or(c"VAULT_STATUS_UNKNOWN", Status::name_c)
            .as_ptr()
    })
}

/// Whether the sealing key sits in memory locked against swapping: 1 yes, 0 no (the
/// `RLIMIT_MEMLOCK` limit refused; the key page is still excluded from core dumps), -1 no key
/// yet (nothing sealed so far).
#[no_mangle]
pub extern "C" fn vault_key_memory_locked() -> i32 {
    guard(|| match crate::secret::key_memory_locked() {
        Some(true) => 1,
        Some(false) => 0,
        None => -1,
    })
}

/// Sets the number of background refresh worker threads of the process (1 to 64; default 4).
/// Refreshes due ahead of expiry are queued and run by this bounded pool, the token closest to
/// its serving limit first, by default at most 2 at once per token endpoint
/// (`vault_set_refresh_endpoint_limit`); workers start when a refresh is
/// due and exit when none is (a fork child starts its own). A token endpoint with nothing in
/// flight gets a worker beyond the pool when every worker is busy (at most 64 beyond it), so
/// slow or stalled endpoints never stop another endpoint's refreshes. Takes effect at once:
/// queued refreshes that a larger pool lets start get workers now; with a smaller pool, workers
/// leave as their refreshes end. A caller with no servable token still fetches at once on its
/// own thread. Returns 0, or `VAULT_STATUS_INVALID_ARGUMENT` when `n` is out of range
/// (`vault_set_refresh_workers_ex` also reports the message through the call).
#[no_mangle]
pub extern "C" fn vault_set_refresh_workers(n: u32) -> Status {
    value_or_error(|| set_workers(n).map(|()| Status::Ok))
}

/// As `vault_set_refresh_workers`, with the message in `err_buf` (NULL, or `err_len` writable
/// bytes).
#[no_mangle]
pub unsafe extern "C" fn vault_set_refresh_workers_ex(
    n: u32,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contract, passed through.
    unsafe { status_call(err_buf, err_len, || set_workers(n)) }
}

fn set_workers(n: u32) -> Result<(), Error> {
    scheduler_setting(
        n,
        "refresh workers",
        crate::scheduler::MAX_WORKERS,
        crate::scheduler::set_workers,
    )
}

/// Sets how many background refreshes may be in flight to one token endpoint at once, across
/// all providers of the process (1 to 64; default 2): identity providers rate-limit per client
/// and per address, and thousands of providers often share one endpoint. Raise it when one
/// endpoint serves many providers with short tokens over a slow link (its refresh capacity is
/// this many requests per round trip); lower it to 1 for an endpoint that refuses concurrent
/// requests. Takes effect at once: queued refreshes that a higher limit lets start get workers
/// now. Callers with no servable token are not limited: they fetch at once. Returns 0, or
/// `VAULT_STATUS_INVALID_ARGUMENT` when `n` is out of range
/// (`vault_set_refresh_endpoint_limit_ex` also reports the message through the call).
#[no_mangle]
pub extern "C" fn vault_set_refresh_endpoint_limit(n: u32) -> Status {
    value_or_error(|| set_endpoint_limit(n).map(|()| Status::Ok))
}

/// As `vault_set_refresh_endpoint_limit`, with the message in `err_buf` (NULL, or `err_len`
/// writable bytes).
#[no_mangle]
pub unsafe extern "C" fn vault_set_refresh_endpoint_limit_ex(
    n: u32,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contract, passed through.
    unsafe { status_call(err_buf, err_len, || set_endpoint_limit(n)) }
}

fn set_endpoint_limit(n: u32) -> Result<(), Error> {
    scheduler_setting(
        n,
        "refresh endpoint limit",
        crate::scheduler::MAX_ENDPOINT_LIMIT,
        crate::scheduler::set_endpoint_limit,
    )
}

/// A process-wide scheduler setting from C: `set` applies `n`, or refuses it as out of range
/// (1 to `max`).
fn scheduler_setting(n: u32, what: &str, max: usize, set: fn(usize) -> bool) -> Result<(), Error> {
    match set(n as usize) {
        true => Ok(()),
        false => Err(Error::new(
            Status::InvalidArgument,
            format!("{what}: {n} is out of range (1 to {max})"),
        )),
    }
}

/// The library version, e.g. `"0.1.0"`. Static.
#[no_mangle]
pub extern "C" fn vault_version() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr() as *const c_char
}

// ---------------------------------------------------------------------------------------------
// The status-returning calls: the error message comes back through the call itself.

/// Creates a provider; on success writes the handle to `*out_provider`. On failure writes the
/// message (NUL-terminated, truncated to fit) into `err_buf` if it is not NULL.
///
/// `config_json` must be NULL or a NUL-terminated string; `out_provider` NULL or writable;
/// `err_buf` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_provider_new_ex(
    config_json: *const c_char,
    out_provider: *mut u64,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            let out = out_ptr(out_provider, "out_provider")?;
            *out = create(config_json)?;
            Ok(())
        })
    }
}

/// Writes the access token (caller frees it with `vault_token_free`) to `*out_token`.
///
/// `out_token` must be NULL or writable; `err_buf` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_get_token_ex(
    provider: u64,
    out_token: *mut *mut c_char,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            get_ex(provider, Shape::Token, out_token)
        })
    }
}

/// Writes the `Authorization` value (caller frees it with `vault_token_free`) to `*out_value`.
///
/// `out_value` must be NULL or writable; `err_buf` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_get_authorization_ex(
    provider: u64,
    out_value: *mut *mut c_char,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            get_ex(provider, Shape::Authorization, out_value)
        })
    }
}

/// Writes the access token, NUL-terminated, into the caller's `buf` of `buf_len` bytes (a buffer
/// the caller can lock and wipe; no copy stays with the library). `*out_len` (if not NULL)
/// receives the token's length without the NUL, also when the status is
/// `VAULT_STATUS_BUFFER_TOO_SMALL`, so the caller can retry with `*out_len + 1` bytes.
///
/// `buf` must be NULL (with `buf_len` 0) or `buf_len` writable bytes; `out_len` NULL or
/// writable; `err_buf` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_get_token_into(
    provider: u64,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            get_into(provider, Shape::Token, Wait::Yes, buf, buf_len, out_len)
        })
    }
}

/// As `vault_get_token_into`, for the `Authorization` value `"<token_type> <token>"`.
///
/// Its pointer arguments are as for `vault_get_token_into`.
#[no_mangle]
pub unsafe extern "C" fn vault_get_authorization_into(
    provider: u64,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            get_into(
                provider,
                Shape::Authorization,
                Wait::Yes,
                buf,
                buf_len,
                out_len,
            )
        })
    }
}

/// As `vault_get_token_into`, but never waits and never fetches on the caller's thread: a
/// servable cached token is written (past its refresh point a background refresh may start, as
/// on any hit); otherwise `VAULT_STATUS_WOULD_BLOCK` (no servable token is cached; call
/// `vault_get_token_into` on a worker thread). During a cool-down after a failed fetch it
/// returns the stored error, which is known without waiting. For event loops (asyncio, Go).
///
/// Its pointer arguments are as for `vault_get_token_into`.
#[no_mangle]
pub unsafe extern "C" fn vault_try_get_token_into(
    provider: u64,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            get_into(provider, Shape::Token, Wait::No, buf, buf_len, out_len)
        })
    }
}

/// As `vault_try_get_token_into`, for the `Authorization` value `"<token_type> <token>"`.
///
/// Its pointer arguments are as for `vault_get_token_into`.
#[no_mangle]
pub unsafe extern "C" fn vault_try_get_authorization_into(
    provider: u64,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            get_into(
                provider,
                Shape::Authorization,
                Wait::No,
                buf,
                buf_len,
                out_len,
            )
        })
    }
}

/// A prepared request for the one-argument non-blocking calls `vault_try_fill_token` and
/// `vault_try_fill_authorization`: the provider and the caller's buffer, set up once and passed
/// by pointer on every call, for language runtimes where each call argument has a price (Python
/// ctypes converts every argument of every call; the cost is measured in docs/BENCHMARKS.md).
///
/// `generation` identifies the token whose value `buf` holds (0: none). A call that finds the
/// same token still servable leaves `buf` as it is and returns `VAULT_STATUS_OK`; a call that
/// serves another token writes it into `buf`, zeroes the rest of the `buf_len` bytes (no byte
/// of an earlier, longer token stays behind the NUL), and writes its number into `generation`.
/// So the caller can keep what it made of the value (a decoded string) while `generation` is
/// unchanged, and the common call copies and decrypts nothing. The number is unique to the
/// token in the process and only grows: no other provider's token has it, nor one of the
/// provider a configuration reload puts under the same handle. Between calls, the caller must
/// not change `buf` without setting `generation` to 0.
#[repr(C)]
pub struct VaultFill {
    /// The provider handle.
    pub provider: u64,
    /// The caller's buffer; receives the value, NUL-terminated.
    pub buf: *mut c_char,
    /// The size of `buf` in bytes.
    pub buf_len: usize,
    /// The generation of the token `buf` holds, 0 for none; written by the call.
    pub generation: u64,
}

/// # Safety
/// `fill` must be NULL or point to a writable `VaultFill` whose `buf` is NULL (with `buf_len`
/// 0) or `buf_len` writable bytes.
unsafe fn try_fill(fill: *mut VaultFill, shape: Shape) -> Status {
    // SAFETY: pointer contracts are the caller's, passed through; no err_buf (the message goes
    // to the thread-local only).
    unsafe {
        status_call(ptr::null_mut(), 0, || {
            // Writable and not used elsewhere during the call (the caller's promise).
            let f = out_ptr(fill, "fill")?;
            if f.buf.is_null() && f.buf_len > 0 {
                return Err(Error::new(
                    Status::InvalidArgument,
                    "buf is NULL but buf_len is not 0",
                ));
            }
            let held = f.generation;
            let (buf, buf_len) = (f.buf, f.buf_len);
            f.generation = handles::serve(f.provider, Wait::No, |t| {
                if held != 0 && t.serial == held {
                    return Ok(held);
                }
                let n = shape_len(t, shape);
                if buf_len < n + 1 {
                    return Err(Error::new(
                        Status::BufferTooSmall,
                        format!("buffer of {buf_len} bytes is too small: {} needed", n + 1),
                    ));
                }
                // SAFETY: buf has buf_len >= n + 1 writable bytes per the caller's promise.
                let out = std::slice::from_raw_parts_mut(buf as *mut u8, buf_len);
                write_shape(t, shape, &mut out[..n])?;
                // The NUL, and no byte of an earlier, longer value left behind it: the buffer
                // holds this token and nothing else (once per token, not per call).
                out[n..].zeroize();
                Ok(t.serial)
            })?;
            Ok(())
        })
    }
}

/// `vault_try_get_token_into` in one argument (see `vault_fill`): a servable cached token is
/// in `fill->buf`, NUL-terminated, when this returns `VAULT_STATUS_OK` (written now, or already
/// there when `fill->generation` named it); otherwise `VAULT_STATUS_WOULD_BLOCK`, the stored
/// error of a cool-down, `VAULT_STATUS_BUFFER_TOO_SMALL` (the size needed is not reported: ask
/// `vault_try_get_token_into`), `VAULT_STATUS_INVALID_HANDLE` or `VAULT_STATUS_INVALID_ARGUMENT`,
/// with `fill->buf` and `fill->generation` left as they were. Never waits. An error's message
/// is only in the thread-local `vault_last_error`: callers whose threads move get it from the
/// six-argument call.
///
/// `fill` must be NULL or point to a writable `vault_fill` whose `buf` is NULL (with `buf_len`
/// 0) or `buf_len` writable bytes; no other thread may use the same `vault_fill` at the same
/// time.
#[no_mangle]
pub unsafe extern "C" fn vault_try_fill_token(fill: *mut VaultFill) -> Status {
    // SAFETY: pointer contracts are the caller's, passed through.
    unsafe { try_fill(fill, Shape::Token) }
}

/// As `vault_try_fill_token`, for the `Authorization` value `"<token_type> <token>"` (use a
/// `vault_fill` of its own).
///
/// Its pointer argument is as for `vault_try_fill_token`.
#[no_mangle]
pub unsafe extern "C" fn vault_try_fill_authorization(fill: *mut VaultFill) -> Status {
    // SAFETY: pointer contracts are the caller's, passed through.
    unsafe { try_fill(fill, Shape::Authorization) }
}

/// Drops the cached token only if it equals `token` (the one the API rejected with 401), so that
/// callers on any thread invalidate exactly the token they used. `token` NULL drops any cached
/// token. Ends a failure cool-down in any case (during one, the token a caller holds is no longer
/// cached: any invalidate of the provider ends it). Returns `VAULT_STATUS_OK` whether or not it
/// was still cached.
///
/// `token` must be NULL or a NUL-terminated string; `err_buf` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_invalidate_token(
    provider: u64,
    token: *const c_char,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            handles::invalidate_token(provider, opt_cstr(token).map(CStr::to_bytes))
        })
    }
}

/// How long `token` stays servable, in milliseconds: written to `*out_ms` when `token` is the
/// provider's cached token (the time until the library stops serving it: its expiry less the
/// safety margin), 0 when it is not (replaced by a refresh, invalidated, or nothing cached).
/// Never waits and never fetches. For bindings that hand the token to a cache of their own with
/// an expiry (Go's `golang.org/x/oauth2`).
///
/// `token` must be NULL or a NUL-terminated string; `out_ms` NULL or writable; `err_buf` NULL
/// or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_token_remaining_ms(
    provider: u64,
    token: *const c_char,
    out_ms: *mut u64,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            let out = out_ptr(out_ms, "out_ms")?;
            *out = 0;
            let token = opt_cstr(token)
                .ok_or_else(|| Error::new(Status::InvalidArgument, "token is NULL"))?;
            let left = handles::token_remaining(provider, token.to_bytes())?;
            *out = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Operating it: configuration files, statistics, metrics, the log callback.

/// A malloc'd NUL-terminated copy of `s`, a NUL inside it written as a space (freed with
/// `vault_string_free`).
fn malloc_string(s: &str) -> Result<*mut c_char, Error> {
    malloc_nul(s.len(), |buf| {
        for (b, c) in buf.iter_mut().zip(s.bytes()) {
            *b = if c == 0 { b' ' } else { c };
        }
        Ok(())
    })
}

/// Loads a configuration file of named providers (`{"providers": {"name": {...}}}`, secrets as
/// values or as `{"env": "VAR"}` / `{"file": "/path"}` references; README "Configuration files")
/// and registers every provider; `vault_provider_by_name` gives their handles. All or nothing: if
/// any provider is invalid, none is registered and the message names it. If a file is already
/// loaded, this is `vault_reload_config` from the new path. Returns 0 on success. Files are
/// refused unless regular, and writable by group or others unless the environment has
/// `CREDVAULT_ALLOW_WRITABLE_CONFIG=1` (README "Configuration files"). The message is in
/// `vault_last_error`; `vault_load_config_ex` also reports it through the call.
///
/// `path` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn vault_load_config(path: *const c_char) -> Status {
    // SAFETY: NULL or NUL-terminated per the caller's promise; no err_buf.
    unsafe { vault_load_config_ex(path, ptr::null_mut(), 0) }
}

/// As `vault_load_config`, with the message (and the OAuth error code after its NUL) in
/// `err_buf`.
///
/// `path` must be NULL or a NUL-terminated string; `err_buf` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_load_config_ex(
    path: *const c_char,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            crate::configfile::load(arg_str(path, "path")?).map(|_| ())
        })
    }
}

/// Reads the loaded configuration file again, with the secrets it refers to, and applies what
/// changed: an unchanged provider keeps its handle and cached token; a changed one (a rotated
/// secret) keeps its handle, drops its token and uses the new settings on its next fetch; a
/// removed one is freed (`VAULT_STATUS_INVALID_HANDLE` from then on); a new one is registered. A
/// file that fails to parse or validate changes nothing; the status and `vault_last_error` say
/// why (`vault_reload_config_ex` also reports it through the call). Calls in other threads
/// meanwhile see the old provider or the new one, whole.
#[no_mangle]
pub extern "C" fn vault_reload_config() -> Status {
    // SAFETY: no err_buf.
    unsafe { vault_reload_config_ex(ptr::null_mut(), 0) }
}

/// As `vault_reload_config`, with the message (and the OAuth error code after its NUL) in
/// `err_buf` (NULL, or `err_len` writable bytes).
#[no_mangle]
pub unsafe extern "C" fn vault_reload_config_ex(err_buf: *mut c_char, err_len: usize) -> Status {
    // SAFETY: the caller's pointer contract, passed through.
    unsafe { status_call(err_buf, err_len, || crate::configfile::reload().map(|_| ())) }
}

/// The handle of the provider `name` of the loaded configuration file; 0 if there is none
/// (`VAULT_STATUS_INVALID_ARGUMENT` in `vault_last_status`; `vault_provider_by_name_ex` reports
/// it through the call).
///
/// `name` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn vault_provider_by_name(name: *const c_char) -> u64 {
    // SAFETY: the caller's pointer contract, passed through.
    value_or_error(|| unsafe { by_name(name) })
}

/// As `vault_provider_by_name`: on success writes the handle to `*out_provider`; otherwise
/// writes 0 there (when it is not NULL) and the message into `err_buf`.
///
/// `name` must be NULL or a NUL-terminated string; `out_provider` NULL or writable; `err_buf`
/// NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_provider_by_name_ex(
    name: *const c_char,
    out_provider: *mut u64,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            let out = out_ptr(out_provider, "out_provider")?;
            *out = 0;
            *out = by_name(name)?;
            Ok(())
        })
    }
}

/// # Safety
/// `name` must be NULL or a NUL-terminated string.
unsafe fn by_name(name: *const c_char) -> Result<u64, Error> {
    // SAFETY: NULL or NUL-terminated per the caller's promise.
    let n = unsafe { arg_str(name, "name") }?;
    crate::configfile::by_name(n).ok_or_else(|| {
        Error::new(
            Status::InvalidArgument,
            format!(
                "no provider named {} is loaded",
                crate::error::clean(n, 128)
            ),
        )
    })
}

/// The `_ex` form of a string-returning call: `*out` is set to NULL, then to the string `make`
/// allocates.
///
/// # Safety
/// `out` must be NULL or writable; `err_buf` NULL or `err_len` writable bytes.
unsafe fn string_ex(
    out: *mut *mut c_char,
    err_buf: *mut c_char,
    err_len: usize,
    make: impl FnOnce() -> Result<*mut c_char, Error>,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe {
        status_call(err_buf, err_len, || {
            let out = out_ptr(out, "out pointer")?;
            *out = ptr::null_mut();
            *out = make()?;
            Ok(())
        })
    }
}

/// The provider's statistics as a JSON object: `provider` (its name in the configuration file,
/// else `handle:N`), `endpoint` (its configured `token_url` or issuer), `client_id`,
/// `auth_method`, `tokens_fetched`, `cache_hits`, `background_refreshes`,
/// `background_refresh_failures`, `retries`, `failures` (by status name), `last_error`
/// (`status`, `message`, `at_unix_ms`), `last_fetch_unix_ms`, `token_remaining_s`, `cooldown`
/// (`active`, `remaining_ms`). Never a secret or a token. Release with `vault_string_free`; NULL
/// on failure (`VAULT_STATUS_INVALID_HANDLE`; `vault_stats_json_ex` reports it through the call).
#[no_mangle]
pub extern "C" fn vault_stats_json(provider: u64) -> *mut c_char {
    value_or_error(|| stats_json(provider))
}

/// As `vault_stats_json`: writes the string (released with `vault_string_free`) to `*out_json`,
/// NULL on failure, with the message in `err_buf`.
///
/// `out_json` must be NULL or writable; `err_buf` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_stats_json_ex(
    provider: u64,
    out_json: *mut *mut c_char,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe { string_ex(out_json, err_buf, err_len, || stats_json(provider)) }
}

fn stats_json(provider: u64) -> Result<*mut c_char, Error> {
    malloc_string(&handles::stats(provider)?.to_json().to_string())
}

/// The statistics of every registered provider: `{"providers": [{"handle": N, ...}, ...],
/// "scheduler": {...}}`, each provider as `vault_stats_json` gives it; `scheduler` is the
/// background refresh scheduler's state (`queued`, `oldest_queued_ms`, `workers`,
/// `peak_workers`, `refreshes`, `max_workers`, `endpoint_limit`, `peak_per_endpoint`). Release
/// with `vault_string_free`; NULL on failure (`vault_stats_all_json_ex` reports it through the
/// call).
#[no_mangle]
pub extern "C" fn vault_stats_all_json() -> *mut c_char {
    value_or_error(stats_all_json)
}

/// As `vault_stats_all_json`: writes the string (released with `vault_string_free`) to
/// `*out_json`, NULL on failure, with the message in `err_buf`.
///
/// `out_json` must be NULL or writable; `err_buf` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_stats_all_json_ex(
    out_json: *mut *mut c_char,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe { string_ex(out_json, err_buf, err_len, stats_all_json) }
}

fn stats_all_json() -> Result<*mut c_char, Error> {
    let all: Vec<serde_json::Value> = handles::stats_all()
        .into_iter()
        .map(|(h, s)| {
            let mut v = s.to_json();
            v["handle"] = serde_json::json!(h);
            v
        })
        .collect();
    let scheduler = crate::stats::scheduler_json(&crate::scheduler::stats());
    malloc_string(&serde_json::json!({ "providers": all, "scheduler": scheduler }).to_string())
}

/// The counters of every registered provider in the Prometheus text exposition format (0.0.4),
/// labelled by provider name, followed by the refresh scheduler's
/// (`credvault_refresh_queue_length`, `credvault_refresh_oldest_queued_seconds`,
/// `credvault_refresh_workers`, `credvault_refresh_workers_peak`,
/// `credvault_scheduled_refreshes_total`), for the host's metrics endpoint. Release with
/// `vault_string_free`; NULL on failure (`vault_metrics_prometheus_ex` reports it through the
/// call).
#[no_mangle]
pub extern "C" fn vault_metrics_prometheus() -> *mut c_char {
    value_or_error(metrics_prometheus)
}

/// As `vault_metrics_prometheus`: writes the string (released with `vault_string_free`) to
/// `*out_text`, NULL on failure, with the message in `err_buf`.
///
/// `out_text` must be NULL or writable; `err_buf` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn vault_metrics_prometheus_ex(
    out_text: *mut *mut c_char,
    err_buf: *mut c_char,
    err_len: usize,
) -> Status {
    // SAFETY: the caller's pointer contracts, passed through.
    unsafe { string_ex(out_text, err_buf, err_len, metrics_prometheus) }
}

fn metrics_prometheus() -> Result<*mut c_char, Error> {
    let all: Vec<crate::stats::Stats> = handles::stats_all().into_iter().map(|(_, s)| s).collect();
    let mut text = crate::stats::prometheus(&all);
    text.push_str(&crate::stats::prometheus_scheduler(
        &crate::scheduler::stats(),
    ));
    malloc_string(&text)
}

/// Wipes and frees a string returned by `vault_stats_json`, `vault_stats_all_json` or
/// `vault_metrics_prometheus` or their `_ex` forms (the same as `vault_token_free`). NULL is a
/// no-op.
///
/// `s` must be NULL or a string returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vault_string_free(s: *mut c_char) {
    // SAFETY: the same contract as vault_token_free.
    unsafe { vault_token_free(s) }
}

/// Installs `callback` to receive the library's structured events at `min_level` and above,
/// whatever the number (10 debug, 20 info, 30 warning, 40 error: Python's `logging` numbers; 50
/// receives nothing): fetch started and finished with latency, retry with reason, refresh failed
/// while still serving, cool-down entered and ended, configuration (re)loaded. Each event is a
/// NUL-terminated JSON object (`level`, `event`, `provider`, and the event's fields), valid only
/// during the call, with no secret or token in it. Events are delivered on the thread that caused
/// them with no library lock held (one raised under a lock is delivered once it is released); the
/// callback may call the library, every function of this header and `fork` included (a call that
/// would wait for a fetch returns an error instead, and events raised meanwhile on that thread are
/// dropped). NULL removes the callback. The default is no callback: nothing is logged.
///
/// When this returns, the callback it replaced is never entered again and no call of it is in
/// progress (it waits for them), so its `userdata` may be freed; the one exception is a call of it
/// that is itself inside `vault_set_log_callback` (a callback replacing the callback), which goes
/// on when that returns.
///
/// `callback` must be NULL or a function that can be called from any thread with `userdata`
/// until it is replaced.
#[no_mangle]
pub unsafe extern "C" fn vault_set_log_callback(
    callback: Option<
        unsafe extern "C" fn(userdata: *mut c_void, level: i32, event_json: *const c_char),
    >,
    min_level: i32,
    userdata: *mut c_void,
) -> Status {
    // SAFETY: no err_buf.
    unsafe {
        status_call(ptr::null_mut(), 0, || {
            crate::events::set_callback(callback, min_level, userdata);
            Ok(())
        })
    }
}

/// The C entry points' argument checks and buffer handling, in Rust, so that Miri can check the
/// unsafe code on these paths (`bash tests/miri.sh`); the C suite covers the same calls from C
/// under valgrind and the sanitizers. Nothing here seals a value: ring's AES-GCM is assembly,
/// which Miri cannot run.
#[cfg(test)]
mod tests {
    use super::*;

    fn err_text(buf: &[c_char]) -> String {
        // SAFETY: write_message always NUL-terminates within the buffer.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn provider_new_rejects_bad_arguments() {
        // SAFETY: NULL and NUL-terminated strings, as the contract allows.
        unsafe {
            assert_eq!(vault_provider_new(ptr::null()), 0);
            assert_eq!(vault_last_status(), Status::InvalidArgument);
            assert_eq!(vault_provider_new(c"{not json".as_ptr()), 0);
            assert_eq!(vault_last_status(), Status::InvalidConfig);
            let msg = CStr::from_ptr(vault_last_error()).to_str().unwrap();
            assert!(!msg.is_empty());
            let bad_utf8 = [b'{' as c_char, 0xff_u8 as c_char, 0];
            assert_eq!(vault_provider_new(bad_utf8.as_ptr()), 0);
            assert_eq!(vault_last_status(), Status::InvalidArgument);
        }
    }

    #[test]
    fn token_remaining_checks_its_pointers() {
        let mut err = [0 as c_char; 128];
        let mut ms = 7u64;
        // SAFETY: NULL and NUL-terminated strings, writable out pointers, as the contract allows.
        unsafe {
            let st = vault_token_remaining_ms(
                1,
                c"t".as_ptr(),
                ptr::null_mut(),
                err.as_mut_ptr(),
                err.len(),
            );
            assert_eq!(st, Status::InvalidArgument);
            let st = vault_token_remaining_ms(1, ptr::null(), &mut ms, err.as_mut_ptr(), err.len());
            assert_eq!(st, Status::InvalidArgument);
            assert_eq!(ms, 0);
            assert!(err_text(&err).contains("token"));
            let st = vault_token_remaining_ms(0, c"t".as_ptr(), &mut ms, ptr::null_mut(), 0);
            assert_eq!(st, Status::InvalidHandle);
        }
    }

    #[test]
    fn ex_calls_check_out_pointers_and_fill_err_buf() {
        let mut err = [0x55 as c_char; 64];
        let mut h = 7u64;
        // SAFETY: every pointer is NULL or valid for its stated length.
        unsafe {
            let s = vault_provider_new_ex(c"{}".as_ptr(), ptr::null_mut(), err.as_mut_ptr(), 64);
            assert_eq!(s, Status::InvalidArgument);
            assert_eq!(err_text(&err), "out_provider is NULL");
            let s = vault_provider_new_ex(c"[]".as_ptr(), &mut h, err.as_mut_ptr(), 64);
            assert_eq!(s, Status::InvalidConfig);
            assert_eq!(h, 7, "not written on failure");
            let mut tok: *mut c_char = ptr::NonNull::dangling().as_ptr();
            let s = vault_get_token_ex(12345, &mut tok, err.as_mut_ptr(), 64);
            assert_eq!(s, Status::InvalidHandle);
            assert!(tok.is_null(), "set to NULL on failure");
            let s = vault_get_authorization_ex(0, ptr::null_mut(), ptr::null_mut(), 0);
            assert_eq!(s, Status::InvalidArgument);
            let s = vault_invalidate_token(99, c"t".as_ptr(), err.as_mut_ptr(), 64);
            assert_eq!(s, Status::InvalidHandle);
        }
        assert_eq!(vault_provider_free(0), Status::InvalidHandle as i32);
        assert_eq!(vault_invalidate(u64::MAX), Status::InvalidHandle as i32);
        assert!(vault_get_token(1).is_null());
        assert!(vault_get_authorization(1).is_null());
    }

    /// The status forms of the configuration, statistics and scheduler calls report their
    /// failure through `err_buf` (message, then an empty OAuth code), and reset `*out`.
    #[test]
    fn operating_ex_calls_report_through_err_buf() {
        let mut err = [0x55 as c_char; 128];
        let second = |buf: &[c_char]| {
            let n = err_text(buf).len();
            err_text(&buf[n + 1..])
        };
        let mut out: *mut c_char = ptr::NonNull::dangling().as_ptr();
        let mut h = 7u64;
        // SAFETY: every pointer is NULL or valid for its stated length.
        unsafe {
            let s = vault_stats_json_ex(0, &mut out, err.as_mut_ptr(), err.len());
            assert_eq!(s, Status::InvalidHandle);
            assert!(out.is_null(), "set to NULL on failure");
            assert!(!err_text(&err).is_empty());
            assert_eq!(second(&err), "");
            let s = vault_stats_all_json_ex(ptr::null_mut(), err.as_mut_ptr(), err.len());
            assert_eq!(
                (s, err_text(&err)),
                (Status::InvalidArgument, "out pointer is NULL".into())
            );
            let s = vault_metrics_prometheus_ex(ptr::null_mut(), err.as_mut_ptr(), err.len());
            assert_eq!(s, Status::InvalidArgument);
            let s = vault_load_config_ex(ptr::null(), err.as_mut_ptr(), err.len());
            assert_eq!(
                (s, err_text(&err)),
                (Status::InvalidArgument, "path is NULL".into())
            );
            let s = vault_provider_by_name_ex(ptr::null(), &mut h, err.as_mut_ptr(), err.len());
            assert_eq!(
                (s, err_text(&err)),
                (Status::InvalidArgument, "name is NULL".into())
            );
            assert_eq!(h, 0, "set to 0 on failure");
            let s = vault_provider_by_name_ex(c"x".as_ptr(), ptr::null_mut(), ptr::null_mut(), 0);
            assert_eq!(s, Status::InvalidArgument);
            let s = vault_set_refresh_workers_ex(0, err.as_mut_ptr(), err.len());
            assert_eq!(s, Status::InvalidArgument);
            assert!(
                err_text(&err).contains("0 is out of range"),
                "{}",
                err_text(&err)
            );
            let s = vault_set_refresh_endpoint_limit_ex(65, err.as_mut_ptr(), err.len());
            assert_eq!(s, Status::InvalidArgument);
            assert_eq!(second(&err), "");
        }
        assert_eq!(vault_set_refresh_workers(0), Status::InvalidArgument);
        assert_eq!(
            vault_set_refresh_endpoint_limit(0),
            Status::InvalidArgument as i32
        );
    }

    #[test]
    fn into_calls_check_buffers() {
        let mut buf = [0 as c_char; 16];
        let mut n = 99usize;
        // SAFETY: as above.
        unsafe {
            let s = vault_get_token_into(5, ptr::null_mut(), 16, &mut n, ptr::null_mut(), 0);
            assert_eq!(s, Status::InvalidArgument);
            let s = vault_get_token_into(5, buf.as_mut_ptr(), 16, &mut n, ptr::null_mut(), 0);
            assert_eq!(s, Status::InvalidHandle);
            let s = vault_get_authorization_into(
                5,
                ptr::null_mut(),
                0,
                ptr::null_mut(),
                ptr::null_mut(),
                0,
            );
            assert_eq!(s, Status::InvalidHandle);
        }
    }

    #[test]
    fn fill_calls_check_their_argument() {
        let mut buf = [0 as c_char; 16];
        let mut fill = VaultFill {
            provider: 5,
            buf: buf.as_mut_ptr(),
            buf_len: 16,
            generation: 7,
        };
        let mut null_buf = VaultFill {
            provider: 5,
            buf: ptr::null_mut(),
            buf_len: 16,
            generation: 0,
        };
        // SAFETY: NULL, or fills whose buffers are NULL or valid for their length.
        unsafe {
            assert_eq!(
                vault_try_fill_token(ptr::null_mut()),
                Status::InvalidArgument
            );
            assert_eq!(vault_try_fill_token(&mut fill), Status::InvalidHandle);
            assert_eq!(
                vault_try_fill_authorization(&mut fill),
                Status::InvalidHandle
            );
            assert_eq!(vault_try_fill_token(&mut null_buf), Status::InvalidArgument);
        }
        assert_eq!(buf, [0 as c_char; 16], "nothing written on failure");
        assert_eq!(fill.generation, 7, "generation left alone on failure");
    }

    /// Messages are truncated to the buffer on a UTF-8 boundary and always NUL-terminated; a
    /// buffer of 0 bytes is left alone.
    #[test]
    fn error_messages_fit_any_buffer() {
        let msg = "ünïcödé message";
        for len in 0..=msg.len() + 2 {
            let mut buf = vec![0x55 as c_char; len + 1];
            // SAFETY: buf has len (+1 guard) writable bytes.
            unsafe { write_message(buf.as_mut_ptr(), len, msg, "") };
            assert_eq!(buf[len], 0x55, "wrote past the buffer");
            if len == 0 {
                continue;
            }
            let text = err_text(&buf);
            assert!(
                text.len() < len && msg.starts_with(&text),
                "{len}: {text:?}"
            );
        }
        // SAFETY: NULL is allowed.
        unsafe { write_message(ptr::null_mut(), 10, msg, "") };
    }

    /// The OAuth code follows the message's NUL when it fits; an empty second string when it
    /// does not or the message was truncated; nothing when no byte is left.
    #[test]
    fn oauth_code_follows_the_message() {
        let (msg, code) = ("refused", "invalid_client");
        let second = |buf: &[c_char]| {
            let n = err_text(buf).len();
            err_text(&buf[n + 1..])
        };
        let mut buf = [0x55 as c_char; 64];
        // SAFETY: buf has 64 writable bytes.
        unsafe { write_message(buf.as_mut_ptr(), 64, msg, code) };
        assert_eq!((err_text(&buf), second(&buf)), (msg.into(), code.into()));
        for len in msg.len() + 2..msg.len() + code.len() + 2 {
            let mut buf = vec![0x55 as c_char; len + 1];
            // SAFETY: buf has len (+1 guard) writable bytes.
            unsafe { write_message(buf.as_mut_ptr(), len, msg, code) };
            assert_eq!((err_text(&buf), second(&buf)), (msg.into(), String::new()));
            assert_eq!(buf[len], 0x55, "wrote past the buffer");
        }
        let mut buf = [0x55 as c_char; 9];
        // SAFETY: buf has 9 writable bytes.
        unsafe { write_message(buf.as_mut_ptr(), 8, msg, code) };
        assert_eq!((err_text(&buf), buf[8]), (msg.into(), 0x55));
        let mut buf = [0x55 as c_char; 6];
        // SAFETY: buf has 6 writable bytes.
        unsafe { write_message(buf.as_mut_ptr(), 5, msg, code) };
        assert_eq!((err_text(&buf), buf[5]), ("refu".into(), 0x55));
    }

    #[test]
    fn token_free_wipes_and_frees_malloc_strings() {
        // SAFETY: a malloc'd NUL-terminated string, as the library returns; freed once.
        unsafe {
            vault_token_free(ptr::null_mut());
            let p = libc::malloc(6) as *mut c_char;
            ptr::copy_nonoverlapping(c"token".as_ptr(), p, 6);
            vault_token_free(p);
        }
    }

    #[test]
    fn static_strings() {
        for n in [-1, 0, 1, 5, 15, 98, 99, 100, i32::MAX] {
            // SAFETY: static NUL-terminated strings.
            let name = unsafe { CStr::from_ptr(vault_status_name(n)) }
                .to_str()
                .unwrap();
            assert!(name.starts_with("VAULT_STATUS_"), "{name}");
        }
        // SAFETY: as above.
        let v = unsafe { CStr::from_ptr(vault_version()) }.to_str().unwrap();
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
    }
}
