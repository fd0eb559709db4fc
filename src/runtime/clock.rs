//! The clock readings of one round of a worker.
//!
//! A round reads the monotonic clock and the realtime clock together once,
//! when it starts ([`Clocks::read`]): the monotonic reading is the round's
//! `now`, and the pair turns the kernel's receive stamps (SO_TIMESTAMPNS, on
//! CLOCK_REALTIME) into `Instant`s for every datagram of the round: arrival =
//! now − (wall now − stamp), never after now. The pair only maps one clock
//! onto the other, so it serves every socket of the round (and a round is
//! short against the drift between the two clocks).
//!
//! Realtime readings and stamps are whole nanoseconds since the epoch in a
//! `u64` (enough until 2554): a stamp's age is one integer subtraction and
//! one comparison, and only the last step, `now − age`, is `Instant`
//! arithmetic (normalizing `Duration`s for each of the steps cost more).

use std::time::{Duration, Instant};

/// Receive stamps older than this are not believed: the realtime clock was
/// stepped between the stamp and our reading (a datagram does not wait a
/// minute in a socket buffer of a running worker).
const MAX_STAMP_AGE: Duration = Duration::from_secs(60);
const MAX_STAMP_AGE_NS: u64 = MAX_STAMP_AGE.as_secs() * NANOS_PER_SEC;

pub(super) const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A `timespec`'s seconds and nanoseconds as nanoseconds since the epoch:
/// `None` before the epoch, for nanoseconds out of range, or past `u64`.
pub(super) fn timespec_nanos(secs: libc::time_t, nanos: libc::c_long) -> Option<u64> {
    let secs = u64::try_from(secs).ok()?;
    let nanos = u64::try_from(nanos).ok().filter(|n| *n < NANOS_PER_SEC)?;
    secs.checked_mul(NANOS_PER_SEC)?.checked_add(nanos)
}

/// The monotonic and the realtime clock read together.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clocks {
    pub now: Instant,
    /// CLOCK_REALTIME at `now`, in nanoseconds since the Unix epoch (`None`
    /// before it).
    wall: Option<u64>,
}

impl Clocks {
    pub fn read() -> Clocks {
        let now = Instant::now();
        Clocks {
            now,
            wall: realtime(),
        }
    }

    /// The `Instant` of a kernel stamp: as long before `now` as the stamp is
    /// before `wall`; `now` for a stamp after `wall` (never later), `None`
    /// for one older than [`MAX_STAMP_AGE`] or without a wall reading.
    /// `stamp` is in nanoseconds since the epoch.
    pub fn arrival(&self, stamp: u64) -> Option<Instant> {
        let age = self.wall?.saturating_sub(stamp);
        if age > MAX_STAMP_AGE_NS {
            return None;
        }
        self.now.checked_sub(Duration::from_nanos(age))
    }
}

/// CLOCK_REALTIME in nanoseconds since the Unix epoch (`None` before it):
/// what `SystemTime::now().duration_since(UNIX_EPOCH)` gives, without its
/// subtraction (this is read once per round).
fn realtime() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        return None;
    }
    timespec_nanos(ts.tv_sec, ts.tv_nsec)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use proptest::prelude::*;

    use super::*;

    const WALL: u64 = 1_764_000_000 * NANOS_PER_SEC + 500_000_000;

    fn clocks() -> Clocks {
        Clocks {
            now: Instant::now(),
            wall: Some(WALL),
        }
    }

    fn ns(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap()
    }

    #[test]
    fn a_stamp_becomes_an_instant_as_far_before_now() {
        let c = clocks();
        let stamp = WALL - ns(Duration::from_micros(250));
        assert_eq!(c.arrival(stamp), Some(c.now - Duration::from_micros(250)));
        assert_eq!(c.arrival(WALL), Some(c.now));
        let old = WALL - ns(MAX_STAMP_AGE);
        assert_eq!(c.arrival(old), Some(c.now - MAX_STAMP_AGE));
    }

    #[test]
    fn a_stamp_is_never_after_now_and_a_stepped_clock_is_ignored() {
        let c = clocks();
        assert_eq!(c.arrival(WALL + 3_000_000), Some(c.now));
        let stepped = WALL - ns(MAX_STAMP_AGE) - 1;
        assert_eq!(c.arrival(stepped), None);
        assert_eq!(c.arrival(0), None);
    }

    #[test]
    fn without_a_wall_reading_no_stamp_is_believed() {
        let c = Clocks {
            wall: None,
            ..clocks()
        };
        assert_eq!(c.arrival(1_764_000_000 * NANOS_PER_SEC), None);
    }

    #[test]
    fn timespecs_in_range_only() {
        assert_eq!(timespec_nanos(0, 0), Some(0));
        assert_eq!(timespec_nanos(5, 999_999_999), Some(5_999_999_999));
        assert_eq!(timespec_nanos(-1, 0), None);
        assert_eq!(timespec_nanos(5, 1_000_000_000), None);
        assert_eq!(timespec_nanos(5, -1), None);
        assert_eq!(timespec_nanos(libc::time_t::MAX, 0), None);
        let last = (u64::MAX / NANOS_PER_SEC) as libc::time_t;
        assert!(timespec_nanos(last, 0).is_some());
    }

    /// The arrival as `Duration`s compute it (the code before nanoseconds).
    fn arrival_by_durations(
        now: Instant,
        wall: Option<Duration>,
        stamp: Duration,
    ) -> Option<Instant> {
        let age = wall?.saturating_sub(stamp);
        if age > MAX_STAMP_AGE {
            return None;
        }
        now.checked_sub(age)
    }

    proptest! {
        /// Nanosecond integers give what `Duration` arithmetic gives, for
        /// stamps around the wall reading (within and past the age bound,
        /// after it, at the epoch) and any timespec.
        #[test]
        fn nanoseconds_agree_with_durations(
            wall_secs in 0u64..4_000_000_000,
            wall_nanos in 0u32..1_000_000_000,
            back in prop_oneof![0u64..2_000_000, 0u64..70 * NANOS_PER_SEC, Just(60 * NANOS_PER_SEC), any::<u64>()],
            after in any::<bool>(),
        ) {
            let now = Instant::now();
            let wall = Duration::new(wall_secs, wall_nanos);
            let wall_ns = ns(wall);
            let stamp_ns = if after { wall_ns.saturating_add(back) } else { wall_ns.saturating_sub(back) };
            let stamp = Duration::from_nanos(stamp_ns);
            let c = Clocks { now, wall: Some(wall_ns) };
            prop_assert_eq!(c.arrival(stamp_ns), arrival_by_durations(now, Some(wall), stamp));
            let s = timespec_nanos(wall_secs as libc::time_t, libc::c_long::from(wall_nanos));
            prop_assert_eq!(s, Some(wall_ns));
        }
    }

    #[test]
    fn the_clocks_read_now() {
        let before = Instant::now();
        let c = Clocks::read();
        let wall = ns(SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap());
        assert!(c.now >= before);
        let read = c.wall.unwrap();
        assert!(wall >= read && wall - read < NANOS_PER_SEC);
        let again = realtime().unwrap();
        assert!(again >= read && again <= wall + NANOS_PER_SEC);
    }
}
