//! Calendar time for `$time()`, `$utime()`, `$timef()`, `$utimef()`, `$Tf`
//! and `$TF`: a unix time broken down in UTC and printed as the C library's
//! `strftime` prints it in the C locale. The time is an input (the message's
//! `unix_now`); nothing here reads the clock.
//!
//! Kamailio prints the non-`u` forms in the machine's local time zone.
//! ringsip only computes UTC, so those forms are accepted only when the local
//! zone is UTC ([`local_zone_is_utc`]); elsewhere they are a start-up error
//! rather than a silently different time.

use std::sync::OnceLock;

/// A unix time broken down in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tm {
    pub year: i64,
    /// 1..=12
    pub mon: u32,
    /// 1..=31
    pub mday: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// 0 = Sunday.
    pub wday: u32,
    /// 0-based day of the year.
    pub yday: u32,
    /// The unix time itself (`%s`).
    pub unix: i64,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Breaks `unix` (seconds since the epoch) down in UTC.
pub fn utc(unix: i64) -> Tm {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let mday = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let mon = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(mon <= 2);
    Tm {
        year,
        mon,
        mday,
        hour: (secs / 3600) as u32,
        min: (secs / 60 % 60) as u32,
        sec: (secs % 60) as u32,
        wday: (days + 4).rem_euclid(7) as u32,
        yday: (days - days_from_civil(year, 1, 1)) as u32,
        unix,
    }
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The number of ISO 8601 weeks of `year` (52 or 53).
fn iso_weeks(year: i64) -> i64 {
    let p = |y: i64| (y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400)).rem_euclid(7);
    if p(year) == 4 || p(year - 1) == 3 {
        53
    } else {
        52
    }
}

/// The ISO 8601 week-based year and week number.
fn iso_week(t: &Tm) -> (i64, i64) {
    let wd = if t.wday == 0 { 7 } else { i64::from(t.wday) };
    let w = (i64::from(t.yday) + 1 - wd + 10) / 7;
    if w < 1 {
        (t.year - 1, iso_weeks(t.year - 1))
    } else if w > iso_weeks(t.year) {
        (t.year + 1, 1)
    } else {
        (t.year, w)
    }
}

/// Prints `fmt` as C `strftime` does in the C locale, the zone named `zone`
/// at offset +0000. `None` when the result is longer than 63 bytes (Kamailio
/// prints into 64 bytes and reads `$null` then).
pub fn strftime(fmt: &[u8], t: &Tm, zone: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(32);
    format_into(fmt, t, zone, &mut out);
    (out.len() < 64).then_some(out)
}

fn format_into(fmt: &[u8], t: &Tm, zone: &str, out: &mut Vec<u8>) {
    use std::io::Write;
    let hour12 = if t.hour % 12 == 0 { 12 } else { t.hour % 12 };
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' || i + 1 == fmt.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let spec = fmt[i + 1];
        i += 2;
        // `write!` into a Vec cannot fail.
        let _ = match spec {
            b'a' => write!(out, "{}", &DAYS[t.wday as usize][..3]),
            b'A' => write!(out, "{}", DAYS[t.wday as usize]),
            b'b' | b'h' => write!(out, "{}", &MONTHS[t.mon as usize - 1][..3]),
            b'B' => write!(out, "{}", MONTHS[t.mon as usize - 1]),
            b'c' => {
                format_into(b"%a %b %e %H:%M:%S %Y", t, zone, out);
                Ok(())
            }
            b'C' => write!(out, "{:02}", t.year.div_euclid(100)),
            b'd' => write!(out, "{:02}", t.mday),
            b'D' | b'x' => write!(
                out,
                "{:02}/{:02}/{:02}",
                t.mon,
                t.mday,
                t.year.rem_euclid(100)
            ),
            b'e' => write!(out, "{:2}", t.mday),
            b'F' => write!(out, "{}-{:02}-{:02}", t.year, t.mon, t.mday),
            b'g' => write!(out, "{:02}", iso_week(t).0.rem_euclid(100)),
            b'G' => write!(out, "{}", iso_week(t).0),
            b'H' => write!(out, "{:02}", t.hour),
            b'I' => write!(out, "{hour12:02}"),
            b'j' => write!(out, "{:03}", t.yday + 1),
            b'k' => write!(out, "{:2}", t.hour),
            b'l' => write!(out, "{hour12:2}"),
            b'm' => write!(out, "{:02}", t.mon),
            b'M' => write!(out, "{:02}", t.min),
            b'n' => {
                out.push(b'\n');
                Ok(())
            }
            b'p' => write!(out, "{}", if t.hour < 12 { "AM" } else { "PM" }),
            b'P' => write!(out, "{}", if t.hour < 12 { "am" } else { "pm" }),
            b'r' => {
                format_into(b"%I:%M:%S %p", t, zone, out);
                Ok(())
            }
            b'R' => write!(out, "{:02}:{:02}", t.hour, t.min),
            b's' => write!(out, "{}", t.unix),
            b'S' => write!(out, "{:02}", t.sec),
            b't' => {
                out.push(b'\t');
                Ok(())
            }
            b'T' | b'X' => write!(out, "{:02}:{:02}:{:02}", t.hour, t.min, t.sec),
            b'u' => write!(out, "{}", if t.wday == 0 { 7 } else { t.wday }),
            b'U' => write!(out, "{:02}", (t.yday + 7 - t.wday) / 7),
            b'V' => write!(out, "{:02}", iso_week(t).1),
            b'w' => write!(out, "{}", t.wday),
            b'W' => write!(out, "{:02}", (t.yday + 7 - (t.wday + 6) % 7) / 7),
            b'y' => write!(out, "{:02}", t.year.rem_euclid(100)),
            b'Y' => write!(out, "{}", t.year),
            b'z' => write!(out, "+0000"),
            b'Z' => write!(out, "{zone}"),
            b'%' => write!(out, "%"),
            other => {
                out.push(b'%');
                out.push(other);
                Ok(())
            }
        };
    }
}

