//! A time recurrence in the CPL subset of RFC 2445, written
//! `dtstart|duration|freq|until|interval|byday|bymonthday|byyearday|byweekno|bymonth`
//! (empty fields allowed, trailing ones left out): the `timerec` column of
//! drouting's `dr_rules` and the argument of tmrec's `tmrec_match()`.
//!
//! Matched as Kamailio 5.6 matches it, quirks included (they decide which
//! rule a call takes):
//! - an empty `dtstart` matches always;
//! - `dtstart`/`until` are exactly 15 characters, `YYYYMMDDThhmmss`, local
//!   time;
//! - `interval` is the *sum* of its digits (`10` counts as 1);
//! - `bymonth` compares its numbers with 0-based months (`1` is February);
//! - a bad `byday`/`by…` list is dropped without error;
//! - a negative `byday` count in a monthly or yearly rule is one short
//!   (`-1FR` is the last Friday but one when the month has five).
//!
//! The two readers differ where Kamailio's do (each checked live):
//! drouting ([`TimeRec::parse`]) also takes a duration without its `P`
//! (`8H`), takes a bad `until` as no bound and matches a rule without a
//! duration; tmrec ([`TimeRec::parse_tmrec`]) refuses an empty rule, a
//! duration that does not read or is zero and a bad `until`, and a rule
//! with no duration never matches ([`TimeRec::matches_tmrec`]).
//!
//! ringsip computes calendar times in UTC only, so a rule with a `dtstart`
//! is refused unless the machine's zone is UTC (see
//! [`crate::script::timefmt::local_zone_is_utc`]).

use crate::script::timefmt::{days_from_civil, utc, Tm};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Freq {
    #[default]
    None,
    Yearly,
    Monthly,
    Weekly,
    Daily,
}

/// One `by…` list: (value, sign or count) pairs as Kamailio keeps them.
type ByList = Vec<(i64, i64)>;

/// A parsed `timerec`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeRec {
    /// Unix time of `dtstart`; 0 when there is none (always matches).
    dtstart: i64,
    duration: i64,
    freq: Freq,
    until: i64,
    interval: i64,
    byday: Option<ByList>,
    bymday: Option<ByList>,
    byyday: Option<ByList>,
    byweekno: Option<ByList>,
    bymonth: Option<ByList>,
}

fn digit(c: u8) -> i64 {
    i64::from(c) - i64::from(b'0')
}

/// `YYYYMMDDThhmmss` as a unix time (the fields normalised as `mktime`
/// does); 0 when the text is not 15 characters long.
fn datetime(s: &[u8]) -> i64 {
    if s.len() != 15 {
        return 0;
    }
    let n = |a: usize, b: usize| s[a..b].iter().fold(0, |v, &c| v * 10 + digit(c));
    let (year, mon, mday) = (n(0, 4), n(4, 6) - 1, n(6, 8));
    let (hour, min, sec) = (n(9, 11), n(11, 13), n(13, 15));
    let y = year + mon.div_euclid(12);
    let m = mon.rem_euclid(12) as u32 + 1;
    let days = days_from_civil(y, m, 1) + mday - 1;
    days * 86_400 + hour * 3600 + min * 60 + sec
}

/// An RFC 2445 DURATION in seconds (`PT8H30M`, `P1D`; when `lenient`, also
/// `8H30M`); `None` when it does not read.
fn read_duration(s: &[u8], lenient: bool) -> Option<i64> {
    let (mut date_part, rest) = match s.first()? {
        b'P' | b'p' => (true, &s[1..]),
        _ if lenient => (false, s),
        _ => return None,
    };
    let (mut v, mut total) = (0i64, 0i64);
    for &c in rest {
        let unit = match c.to_ascii_uppercase() {
            b'0'..=b'9' => {
                v = v.saturating_mul(10).saturating_add(digit(c));
                continue;
            }
            b'W' if date_part => 7 * 86_400,
            b'D' if date_part => 86_400,
            b'H' if !date_part => 3600,
            b'M' if !date_part => 60,
            b'S' if !date_part => 1,
            b'T' if date_part => {
                date_part = false;
                continue;
            }
            _ => return None,
        };
        total = total.saturating_add(v.saturating_mul(unit));
        v = 0;
    }
    Some(total)
}

