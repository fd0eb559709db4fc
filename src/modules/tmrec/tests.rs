//! Every expectation below is what Kamailio 5.6.3's tmrec answered for the
//! same text and timestamp (UTC machine), checked live.

use super::*;
use crate::modules::testutil::{call, Harness, INVITE};
use crate::script::timefmt::days_from_civil;

/// `YYYY-MM-DD hh:mm:ss` (UTC) as a unix time.
fn at(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let days = days_from_civil(n(0..4), n(5..7) as u32, n(8..10) as u32);
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn rec(text: &str, when: &str) -> i32 {
    match TimeRec::parse_tmrec(text.as_bytes(), b'|') {
        Ok(r) => truth(r.matches_tmrec(at(when))),
        Err(_) => -1,
    }
}

#[test]
fn recurrences_match_as_kamailio_tmrec() {
    for (text, when, want) in [
        ("20260101T000000|PT1H", "2026-01-01 00:30:00", 1),
        ("20260101T000000|PT1H", "2026-01-01 01:30:00", -1),
        ("20260101T000000|PT1H", "2025-12-31 23:30:00", -1),
        ("20260101T000000|P1D", "2026-01-01 23:30:00", 1),
        ("20260101T000000|P1W", "2026-01-06 00:30:00", 1),
        ("20260101T000000|PT1H30M", "2026-01-01 01:20:00", 1),
        ("20260101T000000|pt1h", "2026-01-01 00:20:00", 1),
        ("20260101T000000|P1DT1H", "2026-01-02 00:30:00", 1),
        (
            "20260105T090000|PT8H|weekly|||MO,TU,WE,TH,FR",
            "2026-12-02 10:00:00",
            1,
        ),
        (
            "20260105T090000|PT8H|weekly|||MO,TU,WE,TH,FR",
            "2026-12-05 10:00:00",
            -1,
        ),
        // interval: the sum of its digits.
        ("20260101T000000|PT1H|daily||10", "2026-01-02 00:30:00", 1),
        ("20260101T000000|PT1H|daily||2", "2026-01-02 00:30:00", -1),
        ("20260101T000000|PT1H|daily||2", "2026-01-03 00:30:00", 1),
        ("20260101T000000|PT1H|daily||x", "2026-01-02 00:30:00", 1),
        ("20260101T000000|PT1H|DAILY", "2026-01-02 00:30:00", 1),
        ("20260101T000000|PT1H|hourly", "2026-01-02 00:30:00", -1),
        ("20260101T000000|PT1H|weekly", "2026-01-08 00:30:00", 1),
        (
            "20260101T000000|PT1H|weekly||2|TH",
            "2026-01-08 00:30:00",
            -1,
        ),
        (
            "20260101T000000|PT1H|weekly||2|TH",
            "2026-01-15 00:30:00",
            1,
        ),
        (
            "20260101T000000|PT1H|daily|||SA,SU",
            "2026-01-03 00:30:00",
            1,
        ),
        (
            "20260101T000000|PT1H|daily|||SA,SU",
            "2026-01-05 00:30:00",
            -1,
        ),
        ("20260101T000000|PT1H|daily|||XX", "2026-01-02 00:30:00", 1),
        (
            "20260101T000000|PT1H|monthly||||15",
            "2026-03-15 00:20:00",
            1,
        ),
        (
            "20260101T000000|PT1H|monthly||||-1",
            "2026-02-28 00:20:00",
            1,
        ),
        (
            "20260101T000000|PT1H|monthly|||2MO",
            "2026-03-09 00:20:00",
            1,
        ),
        (
            "20260101T000000|PT1H|monthly|||2MO",
            "2026-03-02 00:20:00",
            -1,
        ),
        // A negative count one short when the month has five.
        (
            "20260101T000000|P1D|monthly|||-1FR",
            "2026-01-30 00:30:00",
            -1,
        ),
        (
            "20260101T000000|P1D|monthly|||-1FR",
            "2026-01-23 00:30:00",
            1,
        ),
        (
            "20260101T000000|PT1H|yearly|||||-1",
            "2026-12-31 00:30:00",
            1,
        ),
        (
            "20260101T000000|PT1H|yearly||||||53",
            "2026-12-31 00:30:00",
            -1,
        ),
        (
            "20260101T000000|PT1H|daily|20260105T000000",
            "2026-01-06 00:30:00",
            -1,
        ),
        (
            "20260101T000000|PT1H|daily|20260105T000000",
            "2026-01-04 00:30:00",
            1,
        ),
        (
            "20260101T000000|PT1H|daily|||||||10",
            "2026-03-05 00:30:00",
            -1,
        ),
        (
            "20260101T000000|PT1H|daily||||||60",
            "2026-03-01 00:30:00",
            1,
        ),
        // No start: always; no duration: never.
        ("|PT1H", "2026-01-01 00:30:00", 1),
        ("20260101T000000", "2026-01-05 00:30:00", -1),
        ("20260101T000000|", "2026-01-05 00:30:00", -1),
        ("20260101T000000||daily", "2026-03-02 00:20:00", -1),
        // Not read: -1 (logged).
        ("", "2026-01-04 00:30:00", -1),
        ("garbage", "2026-01-04 00:30:00", -1),
        ("2026010T000000|PT1H", "2026-01-01 00:30:00", -1),
        ("20260101T000000|1h", "2026-01-01 00:30:00", -1),
        ("20260101T000000|1d", "2026-01-01 23:30:00", -1),
        ("20260101T000000|PT1HX", "2026-01-01 00:30:00", -1),
        ("20260101T000000|PT0S", "2026-01-01 00:00:00", -1),
        (
            "20260101T000000|PT1H|daily|garbage",
            "2026-01-05 00:30:00",
            -1,
        ),
    ] {
        assert_eq!(rec(text, when), want, "{text} at {when}");
    }
    // Only tmrec refuses these: drouting reads them as before.
    for text in ["20260101T000000|1h", "20260101T000000|PT1H|daily|garbage"] {
        assert!(TimeRec::parse(text.as_bytes()).is_ok(), "{text}");
    }
}

fn period(text: &str, when: &str) -> i32 {
    truth(Period(text.as_bytes()).contains(&timefmt::utc(at(when))))
}

#[test]
fn periods_match_as_kamailio_time_period_match() {
    for (text, when, want) in [
        ("hr {9-17}", "2026-12-02 09:00:00", 1),
        ("hr {9-17}", "2026-12-02 17:30:00", 1),
        ("hr {9-17}", "2026-12-02 18:00:00", -1),
        ("hr {9-17}", "2026-12-02 08:59:59", -1),
        // am/pm are ignored; ranges wrap.
        ("hr {9am-5pm}", "2026-12-02 17:00:00", 1),
        ("hr {1pm-3pm}", "2026-12-08 14:30:00", -1),
        ("hr {12am}", "2026-12-08 00:30:00", -1),
        ("hr {12am}", "2026-12-08 12:30:00", 1),
        ("hr {12am-1am}", "2026-12-02 00:30:00", 1),
        ("hr {9pm}", "2026-12-07 21:10:00", -1),
        ("hr {22-2}", "2026-12-05 23:15:00", 1),
        ("hr {22-2}", "2026-12-05 01:15:00", 1),
        ("hr {22-2}", "2026-12-05 12:15:00", -1),
        ("hr {23-0}", "2026-12-08 20:30:30", -1),
        ("hr {5-5}", "2026-12-07 06:10:00", -1),
        ("hr {9-x}", "2026-12-07 10:10:00", 1),
        ("hr {abc}", "2026-12-05 11:15:00", -1),
        ("hr {+9}", "2026-12-08 20:30:30", -1),
        ("hr {9 am}", "2026-12-08 20:30:30", -1),
        ("hr {9--17}", "2026-12-08 20:30:30", -1),
        ("hr {9--17}", "2026-12-07 10:10:00", 1),
        ("hr {11,13}", "2026-12-05 13:15:00", -1),
        ("hr {9-11 14-16}", "2026-12-07 15:00:00", 1),
        ("hr {9-11 14-16}", "2026-12-07 13:00:00", -1),
        ("hr {}", "2026-12-05 20:15:00", -1),
        ("hr{1}", "2026-12-08 20:30:30", -1),
        ("HR {9-17}", "2026-12-08 20:00:00", -1),
        ("hour {1}", "2026-12-08 20:30:30", -1),
        // Weekdays: 1 is Sunday; names by two letters, any case.
        ("wd {Mon-Fri}", "2026-12-02 10:00:00", 1),
        ("wd {Mon-Fri}", "2026-12-05 10:00:00", -1),
        ("wd {Fri-Mon}", "2026-12-06 10:00:00", 1),
        ("wd {Fri-Mon}", "2026-12-09 10:00:00", -1),
        ("wd {1}", "2026-12-06 10:00:00", 1),
        ("wd {7}", "2026-12-05 10:00:00", 1),
        ("wd {7-1}", "2026-12-08 20:30:30", -1),
        ("wd {mon-mon}", "2026-12-08 10:00:00", -1),
        ("wd {sa-su}", "2026-12-07 09:10:05", -1),
        ("wd {mo}", "2026-12-08 20:30:30", -1),
        ("wd {mondayx}", "2026-12-08 20:30:30", -1),
        ("wd {MON}", "2026-12-08 20:30:30", -1),
        ("wd {tuesday}", "2026-12-08 20:30:30", 1),
        ("wday {sat}", "2026-12-08 20:30:30", -1),
        ("wd {sat sun}", "2026-12-05 10:00:00", 1),
        ("wd {mon-fri} hr {9-17}", "2026-12-02 10:00:00", 1),
        ("wd {mon-fri} hr {9-17}", "2026-12-02 20:00:00", -1),
        ("wd {mon}hr {9-17}", "2026-12-07 09:00:00", 1),
        (
            "wd {mon-fri} hr {9-17}, wd {sat} hr {10-12}",
            "2026-12-05 11:00:00",
            1,
        ),
        (
            "wd {mon-fri} hr {9-17}, wd {sat} hr {10-12}",
            "2026-12-05 13:00:00",
            -1,
        ),
        ("wd {mon}, hr {1-2}", "2026-12-08 10:00:00", -1),
        ("hr {9-17} hr {10}", "2026-12-07 11:10:00", 1),
        // Months by three letters or 1-12; days of the month and year from 1.
        ("mo {dec}", "2026-12-05 11:00:00", 1),
        ("mo {jan-mar}", "2026-12-05 11:00:00", -1),
        ("mo {nov-feb}", "2026-01-05 11:00:00", 1),
        ("mo {january}", "2026-12-08 20:30:30", -1),
        ("mo {JAN}", "2026-12-08 20:30:30", -1),
        ("mo {decem}", "2026-12-08 20:30:30", 1),
        ("month {jan}", "2026-12-08 20:30:30", -1),
        ("md {1-5}", "2026-12-05 11:00:00", 1),
        ("md {6-31}", "2026-12-05 11:00:00", -1),
        ("md {28-3}", "2026-12-02 15:30:00", 1),
        ("md {28-3}", "2026-12-15 15:30:00", -1),
        ("yd {339}", "2026-12-05 11:00:00", 1),
        ("yd {340}", "2026-12-05 11:00:00", -1),
        ("yd {366}", "2026-12-08 20:30:30", -1),
        ("yr {2026}", "2026-12-05 11:00:00", 1),
        ("yr {2020-2025}", "2026-12-05 11:00:00", -1),
        ("yr {2027-2025}", "2026-12-08 20:30:30", -1),
        ("yr {26}", "2026-12-15 15:30:00", -1),
        ("min {0-29}", "2026-12-05 11:45:00", -1),
        ("min {50-10}", "2026-12-08 15:05:00", 1),
        ("min {50-10}", "2026-12-08 15:30:00", -1),
        ("second {59}", "2026-12-08 20:30:30", -1),
        ("sec {0-9}", "2026-12-05 11:15:05", 1),
        // Not read, so matching: an unknown scale, a missing or open brace,
        // a value out of bounds, a name that is none, a leading dash.
        ("garbage", "2026-12-05 11:15:00", 1),
        ("foo {1}", "2026-12-05 11:15:00", 1),
        ("hours {1}", "2026-12-08 20:30:30", 1),
        ("hr 9-17", "2026-12-05 20:15:00", 1),
        ("hr {9-17", "2026-12-05 20:15:00", 1),
        ("hr {1-2} garbage", "2026-12-05 11:15:00", 1),
        ("hr {1} {2}", "2026-12-08 20:30:30", 1),
        ("hr {1}{2}", "2026-12-08 20:30:30", 1),
        ("hr {24}", "2026-12-08 10:00:00", 1),
        ("hr {-1}", "2026-12-08 10:00:00", 1),
        ("wd {8}", "2026-12-08 10:00:00", 1),
        ("wd {0}", "2026-12-08 10:00:00", 1),
        ("mo {13}", "2026-12-08 10:00:00", 1),
        ("mo {ja}", "2026-12-08 20:30:30", 1),
        ("md {0}", "2026-12-08 10:00:00", 1),
        ("yd {367}", "2026-12-08 10:00:00", 1),
        ("wk {7}", "2026-12-08 10:00:00", 1),
        ("min {60}", "2026-12-08 10:00:00", 1),
        ("wd {mon}, garbage", "2026-12-08 10:00:00", 1),
        // Empty: matching.
        ("", "2026-12-05 11:15:00", 1),
        ("wd {mon},", "2026-12-08 10:00:00", 1),
        ("  hr {9-17}  ", "2026-12-07 09:00:00", 1),
    ] {
        assert_eq!(period(text, when), want, "{text} at {when}");
    }
}

/// Weeks of the month counted in Sundays, the days before the first Sunday
/// in week 1 (Kamailio's answers for every day of three months).
#[test]
fn weeks_of_the_month_change_on_sundays() {
    let week_of = |day: &str| {
        let weeks: Vec<i64> = (1..=6)
            .filter(|w| period(&format!("wk {{{w}}}"), &format!("{day} 10:00:00")) == 1)
            .collect();
        assert_eq!(weeks.len(), 1, "{day}: {weeks:?}");
        weeks[0]
    };
    // December 2026 starts on a Tuesday, November on a Sunday.
    for (day, want) in [
        ("2026-12-01", 1),
        ("2026-12-12", 1),
        ("2026-12-13", 2),
        ("2026-12-19", 2),
        ("2026-12-20", 3),
        ("2026-12-27", 4),
        ("2026-12-31", 4),
        ("2026-11-01", 1),
        ("2026-11-07", 1),
        ("2026-11-08", 2),
        ("2026-11-29", 5),
        ("2026-11-30", 5),
        ("2026-02-28", 4),
        ("2026-05-31", 5),
    ] {
        assert_eq!(week_of(day), want, "{day}");
    }
}

/// The functions from a script: the timestamp argument, or the message's
/// time; `is_leap_year` with and without a year; a timestamp that is not a
/// number fails.
#[test]
fn functions_read_their_arguments_as_kamailio_does() {
    let mut h = Harness::new(INVITE);
    // The harness clock reads 2026-01-01 00:30:00 UTC.
    h.env.clock.unix_at_base = std::time::Duration::from_secs(at("2026-01-01 00:30:00") as u64);
    let mut ctx = h.ctx();
    let ts = at("2026-01-01 01:30:00").to_string();
    let params = ModParams::default();
    let run =
        |ctx: &mut MsgCtx<'_>, name: &str, args: &[&str]| call(ctx, &MODULE, name, args, &params);
    assert_eq!(run(&mut ctx, "tmrec_match", &["20260101T000000|PT1H"]), 1);
    assert_eq!(
        run(&mut ctx, "tmrec_match", &["20260101T000000|PT1H", &ts]),
        -1
    );
    assert_eq!(
        run(&mut ctx, "tmrec_match", &["20260101T000000|PT1H", "soon"]),
        -1
    );
    assert_eq!(run(&mut ctx, "time_period_match", &["hr {0}"]), 1);
    assert_eq!(run(&mut ctx, "time_period_match", &["hr {0}", &ts]), -1);
    assert_eq!(run(&mut ctx, "is_leap_year", &[]), -1);
    assert_eq!(run(&mut ctx, "is_leap_year", &["2024"]), 1);
    assert_eq!(run(&mut ctx, "is_leap_year", &["2000"]), 1);
    assert_eq!(run(&mut ctx, "is_leap_year", &["1900"]), -1);
    assert_eq!(run(&mut ctx, "is_leap_year", &["abc"]), -1);
}

/// `modparam("tmrec", "separator", ";")` splits the fields on `;`.
#[test]
fn the_separator_parameter_splits_the_fields() {
    let mut h = Harness::new(INVITE);
    let mut ctx = h.ctx();
    let mut params = ModParams::default();
    params.push(
        "tmrec",
        "separator",
        crate::script::registry::ParamValue::Str(";".into()),
    );
    let ts = at("2026-01-01 00:30:00").to_string();
    assert_eq!(
        call(
            &mut ctx,
            &MODULE,
            "tmrec_match",
            &["20260101T000000;PT1H", &ts],
            &params
        ),
        1
    );
    assert_eq!(
        call(
            &mut ctx,
            &MODULE,
            "tmrec_match",
            &["20260101T000000|PT1H", &ts],
            &params
        ),
        -1
    );
    params.push(
        "tmrec",
        "separator",
        crate::script::registry::ParamValue::Str(";;".into()),
    );
    let mut args = Args(vec![Arg::Str("x".into())]);
    assert!(fixup_match(&mut args, &params).is_err());
}
