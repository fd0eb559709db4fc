//! Parsing does not touch the heap (DESIGN.md "Parsing and editing": the
//! parser records offsets into the received buffer; nothing is copied).
//!
//! A counting global allocator wraps the system one; counting is per thread
//! and only inside `heap_use`, so tests running in parallel do not disturb
//! each other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use ringsip::sip::{serialize, Edits, HeaderName, Message};

/// A typical INVITE with SDP, 998 bytes, 13 header fields, 309 bytes of SDP.
const INVITE: &[u8] = include_bytes!("data/invite.sip");

struct Counting;

thread_local! {
    // `const` initializers with no destructor: reading them never allocates
    // and never registers anything, so the allocator may use them.
    static ON: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static FREES: Cell<usize> = const { Cell::new(0) };
}

fn note(counter: &'static std::thread::LocalKey<Cell<usize>>) {
    // `try_with`: never panic inside the allocator, even during thread teardown.
    let on = ON.try_with(Cell::get).unwrap_or(false);
    if on {
        let _ = counter.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// implements `GlobalAlloc` correctly; the only other work is bumping a
// thread-local counter, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: the caller upholds `alloc_zeroed`'s contract for `layout`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: `ptr` was allocated by `System` (every allocation goes
        // through this wrapper) with `layout`; the caller upholds the rest.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(&FREES);
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with how many allocations (including
/// reallocations) and frees it made on this thread.
fn heap_use<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
    ALLOCS.with(|n| n.set(0));
    FREES.with(|n| n.set(0));
    ON.with(|on| on.set(true));
    let r = f();
    ON.with(|on| on.set(false));
    (r, ALLOCS.with(Cell::get), FREES.with(Cell::get))
}

#[test]
fn the_counter_sees_allocations() {
    let (v, allocs, frees) = heap_use(|| {
        let v = vec![1u8; 10];
        drop(vec![2u8; 10]);
        v
    });
    assert_eq!((v.len(), allocs, frees), (10, 2, 1));
}

#[test]
fn parsing_a_typical_invite_allocates_nothing() {
    // The buffer is the runtime's, made before the message arrives here.
    let buf = Bytes::copy_from_slice(INVITE);
    let (msg, allocs, frees) = heap_use(|| Message::parse(buf));
    let msg = msg.expect("INVITE parses");
    assert_eq!((allocs, frees), (0, 0), "parse used the heap");
    assert_eq!(msg.headers().len(), 13);
    assert_eq!(msg.body().len(), 309);
}

#[test]
fn reading_the_header_index_allocates_nothing() {
    let msg = Message::parse(Bytes::copy_from_slice(INVITE)).expect("INVITE parses");
    let (sum, allocs, frees) = heap_use(|| {
        let mut sum = 0usize;
        // Raw values of what every request handler reads first.
        for id in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
            HeaderName::MaxForwards,
            HeaderName::Contact,
            HeaderName::ContentType,
        ] {
            sum += msg.header_value(id).map_or(0, <[u8]>::len);
        }
        sum += msg.call_id().map_or(0, <[u8]>::len);
        sum += msg.method_bytes().len() + msg.request_uri().map_or(0, <[u8]>::len);
        sum += msg.slice(msg.start_line()).len() + msg.body().len();
        for h in msg.headers() {
            sum += msg.name(h).len() + msg.value(h).len() + h.line.len();
        }
        sum += msg.headers_of(HeaderName::Via).count();
        sum += msg.headers_named(b"v").count() + msg.headers_named(b"user-agent").count();
        sum += msg.headers_named(b"X-Not-There").count();

        // Typed views parsed on access must not allocate either: the top
        // Via (parsed once and kept on the message), From/To with their tag,
        // the Request-URI and its parameters.
        for _ in 0..2 {
            let (_, via) = msg.top_via().expect("a Via");
            let via = via.expect("the Via parses");
            sum += via.branch().map_or(0, <[u8]>::len) + via.host_raw().len();
        }
        for id in [HeaderName::From, HeaderName::To] {
            let value = msg.header_value(id).expect("From and To");
            let na = ringsip::sip::nameaddr::NameAddr::parse(value).expect("name-addr");
            sum += na.tag().map_or(0, <[u8]>::len) + na.uri_raw().len();
        }
        let ruri = ringsip::sip::uri::Uri::parse(msg.request_uri().expect("R-URI")).expect("URI");
        sum += usize::from(ruri.lr()) + ruri.transport().map_or(0, |_| 1) + ruri.host_raw().len();

        sum
    });
    assert_eq!((allocs, frees), (0, 0), "reading used the heap");
    assert!(sum > 900);
}

#[test]
fn zero_copy_handles_allocate_nothing_once_the_buffer_is_shared() {
    let buf = Bytes::copy_from_slice(INVITE);
    // A `Bytes` made from a `Vec` becomes shared (one small allocation) the
    // first time it is cloned or sliced; a buffer the runtime has already
    // shared, as here, only has its reference count bumped.
    let keep = buf.clone();
    let msg = Message::parse(buf).expect("INVITE parses");
    let (handles, allocs, frees) = heap_use(|| {
        let via = msg.header(HeaderName::Via).expect("Via").value;
        (msg.bytes(via), msg.bytes(msg.body_span()))
    });
    assert_eq!((allocs, frees), (0, 0), "Message::bytes used the heap");
    assert_eq!(handles.1.len(), 309);
    drop(keep);
}

#[test]
fn serializing_proxy_edits_into_a_reused_buffer_allocates_nothing() {
    let msg = Message::parse(Bytes::copy_from_slice(INVITE)).expect("INVITE parses");
    let mut edits = Edits::new();
    let mut out = Vec::with_capacity(2048);
    let max_forwards = msg
        .headers()
        .iter()
        .position(|h| h.id == HeaderName::MaxForwards)
        .expect("Max-Forwards");
    let (len, allocs, frees) = heap_use(|| {
        edits.clear();
        edits.prepend_header(
            &msg,
            Bytes::from_static(b"Via: SIP/2.0/UDP 203.0.113.1;branch=z9hG4bK-rs-1\r\n"),
        );
        edits.insert_before_first(
            &msg,
            HeaderName::Via,
            Bytes::from_static(b"Record-Route: <sip:203.0.113.1;lr>\r\n"),
        );
        edits.set_request_uri(&msg, Bytes::from_static(b"sip:bob@192.0.2.200"));
        edits.replace_header_value(&msg, max_forwards, Bytes::from_static(b"68"));
        serialize(&msg, &edits, &mut out);
        out.len()
    });
    assert_eq!((allocs, frees), (0, 0), "serialize used the heap");
    assert!(len > INVITE.len());
}

#[test]
fn more_header_fields_than_the_inline_capacity_allocate_once() {
    let mut text = b"OPTIONS sip:x@example.com SIP/2.0\r\n".to_vec();
    for i in 0..40 {
        text.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
    }
    text.extend_from_slice(b"\r\n");
    let buf = Bytes::from(text);
    let (msg, allocs, _) = heap_use(|| Message::parse(buf));
    assert_eq!(msg.expect("parses").headers().len(), 40);
    // The header index spills to the heap once and grows by doubling.
    assert!((1..=3).contains(&allocs), "{allocs} allocations");
}
