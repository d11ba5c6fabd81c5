//! The handle layer: what a C caller's `uint64_t` provider handle reaches, and the per-thread
//! state that goes with it.
//!
//! - [`registry`](crate::registry) holds the table of providers by handle.
//! - This module adds, per thread, the [`Memo`] of the tokens the thread was last served (so a
//!   hit takes no lock) and the [`served`] table (which token `vault_invalidate` drops), and the
//!   serve logic that ties them to a provider: [`serve`], [`invalidate`].
//!
//! The C ABI (`ffi`) calls only this module and the registry; it converts arguments and results.
//! Every thread-local here is reached with `try_with`: during a thread's teardown (a C++
//! `thread_local` destructor or a pthread key destructor calling in after the thread's
//! thread-local storage is gone) a call is served without the memo and `vault_invalidate` drops
//! whatever token is cached, as for a thread that was never served one.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::cache::{CachedToken, Watch};
use crate::error::{Error, Status};
use crate::provider::Provider;
use crate::registry;

/// The error for a zero, unknown or freed handle.
pub fn invalid_handle() -> Error {
    Error::new(
        Status::InvalidHandle,
        "invalid provider handle (zero, unknown, or already freed)",
    )
}

/// Registers a new provider; its handle.
pub fn create(provider: Provider) -> Result<u64, Error> {
    registry::insert(provider).ok_or_else(|| Error::internal("too many providers alive"))
}

/// Unregisters and drops a provider (calls running on it in other threads finish first).
pub fn free(handle: u64) -> Result<(), Error> {
    registry::remove(handle)
        .map(drop)
        .ok_or_else(invalid_handle)
}

/// A shared reference to the provider, for work that may block.
pub fn get(handle: u64) -> Result<Provider, Error> {
    registry::get(handle).ok_or_else(invalid_handle)
}

/// Whether a token call may wait for the network.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wait {
    /// On a miss, wait for (or run) the single in-flight fetch.
    Yes,
    /// On a miss, return the stored error during a cool-down, else `Status::WouldBlock`.
    No,
}

/// Serves `handle`'s token to `f` and returns its result: from this thread's memo when it holds
/// the current token; else the provider's hit path under the registry's shared lock (which
/// refills the memo); on a miss, the slow path on a reference of the provider with no registry
/// lock held (or, with [`Wait::No`], no wait). On success the token's generation is noted as
/// the one this thread was last served (see [`served`]).
///
/// The hit path and the slow path are the provider's own (`Provider::try_serve`,
/// `Provider::serve_blocking`), the same ones the Rust API (`Provider::token`) takes; the memo
/// is a per-thread front for the handle lookup, which a Rust caller holding a `Provider` does not
/// need.
pub fn serve<R>(
    handle: u64,
    wait: Wait,
    f: impl Fn(&CachedToken) -> Result<R, Error>,
) -> Result<R, Error> {
    let result = serve_token(handle, wait, |t| f(t).map(|r| (r, t.generation)));
    let (value, generation) = result?;
    served::note(handle, generation);
    Ok(value)
}

fn serve_token<R>(
    handle: u64,
    wait: Wait,
    f: impl Fn(&CachedToken) -> Result<R, Error>,
) -> Result<R, Error> {
    let held = match memo::serve(handle, &f) {
        memo::Lookup::Served(result) => return result,
        memo::Lookup::Passed(held) => held,
    };
    let hit = registry::with(handle, |p| {
        p.try_serve(|t, version| {
            let result = p.counters().hit(f(t));
            // Refill the memo, unless it already holds this very token (and passed the call on
            // because the token is near its refresh point: refilling would change nothing). No
            // clock read here: the hit path made the one this call needs.
            let keep = (result.is_ok() && held != Some((version, t.serial)))
                .then(|| (version, p.watch().clone(), t.clone(), p.counters().clone()));
            (result, keep)
        })
    });
    match hit {
        None => Err(invalid_handle()),
        Some(Some((result, keep))) => {
            if let Some((version, watch, token, counters)) = keep {
                memo::keep(handle, version, watch, token, counters);
            }
            result
        }
        Some(None) => {
            let provider = get(handle)?;
            if wait == Wait::No {
                return Err(provider.cooldown_error().unwrap_or_else(|| {
                    Error::new(
                        Status::WouldBlock,
                        "no servable token is cached: the call would wait for the network",
                    )
                }));
            }
            provider.serve_blocking(&f)?
        }
    }
}

