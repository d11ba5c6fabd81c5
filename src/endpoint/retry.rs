//! The retry loop of one fetch ([`with_retries`]): which failures are retried, the backoff
//! between attempts, the server's `Retry-After` (kept across fetches in [`NotBefore`]), and the
//! deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;

use crate::error::{Error, Result, Status};
use crate::secret::random_fraction;

/// How one fetch runs: its deadline. The waits between its attempts are the same for every
/// fetch ([`Backoff::DEFAULT`]).
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub deadline: Instant,
}

/// How a failed attempt may be retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retry {
    /// Not at all: a verdict (bad credentials, bad scope, an answer over the size limit).
    Never,
    /// After an exponential backoff (each wait drawn from the upper half of a doubling ceiling:
    /// see [`Backoff`]).
    Backoff,
    /// Not before this long (the server's `Retry-After`).
    After(Duration),
}

/// One failed attempt.
#[derive(Debug)]
pub struct Failed {
    pub error: Error,
    pub retry: Retry,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed {
            error,
            retry: Retry::Never,
        }
    }
}

/// The waits between the attempts of one fetch: the ceiling starts at `base` and doubles up to
/// `cap`, and each wait is drawn at random from the upper half of its ceiling (so a fleet of
/// processes spreads out, and no wait is ever close to zero).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The one schedule of every fetch, a caller's or a background refresh's (a
    /// refresh of a short token that fitted its attempts into the refresh window retried every
    /// ~100 ms for its whole deadline): 100 ms doubling to 2 s. A refresh window of under a second
    /// still gets several attempts (at about 0, 75, 225 and 525 ms).
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(2),
    };

    /// The wait after the `n`th failed attempt (0 for the first).
    pub fn wait(&self, n: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << n.min(16)).min(self.cap);
        ceiling.mul_f64(0.5 + 0.5 * random_fraction())
    }
}

/// When the token endpoint may be called again, as its last `Retry-After` said. Kept per
/// provider across fetches, so that a `Retry-After` longer than a fetch's deadline still holds
/// for the fetches after it. An atomic (no lock to bring across fork()).
#[derive(Debug, Default)]
pub struct NotBefore(AtomicU64);

/// The origin of [`NotBefore`]'s clock.
static ORIGIN: Lazy<Instant> = Lazy::new(Instant::now);

impl NotBefore {
    /// The instant, if one is set and not yet passed.
    pub fn get(&self) -> Option<Instant> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            ns => Some(*ORIGIN + Duration::from_nanos(ns)).filter(|t| *t > Instant::now()),
        }
    }

    /// Moves it to `t` if that is later.
    pub fn raise(&self, t: Instant) {
        let ns = t
            .saturating_duration_since(*ORIGIN)
            .as_nanos()
            .min(u64::MAX as u128) as u64;
        self.0.fetch_max(ns.max(1), Ordering::AcqRel);
    }
}

/// The least time left for which a retry is worth its wait: a request needs some of it, and none
/// is sent with less than about 12 ms (the provider's cut of an attempt's timeout).
const MIN_ATTEMPT: Duration = Duration::from_millis(25);

/// Runs `attempt` until it succeeds, fails for good, or `deadline` passes. Transient failures are
/// retried after the waits of [`Backoff::DEFAULT`], whoever fetches: no fetch sends more than
/// that schedule allows. A `Retry-After` can lengthen a wait, never shorten it; it is remembered
/// in `not_before`, and no attempt starts before it: when it lies past the deadline the fetch
/// fails at once with [`Status::RateLimited`].
pub fn with_retries<T>(
    deadline: Instant,
    not_before: &NotBefore,
    mut attempt: impl FnMut(Duration) -> Result<T, Failed>,
) -> Result<T> {
    wait_for_not_before(deadline, not_before)?;
    let mut n: u32 = 0;
    // The last failure that was not a timeout: when the deadline cuts the final attempt short,
    // what the endpoint kept answering says more than that cut.
    let mut cause: Option<Error> = None;
    loop {
        let remaining = time_left(deadline, &mut cause)?;
        let failed = match attempt(remaining) {
            Ok(v) => return Ok(v),
            Err(f) => keep_cause(f, &mut cause),
        };
        let pause = pause_after(failed, n, not_before)?;
        n += 1;
        std::thread::sleep(fits_before(pause, n, deadline)?);
    }
}

