//! tmrec: matching the time against a recurrence or a period (Kamailio 5.6
//! semantics, each rule below checked live against Kamailio 5.6.3).
//!
//! - `tmrec_match(rec[, timestamp])`: 1 when the time is inside the RFC 2445
//!   recurrence `rec` (the format and its quirks: [`crate::modules::timerec`]),
//!   fields split by the `separator` parameter (`|`). A recurrence that does
//!   not read is logged and is -1.
//! - `time_period_match(period[, timestamp])`: 1 when the time is inside a
//!   period written as Perl's `Time::Period` writes them (see [`Period`]).
//! - `is_leap_year([year])`: 1 when the year (this one by default) is a leap year.
//!
//! The timestamp is a unix time (seconds); without it, the message's time.
//! Times are broken down in the machine's local zone, which ringsip only
//! knows as UTC: elsewhere the two matching functions are a start-up error.

use crate::modules::timerec::TimeRec;
use crate::script::ctx::MsgCtx;
use crate::script::registry::truth;
use crate::script::registry::{func, param, Arg, Args, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::script::timefmt::{self, Tm};

/// The optional timestamp argument was left out: the message's time.
struct Now;

/// tmrec's `separator` parameter, kept with each call.
struct Separator(u8);

/// Both matching functions read local time: refused unless it is UTC; the
/// timestamp slot is filled when it was left out, the separator follows it.
fn fixup_match(args: &mut Args, params: &ModParams) -> Result<(), String> {
    timefmt::local_zone_is_utc().map_err(|e| {
        format!("tmrec: times are matched in local time, which ringsip only knows as UTC ({e})")
    })?;
    let sep = match params.str("tmrec", "separator") {
        None => b'|',
        Some(s) => match s.as_bytes() {
            [c] => *c,
            _ => return Err(format!("tmrec: separator must be one character, not {s:?}")),
        },
    };
    if args.len() < 2 {
        args.0.push(Arg::Custom(Box::new(Now)));
    }
    args.0.push(Arg::Custom(Box::new(Separator(sep))));
    Ok(())
}

/// The time to match: the timestamp argument, or now; `None` (logged) when
/// the argument is not a number.
fn when(ctx: &MsgCtx<'_>, args: &Args, what: &str) -> Option<i64> {
    if args.custom::<Now>(1).is_some() {
        return Some(ctx.env.clock.unix(ctx.now).as_secs() as i64);
    }
    let t = args.int(ctx, 1);
    if t.is_none() {
        log::error!("{what}: invalid time stamp parameter value");
    }
    t
}

fn tmrec_match(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let sep = args.custom::<Separator>(2).map_or(b'|', |s| s.0);
    let text = args.str(ctx, 0);
    let rec = match TimeRec::parse_tmrec(&text, sep) {
        Ok(r) => r,
        Err(e) => {
            log::error!("tmrec_match: failed to parse time recurrence: {e}");
            return -1;
        }
    };
    match when(ctx, args, "tmrec_match") {
        Some(t) => truth(rec.matches_tmrec(t)),
        None => -1,
    }
}

fn time_period_match(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(t) = when(ctx, args, "time_period_match") else {
        return -1;
    };
    truth(Period(&args.str(ctx, 0)).contains(&timefmt::utc(t)))
}

fn is_leap_year(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let year = match args.get(0) {
        None => timefmt::utc(ctx.env.clock.unix(ctx.now).as_secs() as i64).year,
        Some(_) => match args.int(ctx, 0) {
            Some(y) => y,
            None => {
                log::error!("is_leap_year: invalid time parameter value");
                return -1;
            }
        },
    };
    truth(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
}

/// A scale of a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scale {
    Year,
    Month,
    Week,
    YDay,
    MDay,
    WDay,
    Hour,
    Minute,
    Second,
}

const SCALES: [Scale; 9] = [
    Scale::Year,
    Scale::Month,
    Scale::Week,
    Scale::YDay,
    Scale::MDay,
    Scale::WDay,
    Scale::Hour,
    Scale::Minute,
    Scale::Second,
];

const WEEKDAYS: [&[u8; 2]; 7] = [b"su", b"mo", b"tu", b"we", b"th", b"fr", b"sa"];
const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

impl Scale {
    /// Long or short name, any case.
    fn named(word: &[u8]) -> Option<Scale> {
        Some(match word.to_ascii_lowercase().as_slice() {
            b"year" | b"yr" => Scale::Year,
            b"month" | b"mo" => Scale::Month,
            b"week" | b"wk" => Scale::Week,
            b"yday" | b"yd" => Scale::YDay,
            b"mday" | b"md" => Scale::MDay,
            b"wday" | b"wd" => Scale::WDay,
            b"hour" | b"hr" => Scale::Hour,
            b"minute" | b"min" => Scale::Minute,
            b"second" | b"sec" => Scale::Second,
            _ => return None,
        })
    }

    /// The values the scale takes (years have no bound).
    fn bounds(self) -> Option<(i64, i64)> {
        match self {
            Scale::Year => None,
            Scale::Month => Some((1, 12)),
            Scale::Week => Some((1, 6)),
            Scale::YDay => Some((1, 366)),
            Scale::MDay => Some((1, 31)),
            Scale::WDay => Some((1, 7)),
            Scale::Hour => Some((0, 23)),
            Scale::Minute | Scale::Second => Some((0, 59)),
        }
    }

    /// The value of `t` on this scale: weekdays 1 (Sunday) to 7, weeks of
    /// the month counted in Sundays (the days before the first Sunday are
    /// week 1 too), days of the year from 1.
    fn of(self, t: &Tm) -> i64 {
        match self {
            Scale::Year => t.year,
            Scale::Month => i64::from(t.mon),
            Scale::Week => ((i64::from(t.mday) - 1 - i64::from(t.wday) + 7) / 7).max(1),
            Scale::YDay => i64::from(t.yday) + 1,
            Scale::MDay => i64::from(t.mday),
            Scale::WDay => i64::from(t.wday) + 1,
            Scale::Hour => i64::from(t.hour),
            Scale::Minute => i64::from(t.min),
            Scale::Second => i64::from(t.sec),
        }
    }

    /// One value as written: a weekday by its first two letters, a month by
    /// its first three, anything else as C's `atoi` reads it (`9am` is 9,
    /// `abc` 0); `None` for a name that is none or a value out of bounds.
    fn value(self, s: &[u8]) -> Option<i64> {
        let v = match (self, s.first()) {
            (Scale::WDay, Some(c)) if c.is_ascii_alphabetic() => {
                let name = s.get(..2)?.to_ascii_lowercase();
                WEEKDAYS.iter().position(|d| d[..] == name[..])? as i64 + 1
            }
            (Scale::Month, Some(c)) if c.is_ascii_alphabetic() => {
                let name = s.get(..3)?.to_ascii_lowercase();
                MONTHS.iter().position(|m| m[..] == name[..])? as i64 + 1
            }
            _ => atoi(s),
        };
        match self.bounds() {
            Some((lo, hi)) if !(lo..=hi).contains(&v) => None,
            _ => Some(v),
        }
    }
}

/// C's `atoi`: an optional sign and the digits that follow; 0 without any.
fn atoi(s: &[u8]) -> i64 {
    let (sign, digits) = match s.first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    sign * digits
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0i64, |v, &c| {
            v.saturating_mul(10).saturating_add(i64::from(c - b'0'))
        })
}