/// Drops the token this thread was last served by `handle`, if it is still the cached one (so
/// that many threads reporting the same 401 cause one fetch); drops whatever is cached if this
/// thread does not remember one.
pub fn invalidate(handle: u64) -> Result<(), Error> {
    let last = served::last(handle);
    // On a reference, with no registry lock held: ending a cool-down raises an event.
    let p = get(handle)?;
    match last {
        Some(generation) => p.invalidate_generation(generation),
        None => p.invalidate(),
    };
    Ok(())
}

/// Drops the cached token if it equals `token` (`None`: any cached token); ends a cool-down
/// either way.
pub fn invalidate_token(handle: u64, token: Option<&[u8]>) -> Result<(), Error> {
    let p = get(handle)?;
    match token {
        Some(bytes) => p.invalidate_token_bytes(bytes),
        None => p.invalidate(),
    };
    Ok(())
}

/// The provider's statistics.
pub fn stats(handle: u64) -> Result<crate::stats::Stats, Error> {
    registry::stats_of(handle).ok_or_else(invalid_handle)
}

/// The statistics of every registered provider, with their handles.
pub fn stats_all() -> Vec<(u64, crate::stats::Stats)> {
    registry::stats_all()
}

/// How long `token` stays servable if it is `handle`'s cached token; zero if it is not (or is
/// not UTF-8: not a token the library handed out). Never waits.
pub fn token_remaining(handle: u64, token: &[u8]) -> Result<std::time::Duration, Error> {
    let p = get(handle)?;
    Ok(std::str::from_utf8(token)
        .ok()
        .and_then(|t| p.token_serve_left(t))
        .unwrap_or_default())
}

/// The per-thread memo of current tokens.
mod memo {
    use super::*;

    thread_local! {
        /// The cached tokens this thread keeps, by handle, in the order they were last refilled
        /// (a memo hit does not reorder them; the oldest refill is evicted first).
        static MEMO: RefCell<Vec<Memo>> = const { RefCell::new(Vec::new()) };
    }

    /// Providers whose token a thread keeps in its [`Memo`].
    const MEMO_MAX: usize = 8;

    /// A thread's reference to a provider's cached token, so that its next hit takes no lock
    /// and writes no shared memory: every hit through the registry takes two read locks, and a
    /// read lock is two atomic writes to a cache line that every thread calling that provider
    /// shares. With the memo, a hit is one thread-local lookup, one shared load (the [`Watch`]
    /// version, which changes only when the token is replaced or dropped or the provider
    /// freed), the coarse clock (still before the refresh point: see `CachedToken::quick`) and
    /// the AEAD open.
    ///
    /// The memo holds the sealed token (never plaintext), and only while it is still the
    /// current one: an entry whose version no longer matches is never served, is replaced on
    /// the thread's next hit through the registry, and is dropped at once if its provider was
    /// freed.
    struct Memo {
        handle: u64,
        version: u64,
        watch: Arc<Watch>,
        token: Arc<CachedToken>,
        /// The provider's counters: a memo hit is a cache hit.
        counters: Arc<crate::stats::Counters>,
    }

    /// What [`serve`] did with a call.
    pub(super) enum Lookup<R> {
        /// Served from the memo (counted as a hit if it succeeded).
        Served(Result<R, Error>),
        /// Passed on to the registry. With the `(version, serial)` of the token the memo holds
        /// for the handle, if any: when the registry serves that same token, the memo has it
        /// already (it passed the call on because the token is near its refresh point).
        Passed(Option<(u64, u64)>),
    }

