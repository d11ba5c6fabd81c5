//! Sealed secrets: AEAD ciphertext under a per-process key.
//!
//! Client secrets, secret request headers and cached access tokens are held as [`Sealed`]
//! values: AES-256-GCM ciphertext under a random key made for this process. The plaintext exists
//! only inside [`Sealed::with_plaintext`] (a zeroizing buffer, wiped when the closure returns) or in a
//! buffer the caller hands to [`Sealed::open_into`] and is responsible for.
//!
//! Nonces are a 64-bit counter under the key, so they never repeat under it. A child of fork()
//! would share key and counter with its parent, so the fork handler of the child retires the
//! parent's key (the child makes a key of its own on its first seal) and locks the pages of every
//! inherited key in memory again; values sealed before the fork still open under the parent's
//! key, which every [`Sealed`] keeps a reference to. The decision is made in the fork handler,
//! not by comparing process ids: a child in a new PID namespace can have its parent's pid. (The
//! pid check stays as a second line, for a process cloned without the fork handlers.)

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::sync::{Mutex, Side};

/// The AEAD tag length of AES-256-GCM.
const TAG_LEN: usize = 16;

/// A sealing key of one process.
struct ProcessKey {
    key: LessSafeKey,
    /// The next nonce counter value. Never reused: at `u64::MAX` a new key is made.
    counter: AtomicU64,
    /// The process this key seals for.
    pid: u32,
}

impl ProcessKey {
    fn generate() -> Result<ProcessKey> {
        let mut raw = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut raw[..])
            .map_err(|_| Error::internal("the system random generator failed"))?;
        let unbound = UnboundKey::new(&AES_256_GCM, &raw[..])
            .map_err(|_| Error::internal("could not create the sealing key"))?;
        Ok(ProcessKey {
            key: LessSafeKey::new(unbound),
            counter: AtomicU64::new(0),
            pid: std::process::id(),
        })
    }

    /// The next nonce, or `None` when this key's nonces are spent.
    fn next_nonce(&self) -> Option<[u8; NONCE_LEN]> {
        let n = self
            .counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1))
            .ok()?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[NONCE_LEN - 8..].copy_from_slice(&n.to_be_bytes());
        Some(nonce)
    }
}

/// The key in its locked, non-dumpable page.
type KeyBox = crate::memlock::LockedBox<ProcessKey>;

/// The keys of this process.
struct Keys {
    /// The key that seals: `None` before the first seal, and in a child of fork() until its first.
    current: Option<Arc<KeyBox>>,
    /// Every key made here or inherited from a parent that may still open a value (entries of
    /// dropped keys are pruned when a key is made).
    all: Vec<Weak<KeyBox>>,
}

static KEYS: Mutex<Keys> = Mutex::new(Keys {
    current: None,
    all: Vec::new(),
});

/// Whether every sealing key still in use (the current one, and in a child of fork() the keys
/// inherited from the parent, which open the values sealed before the fork) sits in memory locked
/// against swapping: `Some(false)` when `RLIMIT_MEMLOCK` refused for one (the keys are still
/// excluded from core dumps), `None` before the first seal.
pub fn key_memory_locked() -> Option<bool> {
    let keys = KEYS.lock();
    let mut any = None;
    for key in keys.all.iter().filter_map(Weak::upgrade) {
        any = Some(any.unwrap_or(true) && key.is_locked());
    }
    any
}

/// The key that seals in this process, made on first use, after a fork and when one is spent.
fn sealing_key() -> Result<Arc<KeyBox>> {
    let mut keys = KEYS.lock();
    let pid = std::process::id();
    if let Some(key) = keys
        .current
        .as_ref()
        .filter(|k| k.pid == pid && k.counter.load(Ordering::Relaxed) < u64::MAX)
    {
        return Ok(key.clone());
    }
    let key = Arc::new(
        KeyBox::new(ProcessKey::generate()?)
            .ok_or_else(|| Error::internal("could not map a page for the sealing key"))?,
    );
    keys.all.retain(|w| w.strong_count() > 0);
    keys.all.push(Arc::downgrade(&key));
    keys.current = Some(key.clone());
    Ok(key)
}

