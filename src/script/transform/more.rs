//! Transformations beyond the everyday string and URI ones: `s.rm`,
//! `s.prefixes[.quoted]`, `s.ftime`, `s.dec2hex`/`s.hex2dec`, `re.subst`,
//! `sock.*`, `urialias.*`, `uri.tosocket`.

use std::fmt;

use regex::bytes::Regex;

use crate::sip::uri::Uri;

/// A `re.subst` expression, `/regex/replacement/flags` (any delimiter):
/// `\1`…`\9` in the replacement are the groups, `\0` the whole match; flag
/// `i` ignores case, `g` replaces every match (else the first).
#[derive(Clone)]
pub struct Subst {
    source: String,
    re: Regex,
    repl: Vec<u8>,
    global: bool,
}

impl fmt::Debug for Subst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subst({})", self.source)
    }
}

impl PartialEq for Subst {
    fn eq(&self, other: &Subst) -> bool {
        self.source == other.source
    }
}

impl Eq for Subst {}

impl Subst {
    pub fn parse(text: &str) -> Result<Subst, String> {
        let mut chars = text.chars();
        let delim = chars
            .next()
            .ok_or("re.subst needs /regex/replacement/flags")?;
        if delim.is_alphanumeric() || delim == '\\' {
            return Err(format!(
                "re.subst: \"{delim}\" cannot delimit the expression"
            ));
        }
        // Split on unescaped delimiters; `\<delim>` stands for the delimiter.
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut escaped = false;
        for c in chars {
            if escaped {
                if c != delim {
                    cur.push('\\');
                }
                cur.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == delim {
                parts.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        if escaped {
            cur.push('\\');
        }
        parts.push(cur);
        let [pattern, repl, flags] = <[String; 3]>::try_from(parts).map_err(|_| {
            format!("re.subst: \"{text}\" is not {delim}regex{delim}replacement{delim}flags")
        })?;
        let mut global = false;
        let mut icase = false;
        for f in flags.chars() {
            match f {
                'g' => global = true,
                'i' => icase = true,
                's' => {}
                other => return Err(format!("re.subst: unknown flag \"{other}\"")),
            }
        }
        let re = regex::bytes::RegexBuilder::new(&pattern)
            .case_insensitive(icase)
            .build()
            .map_err(|e| format!("re.subst: bad regular expression: {e}"))?;
        Ok(Subst {
            source: text.to_string(),
            re,
            repl: repl.into_bytes(),
            global,
        })
    }

    /// The text with the first (or every) match replaced; `None` when
    /// nothing matched (Kamailio's transformation then fails).
    pub fn apply(&self, s: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(s.len());
        let mut last = 0;
        let mut any = false;
        for caps in self.re.captures_iter(s) {
            let whole = caps.get(0)?;
            any = true;
            out.extend_from_slice(&s[last..whole.start()]);
            let mut r = self.repl.iter().copied().peekable();
            while let Some(b) = r.next() {
                match (b, r.peek().copied()) {
                    (b'\\', Some(d @ b'0'..=b'9')) => {
                        r.next();
                        if let Some(g) = caps.get(usize::from(d - b'0')) {
                            out.extend_from_slice(g.as_bytes());
                        }
                    }
                    (b'\\', Some(b'\\')) => {
                        r.next();
                        out.push(b'\\');
                    }
                    (b, _) => out.push(b),
                }
            }
            last = whole.end();
            if !self.global {
                break;
            }
        }
        if !any {
            return None;
        }
        out.extend_from_slice(&s[last..]);
        Some(out)
    }
}

/// `s.rm,x`: every occurrence of `x` removed.
pub fn rm(s: &[u8], x: &[u8]) -> Vec<u8> {
    if x.is_empty() {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = memchr::memmem::find(rest, x) {
        out.extend_from_slice(&rest[..i]);
        rest = &rest[i + x.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// `s.prefixes[,n]`: `abc` → `a,ab,abc` (at most `n` long when `n` > 0);
/// quoted: `'a','ab','abc'`. Counted in bytes.
pub fn prefixes(s: &[u8], max: Option<i64>, quoted: bool) -> Vec<u8> {
    let n = match max {
        Some(m) if m > 0 => s.len().min(usize::try_from(m).unwrap_or(usize::MAX)),
        _ => s.len(),
    };
    let mut out = Vec::new();
    for i in 1..=n {
        if i > 1 {
            out.push(b',');
        }
        if quoted {
            out.push(b'\'');
        }
        out.extend_from_slice(&s[..i]);
        if quoted {
            out.push(b'\'');
        }
    }
    out
}

/// `s.dec2hex`: a decimal integer in lower-case hexadecimal (two's
/// complement for a negative one, as C's `%x`).
pub fn dec2hex(v: i64) -> Vec<u8> {
    format!("{:x}", v as u64).into_bytes()
}

/// `s.hex2dec`: hexadecimal text (with or without `0x`) as an integer.
pub fn hex2dec(s: &[u8]) -> Option<i64> {
    let t = std::str::from_utf8(s).ok()?.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u64::from_str_radix(t, 16).ok().map(|v| v as i64)
}

/// Year, month (1-12), day (1-31) of a day count since 1970-01-01
/// (Howard Hinnant's civil-from-days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a date (the inverse of [`civil`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `s.ftime,format`: the Unix time `secs` formatted like strftime, in UTC
/// (ringsip reads no time zone). Conversions: `%Y %y %m %d %e %H %M %S %j
/// %a %b %h %T %F %D %R %s %z %Z %n %t %%`; any other is copied as written.
pub fn ftime(secs: i64, format: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil(days);
    let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    let wday = (days + 4).rem_euclid(7) as usize;
    let yday = days - days_from_civil(y, 1, 1) + 1;
    let mut out = Vec::with_capacity(format.len() + 16);
    let mut it = format.iter().copied();
    while let Some(b) = it.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let _ = match it.next() {
            Some(b'Y') => write!(out, "{y}"),
            Some(b'y') => write!(out, "{:02}", y.rem_euclid(100)),
            Some(b'm') => write!(out, "{mo:02}"),
            Some(b'd') => write!(out, "{d:02}"),
            Some(b'e') => write!(out, "{d:2}"),
            Some(b'H') => write!(out, "{h:02}"),
            Some(b'M') => write!(out, "{mi:02}"),
            Some(b'S') => write!(out, "{s:02}"),
            Some(b'j') => write!(out, "{yday:03}"),
            Some(b'a') => write!(out, "{}", WEEKDAYS[wday]),
            Some(b'b' | b'h') => write!(out, "{}", MONTHS[(mo - 1) as usize]),
            Some(b'T') => write!(out, "{h:02}:{mi:02}:{s:02}"),
            Some(b'R') => write!(out, "{h:02}:{mi:02}"),
            Some(b'F') => write!(out, "{y}-{mo:02}-{d:02}"),
            Some(b'D') => write!(out, "{mo:02}/{d:02}/{:02}", y.rem_euclid(100)),
            Some(b's') => write!(out, "{secs}"),
            Some(b'z') => write!(out, "+0000"),
            Some(b'Z') => write!(out, "UTC"),
            Some(b'n') => writeln!(out),
            Some(b't') => write!(out, "\t"),
            Some(b'%') => write!(out, "%"),
            Some(other) => write!(out, "%{}", other as char),
            None => write!(out, "%"),
        };
    }
    out
}

/// The parts of a socket text `proto:host:port` (`sock.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockField {
    Proto,
    Host,
    Port,
}

/// `sock.proto|host|port` of `proto:host[:port]` (IPv6 hosts in brackets).
pub fn sock(s: &[u8], f: SockField) -> Option<Vec<u8>> {
    let t = std::str::from_utf8(s).ok()?.trim();
    let (proto, rest) = t.split_once(':')?;
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r.split_once(']')?;
        let h = &rest[..h.len() + 2];
        (h, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if proto.is_empty() || host.is_empty() {
        return None;
    }
    Some(
        match f {
            SockField::Proto => proto,
            SockField::Host => host,
            SockField::Port => port.unwrap_or(""),
        }
        .as_bytes()
        .to_vec(),
    )
}

/// Protocol numbers used in alias values (Kamailio's `PROTO_*`).
const PROTOS: [&str; 6] = ["udp", "tcp", "tls", "sctp", "ws", "wss"];

/// `urialias.encode`: `sip:u@1.2.3.4:5080;transport=tcp` → `1.2.3.4~5080~2`.
pub fn urialias_encode(s: &[u8]) -> Option<Vec<u8>> {
    let uri = Uri::parse(s).ok()?;
    let port = uri.port().unwrap_or(5060);
    let transport = uri
        .param(b"transport")
        .and_then(|p| p.value)
        .map(|t| String::from_utf8_lossy(t).to_ascii_lowercase())
        .unwrap_or_else(|| "udp".into());
    let n = PROTOS.iter().position(|p| *p == transport)? + 1;
    let mut out = uri.host_raw().to_vec();
    out.extend_from_slice(format!("~{port}~{n}").as_bytes());
    Some(out)
}

/// `urialias.decode`: `1.2.3.4~5080~2` → `sip:1.2.3.4:5080;transport=tcp`.
pub fn urialias_decode(s: &[u8]) -> Option<Vec<u8>> {
    let t = std::str::from_utf8(s).ok()?.trim();
    let mut parts = t.rsplitn(3, '~');
    let proto: usize = parts.next()?.parse().ok()?;
    let port: u16 = parts.next()?.parse().ok()?;
    let host = parts.next().filter(|h| !h.is_empty())?;
    let name = PROTOS.get(proto.checked_sub(1)?)?;
    Some(format!("sip:{host}:{port};transport={name}").into_bytes())
}

/// `uri.tosocket`: `sip:1.2.3.4:5080;transport=tcp` → `tcp:1.2.3.4:5080`
/// (UDP and port 5060 when the URI names none).
pub fn uri_tosocket(s: &[u8]) -> Option<Vec<u8>> {
    let uri = Uri::parse(s).ok()?;
    let transport = uri
        .param(b"transport")
        .and_then(|p| p.value)
        .map(|t| String::from_utf8_lossy(t).to_ascii_lowercase())
        .unwrap_or_else(|| "udp".into());
    let port = uri.port().unwrap_or(5060);
    let mut out = transport.into_bytes();
    out.push(b':');
    out.extend_from_slice(uri.host_raw());
    out.extend_from_slice(format!(":{port}").as_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subst_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("/a/X/", "banana", Some("bXnana")),
            ("/a/X/g", "banana", Some("bXnXnX")),
            ("/A/X/gi", "banana", Some("bXnXnX")),
            ("/^(\\+?)00?([1-9])/\\2/", "+0049", Some("49")),
            ("/(b)(a)/\\2\\1[\\0]/", "banana", Some("ab[ba]nana")),
            ("#/#:#g", "a/b/c", Some("a:b:c")),
            ("/\\//-/g", "a/b", Some("a-b")),
            ("/z/X/", "banana", None),
        ];
        for (expr, input, want) in cases {
            let s = Subst::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let got = s
                .apply(input.as_bytes())
                .map(|v| String::from_utf8(v).unwrap());
            assert_eq!(got.as_deref(), *want, "{expr} on {input}");
        }
        for bad in ["", "abc", "/a/b", "/a/b/c/d", "/(/x/", "/a/b/q"] {
            assert!(Subst::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ftime_table() {
        let cases: &[(i64, &str, &str)] = &[
            (0, "%Y-%m-%d %H:%M:%S", "1970-01-01 00:00:00"),
            (951_782_400, "%F %a %b %j", "2000-02-29 Tue Feb 060"),
            (1_767_225_599, "%T %D %e|%y", "23:59:59 12/31/25 31|25"),
            (-1, "%F %T", "1969-12-31 23:59:59"),
            (
                86_400 * 365,
                "%j %s %% %q %Z%z",
                "001 31536000 % %q UTC+0000",
            ),
        ];
        for (secs, fmt, want) in cases {
            assert_eq!(
                String::from_utf8(ftime(*secs, fmt.as_bytes())).unwrap(),
                *want,
                "{secs} {fmt}"
            );
        }
    }

    #[test]
    fn small_string_helpers() {
        assert_eq!(rm(b"a-b-c", b"-"), b"abc");
        assert_eq!(rm(b"abcabc", b"bc"), b"aa");
        assert_eq!(rm(b"abc", b""), b"abc");
        assert_eq!(prefixes(b"123", None, false), b"1,12,123");
        assert_eq!(prefixes(b"123", Some(2), true), b"'1','12'");
        assert_eq!(prefixes(b"", None, false), b"");
        assert_eq!(dec2hex(255), b"ff");
        assert_eq!(hex2dec(b"0xff"), Some(255));
        assert_eq!(hex2dec(b"FF"), Some(255));
        assert_eq!(hex2dec(b"zz"), None);
    }

    #[test]
    fn sockets_and_aliases() {
        let cases: &[(&str, SockField, Option<&str>)] = &[
            ("udp:1.2.3.4:5060", SockField::Proto, Some("udp")),
            ("udp:1.2.3.4:5060", SockField::Host, Some("1.2.3.4")),
            (
                "tcp:[2001:db8::1]:5061",
                SockField::Host,
                Some("[2001:db8::1]"),
            ),
            ("tcp:[2001:db8::1]:5061", SockField::Port, Some("5061")),
            ("tls:example.com", SockField::Port, Some("")),
            ("nothing", SockField::Host, None),
        ];
        for (s, f, want) in cases {
            let got = sock(s.as_bytes(), *f).map(|v| String::from_utf8(v).unwrap());
            assert_eq!(got.as_deref(), *want, "{s} {f:?}");
        }
        assert_eq!(
            urialias_encode(b"sip:u@1.2.3.4:5080;transport=TCP").unwrap(),
            b"1.2.3.4~5080~2"
        );
        assert_eq!(urialias_encode(b"sip:1.2.3.4").unwrap(), b"1.2.3.4~5060~1");
        assert_eq!(
            urialias_decode(b"1.2.3.4~5080~2").unwrap(),
            b"sip:1.2.3.4:5080;transport=tcp"
        );
        assert!(urialias_decode(b"1.2.3.4~5080~9").is_none());
        assert!(urialias_decode(b"~1~1").is_none());
        assert_eq!(
            uri_tosocket(b"sip:a@10.0.0.1:5070;transport=tls").unwrap(),
            b"tls:10.0.0.1:5070"
        );
        assert_eq!(uri_tosocket(b"sip:10.0.0.1").unwrap(), b"udp:10.0.0.1:5060");
    }
}
