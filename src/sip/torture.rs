//! Torture table for framing and the header index, after the categories of
//! RFC 4475 ("SIP Torture Test Messages") that concern a message's framing:
//! §3.1.1 valid messages (odd spacing, folding, escapes, long values, extra
//! octets, unusual reason phrases) and §3.1.2 invalid ones (bad
//! Content-Length, bad request lines, unknown versions, overlarge codes),
//! plus what a datagram parser meets in practice (NULs, bare CR, LF-only
//! lines, leading CRLFs, missing empty line, limits). The messages are our
//! own, written for these cases.
//!
//! Several RFC 4475 invalid messages are invalid only inside a header value
//! (extraneous `;,` in Via, unterminated quotes, `<>` around the
//! Request-URI, overlarge CSeq): framing accepts them, the typed views
//! reject them. Those rows assert what framing must keep intact for the view.
//!
//! Every row that parses is also serialized with no edits and parsed again:
//! the header index must come back the same.

use bytes::Bytes;

use super::edit::{serialize, Edits};
use super::error::ErrorKind;
use super::message::{Limits, Message};
use super::name::HeaderName;

enum Expect {
    Ok(fn(&Message)),
    Err(ErrorKind),
}

struct Case {
    /// What the row covers (RFC 4475 section where there is one).
    name: &'static str,
    text: Vec<u8>,
    expect: Expect,
}

/// `\n` → CRLF, so that rows read like the wire.
fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

fn raw(text: &[u8]) -> Vec<u8> {
    text.to_vec()
}

fn value(m: &Message, id: HeaderName) -> &[u8] {
    m.header_value(id)
        .unwrap_or_else(|| panic!("no {id:?} header"))
}

fn values<'a>(m: &'a Message, name: &'a [u8]) -> Vec<&'a [u8]> {
    m.headers_named(name).map(|h| m.value(h)).collect()
}

fn ok(name: &'static str, text: Vec<u8>, check: fn(&Message)) -> Case {
    Case {
        name,
        text,
        expect: Expect::Ok(check),
    }
}

fn err(name: &'static str, text: Vec<u8>, kind: ErrorKind) -> Case {
    Case {
        name,
        text,
        expect: Expect::Err(kind),
    }
}