/// Takes the key slot's lock before fork() (see `fork`).
pub(crate) fn fork_hold() {
    KEYS.fork_hold();
}

/// Releases it after fork(). In the child: retires the parent's key (the child's first seal makes
/// a key of its own, so the two processes never seal under one key and counter) and locks the
/// pages of every inherited key again (memory locks are not inherited).
///
/// # Safety
/// Only after `fork_hold` on this thread, once.
pub(crate) unsafe fn fork_release(side: Side) {
    // SAFETY: per the contract: held by this thread, released once.
    unsafe {
        if side == Side::Child {
            retire_for_child(KEYS.held_mut());
        }
        KEYS.fork_release(side);
    }
}

/// What the child's fork handler does to the keys.
fn retire_for_child(keys: &mut Keys) {
    keys.current = None;
    for key in keys.all.iter().filter_map(Weak::upgrade) {
        key.relock();
    }
}

/// A secret held as AES-256-GCM ciphertext. `Debug` prints a redaction.
pub struct Sealed {
    key: Arc<KeyBox>,
    nonce: [u8; NONCE_LEN],
    tag: [u8; TAG_LEN],
    ciphertext: Box<[u8]>,
}

impl Sealed {
    /// Seals a copy of `plaintext`. The caller remains responsible for wiping its own copy.
    /// The copy and the cipher pass the plaintext through vector registers, zeroed afterwards.
    pub fn seal(plaintext: &[u8]) -> Result<Sealed> {
        let mut buf = plaintext.to_vec().into_boxed_slice();
        let sealed = Sealed::seal_in_place(&mut buf);
        clear_vector_registers();
        sealed.map(|(key, nonce, tag)| Sealed {
            key,
            nonce,
            tag,
            ciphertext: buf,
        })
    }

    /// Seals `buf` in place: on success it holds ciphertext, on failure it is wiped.
    fn seal_in_place(buf: &mut [u8]) -> Result<(Arc<KeyBox>, [u8; NONCE_LEN], [u8; TAG_LEN])> {
        let sealed = (|| {
            let mut key = sealing_key()?;
            let nonce = match key.next_nonce() {
                Some(n) => n,
                None => {
                    key = sealing_key()?;
                    key.next_nonce()
                        .ok_or_else(|| Error::internal("sealing key exhausted"))?
                }
            };
            let tag = key
                .key
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), buf)
                .map_err(|_| Error::internal("sealing failed"))?;
            let mut tag_bytes = [0u8; TAG_LEN];
            tag_bytes.copy_from_slice(tag.as_ref());
            Ok((key, nonce, tag_bytes))
        })();
        if sealed.is_err() {
            buf.zeroize();
        }
        sealed
    }

    /// The plaintext length in bytes.
    pub fn len(&self) -> usize {
        self.ciphertext.len()
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.ciphertext.is_empty()
    }

    /// Opens the secret into `out`, which must be exactly [`Sealed::len`] bytes. On failure `out`
    /// is wiped. What `out` holds afterwards is the caller's to wipe; the vector registers the
    /// cipher left its last blocks in are zeroed here (see `clear_vector_registers`).
    pub fn open_into(&self, out: &mut [u8]) -> Result<()> {
        if out.len() != self.ciphertext.len() {
            return Err(Error::internal("open_into: buffer length mismatch"));
        }
        out.copy_from_slice(&self.ciphertext);
        let opened = self.key.key.open_in_place_separate_tag(
            Nonce::assume_unique_for_key(self.nonce),
            Aad::empty(),
            aead::Tag::from(self.tag),
            out,
            0..,
        );
        clear_vector_registers();
        match opened {
            Ok(_) => Ok(()),
            Err(_) => {
                out.zeroize();
                Err(Error::internal("a sealed value failed authentication"))
            }
        }
    }

    /// Runs `f` with the plaintext in a buffer that is wiped when `f` returns; the vector
    /// registers are zeroed after the open and again after `f` (which may copy the plaintext).
    pub fn with_plaintext<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let mut buf = crate::memlock::LockedBuf::new(self.len())
            .ok_or_else(|| Error::internal("could not map a page for plaintext"))?;
        self.open_into(&mut buf)?;
        let r = f(&buf);
        clear_vector_registers();
        Ok(r)
    }

    /// Compares the secret with `candidate` in time that depends only on the lengths.
    pub fn equals(&self, candidate: &[u8]) -> bool {
        self.with_plaintext(|p| constant_time_eq(p, candidate))
            .unwrap_or(false)
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed(<redacted, {} bytes>)", self.len())
    }
}

