//! The fork() coordinator: the `pthread_atfork` handlers, and the one global lock order.
//!
//! A child of fork() has the parent's memory but only the thread that forked: a lock held by
//! another thread at that moment would stay held forever, a fetch in flight would never finish,
//! a thread waiting on a lock or a condition variable does not exist, and pooled connections
//! would be shared with the parent. So:
//! - before the fork (`prepare`), the forking thread takes every lock of the library in the
//!   global order below, so that nothing is half-updated when the memory is copied;
//! - in the parent (`parent`), it releases them as any lock is released;
//! - in the child (`child`), every one of those locks and condition variables is *replaced* by a
//!   fresh one (never unlocked, never notified; see `sync`), each module resets what belonged to
//!   the parent's threads (a fetch in flight, the HTTP agent), and the sealing key is retired:
//!   the child seals under a key of its own from its first seal on, and locks the parent's key
//!   pages in memory again (memory locks are not inherited).
//!
//! This module sits above everything it orders; none of those modules calls it. They expose
//! `fork_hold` / `fork_release(Side)` (built on `sync`'s locks) and this module calls them.
//!
//! # The global lock order
//!
//! Every lock of the library, outermost first. Any code path that holds two of them at once takes
//! them in this order, so `prepare` cannot deadlock against a running call:
//!
//! 1. `FORKING` (this module): one fork at a time goes through the handlers;
//! 2. the configuration file in service (`configfile`);
//! 3. the list of live providers (`provider`);
//! 4. the handle table (`registry`), held for writing;
//! 5. each live provider, in list order: its cache's `flight`, then its `state` (for writing),
//!    then its discovery cache, then its HTTP agent slot, then its counters' last error (`stats`);
//! 6. the background refresh scheduler's state (`scheduler`; a leaf, taken on the hit path
//!    under the handle table's read lock, never with a provider's lock held);
//! 7. the sealing key slot (`secret`);
//! 8. the log sink slot (`events`; a leaf, never held while user code runs or another lock is
//!    taken).
//!
//! The nestings that exist: the configuration file then the handle table (`configfile::apply`
//! registers, replaces and frees providers under it); the handle table then a cache's state
//! (`registry::with` runs the hit path and invalidation under it); `flight` then `state`
//! (`Cache::get_blocking`). Sealing takes the key slot with no other lock held, and nothing else
//! nests.
//!
//! Cached tokens stay usable in the child: they are still valid and a bearer token may be used by
//! any process. The hit path pays nothing for any of this.

// Miri runs no constructor and no fork: the handlers are unused there.
#![cfg_attr(miri, allow(dead_code))]

use crate::configfile;
use crate::events;
use crate::provider;
use crate::registry;
use crate::scheduler;
use crate::secret;
use crate::sync::{Mutex, Side};

/// Held first by `prepare`; keeps the providers held across the fork alive until it is over.
static FORKING: Mutex<Option<provider::Held>> = Mutex::new(None);

/// Installs the handlers, when the library is loaded (a constructor: `INSTALL_AT_LOAD`), so
/// they are in place before any lock or key exists: a process may fork after sealing a
/// configuration and before making its first provider. No module below has to remember to call
/// it. (The constructor is kept in static links too: checked with `readelf -x .init_array` on a
/// C program linked with `libcredvault.a` that calls only `vault_version`.)
#[cfg_attr(miri, allow(dead_code))]
extern "C" fn install_at_load() {
    // SAFETY: the handlers are plain functions that live as long as the library (glibc
    // unregisters them if a dlopen()ed copy is unloaded).
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

#[cfg(all(unix, not(miri)))]
#[used]
#[cfg_attr(target_vendor = "apple", link_section = "__DATA,__mod_init_func")]
#[cfg_attr(not(target_vendor = "apple"), link_section = ".init_array")]
static INSTALL_AT_LOAD: extern "C" fn() = install_at_load;

extern "C" fn prepare() {
    FORKING.fork_hold();
    configfile::fork_hold();
    let providers = provider::fork_hold_list();
    registry::fork_hold();
    providers.fork_hold_each();
    scheduler::fork_hold();
    secret::fork_hold();
    events::fork_hold();
    // SAFETY: FORKING is held by this thread (just above).
    unsafe { *FORKING.held_mut() = Some(providers) };
}

fn finish(side: Side) {
    // SAFETY: `prepare` ran on this thread just before fork() and took every lock named here, in
    // this order; they are released (or, in the child, replaced) in the reverse order, once.
    unsafe {
        let providers = FORKING.held_mut().take();
        events::fork_release(side);
        secret::fork_release(side);
        scheduler::fork_release(side);
        if let Some(p) = &providers {
            p.fork_release_each(side);
        }
        registry::fork_release(side);
        provider::fork_release_list(side);
        configfile::fork_release(side);
        drop(providers);
        FORKING.fork_release(side);
    }
}

extern "C" fn parent() {
    finish(Side::Parent);
}

extern "C" fn child() {
    finish(Side::Child);
}