fn valid_messages() -> Vec<Case> {
    vec![
        ok(
            "3.1.1.1 spacing, case and folding everywhere",
            crlf(
                "INVITE sip:carol@chicago.example.com;weirdparam SIP/2.0\n\
TO :\n sip:carol@chicago.example.com ;   tag    = 8321234356\n\
from   : \"Alice \\\"the tester\\\"\" <sip:alice@atlanta.example.com>\n  ;\n  tag = 11a2b3c4\n\
MaX-fOrWaRdS: 0068\n\
Call-ID: torture.spacing.4475@192.0.2.10\n\
Content-Length   : 12\n\
cseq: 0007\n  INVITE\n\
Via  : SIP  /   2.0\n /UDP\n    192.0.2.10;branch=z9hG4bKtort01\n\
s :\n\
X-Newfangled:   first part\n second part\n\
X-Odd-Value: ;;,,;;,;\n\
Content-Type: text/plain\n\
Route:\n <sip:edge.example.com;lr;unknown=value;flag>\n\
v:  SIP  / 2.0  / TCP     relay.example.net   ;\n  branch  =   z9hG4bKtort02  ,\n SIP  /    2.0   / UDP  198.51.100.4   ; branch=\n z9hG4bKtort03\n\
m:\"Quoted \\\"\\\"\" <sip:alice@192.0.2.10> ; p1 =\n      v1 ;\n  p2 ; q = 0.5\n\
\n\
hello world!",
            ),
            |m| {
                assert_eq!(m.method_bytes(), b"INVITE");
                assert_eq!(
                    m.request_uri().unwrap(),
                    b"sip:carol@chicago.example.com;weirdparam"
                );
                assert_eq!(m.headers().len(), 14);
                assert_eq!(
                    value(m, HeaderName::To),
                    b"sip:carol@chicago.example.com ;   tag    = 8321234356"
                );
                assert_eq!(
                    value(m, HeaderName::From),
                    b"\"Alice \\\"the tester\\\"\" <sip:alice@atlanta.example.com>\r\n  ;\r\n  tag = 11a2b3c4"
                );
                assert_eq!(value(m, HeaderName::MaxForwards), b"0068");
                assert_eq!(value(m, HeaderName::CSeq), b"0007\r\n  INVITE");
                assert_eq!(m.call_id().unwrap(), b"torture.spacing.4475@192.0.2.10");
                let vias: Vec<&[u8]> = m.headers_of(HeaderName::Via).map(|h| m.value(h)).collect();
                assert_eq!(vias.len(), 2);
                assert_eq!(vias[0], b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.10;branch=z9hG4bKtort01");
                assert!(vias[1].starts_with(b"SIP  / 2.0  / TCP"));
                assert!(vias[1].ends_with(b"; branch=\r\n z9hG4bKtort03"));
                assert_eq!(value(m, HeaderName::Subject), b"");
                assert_eq!(values(m, b"x-newfangled"), [b"first part\r\n second part"]);
                assert_eq!(values(m, b"X-Odd-Value"), [b";;,,;;,;"]);
                assert_eq!(
                    value(m, HeaderName::Route),
                    b"<sip:edge.example.com;lr;unknown=value;flag>"
                );
                assert!(value(m, HeaderName::Contact).ends_with(b"p2 ; q = 0.5"));
                assert_eq!(m.body(), b"hello world!");
            },
        ),
        ok(
            "3.1.1.2 every token character in method and header name, UTF-8 in values",
            crlf(
                "!odd-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\n\
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\n\
To: \"BEL:\\\u{7}NUL:\\\u{0}DEL:\\\u{7f}\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\n\
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"работающий\";tag=_token~1'+`*%!-.\n\
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n\
CSeq: 139122385 !odd-Method0123456789_*+`.%indeed'~\n\
Max-Forwards: 255\n\
x-Extension-!.%*+_`'~:\u{5927}\u{505c}\u{96fb}\n\
Content-Length: 0\n\n",
            ),
            |m| {
                assert_eq!(m.method_bytes(), b"!odd-Method0123456789_*+`.%indeed'~");
                assert!(m.request_uri().unwrap().ends_with(b"(doesn't-it)@example.com"));
                assert_eq!(values(m, b"X-EXTENSION-!.%*+_`'~"), ["大停電".as_bytes()]);
                assert!(value(m, HeaderName::From).contains(&0xd0)); // Cyrillic, raw UTF-8
                assert_eq!(
                    value(m, HeaderName::CallId),
                    b"intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
                );
                assert!(m.body().is_empty());
            },
        ),
        ok(
            "3.1.1.3-5 percent escapes, escaped NUL and a bare % in URI and method",
            crlf(
                "RE%47IST%45R sip:%61lice%00%20@registrar.example.com;p=%zz SIP/2.0\n\
To: <sip:%61lice@example.com>\n\
From: <sip:%61lice@example.com>;tag=e5c4\n\
Contact: <sip:%D8%A7lice%00@192.0.2.7>\n\
Call-ID: esc.4475\n\
CSeq: 1 RE%47IST%45R\n\
Content-Length: 0\n\n",
            ),
            |m| {
                assert_eq!(m.method_bytes(), b"RE%47IST%45R");
                assert_eq!(
                    m.request_uri().unwrap(),
                    b"sip:%61lice%00%20@registrar.example.com;p=%zz"
                );
                assert_eq!(value(m, HeaderName::Contact), b"<sip:%D8%A7lice%00@192.0.2.7>");
            },
        ),
        ok(
            "3.1.1.6 no white space between display name and <",
            crlf(
                "OPTIONS sip:dave@example.net SIP/2.0\n\
From: caller<sip:caller@example.com>;tag=323\n\
To: dave<sip:dave@example.net>\n\
Call-ID: lwsdisp.1\n\
CSeq: 9 OPTIONS\n\
l: 0\n\n",
            ),
            |m| {
                assert_eq!(value(m, HeaderName::From), b"caller<sip:caller@example.com>;tag=323");
                assert_eq!(value(m, HeaderName::To), b"dave<sip:dave@example.net>");
            },
        ),
        ok("3.1.1.7 long values, long names, many Vias", long_request(), |m| {
            let long_user = "u".repeat(1000);
            let uri = format!("sip:{long_user}@example.com");
            assert_eq!(m.request_uri().unwrap(), uri.as_bytes());
            assert_eq!(m.headers_of(HeaderName::Via).count(), 40);
            let name = "X-".to_string() + &"n".repeat(200);
            let v = values(m, name.as_bytes());
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].len(), 6000);
            assert!(v[0].iter().all(|&b| b == b'v'));
            assert_eq!(value(m, HeaderName::To).len(), "<sip:>".len() + 2000);
            assert_eq!(m.body(), b"body");
        }),
        ok(
            "3.1.1.8 extra octets after Content-Length in a datagram",
            crlf(
                "REGISTER sip:example.com SIP/2.0\n\
To: <sip:j.user@example.com>\n\
From: <sip:j.user@example.com>;tag=43251j3j324\n\
Call-ID: dblreq.0ha0isndaksdj99sdfafnl3lk233412\n\
CSeq: 8 REGISTER\n\
Content-Length: 0\n\
\n\
INVITE sip:joe@example.com SIP/2.0\n\
Call-ID: second.message.in.the.datagram\n\
Content-Length: 0\n\n",
            ),
            |m| {
                assert_eq!(m.method_bytes(), b"REGISTER");
                assert!(m.body().is_empty());
                assert_eq!(m.headers().len(), 5);
                assert_eq!(m.call_id().unwrap(), b"dblreq.0ha0isndaksdj99sdfafnl3lk233412");
                assert!(m.len() < m.buf().len());
                assert!(m.buf()[..m.len()].ends_with(b"Content-Length: 0\r\n\r\n"));
            },
        ),
        ok(
            "3.1.1.9-10 semicolons in the user part, unknown transports",
            crlf(
                "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\n\
Via: SIP/2.0/UNKNOWN t1.example.com;branch=z9hG4bKunk\n\
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKsctp\n\
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bKtls\n\
Call-ID: semiuri.1\n\
CSeq: 1 OPTIONS\n\
Content-Length: 0\n\n",
            ),
            |m| {
                assert_eq!(m.request_uri().unwrap(), b"sip:user;par=u%40example.net@example.com");
                assert_eq!(m.headers_of(HeaderName::Via).count(), 3);
                assert_eq!(value(m, HeaderName::Via), b"SIP/2.0/UNKNOWN t1.example.com;branch=z9hG4bKunk");
            },
        ),
        ok("3.1.1.11 multipart body with binary octets", multipart(), |m| {
            assert_eq!(m.body().len(), 100);
            assert!(m.body().contains(&0));
            assert!(m.body().windows(3).any(|w| w == b"\r\x00\n"));
            assert!(m.body().ends_with(b"--b1--\r\n"));
        }),
        ok(
            "3.1.1.12 UTF-8 and punctuation in the reason phrase",
            crlf(
                "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять — простое\n\
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\n\
Call-ID: unreason.1234ksdfak3j2erwedfsASdf\n\
CSeq: 35 INVITE\n\
From: sip:user@example.com;tag=11141343\n\
To: sip:user@example.edu;tag=2229\n\
Content-Length: 0\n\n",
            ),
            |m| {
                assert_eq!(m.status(), Some(200));
                assert_eq!(
                    m.reason().unwrap(),
                    "= 2**3 * 5**2 но сто девяносто девять — простое".as_bytes()
                );
                assert_eq!(m.method_bytes(), b"INVITE");
            },
        ),
        ok(
            "3.1.1.13 empty reason phrase",
            crlf("SIP/2.0 100 \nCSeq: 35 INVITE\nl: 0\n\n"),
            |m| {
                assert_eq!(m.status(), Some(100));
                assert_eq!(m.reason().unwrap(), b"");
            },
        ),
        ok(
            "status line without reason and without the space",
            crlf("SIP/2.0 486\nCSeq: 1 BYE\n\n"),
            |m| {
                assert_eq!(m.status(), Some(486));
                assert_eq!(m.method_bytes(), b"BYE");
            },
        ),
        ok("every compact form", compact_forms(), |m| {
            for (c, id) in [
                (b"i", HeaderName::CallId),
                (b"m", HeaderName::Contact),
                (b"e", HeaderName::ContentEncoding),
                (b"c", HeaderName::ContentType),
                (b"f", HeaderName::From),
                (b"s", HeaderName::Subject),
                (b"k", HeaderName::Supported),
                (b"t", HeaderName::To),
                (b"v", HeaderName::Via),
                (b"a", HeaderName::AcceptContact),
                (b"j", HeaderName::RejectContact),
                (b"d", HeaderName::RequestDisposition),
                (b"r", HeaderName::ReferTo),
                (b"b", HeaderName::ReferredBy),
                (b"x", HeaderName::SessionExpires),
                (b"y", HeaderName::Identity),
                (b"n", HeaderName::IdentityInfo),
                (b"u", HeaderName::AllowEvents),
                (b"o", HeaderName::Event),
            ] {
                let h = m.header(id).unwrap_or_else(|| panic!("{id:?}"));
                assert!(m.name(h).eq_ignore_ascii_case(c), "{id:?}");
                assert_eq!(m.value(h), format!("{}-value", c[0] as char).as_bytes());
            }
            // Not compact forms: unknown one-letter names stay Other.
            assert_eq!(values(m, b"q"), [b"q-value"]);
            assert_eq!(m.header(HeaderName::Other).map(|h| m.name(h)), Some(&b"q"[..]));
            assert_eq!(value(m, HeaderName::ContentLength), b"7");
            assert_eq!(m.body(), b"l-value");
        }),
        ok(
            "LF-only lines",
            raw(b"MESSAGE sip:a@example.com SIP/2.0\nCall-ID: lf\nSubject: a\n b\nContent-Length: 3\n\nabcdef"),
            |m| {
                assert_eq!(m.call_id().unwrap(), b"lf");
                assert_eq!(value(m, HeaderName::Subject), b"a\n b");
                assert_eq!(m.body(), b"abc");
            },
        ),
        ok(
            "mixed CRLF and LF line endings",
            raw(b"MESSAGE sip:a@example.com SIP/2.0\r\nCall-ID: mixed\nCSeq: 2 MESSAGE\r\nl: 2\n\r\nxy"),
            |m| {
                assert_eq!(m.headers().len(), 3);
                assert_eq!(value(m, HeaderName::CSeq), b"2 MESSAGE");
                assert_eq!(m.body(), b"xy");
            },
        ),
        ok(
            "leading CRLFs before the start line (RFC 3261 §7.5)",
            raw(b"\r\n\r\n\n\r\nOPTIONS sip:x@example.com SIP/2.0\r\nCall-ID: lead\r\n\r\n"),
            |m| {
                assert_eq!(m.start_line().start, 7);
                assert_eq!(m.slice(m.start_line()), b"OPTIONS sip:x@example.com SIP/2.0");
                assert_eq!(m.call_id().unwrap(), b"lead");
            },
        ),
        ok(
            "several values in one field and one list split over fields",
            crlf(
                "INVITE sip:x@example.com SIP/2.0\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\n\
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa,\n SIP/2.0/UDP b.example.com;branch=z9hG4bKb\n\
Route: <sip:p3.example.com;lr>\n\
Supported: timer\n\
supported: 100rel, path\n\
k: replaces\n\
Content-Length: 0\n\n",
            ),
            |m| {
                let routes: Vec<&[u8]> = m.headers_of(HeaderName::Route).map(|h| m.value(h)).collect();
                assert_eq!(
                    routes,
                    [&b"<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"[..], b"<sip:p3.example.com;lr>"]
                );
                assert_eq!(
                    value(m, HeaderName::Via),
                    b"SIP/2.0/UDP a.example.com;branch=z9hG4bKa,\r\n SIP/2.0/UDP b.example.com;branch=z9hG4bKb"
                );
                assert_eq!(m.headers_of(HeaderName::Supported).count(), 3);
                assert_eq!(values(m, b"SUPPORTED"), [&b"timer"[..], b"100rel, path", b"replaces"]);
                // The index keeps wire order across names.
                let ids: Vec<HeaderName> = m.headers().iter().map(|h| h.id).collect();
                assert_eq!(ids[0], HeaderName::Route);
                assert_eq!(ids[2], HeaderName::Route);
            },
        ),
        ok(
            "empty values, white space before the colon, tabs",
            crlf(
                "OPTIONS sip:x@example.com SIP/2.0\n\
Subject:\n\
Organization:   \t \n\
Call-ID \t : tabbed\n\
X-Tab:\tone\ttwo\t\n\
X-Colons: a:b::c\n\
Priority:\n \n\
Content-Length: 0\n\n",
            ),
            |m| {
                assert_eq!(value(m, HeaderName::Subject), b"");
                assert_eq!(values(m, b"organization"), [b""]);
                assert_eq!(m.call_id().unwrap(), b"tabbed");
                let h = m.header(HeaderName::CallId).unwrap();
                assert_eq!(m.name(h), b"Call-ID");
                assert_eq!(values(m, b"x-tab"), [b"one\ttwo"]);
                assert_eq!(values(m, b"x-colons"), [b"a:b::c"]);
                assert_eq!(value(m, HeaderName::Priority), b"");
            },
        ),
        ok(
            "UTF-8 display names and unknown methods and headers",
            crlf(
                "FROBNICATE sip:ærøskøbing@example.dk SIP/2.0\n\
From: \"Ærøskøbing 日本語 😀\" <sip:a@example.dk>;tag=u8\n\
To: Ὀδυσσεύς <sip:o@example.gr>\n\
X-Never-Heard-Of-It: surely\n\
P-Whatever-Header: 1\n\
CSeq: 4 FROBNICATE\n\
Call-ID: utf8.1\n\n",
            ),
            |m| {
                assert_eq!(m.method_bytes(), b"FROBNICATE");
                assert_eq!(m.request_uri().unwrap(), "sip:ærøskøbing@example.dk".as_bytes());
                assert_eq!(
                    value(m, HeaderName::From),
                    "\"Ærøskøbing 日本語 😀\" <sip:a@example.dk>;tag=u8".as_bytes()
                );
                assert_eq!(value(m, HeaderName::To), "Ὀδυσσεύς <sip:o@example.gr>".as_bytes());
                assert_eq!(m.headers().iter().filter(|h| h.id == HeaderName::Other).count(), 2);
                assert_eq!(values(m, b"x-never-heard-of-it"), [b"surely"]);
            },
        ),
        ok(
            "methods are case-sensitive: a lower-case invite is an unknown method",
            crlf("invite sip:x@example.com SIP/2.0\nCSeq: 1 invite\n\n"),
            |m| assert_eq!(m.method_bytes(), b"invite"),
        ),
        ok(
            "the SIP-Version token is case-insensitive (RFC 3261 §7.1)",
            crlf("OPTIONS sip:x@example.com sip/2.0\nCall-ID: v\n\n"),
            |m| assert_eq!(m.call_id().unwrap(), b"v"),
        ),
        ok(
            "3.1.2.10 SP and HTAB after the version on the request line",
            crlf("OPTIONS sip:remote@example.com SIP/2.0 \t \nCall-ID: trws\n\n"),
            |m| assert_eq!(m.request_uri().unwrap(), b"sip:remote@example.com"),
        ),
        ok(
            "many header fields, under the limit",
            many_headers(Limits::default().max_headers),
            |m| {
                assert_eq!(m.headers().len(), Limits::default().max_headers);
                assert_eq!(values(m, b"x-h255"), [b"value 255"]);
            },
        ),
        ok(
            "Content-Length: leading zeros, folded value, equal duplicates",
            crlf("MESSAGE sip:x@example.com SIP/2.0\nl: 0003\nContent-Length:\n   3\n\nabcXYZ"),
            |m| {
                assert_eq!(m.body(), b"abc");
                assert_eq!(m.headers_of(HeaderName::ContentLength).count(), 2);
                assert_eq!(m.slice(m.content_length_span().unwrap()), b"0003");
            },
        ),
        ok(
            "3.1.2.2 Content-Length larger than the message: kept short, as Kamailio routes it",
            crlf("INVITE sip:x@example.com SIP/2.0\nContent-Length: 9999\n\nv=0\n"),
            |m| {
                assert_eq!(m.body(), b"v=0\r\n");
                assert_eq!(m.declared_content_length(), Some(9999));
                assert!(m.is_body_short());
            },
        ),
        ok(
            "body shorter than Content-Length by one",
            crlf("MESSAGE sip:x@example.com SIP/2.0\nl: 6\n\nfive!"),
            |m| {
                assert_eq!(m.body(), b"five!");
                assert_eq!(m.declared_content_length(), Some(6));
            },
        ),
        ok(
            "Content-Length but no empty line",
            crlf("MESSAGE sip:x@example.com SIP/2.0\nl: 1\n"),
            |m| {
                assert_eq!(m.body(), b"");
                assert_eq!(m.declared_content_length(), Some(1));
            },
        ),
        ok(
            "nine-digit Content-Length",
            crlf("INVITE sip:x@example.com SIP/2.0\nContent-Length: 999999999\n\n"),
            |m| assert_eq!(m.declared_content_length(), Some(999_999_999)),
        ),
        ok(
            "no Content-Length: the body runs to the end of the datagram",
            crlf("MESSAGE sip:x@example.com SIP/2.0\nCall-ID: nocl\n\nline one\nline two\n"),
            |m| {
                assert_eq!(m.body(), b"line one\r\nline two\r\n");
                assert!(m.content_length_span().is_none());
            },
        ),
        ok(
            "body longer than Content-Length is cut (RFC 3261 §18.3)",
            crlf("MESSAGE sip:x@example.com SIP/2.0\nContent-Length: 4\n\nfour and more"),
            |m| {
                assert_eq!(m.body(), b"four");
                assert_eq!(m.len(), m.buf().len() - 9);
            },
        ),
        ok(
            "NUL, bare CR and DEL in the body are just octets",
            raw(b"MESSAGE sip:x@example.com SIP/2.0\r\nContent-Length: 6\r\n\r\na\0b\rc\x7f"),
            |m| assert_eq!(m.body(), b"a\0b\rc\x7f"),
        ),
        ok(
            "missing empty line after the last header",
            crlf("OPTIONS sip:x@example.com SIP/2.0\nCall-ID: noeoh\nCSeq: 1 OPTIONS\n"),
            |m| {
                assert!(!m.has_end_of_headers());
                assert_eq!(m.headers().len(), 2);
                assert!(m.body().is_empty());
            },
        ),
        ok(
            "message ends inside the last header line",
            raw(b"OPTIONS sip:x@example.com SIP/2.0\r\nCall-ID: cut"),
            |m| {
                assert!(!m.has_end_of_headers());
                assert_eq!(m.call_id().unwrap(), b"cut");
            },
        ),
        ok(
            "3.1.2.1 extraneous ; and , in Via and Contact (rejected by the views)",
            crlf(
                "INVITE sip:user@example.com SIP/2.0\n\
Via: SIP/2.0/UDP 192.0.2.15;;,;,,\n\
Contact: \"Joe\" <sip:joe@example.org>;;;;\n\
Call-ID: badinv01.1\n\
CSeq: 8 INVITE\n\
l: 0\n\n",
            ),
            |m| {
                assert_eq!(value(m, HeaderName::Via), b"SIP/2.0/UDP 192.0.2.15;;,;,,");
                assert_eq!(value(m, HeaderName::Contact), b"\"Joe\" <sip:joe@example.org>;;;;");
            },
        ),
        ok(
            "3.1.2.4-5 overlarge scalar values (rejected by the views)",
            crlf(
                "REGISTER sip:example.com SIP/2.0\n\
Max-Forwards: 300\n\
Expires: 10000000000000\n\
CSeq: 36893488147419103232 REGISTER\n\
Contact: <sip:u@192.0.2.1>;expires=280297596632815\n\
Retry-After: 18446744073709551616\n\
l: 0\n\n",
            ),
            |m| {
                assert_eq!(value(m, HeaderName::CSeq), b"36893488147419103232 REGISTER");
                assert_eq!(value(m, HeaderName::Expires), b"10000000000000");
                assert_eq!(value(m, HeaderName::RetryAfter), b"18446744073709551616");
            },
        ),
        ok(
            "3.1.2.6 unterminated quoted string (rejected by the views)",
            crlf("INVITE sip:user@example.com SIP/2.0\nFrom: \"Mr. J. User <sip:j.user@example.com>;tag=93334\nl: 0\n\n"),
            |m| assert_eq!(value(m, HeaderName::From), b"\"Mr. J. User <sip:j.user@example.com>;tag=93334"),
        ),
        ok(
            "3.1.2.7 and 3.1.2.11 <> around, and escaped headers in, the Request-URI (URI view rejects)",
            crlf("INVITE <sip:user@example.com?Route=%3Csip:example.com%3E> SIP/2.0\nl: 0\n\n"),
            |m| {
                assert_eq!(
                    m.request_uri().unwrap(),
                    b"<sip:user@example.com?Route=%3Csip:example.com%3E>"
                )
            },
        ),
        ok(
            "3.1.2.12-15 bad Date, unbracketed URI with params, spaces in addr-spec, non-token display name",
            crlf(
                "INVITE sip:user@example.com SIP/2.0\n\
Date: Fri, 01 Jan 2010 16:00:00 EST\n\
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\n\
To: sip:user@example.com; tag = 1\n\
From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43\n\
l: 0\n\n",
            ),
            |m| {
                assert_eq!(value(m, HeaderName::Date), b"Fri, 01 Jan 2010 16:00:00 EST");
                assert_eq!(value(m, HeaderName::From), b"Bell, Alexander <sip:a.g.bell@example.com>;tag=43");
            },
        ),
        ok(
            "3.1.2.17-18 start line and CSeq method disagree (a transaction-layer matter)",
            crlf("OPTIONS sip:user@example.com SIP/2.0\nCSeq: 8 INVITE\nl: 0\n\n"),
            |m| {
                assert_eq!(m.method_bytes(), b"OPTIONS");
                assert_eq!(value(m, HeaderName::CSeq), b"8 INVITE");
            },
        ),
        ok(
            "HTTP/1.1 request on a SIP port (for xhttp), kept apart from SIP",
            crlf("POST /RPC?x=1 http/1.1\nHost: example.com\nContent-Length: 2\n\n{}"),
            |m| {
                assert!(m.is_http() && m.is_request());
                assert_eq!(m.method_bytes(), b"POST");
                assert_eq!(m.request_uri(), Some(&b"/RPC?x=1"[..]));
                assert_eq!(m.request_version(), Some(&b"http/1.1"[..]));
                assert_eq!(m.body(), b"{}");
            },
        ),
    ]
}