/// drouting's duration: 0 when it does not read.
fn duration(s: &[u8]) -> i64 {
    if s.len() < 2 {
        return 0;
    }
    read_duration(s, true).unwrap_or_else(|| {
        log::error!("drouting: bad duration {:?}", String::from_utf8_lossy(s));
        0
    })
}

fn freq(s: &[u8]) -> Freq {
    if s.len() < 5 {
        return Freq::None;
    }
    match s.to_ascii_lowercase().as_slice() {
        b"daily" => Freq::Daily,
        b"weekly" => Freq::Weekly,
        b"monthly" => Freq::Monthly,
        b"yearly" => Freq::Yearly,
        _ => Freq::None,
    }
}

/// Kamailio's `strz2int`: the digits up to the first other character,
/// added up.
fn digit_sum(s: &[u8]) -> i64 {
    s.iter()
        .take_while(|c| c.is_ascii_digit())
        .map(|&c| digit(c))
        .sum()
}

/// `MO,-1FR,+2SU`: (weekday 0 = Sunday, count with sign) per entry; an
/// entry with no day is Sunday with count 0.
fn byday(s: &[u8]) -> Option<ByList> {
    let n = 1 + s.iter().filter(|&&c| c == b',').count();
    let mut out = vec![(0i64, 0i64); n];
    let (mut at, mut v, mut sign) = (0usize, 0i64, 1i64);
    let mut i = 0;
    while i < s.len() && at < n {
        let next = s.get(i + 1).map(u8::to_ascii_lowercase);
        let day = match (s[i].to_ascii_lowercase(), next) {
            (c @ b'0'..=b'9', _) => {
                v = v * 10 + digit(c);
                None
            }
            (b's', Some(b'a')) => Some(6),
            (b's', Some(b'u')) => Some(0),
            (b'm', Some(b'o')) => Some(1),
            (b't', Some(b'h')) => Some(4),
            (b't', Some(b'u')) => Some(2),
            (b'w', Some(b'e')) => Some(3),
            (b'f', Some(b'r')) => Some(5),
            (b'-', _) => {
                sign = -1;
                None
            }
            (b'+' | b' ' | b'\t', _) => None,
            (b',', _) => {
                at += 1;
                None
            }
            _ => return None,
        };
        if let Some(d) = day {
            out[at] = (d, sign * v);
            sign = 1;
            v = 0;
            i += 1;
        }
        i += 1;
    }
    Some(out)
}

/// `1,-2,15`: (number, sign) per entry.
fn byxxx(s: &[u8]) -> Option<ByList> {
    let n = 1 + s.iter().filter(|&&c| c == b',').count();
    let mut out = vec![(0i64, 0i64); n];
    let (mut at, mut v, mut sign) = (0usize, 0i64, 1i64);
    for &c in s {
        if at >= n {
            break;
        }
        match c {
            b'0'..=b'9' => v = v * 10 + digit(c),
            b'-' => sign = -1,
            b'+' | b' ' | b'\t' => {}
            b',' => {
                out[at] = (v, sign);
                (sign, v) = (1, 0);
                at += 1;
            }
            _ => return None,
        }
    }
    if at < n {
        out[at] = (v, sign);
    }
    Some(out)
}

impl TimeRec {
    /// Reads a `timerec` value as drouting does; `Err` with the position of
    /// a field that makes the rule unusable (only `dtstart` can).
    pub fn parse(text: &[u8]) -> Result<TimeRec, String> {
        TimeRec::read(text, b'|', false)
    }

