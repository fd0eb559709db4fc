//! The clock readings of one round of a worker.
//!
//! A round reads the monotonic clock and the realtime clock together once,
//! when it starts ([`Clocks::read`]): the monotonic reading is the round's
//! `now`, and the pair turns the kernel's receive stamps (SO_TIMESTAMPNS, on
//! CLOCK_REALTIME) into `Instant`s for every datagram of the round: arrival =
//! now − (wall now − stamp), never after now. The pair only maps one clock
//! onto the other, so it serves every socket of the round (and a round is
//! short against the drift between the two clocks).

use std::time::{Duration, Instant};

/// Receive stamps older than this are not believed: the realtime clock was
/// stepped between the stamp and our reading (a datagram does not wait a
/// minute in a socket buffer of a running worker).
const MAX_STAMP_AGE: Duration = Duration::from_secs(60);

/// The monotonic and the realtime clock read together.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clocks {
    pub now: Instant,
    /// CLOCK_REALTIME at `now`, since the Unix epoch (`None` before it).
    wall: Option<Duration>,
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
    pub fn arrival(&self, stamp: Duration) -> Option<Instant> {
        let age = self.wall?.saturating_sub(stamp);
        if age > MAX_STAMP_AGE {
            return None;
        }
        self.now.checked_sub(age)
    }
}

/// CLOCK_REALTIME since the Unix epoch (`None` before it): what
/// `SystemTime::now().duration_since(UNIX_EPOCH)` gives, without its
/// subtraction (this is read once per round).
fn realtime() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn clocks() -> Clocks {
        Clocks {
            now: Instant::now(),
            wall: Some(Duration::new(1_764_000_000, 500_000_000)),
        }
    }

    #[test]
    fn a_stamp_becomes_an_instant_as_far_before_now() {
        let c = clocks();
        let wall = c.wall.unwrap();
        let stamp = wall - Duration::from_micros(250);
        assert_eq!(c.arrival(stamp), Some(c.now - Duration::from_micros(250)));
        assert_eq!(c.arrival(wall), Some(c.now));
        let old = wall - MAX_STAMP_AGE;
        assert_eq!(c.arrival(old), Some(c.now - MAX_STAMP_AGE));
    }

    #[test]
    fn a_stamp_is_never_after_now_and_a_stepped_clock_is_ignored() {
        let c = clocks();
        let wall = c.wall.unwrap();
        assert_eq!(c.arrival(wall + Duration::from_millis(3)), Some(c.now));
        let stepped = wall - MAX_STAMP_AGE - Duration::from_nanos(1);
        assert_eq!(c.arrival(stepped), None);
        assert_eq!(c.arrival(Duration::ZERO), None);
    }

    #[test]
    fn without_a_wall_reading_no_stamp_is_believed() {
        let c = Clocks {
            wall: None,
            ..clocks()
        };
        assert_eq!(c.arrival(Duration::new(1_764_000_000, 0)), None);
    }

    #[test]
    fn the_clocks_read_now() {
        let before = Instant::now();
        let c = Clocks::read();
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        assert!(c.now >= before);
        let read = c.wall.unwrap();
        assert!(wall >= read && wall - read < Duration::from_secs(1));
        let again = realtime().unwrap();
        assert!(again >= read && again <= wall + Duration::from_secs(1));
    }
}