/// A period: sub-periods separated by commas (outside braces), any of which
/// may hold; each a list of `scale {values}` that must all hold, values
/// separated by blanks, `lo-hi` ranges wrapping past the end of the scale
/// (`hr {22-2}`), a scale named twice taking both lists.
///
/// Kamailio's quirks, kept: a period that does not read (unknown scale,
/// missing brace, a value out of bounds, a name that is none) matches
/// whatever the time; an empty period or sub-period matches; `am`/`pm` are
/// ignored (`hr {1pm-3pm}` is 1 to 3 o'clock); a comma inside braces ends
/// the number (`hr {9,10}` is 9).
struct Period<'a>(&'a [u8]);

impl Period<'_> {
    fn contains(&self, t: &Tm) -> bool {
        self.read(t).unwrap_or(true)
    }

    /// Whether `t` is in the period; `None` when it does not read.
    fn read(&self, t: &Tm) -> Option<bool> {
        let mut any = false;
        let mut inside = false;
        let mut start = 0;
        for (i, &c) in self.0.iter().enumerate() {
            match c {
                b'{' => inside = true,
                b'}' => inside = false,
                b',' if !inside => {
                    any |= sub_period(&self.0[start..i], t)?;
                    start = i + 1;
                }
                _ => {}
            }
        }
        Some(sub_period(&self.0[start..], t)? || any)
    }
}

/// One sub-period: every scale named holds.
fn sub_period(text: &[u8], t: &Tm) -> Option<bool> {
    // Per scale: named, and whether a value of it holds.
    let mut named = [false; SCALES.len()];
    let mut holds = [false; SCALES.len()];
    let mut rest = text;
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            break;
        }
        let word_len = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        let scale = Scale::named(&rest[..word_len])?;
        rest = rest[word_len..].trim_ascii_start().strip_prefix(b"{")?;
        let close = rest.iter().position(|&c| c == b'}')?;
        let at = SCALES.iter().position(|&s| s == scale)?;
        named[at] = true;
        let now = scale.of(t);
        for token in rest[..close].split(|c| c.is_ascii_whitespace()) {
            if !token.is_empty() && in_range(scale, token, now)? {
                holds[at] = true;
            }
        }
        rest = &rest[close + 1..];
    }
    Some(named.iter().zip(holds).all(|(&n, h)| !n || h))
}

/// Whether `now` is the value or in the range `token` writes.
fn in_range(scale: Scale, token: &[u8], now: i64) -> Option<bool> {
    if token.first() == Some(&b'-') {
        return None;
    }
    let (lo, hi) = match token.iter().position(|&c| c == b'-') {
        Some(dash) => {
            let hi = &token[dash + 1..];
            let hi = &hi[hi.iter().take_while(|&&c| c == b'-').count()..];
            (scale.value(&token[..dash])?, scale.value(hi)?)
        }
        None => {
            let v = scale.value(token)?;
            (v, v)
        }
    };
    Some(match (lo <= hi, scale) {
        (true, _) => (lo..=hi).contains(&now),
        (false, Scale::Year) => false,
        (false, _) => now >= lo || now <= hi,
    })
}

const ANY: RouteMask = RouteMask::ANY;

pub static MODULE: ModuleDef = ModuleDef {
    name: "tmrec",
    aliases: &[],
    functions: &[
        func("tmrec_match", 1, 2, ANY, Some(fixup_match), tmrec_match),
        func(
            "time_period_match",
            1,
            2,
            ANY,
            Some(fixup_match),
            time_period_match,
        ),
        func("is_leap_year", 0, 1, ANY, None, is_leap_year),
    ],
    params: &[param("separator", ParamKind::Str)],
    always: false,
};

#[cfg(test)]
mod tests;