    /// Reads a recurrence as tmrec does (`sep` between fields, its
    /// `separator` parameter): stricter than drouting (see the module docs).
    pub fn parse_tmrec(text: &[u8], sep: u8) -> Result<TimeRec, String> {
        if text.is_empty() {
            return Err("empty time recurrence".into());
        }
        TimeRec::read(text, sep, true)
    }

    fn read(text: &[u8], sep: u8, strict: bool) -> Result<TimeRec, String> {
        let mut t = TimeRec::default();
        if text.is_empty() {
            return Ok(t);
        }
        let mut pos = 0usize;
        let bad = |pos: usize| {
            format!(
                "parse error in <{}> around position {pos}",
                String::from_utf8_lossy(text)
            )
        };
        for (i, field) in text.split(|&c| c == sep).enumerate().take(10) {
            if !field.is_empty() {
                match i {
                    0 => {
                        t.dtstart = datetime(field);
                        if t.dtstart == 0 {
                            return Err(bad(pos));
                        }
                    }
                    1 if strict => match read_duration(field, false) {
                        Some(d) if d > 0 => t.duration = d,
                        _ => return Err(bad(pos)),
                    },
                    1 => t.duration = duration(field),
                    2 => t.freq = freq(field),
                    3 => {
                        t.until = datetime(field);
                        if strict && t.until == 0 {
                            return Err(bad(pos));
                        }
                    }
                    4 => t.interval = digit_sum(field),
                    5 => t.byday = byday(field),
                    6 => t.bymday = byxxx(field),
                    7 => t.byyday = byxxx(field),
                    8 => t.byweekno = byxxx(field),
                    _ => t.bymonth = byxxx(field),
                }
            }
            pos += field.len() + 1;
        }
        Ok(t)
    }

    /// [`TimeRec::matches`] as tmrec decides: a rule with a start but no
    /// duration never matches.
    pub fn matches_tmrec(&self, now: i64) -> bool {
        self.dtstart == 0 || (self.duration > 0 && self.matches(now))
    }

    /// Whether the rule has a start (and so depends on the clock).
    pub fn has_start(&self) -> bool {
        self.dtstart != 0
    }

    /// Whether unix time `now` falls in the recurrence.
    pub fn matches(&self, now: i64) -> bool {
        if self.dtstart == 0 {
            return true;
        }
        if now < self.dtstart {
            return false;
        }
        if self.duration <= 0 {
            return true;
        }
        if now <= self.dtstart + self.duration {
            return true;
        }
        if self.until > 0 && now >= self.until + self.duration {
            return false;
        }
        let at = utc(now);
        let ts = utc(self.dtstart);
        self.interval_matches(&ts, &at)
            && self.min_unit_matches(&ts, &at)
            && self.by_lists_match(&at)
    }

    fn interval_matches(&self, ts: &Tm, at: &Tm) -> bool {
        if self.freq == Freq::None {
            return false;
        }
        if self.interval <= 0 || self.interval == 1 {
            return true;
        }
        let midnight = |t: &Tm| days_from_civil(t.year, t.mon, t.mday) * 86_400;
        match self.freq {
            Freq::Daily => ((midnight(at) - midnight(ts)) / 86_400) % self.interval == 0,
            Freq::Weekly => {
                let monday = |t: &Tm| midnight(t) - i64::from((t.wday + 6) % 7) * 86_400;
                ((monday(at) - monday(ts)) / (7 * 86_400)) % self.interval == 0
            }
            Freq::Monthly => {
                ((at.year - ts.year) * 12 + i64::from(at.mon) - i64::from(ts.mon)) % self.interval
                    == 0
            }
            Freq::Yearly => (at.year - ts.year) % self.interval == 0,
            Freq::None => false,
        }
    }