/// `$Tf`: the C `ctime` text without its line end (`Thu Dec  3 16:40:46 2026`).
pub fn ctime(t: &Tm) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    format_into(b"%a %b %e %H:%M:%S %Y", t, "UTC", &mut out);
    out
}

/// Whether the machine's local time zone is UTC (`TZ` unset, empty or a UTC
/// name, and `/etc/localtime` absent or naming a UTC zone); `Err` says what
/// it is otherwise. Read once.
pub fn local_zone_is_utc() -> Result<(), String> {
    static ZONE: OnceLock<Result<(), String>> = OnceLock::new();
    ZONE.get_or_init(|| {
        let utc_name = |n: &str| {
            let n = n.trim_start_matches(':');
            let base = n.rsplit('/').next().unwrap_or(n);
            matches!(
                base,
                "UTC"
                    | "UTC0"
                    | "UCT"
                    | "Universal"
                    | "Zulu"
                    | "GMT"
                    | "GMT0"
                    | "GMT+0"
                    | "GMT-0"
                    | "Greenwich"
            )
        };
        match std::env::var("TZ") {
            Ok(tz) if !tz.is_empty() => {
                return if utc_name(&tz) {
                    Ok(())
                } else {
                    Err(format!("TZ={tz}"))
                }
            }
            _ => {}
        }
        match std::fs::read_link("/etc/localtime") {
            Ok(target) => {
                let t = target.to_string_lossy().into_owned();
                if utc_name(&t) {
                    Ok(())
                } else {
                    Err(format!("/etc/localtime -> {t}"))
                }
            }
            // No zone file: the C library uses UTC.
            Err(_) if !std::path::Path::new("/etc/localtime").exists() => Ok(()),
            Err(_) => Err("/etc/localtime is a zone file ringsip cannot name".into()),
        }
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1796316061 is the time of a Kamailio 5.6 run whose output is quoted below.
    const T: i64 = 1_796_316_061;

    #[test]
    fn breaks_down_like_gmtime() {
        let t = utc(T);
        assert_eq!(
            (t.year, t.mon, t.mday, t.hour, t.min, t.sec, t.wday, t.yday),
            (2026, 12, 3, 16, 41, 1, 4, 336)
        );
        let e = utc(0);
        assert_eq!((e.year, e.mon, e.mday, e.wday, e.yday), (1970, 1, 1, 4, 0));
        let leap = utc(951_782_400); // 2000-02-29 00:00:00
        assert_eq!(
            (leap.year, leap.mon, leap.mday, leap.yday),
            (2000, 2, 29, 59)
        );
        let before = utc(-1);
        assert_eq!(
            (before.year, before.mon, before.mday, before.hour),
            (1969, 12, 31, 23)
        );
    }

    #[test]
    fn prints_what_kamailio_printed() {
        let t = utc(T);
        let f =
            |fmt: &str| String::from_utf8(strftime(fmt.as_bytes(), &t, "UTC").unwrap()).unwrap();
        assert_eq!(f("%Y-%m-%d %H:%M:%S %y %j"), "2026-12-03 16:41:01 26 337");
        assert_eq!(
            f("%a %A %b %B %e %p %I"),
            "Thu Thursday Dec December  3 PM 04"
        );
        assert_eq!(f("%Z %z %s %u %w %T"), "UTC +0000 1796316061 4 4 16:41:01");
        assert_eq!(f("%D %F %R %%"), "12/03/26 2026-12-03 16:41 %");
        assert_eq!(f("%c"), "Thu Dec  3 16:41:01 2026");
        assert_eq!(f("%x %X"), "12/03/26 16:41:01");
        assert_eq!(
            f("%h %C %G %g %V %U %W %k %l"),
            "Dec 20 2026 26 49 48 48 16  4"
        );
        assert_eq!(f("%Q"), "%Q");
        assert_eq!(f("x"), "x");
        assert_eq!(
            String::from_utf8(ctime(&t)).unwrap(),
            "Thu Dec  3 16:41:01 2026"
        );
        let long = "0".repeat(63);
        assert_eq!(f(&long), long);
        assert_eq!(strftime("0".repeat(64).as_bytes(), &t, "UTC"), None);
    }

    #[test]
    fn iso_weeks_at_year_ends() {
        // 2021-01-01 (Friday) is in week 53 of 2020; 2024-12-30 (Monday) in week 1 of 2025.
        let t = utc(1_609_459_200);
        let f = |t: &Tm, fmt: &str| {
            String::from_utf8(strftime(fmt.as_bytes(), t, "UTC").unwrap()).unwrap()
        };
        assert_eq!(f(&t, "%G-%V"), "2020-53");
        assert_eq!(f(&utc(1_735_516_800), "%G-%V %u"), "2025-01 1");
    }
}
