//! credvault: OAuth 2.0 client-credentials tokens for payment services.
//!
//! Client secrets, secret headers and cached tokens are held sealed in memory (`secret`);
//! tokens are fetched over a blocking ureq client (`endpoint`, `discovery`), cached per
//! provider and refreshed ahead of expiry by one background fetch (`cache`); the C ABI
//! ([`ffi`], header `include/credvault.h`) hands them to C, C++, Python and Go.
//!
//! ```no_run
//! let p = credvault::Provider::new(r#"{"preset":"vgs","client_id":"id","client_secret":"secret"}"#)?;
//! let token = p.token()?;                 // cached until its refresh point
//! let header = token.authorization();     // "Bearer ...", wiped on drop
//! # Ok::<(), credvault::Error>(())
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod alloc;
mod cache;
pub mod config;
pub mod configfile;
mod discovery;
mod endpoint;
pub mod error;
pub mod events;
pub mod ffi;
mod fork;
#[doc(hidden)]
pub mod fuzzing;
mod handles;
pub mod jwt;

/// Counts of live objects, for the tests that check nothing leaks (`tests/stress.rs`). Each is
/// counted by the module where those objects live.
#[doc(hidden)]
pub mod census {
    /// Providers alive (created and not yet dropped by their last user).
    pub fn providers() -> usize {
        crate::provider::count()
    }

    /// Cached tokens alive (in a cache, a fetch result, or a thread's memo).
    pub fn tokens() -> usize {
        crate::cache::count()
    }

    /// Log sinks alive: the installed one and replaced ones not yet freed.
    pub fn log_sinks() -> usize {
        crate::events::sinks_alive()
    }
}
mod memlock;
pub mod provider;
mod registry;
pub mod scheduler;
pub mod secret;
mod sources;
pub mod stats;
mod sync;

pub use config::Config;
pub use error::{Error, Result, Status};
pub use provider::{Provider, Token};

/// Every block the library frees is wiped first (see [`alloc`]).
#[cfg(feature = "zeroizing-allocator")]
#[global_allocator]
static ALLOCATOR: alloc::ZeroizingAlloc = alloc::ZeroizingAlloc(std::alloc::System);

/// The library version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
