//! The VM allocates nothing for a typical request_route that only compares
//! (method, `$rm`, `$ru`, `uri == myself`, regular expressions, `$var`
//! integers, the source address) and calls functions with constant
//! arguments. Counted with a global allocator that counts per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ringsip::script::compile::compile;
use ringsip::script::ctx::{CoreState, Env, MsgCtx, SocketInfo};
use ringsip::script::registry::RouteType;
use ringsip::script::vm::{run_route, Outcome};
use ringsip::script::{parse_str, MemoryFiles, Options};
use ringsip::sip::{Inbound, Message, Proto};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

const CFG: &str = r#"#!KAMAILIO
debug=2
listen=udp:127.0.0.1:5060
loadmodule "sl.so"
loadmodule "xlog.so"
loadmodule "textops.so"

request_route {
    if (!is_method("INVITE|BYE|OPTIONS|REGISTER")) {
        exit;
    }
    $var(n) = 1;
    $var(n) = $var(n) + 1;
    if ($var(n) != 2) {
        exit;
    }
    if ($ua =~ "friendly|scanner|sipcli|sipvicious") {
        exit;
    }
    if ($rm == "INVITE" && method == "invite") {
        setflag(1);
    }
    if ($tt == $null && !is_present_hf("Route") && is_present_hf("Max-Forwards")) {
        $var(initial) = 1;
    }
    if (uri == myself) {
        exit;
    }
    if ($ru =~ "^sip:" && $rU != $null && $rd == "example.com" && $rp == 5060) {
        $var(ok) = 1;
    }
    if (src_ip == 127.0.0.0/8 && $si == "127.0.0.1" && $sp > 1024 && $pr == "udp") {
        $var(local) = 1;
    }
    switch ($rm) {
        case "INVITE":
            route(INVITE);
            break;
        default:
            exit;
    }
    xdbg("not evaluated below the log level: $ru $fu\n");
    if (isflagset(1) && $var(ok) == 1 && $var(local) == 1 && $rc == 1) {
        return;
    }
    exit;
}

route[INVITE] {
    if ($hdr(CSeq) =~ "INVITE$" && $(hdr(Via)[0]) != $null && $cs > 0) {
        return 1;
    }
    return -1;
}
"#;

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=abc\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1@host\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5099>\r\n\
User-Agent: test-ua\r\n\
Content-Length: 0\r\n\r\n";

/// The compiled `cfg`, an environment with one UDP socket at 127.0.0.1:5060,
/// and `msg` arriving on it from `src`.
fn setup(
    cfg: &str,
    msg: &'static [u8],
    src: &str,
) -> (Arc<ringsip::script::ir::Program>, Env, Inbound) {
    let files = MemoryFiles::default();
    let cfg = parse_str("alloc.cfg", cfg, &Options::with_files(&files)).expect("parses");
    let program = Arc::new(compile(&cfg).expect("compiles").program);
    let env = Env {
        sockets: vec![SocketInfo {
            proto: Proto::Udp,
            addr: "127.0.0.1:5060".parse().unwrap(),
            advertise: None,
        }],
        ..Env::for_program(&program)
    };
    let pkt = Inbound {
        data: Bytes::from_static(msg),
        src: src.parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    (program, env, pkt)
}

#[test]
fn typical_request_route_allocates_nothing() {
    let (program, env, pkt) = setup(CFG, INVITE, "127.0.0.1:5099");
    let request_route = program.request_route.expect("request_route");
    let msg = Message::parse(pkt.data.clone()).expect("parses");
    let mut core = CoreState::new(&program);
    let mut out = Vec::with_capacity(4);
    let now = Instant::now();

    let mut run = || {
        let mut ctx = MsgCtx::new(
            &env,
            &program,
            &mut core,
            &msg,
            &pkt,
            now,
            RouteType::Request,
            &mut out,
        );
        let outcome = run_route(&mut ctx, request_route);
        (outcome, ctx.flags)
    };
    // The first run warms what is made once (the regex engines' caches).
    assert_eq!(
        run(),
        (Outcome::Done(1), 2),
        "the route takes the expected path"
    );
    let before = allocs();
    for _ in 0..100 {
        assert_eq!(run().0, Outcome::Done(1));
    }
    let n = allocs() - before;
    assert_eq!(n, 0, "{n} allocations in 100 runs of the route");

    // The counter does count on this thread.
    let before = allocs();
    let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(64));
    drop(v);
    assert!(allocs() > before);
}

const FWD_CFG: &str = r#"#!KAMAILIO
debug=2
listen=udp:127.0.0.1:5060
loadmodule "rr.so"
loadmodule "maxfwd.so"

request_route {
    if (!mf_process_maxfwd_header("10")) {
        exit;
    }
    record_route();
    forward();
}
"#;

const FWD_INVITE: &[u8] = b"INVITE sip:bob@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.2:5099;branch=z9hG4bK-1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=abc\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1@host\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@127.0.0.2:5099>\r\n\
Content-Length: 0\r\n\r\n";

/// What forwarding one request costs in heap allocations, counted so that a
/// change that adds one shows up: one per new piece of text the edit list
/// holds (`=5099` for the empty rport, `;received=127.0.0.2`), and the
/// serialized datagram. Nothing is formatted through a String; the ftag and
/// Max-Forwards' new value need no heap (a handle on the message, a static
/// table); the Record-Route and Via lines go to the serializer from the
/// stack. It was 14, then 5 before they did.
#[test]
fn forwarding_a_request_allocates_only_its_edits() {
    let (program, env, pkt) = setup(FWD_CFG, FWD_INVITE, "127.0.0.2:5099");
    let request_route = program.request_route.expect("request_route");
    let msg = Message::parse(pkt.data.clone()).expect("parses");
    let mut core = CoreState::new(&program);
    let mut out = Vec::with_capacity(4);
    let now = Instant::now();

    let mut run = |out: &mut Vec<ringsip::sip::Transmit>| {
        out.clear();
        let mut ctx = MsgCtx::new(
            &env,
            &program,
            &mut core,
            &msg,
            &pkt,
            now,
            RouteType::Request,
            out,
        );
        run_route(&mut ctx, request_route)
    };
    run(&mut out);
    assert_eq!(out.len(), 1, "the request is forwarded");
    let sent = String::from_utf8_lossy(&out[0].data).into_owned();
    assert!(
        sent.starts_with("INVITE sip:bob@127.0.0.1:5070 SIP/2.0\r\nRecord-Route: <sip:127.0.0.1;lr;ftag=abc>\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK"),
        "{sent}"
    );
    assert!(
        sent.contains(
            "127.0.0.2:5099;received=127.0.0.2;branch=z9hG4bK-1;rport=5099\r\nMax-Forwards: 69\r\n"
        ),
        "{sent}"
    );
    let before = allocs();
    for _ in 0..100 {
        run(&mut out);
    }
    let per_request = (allocs() - before) / 100;
    assert_eq!(per_request, 3, "allocations per forwarded request");
}
