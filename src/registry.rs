//! Integer handles for providers, as the C ABI hands them out.
//!
//! A handle is `generation << 32 | slot index`. A slot's generation grows each time its provider is
//! freed, so a stale handle never reaches a later provider in the same slot; a slot whose
//! generation would wrap is retired. Generations start at 1, so 0 is never a handle.

use crate::sync::{RwLock, Side};

use crate::provider::Provider;

struct Entry {
    generation: u32,
    provider: Option<Provider>,
}

struct Slab {
    entries: Vec<Entry>,
    free: Vec<u32>,
}

static REGISTRY: RwLock<Slab> = RwLock::new(Slab {
    entries: Vec::new(),
    free: Vec::new(),
});

/// Most providers alive at once.
const MAX_SLOTS: usize = 1 << 24;

fn split(handle: u64) -> (usize, u32) {
    ((handle & 0xFFFF_FFFF) as usize, (handle >> 32) as u32)
}

/// Registers a provider; `None` when the table is full.
pub fn insert(provider: Provider) -> Option<u64> {
    let mut slab = REGISTRY.write();
    let index = match slab.free.pop() {
        Some(i) => i as usize,
        None if slab.entries.len() < MAX_SLOTS => {
            slab.entries.push(Entry {
                generation: 1,
                provider: None,
            });
            slab.entries.len() - 1
        }
        None => return None,
    };
    let entry = &mut slab.entries[index];
    let handle = ((entry.generation as u64) << 32) | index as u64;
    // Stats, metrics and events name it by its handle unless a configuration file named it.
    provider.set_label(&format!("handle:{handle}"));
    entry.provider = Some(provider);
    Some(handle)
}

/// Runs `f` on the provider under the shared lock (for work that never blocks).
pub fn with<R>(handle: u64, f: impl FnOnce(&Provider) -> R) -> Option<R> {
    let (index, generation) = split(handle);
    let slab = REGISTRY.read();
    match slab.entries.get(index) {
        Some(Entry {
            generation: g,
            provider: Some(p),
        }) if *g == generation => Some(f(p)),
        _ => None,
    }
}

/// A shared reference to the provider, for work that may block (the lock is not held).
pub fn get(handle: u64) -> Option<Provider> {
    with(handle, Provider::clone)
}

/// Unregisters a provider. Returns it, or `None` if the handle was not live (freed twice,
/// unknown, zero). Calls already running on it finish with their own reference.
pub fn remove(handle: u64) -> Option<Provider> {
    let (index, generation) = split(handle);
    let mut slab = REGISTRY.write();
    let entry = slab.entries.get_mut(index)?;
    if entry.generation != generation || entry.provider.is_none() {
        return None;
    }
    let provider = entry.provider.take();
    if let Some(p) = &provider {
        p.retire();
    }
    entry.generation = entry.generation.wrapping_add(1);
    if entry.generation != 0 {
        slab.free.push(index as u32);
    }
    provider
}

/// Every live provider with its handle (for statistics over all of them).
fn all() -> Vec<(u64, Provider)> {
    let slab = REGISTRY.read();
    slab.entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            e.provider
                .as_ref()
                .map(|p| (((e.generation as u64) << 32) | i as u64, p.clone()))
        })
        .collect()
}

/// The statistics of one registered provider (`vault_stats_json`); `None` for a dead handle.
pub fn stats_of(handle: u64) -> Option<crate::stats::Stats> {
    get(handle).map(|p| p.stats_named(&format!("handle:{handle}")))
}

/// The statistics of every registered provider, by handle.
pub fn stats_all() -> Vec<(u64, crate::stats::Stats)> {
    all()
        .into_iter()
        .map(|(h, p)| (h, p.stats_named(&format!("handle:{h}"))))
        .collect()
}

/// Puts `provider` in the place of the provider of `handle`, which keeps its handle (a configuration
/// reload with new settings). The old provider is retired, so no thread's memo serves its token
/// again; calls already running on it finish with their own reference. Returns it, or `None` if
/// the handle was not live.
pub fn replace(handle: u64, provider: Provider) -> Option<Provider> {
    let (index, generation) = split(handle);
    let mut slab = REGISTRY.write();
    let entry = slab.entries.get_mut(index)?;
    if entry.generation != generation || entry.provider.is_none() {
        return None;
    }
    let old = entry.provider.replace(provider);
    if let Some(p) = &old {
        p.retire();
    }
    old
}

/// Takes the registry lock before fork() (see `fork`).
pub(crate) fn fork_hold() {
    REGISTRY.fork_hold();
}

/// Releases it after fork() (in the child: replaces it).
///
/// # Safety
/// Only after `fork_hold` on this thread, once.
pub(crate) unsafe fn fork_release(side: Side) {
    // SAFETY: per the contract.
    unsafe { REGISTRY.fork_release(side) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn handles_never_alias() {
        let cfg = r#"{"token_url":"http://127.0.0.1:9/t","client_id":"c","client_secret":"s"}"#;
        let a = insert(Provider::new(cfg).unwrap()).unwrap();
        assert_ne!(a, 0);
        assert!(get(a).is_some());
        assert!(remove(a).is_some());
        assert!(remove(a).is_none(), "double free is refused");
        let b = insert(Provider::new(cfg).unwrap()).unwrap();
        assert_ne!(a, b, "slot reuse gives a new handle");
        assert!(get(a).is_none());
        assert!(get(0).is_none());
        assert!(get(u64::MAX).is_none());
        assert!(remove(b).is_some());
    }
}