/// Zeroes the SIMD registers (x86_64: `vzeroall` with AVX, and `zmm16`-`zmm31` with AVX-512;
/// else `xmm0`-`xmm15`). ring's AES-GCM
/// leaves the last blocks it decrypted in vector registers, and they do not stay there: the
/// dynamic linker's lazy-binding trampoline (`_dl_runtime_resolve_xsavec`) saves the whole
/// register file onto the stack at the caller's next call through the PLT. tests/c/memscan.sh
/// found two 16-byte blocks of a private_key_jwt PEM (1.7 kB, opened through ring's VAES/AVX2
/// path) on the stack that way, and the same for 1,200-character tokens after a cached hit.
/// Called by [`Sealed::seal`], [`Sealed::open_into`] and [`Sealed::with_plaintext`].
#[inline(never)]
pub(crate) fn clear_vector_registers() {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: vzeroall only zeroes ymm0-ymm15, declared clobbered; code compiled
            // without AVX keeps nothing in their upper halves.
            unsafe {
                std::arch::asm!("vzeroall",
                    out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                    out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                    out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                    out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
                    options(nostack, nomem, preserves_flags));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked above).
                unsafe { clear_avx512_registers() };
            }
        } else {
            // SAFETY: zeroes xmm0-xmm15, declared clobbered.
            unsafe {
                std::arch::asm!(
                    "xorps xmm0, xmm0", "xorps xmm1, xmm1", "xorps xmm2, xmm2", "xorps xmm3, xmm3",
                    "xorps xmm4, xmm4", "xorps xmm5, xmm5", "xorps xmm6, xmm6", "xorps xmm7, xmm7",
                    "xorps xmm8, xmm8", "xorps xmm9, xmm9", "xorps xmm10, xmm10",
                    "xorps xmm11, xmm11", "xorps xmm12, xmm12", "xorps xmm13, xmm13",
                    "xorps xmm14, xmm14", "xorps xmm15, xmm15",
                    out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                    out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                    out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                    out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
                    options(nostack, nomem, preserves_flags));
            }
        }
    }
}

/// Zeroes `zmm16`-`zmm31`, which `vzeroall` leaves alone. glibc's EVEX string functions
/// (`strlen`, `memcpy`, ... on CPUs with AVX-512) keep the bytes they read in them: memscan found
/// 32 bytes of a token there after `vault_token_free`'s `strlen`, saved onto the stack by a signal.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx512f")]
unsafe fn clear_avx512_registers() {
    // SAFETY: zeroes zmm16-zmm31, declared clobbered; the caller checked for AVX-512F.
    unsafe {
        std::arch::asm!(
            "vpxord xmm16, xmm16, xmm16", "vpxord xmm17, xmm17, xmm17",
            "vpxord xmm18, xmm18, xmm18", "vpxord xmm19, xmm19, xmm19",
            "vpxord xmm20, xmm20, xmm20", "vpxord xmm21, xmm21, xmm21",
            "vpxord xmm22, xmm22, xmm22", "vpxord xmm23, xmm23, xmm23",
            "vpxord xmm24, xmm24, xmm24", "vpxord xmm25, xmm25, xmm25",
            "vpxord xmm26, xmm26, xmm26", "vpxord xmm27, xmm27, xmm27",
            "vpxord xmm28, xmm28, xmm28", "vpxord xmm29, xmm29, xmm29",
            "vpxord xmm30, xmm30, xmm30", "vpxord xmm31, xmm31, xmm31",
            out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
            out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
            out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
            options(nostack, nomem, preserves_flags));
    }
}