fn invalid_messages() -> Vec<Case> {
    use ErrorKind::*;
    vec![
        err("empty datagram", raw(b""), Empty),
        err("only CRLFs (keep-alive)", raw(b"\r\n\r\n"), Empty),
        err("only white space", raw(b"\r\n  \t \r\n"), Empty),
        err("start line without spaces", crlf("INVITE\n\n"), BadStartLine),
        err("request line without a version", crlf("INVITE sip:x@example.com\n\n"), BadStartLine),
        err("request line without a URI", crlf("INVITE SIP/2.0\n\n"), BadStartLine),
        err("3.1.2.16 unknown protocol version", crlf("INVITE sip:x@example.com SIP/7.0\nl: 0\n\n"), BadVersion),
        err("version with extra digits", crlf("INVITE sip:x@example.com SIP/2.00\n\n"), BadVersion),
        err("HTTP/2 has no request line", crlf("GET / HTTP/2.0\nHost: example.com\n\n"), BadVersion),
        err("HTTP/1.10 is no version", crlf("GET / HTTP/1.10\nHost: example.com\n\n"), BadVersion),
        err("response with an unknown version", crlf("SIP/2.1 200 OK\n\n"), BadVersion),
        err("status line from another protocol", crlf("HTTP/1.1 200 OK\n\n"), BadMethod),
        err("SIPS is not a version", crlf("SIPS/2.0 200 OK\n\n"), BadMethod),
        err("non-token method", crlf("INV@ITE sip:x@example.com SIP/2.0\n\n"), BadMethod),
        err("non-ASCII method", crlf("ÍNVITE sip:x@example.com SIP/2.0\n\n"), BadMethod),
        err("3.1.2.8 white space inside the Request-URI", crlf("INVITE sip:user@example.com; lr SIP/2.0\n\n"), BadUri),
        err("3.1.2.9 several SP between request line elements", crlf("INVITE  sip:user@example.com  SIP/2.0\n\n"), BadUri),
        err("HTAB inside the Request-URI", crlf("INVITE sip:a\tb@example.com SIP/2.0\n\n"), BadUri),
        err("DEL inside the Request-URI", raw(b"INVITE sip:a\x7fb@example.com SIP/2.0\r\n\r\n"), BadUri),
        err("3.1.2.19 overlarge response code", crlf("SIP/2.0 4294967301 better not break the receiver\n\n"), BadStatus),
        err("status code below 100", crlf("SIP/2.0 099 Too Low\n\n"), BadStatus),
        err("status code above 699", crlf("SIP/2.0 700 Too High\n\n"), BadStatus),
        err("status code not a number", crlf("SIP/2.0 2x0 OK\n\n"), BadStatus),
        err("status code glued to the reason", crlf("SIP/2.0 200OK\n\n"), BadStatus),
        err("two SP before the status code", crlf("SIP/2.0  200 OK\n\n"), BadStatus),
        err("3.1.2.3 negative Content-Length", crlf("INVITE sip:x@example.com SIP/2.0\nContent-Length: -999\n\n"), BadContentLength),
        err("Content-Length with a sign", crlf("INVITE sip:x@example.com SIP/2.0\nContent-Length: +0\n\n"), BadContentLength),
        err("Content-Length in hex", crlf("INVITE sip:x@example.com SIP/2.0\nContent-Length: 0x10\n\n"), BadContentLength),
        err("Content-Length as a list", crlf("INVITE sip:x@example.com SIP/2.0\nContent-Length: 0, 0\n\n"), BadContentLength),
        err("Content-Length with a fold inside the number", crlf("INVITE sip:x@example.com SIP/2.0\nContent-Length: 1\n 0\n\n0123456789"), BadContentLength),
        err("empty Content-Length", crlf("INVITE sip:x@example.com SIP/2.0\nContent-Length:\n\n"), BadContentLength),
        err("huge Content-Length", crlf("INVITE sip:x@example.com SIP/2.0\nContent-Length: 99999999999999999999999\n\n"), BadContentLength),
        err("Content-Length just above u32", crlf("INVITE sip:x@example.com SIP/2.0\nContent-Length: 4294967296\n\n"), BadContentLength),
        err("conflicting Content-Length fields", crlf("MESSAGE sip:x@example.com SIP/2.0\nContent-Length: 2\nl: 3\n\nabc"), BadContentLength),
        err("NUL in a header value", raw(b"OPTIONS sip:x@example.com SIP/2.0\r\nSubject: a\0b\r\n\r\n"), BadCharacter),
        err("NUL after an escaped backslash", raw(b"OPTIONS sip:x@example.com SIP/2.0\r\nSubject: \"\\\\\0\"\r\n\r\n"), BadCharacter),
        err("escaped NUL in a reason phrase", raw(b"SIP/2.0 200 O\\\0K\r\n\r\n"), BadCharacter),
        err("escaped NUL in the Request-URI", raw(b"OPTIONS sip:x\\\0@example.com SIP/2.0\r\n\r\n"), BadUri),
        err("escaped CR is not a quoted-pair", raw(b"OPTIONS sip:x@example.com SIP/2.0\r\nSubject: \"\\\r\"\r\n\r\n"), BadCharacter),
        err("NUL in a header name", raw(b"OPTIONS sip:x@example.com SIP/2.0\r\nSub\0ject: ab\r\n\r\n"), BadCharacter),
        err("NUL in the request line", raw(b"OPTIONS sip:x\0@example.com SIP/2.0\r\n\r\n"), BadCharacter),
        err("NUL as a whole line", raw(b"OPTIONS sip:x@example.com SIP/2.0\r\n\0\r\n\r\n"), BadCharacter),
        err("bare CR inside a value", raw(b"OPTIONS sip:x@example.com SIP/2.0\r\nSubject: a\rb\r\n\r\n"), BadCharacter),
        err("bare CR as a line ending", raw(b"OPTIONS sip:x@example.com SIP/2.0\rCall-ID: a\r\r\n"), BadCharacter),
        err("CR CR LF", raw(b"OPTIONS sip:x@example.com SIP/2.0\r\nCall-ID: a\r\r\n\r\n"), BadCharacter),
        err("datagram ending in CR", raw(b"OPTIONS sip:x@example.com SIP/2.0\r\nCall-ID: a\r"), BadCharacter),
        err("header line without a colon", crlf("OPTIONS sip:x@example.com SIP/2.0\nCall-ID abc\n\n"), BadHeaderName),
        err("missing empty line before an SDP body", crlf("INVITE sip:x@example.com SIP/2.0\nContent-Type: application/sdp\nv=0\no=- 1 1 IN IP4 192.0.2.1\n"), BadHeaderName),
        err("empty header name", crlf("OPTIONS sip:x@example.com SIP/2.0\n: value\n\n"), BadHeaderName),
        err("space inside a header name", crlf("OPTIONS sip:x@example.com SIP/2.0\nCall ID: abc\n\n"), BadHeaderName),
        err("non-token character in a header name", crlf("OPTIONS sip:x@example.com SIP/2.0\nX(y): 1\n\n"), BadHeaderName),
        err("UTF-8 in a header name", crlf("OPTIONS sip:x@example.com SIP/2.0\nÜber: 1\n\n"), BadHeaderName),
        err("continuation line before any header", crlf("OPTIONS sip:x@example.com SIP/2.0\n Call-ID: abc\n\n"), BadHeaderName),
        err("too many header fields", many_headers(Limits::default().max_headers + 1), TooManyHeaders),
        err("a line longer than the limit", long_line(), LineTooLong),
        err("a datagram larger than the limit", too_large(), TooLarge),
    ]
}