    fn min_unit_matches(&self, ts: &Tm, at: &Tm) -> bool {
        let unit = if self.freq == Freq::Daily
            || self.byday.is_some()
            || self.bymday.is_some()
            || self.byyday.is_some()
        {
            Freq::Daily
        } else if self.freq == Freq::Weekly || self.byweekno.is_some() {
            Freq::Weekly
        } else if self.freq == Freq::Monthly || self.bymonth.is_some() {
            Freq::Monthly
        } else {
            self.freq
        };
        let same_unit = match unit {
            Freq::Daily => true,
            Freq::Weekly => ts.wday == at.wday,
            Freq::Monthly => ts.mday == at.mday,
            Freq::Yearly => ts.mon == at.mon && ts.mday == at.mday,
            Freq::None => false,
        };
        let secs = |t: &Tm| i64::from(t.hour * 3600 + t.min * 60 + t.sec);
        let (v0, v1) = (secs(ts), secs(at));
        same_unit && v1 >= v0 && v1 < v0 + self.duration
    }

    fn by_lists_match(&self, at: &Tm) -> bool {
        let year_days = days_from_civil(at.year + 1, 1, 1) - days_from_civil(at.year, 1, 1);
        let month_days = match at.mon {
            2 if year_days == 366 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (wday, mday, yday) = (i64::from(at.wday), i64::from(at.mday), i64::from(at.yday));
        let year_week = |t: &Tm| {
            (i64::from(t.yday) + 7 - i64::from(if t.wday == 0 { 6 } else { t.wday - 1 })) / 7
        };
        let dec31 = utc(days_from_civil(at.year, 12, 31) * 86_400);
        let (d31_wday, d31_yday) = (i64::from(dec31.wday), i64::from(dec31.yday));
        let v = if wday > d31_wday {
            wday - d31_wday + 1
        } else {
            d31_wday - wday
        };
        let max_ywday = (d31_yday - v) / 7 + 1;
        let max_yweek = year_week(&dec31) + 1;
        let max_mwday = (month_days - 1 - (month_days - mday) % 7) / 7 + 1;
        let (ywday, mwday) = (yday / 7, (mday - 1) / 7);

        let any = |l: &Option<ByList>, f: &dyn Fn(i64, i64) -> bool| {
            l.as_ref().is_none_or(|l| l.iter().any(|&(x, r)| f(x, r)))
        };
        any(&self.bymonth, &|x, r| {
            i64::from(at.mon) - 1 == (x * r + 12) % 12
        }) && (self.freq != Freq::Yearly
            || any(&self.byweekno, &|x, r| {
                year_week(at) == (x * r + max_yweek) % max_yweek
            }))
            && any(&self.byyday, &|x, r| {
                yday == (x * r + year_days) % year_days
            })
            && any(&self.bymday, &|x, r| {
                mday == (x * r + month_days) % month_days + i64::from(r < 0)
            })
            && any(&self.byday, &|x, r| match self.freq {
                Freq::Yearly => wday == x && ywday + 1 == (r + max_ywday) % max_ywday,
                Freq::Monthly => wday == x && mwday + 1 == (r + max_mwday) % max_mwday,
                _ => wday == x,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix time of a UTC date and time.
    fn at(y: i64, m: u32, d: u32, h: i64, mi: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60
    }

    #[test]
    fn empty_or_startless_always_matches() {
        assert!(TimeRec::parse(b"").unwrap().matches(0));
        assert!(TimeRec::parse(b"|PT1H|daily").unwrap().matches(12345));
    }

    #[test]
    fn bad_dtstart_is_an_error() {
        assert!(TimeRec::parse(b"2024").is_err());
        assert!(TimeRec::parse(b"20240101T0000").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration(b"PT8H30M"), 8 * 3600 + 30 * 60);
        assert_eq!(duration(b"P1D"), 86_400);
        assert_eq!(duration(b"P1W2DT1S"), 9 * 86_400 + 1);
        assert_eq!(duration(b"2H"), 7200);
        // A day without the P, or an hour before the T, does not read.
        assert_eq!(duration(b"1D"), 0);
        assert_eq!(duration(b"P1H"), 0);
    }

    #[test]
    fn start_only_is_forever_after() {
        let t = TimeRec::parse(b"20240101T080000").unwrap();
        assert!(!t.matches(at(2024, 1, 1, 7, 59)));
        assert!(t.matches(at(2024, 1, 1, 8, 0)));
        assert!(t.matches(at(2030, 5, 5, 0, 0)));
    }

    #[test]
    fn daily_office_hours_on_weekdays() {
        // 08:00–17:00, Monday to Friday, from 2024-01-01 (a Monday).
        let t = TimeRec::parse(b"20240101T080000|PT9H|weekly|||MO,TU,WE,TH,FR").unwrap();
        // Wednesday 2024-03-06 at 10:00 and 16:59 in; 17:00 and 07:59 out.
        assert!(t.matches(at(2024, 3, 6, 10, 0)));
        assert!(t.matches(at(2024, 3, 6, 16, 59)));
        assert!(!t.matches(at(2024, 3, 6, 17, 0)));
        assert!(!t.matches(at(2024, 3, 6, 7, 59)));
        // Saturday 2024-03-09 out.
        assert!(!t.matches(at(2024, 3, 9, 10, 0)));
    }

    #[test]
    fn until_bounds_the_recurrence() {
        let t = TimeRec::parse(b"20240101T000000|PT1H|daily|20240110T000000").unwrap();
        assert!(t.matches(at(2024, 1, 5, 0, 30)));
        assert!(!t.matches(at(2024, 1, 5, 1, 30)));
        assert!(!t.matches(at(2024, 1, 11, 0, 30)));
    }

    #[test]
    fn interval_is_the_sum_of_its_digits() {
        // "11" counts as 2: every other day.
        let t = TimeRec::parse(b"20240101T000000|PT1H|daily||11").unwrap();
        assert!(t.matches(at(2024, 1, 3, 0, 30)));
        assert!(!t.matches(at(2024, 1, 4, 0, 30)));
        assert_eq!(digit_sum(b"10"), 1);
    }

    #[test]
    fn bymonth_counts_months_from_zero() {
        // bymonth 1 is February for Kamailio's comparison.
        let t = TimeRec::parse(b"20240101T000000|P1D|daily||||||| 1").unwrap();
        assert!(t.matches(at(2024, 2, 10, 5, 0)));
        assert!(!t.matches(at(2024, 1, 10, 5, 0)));
    }

    #[test]
    fn monthly_negative_byday_is_one_short() {
        // Kamailio compares (count + weekdays of that kind in the month) %
        // that number with the 1-based occurrence: -1FR in March 2024 (five
        // Fridays) is the 4th Friday, the 22nd, not the last, the 29th.
        let t = TimeRec::parse(b"20240101T000000|P1D|monthly|||-1FR").unwrap();
        assert!(t.matches(at(2024, 3, 22, 12, 0)));
        assert!(!t.matches(at(2024, 3, 29, 12, 0)));
        // A positive count is the plain occurrence: 2FR is the 8th.
        let t = TimeRec::parse(b"20240101T000000|P1D|monthly|||2FR").unwrap();
        assert!(t.matches(at(2024, 3, 8, 12, 0)));
        assert!(!t.matches(at(2024, 3, 15, 12, 0)));
    }

    #[test]
    fn bymonthday_from_the_end() {
        let t = TimeRec::parse(b"20240101T000000|P1D|daily||||-1").unwrap();
        assert!(t.matches(at(2024, 2, 29, 12, 0)));
        assert!(!t.matches(at(2024, 2, 28, 12, 0)));
    }

    #[test]
    fn by_lists() {
        assert_eq!(byday(b"MO,-1fr"), Some(vec![(1, 0), (5, -1)]));
        assert_eq!(byday(b"XX"), None);
        assert_eq!(byxxx(b"1,-2,+3"), Some(vec![(1, 1), (2, -1), (3, 1)]));
        assert_eq!(byxxx(b"1;2"), None);
    }
}