/// Compares two byte strings without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A secret input on its way to being sealed: a string wiped on drop, redacted in `Debug`.
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Takes `s`; it is wiped when this is dropped.
    pub fn new(s: String) -> Self {
        SecretString(Zeroizing::new(s))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret sealed under the process key.
    pub fn seal(&self) -> Result<Sealed> {
        Sealed::seal(self.0.as_bytes())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Wipes every string in a parsed JSON tree (values and keys).
pub(crate) fn wipe_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe_json),
        Value::Object(map) => {
            for (mut k, mut item) in std::mem::take(map) {
                wipe_json(&mut item);
                k.zeroize();
            }
        }
        _ => {}
    }
}

/// A parsed JSON tree that may hold secrets: every string in it is wiped when it is dropped.
pub(crate) struct WipedValue(pub serde_json::Value);

impl Drop for WipedValue {
    fn drop(&mut self) {
        wipe_json(&mut self.0);
    }
}

/// A uniformly distributed number in [0, 1), from the system's secure random generator.
pub(crate) fn random_fraction() -> f64 {
    let mut b = [0u8; 8];
    if SystemRandom::new().fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn seal_open_round_trip() {
        let s = Sealed::seal(b"correct horse battery staple").unwrap();
        assert_eq!(s.len(), 28);
        assert_ne!(&s.ciphertext[..], b"correct horse battery staple");
        let got = s.with_plaintext(|p| p.to_vec()).unwrap();
        assert_eq!(got, b"correct horse battery staple");
        assert!(s.equals(b"correct horse battery staple"));
        assert!(!s.equals(b"correct horse battery stapl"));
        assert!(!s.equals(b"correct horse battery stapld"));
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn nonces_never_repeat() {
        let a = Sealed::seal(b"x").unwrap();
        let b = Sealed::seal(b"x").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(
            (&a.ciphertext, a.tag),
            (&b.ciphertext, b.tag),
            "same plaintext must not seal the same way twice"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn tampering_is_detected_and_output_wiped() {
        let mut s = Sealed::seal(b"secret-value").unwrap();
        s.ciphertext[0] ^= 1;
        let mut out = [0xAAu8; 12];
        assert!(s.open_into(&mut out).is_err());
        assert_eq!(out, [0u8; 12]);
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn debug_is_redacted() {
        let s = Sealed::seal(b"hunter2hunter2").unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"));
        let input = SecretString::new("hunter2hunter2".into());
        assert!(!format!("{input:?}").contains("hunter2"));
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn empty_secret_seals() {
        let s = Sealed::seal(b"").unwrap();
        assert!(s.is_empty());
        assert_eq!(s.with_plaintext(|p| p.len()).unwrap(), 0);
    }

    /// The child's fork handler retires the key, whatever the process id says: the next seal
    /// uses a new key (a child in a new PID namespace can have its parent's pid).
    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn child_handler_retires_the_key() {
        let before = Sealed::seal(b"before").unwrap();
        // As the child's handler does it (same pid); the lock itself is not replaced here, as
        // other tests of this process may be waiting on it.
        retire_for_child(&mut KEYS.lock());
        let after = Sealed::seal(b"after").unwrap();
        assert!(
            !Arc::ptr_eq(&before.key, &after.key),
            "a new key after the fork"
        );
        assert_eq!(before.with_plaintext(|p| p.to_vec()).unwrap(), b"before");
        assert_eq!(after.with_plaintext(|p| p.to_vec()).unwrap(), b"after");
        assert!(key_memory_locked().is_some());
    }
}