/// §3.1.1.7: a long Request-URI, a long To, a long unknown header name and
/// value, forty Vias.
fn long_request() -> Vec<u8> {
    let mut text = format!(
        "INVITE sip:{}@example.com SIP/2.0\r\nTo: <sip:{}>\r\n",
        "u".repeat(1000),
        "t".repeat(2000)
    );
    for i in 0..40 {
        text += &format!(
            "Via: SIP/2.0/UDP host{i}.example.com;branch=z9hG4bK{}\r\n",
            "b".repeat(100)
        );
    }
    text += &format!("X-{}: {}\r\n", "n".repeat(200), "v".repeat(6000));
    text += "Call-ID: longreq\r\nContent-Length: 4\r\n\r\nbody";
    text.into_bytes()
}

fn multipart() -> Vec<u8> {
    let mut body = b"--b1\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    body.extend_from_slice(b"\0\x01\x02\r\x00\n\xff\xfe\r\n\r\n\x80\x81");
    while body.len() < 92 {
        body.push(0);
    }
    body.extend_from_slice(b"--b1--\r\n");
    let mut text = format!(
        "MESSAGE sip:x@example.com SIP/2.0\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    text.extend_from_slice(&body);
    text
}

fn compact_forms() -> Vec<u8> {
    let mut text = b"INVITE sip:x@example.com SIP/2.0\r\n".to_vec();
    // Every compact form but `l` (which frames the body below), one in upper
    // case, and `q`, which is not one.
    for c in "imecfskTvajdrbxynuoq".chars() {
        let v = c.to_ascii_lowercase();
        text.extend_from_slice(format!("{c}: {v}-value\r\n").as_bytes());
    }
    text.extend_from_slice(b"L: 7\r\n\r\nl-value");
    text
}

fn many_headers(n: usize) -> Vec<u8> {
    let mut text = b"OPTIONS sip:x@example.com SIP/2.0\r\n".to_vec();
    for i in 0..n {
        text.extend_from_slice(format!("X-H{i}: value {i}\r\n").as_bytes());
    }
    text.extend_from_slice(b"\r\n");
    text
}

fn long_line() -> Vec<u8> {
    let mut text = b"OPTIONS sip:x@example.com SIP/2.0\r\nSubject: ".to_vec();
    text.resize(text.len() + Limits::default().max_line, b's');
    text.extend_from_slice(b"\r\n\r\n");
    text
}

fn too_large() -> Vec<u8> {
    let mut text = crlf("MESSAGE sip:x@example.com SIP/2.0\nContent-Length: 65500\n\n");
    text.resize(Limits::default().max_message + 1, b'b');
    text
}

/// The header index as comparable values: (id, name, value) of each field.
fn index(m: &Message) -> Vec<(HeaderName, Vec<u8>, Vec<u8>)> {
    m.headers()
        .iter()
        .map(|h| (h.id, m.name(h).to_vec(), m.value(h).to_vec()))
        .collect()
}

#[test]
fn torture_table() {
    let mut failures = Vec::new();
    let cases: Vec<Case> = valid_messages()
        .into_iter()
        .chain(invalid_messages())
        .collect();
    for case in &cases {
        let buf = Bytes::copy_from_slice(&case.text);
        let outcome = std::panic::catch_unwind(|| match (&case.expect, Message::parse(buf)) {
            (Expect::Ok(check), Ok(m)) => {
                check(&m);
                // Serialized with no edits and parsed again, the index is the same.
                let mut out = Vec::new();
                serialize(&m, &Edits::new(), &mut out);
                let again = Message::parse(Bytes::from(out)).expect("serialized message parses");
                assert_eq!(index(&again), index(&m));
                assert_eq!(again.body(), m.body());
                assert_eq!(again.slice(again.start_line()), m.slice(m.start_line()));
                Ok(())
            }
            (Expect::Err(kind), Err(e)) => {
                assert_eq!(e.kind, *kind, "{e}");
                assert!(e.offset <= case.text.len());
                if e.kind == ErrorKind::BadCharacter {
                    assert!(
                        matches!(case.text[e.offset], b'\0' | b'\r'),
                        "offset {}",
                        e.offset
                    );
                }
                Ok(())
            }
            (Expect::Ok(_), Err(e)) => Err(format!("expected Ok, got {e:?}")),
            (Expect::Err(kind), Ok(_)) => Err(format!("expected {kind:?}, got Ok")),
        });
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{}: {why}", case.name)),
            Err(_) => failures.push(format!("{}: assertion failed (see above)", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 80, "{} rows", cases.len());
}