/// Waits out a `Retry-After` still in force (from this fetch's provider, in an earlier fetch).
/// When it lies at or past `deadline`, fails at once: no request is sent.
fn wait_for_not_before(deadline: Instant, not_before: &NotBefore) -> Result<()> {
    if let Some(t) = not_before.get() {
        if t >= deadline {
            let left = t.saturating_duration_since(Instant::now());
            return Err(Error::new(
                Status::RateLimited,
                format!(
                    "the token endpoint asked (Retry-After) not to be called for another {} ms: no request sent",
                    left.as_millis().max(1)
                ),
            ));
        }
        std::thread::sleep(t.saturating_duration_since(Instant::now()));
    }
    Ok(())
}

/// The time left before `deadline` for the next attempt. With none left, the fetch ends with
/// `cause` (the last failure that was not a timeout), or a timeout when there was none.
fn time_left(deadline: Instant, cause: &mut Option<Error>) -> Result<Duration> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(cause.take().unwrap_or_else(|| {
            Error::new(
                Status::Timeout,
                "deadline passed before the request was sent",
            )
        }));
    }
    Ok(remaining)
}

/// Records `failed` as the fetch's `cause` unless it is a timeout that may be retried; such a
/// timeout after another failure is reported as that failure, the timeout as its context.
fn keep_cause(mut failed: Failed, cause: &mut Option<Error>) -> Failed {
    if failed.error.status() == Status::Timeout && failed.retry != Retry::Never {
        if let Some(c) = cause {
            failed.error = c.clone().context(&format!(
                "the last attempt timed out ({}); before it",
                failed.error.message()
            ));
        }
    } else {
        *cause = Some(failed.error.clone());
    }
    failed
}

/// What follows a failed attempt that may be retried.
struct Pause {
    /// The attempt's failure, the fetch's error if no attempt follows.
    error: Error,
    /// How long to wait before the next attempt.
    wait: Duration,
    /// The server's `Retry-After`, if it gave one.
    asked: Option<Duration>,
}

/// The wait after the `n`th failed attempt (0 for the first), from the backoff schedule or a
/// longer `Retry-After` (which is also remembered in `not_before`). A failure that is never
/// retried ends the fetch with its error.
fn pause_after(failed: Failed, n: u32, not_before: &NotBefore) -> Result<Pause> {
    let backoff = Backoff::DEFAULT;
    let (wait, asked) = match failed.retry {
        Retry::Never => return Err(failed.error),
        Retry::After(d) => {
            not_before.raise(Instant::now() + d);
            (d.max(backoff.wait(n)), Some(d))
        }
        Retry::Backoff => (backoff.wait(n), None),
    };
    Ok(Pause {
        error: failed.error,
        wait,
        asked,
    })
}

/// The pause's wait, when it leaves time for a request before `deadline`; otherwise the fetch
/// ends after `attempts` attempts with the last failure (as [`Status::RateLimited`] when a
/// `Retry-After` reached past the deadline).
fn fits_before(pause: Pause, attempts: u32, deadline: Instant) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    // No sleep that leaves less than a request needs: that last non-attempt would end the
    // fetch with its own "no request sent" instead of what the endpoint answered.
    if pause.wait + MIN_ATTEMPT < left {
        return Ok(pause.wait);
    }
    let mut error = pause.error;
    if let Some(d) = pause.asked.filter(|d| *d >= left) {
        if error.status() == Status::HttpStatus {
            error = error.with_status(Status::RateLimited);
        }
        return Err(error.context(&format!(
            "gave up after {attempts} attempt(s): Retry-After {}s is past the deadline",
            d.as_secs()
        )));
    }
    Err(error.context(&format!(
        "gave up after {attempts} attempt(s) within the deadline"
    )))
}
