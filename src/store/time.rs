//! Kamailio keeps times in `DATETIME` columns as `YYYY-MM-DD HH:MM:SS` text;
//! ringsip writes them in UTC. These convert to and from seconds since 1970
//! (days-from-civil, proleptic Gregorian calendar).

/// `YYYY-MM-DD HH:MM:SS` for `unix` seconds (UTC).
pub fn format_datetime(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Seconds since 1970 for `YYYY-MM-DD HH:MM:SS` (UTC); `None` if unreadable.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time
        .splitn(3, ':')
        .map(|p| p.get(..2).unwrap_or(p).parse::<i64>().ok());
    let (hh, mm, ss) = (
        t.next()??,
        t.next().flatten().unwrap_or(0),
        t.next().flatten().unwrap_or(0),
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00");
        // Kamailio's "never expires" default.
        assert_eq!(parse_datetime("2030-05-28 21:32:15"), Some(1_906_234_335));
        for t in [0, 951_782_400, 1_700_000_000, 1_906_234_335, 4_102_444_800] {
            assert_eq!(parse_datetime(&format_datetime(t)), Some(t), "{t}");
        }
        assert_eq!(parse_datetime("garbage"), None);
        assert_eq!(parse_datetime("2024-13-01 00:00:00"), None);
    }
}