    /// Serves `handle`'s token from this thread's memo, if it holds the current one and it is
    /// not near its refresh point; else passes the call on to the registry.
    pub(super) fn serve<R>(
        handle: u64,
        f: &impl Fn(&CachedToken) -> Result<R, Error>,
    ) -> Lookup<R> {
        MEMO.try_with(|m| {
            let Ok(memo) = m.try_borrow() else {
                return Lookup::Passed(None);
            };
            let Some(e) = memo.iter().rev().find(|e| e.handle == handle) else {
                return Lookup::Passed(None);
            };
            if e.watch.version() != e.version || !e.token.quick() {
                return Lookup::Passed(Some((e.version, e.token.serial)));
            }
            Lookup::Served(e.counters.hit(f(&e.token)))
        })
        .unwrap_or(Lookup::Passed(None))
    }

    /// Remembers `token` as `handle`'s current token on this thread; forgets the entries that
    /// are no longer current (replaced or dropped tokens, freed providers).
    pub(super) fn keep(
        handle: u64,
        version: u64,
        watch: Arc<Watch>,
        token: Arc<CachedToken>,
        counters: Arc<crate::stats::Counters>,
    ) {
        let _ = MEMO.try_with(|m| {
            let Ok(mut memo) = m.try_borrow_mut() else {
                return;
            };
            memo.retain(|e| e.handle != handle && e.watch.version() == e.version);
            if memo.len() == MEMO_MAX {
                memo.remove(0);
            }
            memo.push(Memo {
                handle,
                version,
                watch,
                token,
                counters,
            });
        });
    }
}

/// Per thread, the generation of the last token each provider served it, for the
/// [`SERVED_MAX`] providers that served it most recently.
pub(crate) mod served {
    use super::*;

    /// Providers a thread remembers for `vault_invalidate`: the 64 that served it most recently.
    pub const SERVED_MAX: usize = 64;

    thread_local! {
        /// (handle, generation), most recently served last; at most [`SERVED_MAX`] entries.
        static SERVED: RefCell<Vec<(u64, u64)>> = const { RefCell::new(Vec::new()) };
        /// The last entry of [`SERVED`], read without borrowing the table; (0, 0) before the
        /// first (0 is never a handle).
        static LATEST: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }

    /// `handle` served this thread the token of `generation`: it becomes the most recent entry
    /// (the least recently served provider is forgotten when the table is full).
    pub fn note(handle: u64, generation: u64) {
        // The usual case, a repeated call served the same token (a memo hit): the table would
        // stay as it is, so it is neither borrowed nor written.
        if LATEST.try_with(|l| l.get() == (handle, generation)) == Ok(true) {
            return;
        }
        let _ = SERVED.try_with(|c| {
            let Ok(mut table) = c.try_borrow_mut() else {
                return;
            };
            if let Some(last) = table.last_mut().filter(|(h, _)| *h == handle) {
                // Already the most recent: a new token from the same provider.
                last.1 = generation;
            } else {
                if let Some(i) = table.iter().rposition(|(h, _)| *h == handle) {
                    table.remove(i);
                } else if table.len() >= SERVED_MAX {
                    table.remove(0);
                }
                table.push((handle, generation));
            }
            let _ = LATEST.try_with(|l| l.set((handle, generation)));
        });
    }

    /// The generation of the last token `handle` served this thread, if it is remembered.
    pub fn last(handle: u64) -> Option<u64> {
        SERVED
            .try_with(|c| {
                let table = c.try_borrow().ok()?;
                table
                    .iter()
                    .rev()
                    .find(|(h, _)| *h == handle)
                    .map(|(_, g)| *g)
            })
            .ok()
            .flatten()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Being served again moves a provider to the front; the least recently served one is
        /// forgotten, and only once [`SERVED_MAX`] others served the thread after it.
        #[test]
        fn most_recently_served() {
            std::thread::spawn(|| {
                note(1, 10);
                for h in 100..100 + SERVED_MAX as u64 - 1 {
                    note(h, 1);
                }
                assert_eq!(last(1), Some(10), "63 others: still remembered");
                note(1, 11);
                note(500, 1);
                assert_eq!(last(1), Some(11), "served again: moved to the front");
                assert_eq!(last(100), None, "the least recently served is forgotten");
                for h in 600..600 + SERVED_MAX as u64 - 1 {
                    note(h, 1);
                }
                assert_eq!(last(1), None, "64 others since: forgotten");
            })
            .join()
            .unwrap();
        }
    }
}
