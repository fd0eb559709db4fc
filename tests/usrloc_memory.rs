//! Memory per stored contact, measured with a counting allocator: 20,000 AoRs
//! with one contact each, the bytes the heap grew by, minus the bytes of the
//! strings themselves. DESIGN target: under 512 bytes plus strings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use ringsip::modules::usrloc::{Domain, Ucontact, ALL_METHODS};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn memory_per_contact() {
    const N: usize = 20_000;
    let dom = Domain::new("location", 10);
    let mut string_bytes = 0usize;
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..N {
        let aor = format!("user{i}");
        let c = Ucontact {
            contact: format!("sip:user{i}@192.168.{}.{}:5060", i / 250 % 250, i % 250).into(),
            ruid: format!("uloc-6b047a79-{i}").into(),
            callid: format!("{i:08x}-callid@10.0.0.1").into(),
            received: None,
            path: None,
            user_agent: Some("Linphone/5.2 (belle-sip/5.2)".into()),
            socket: Some("udp:10.0.0.1:5060".into()),
            instance: None,
            expires: 1_700_003_600,
            last_modified: 1_700_000_000,
            cseq: 1,
            q: -1,
            flags: 0,
            cflags: 0,
            methods: ALL_METHODS,
            reg_id: 0,
            dirty: false,
        };
        string_bytes += aor.len()
            + c.contact.len()
            + c.ruid.len()
            + c.callid.len()
            + c.user_agent.as_deref().map_or(0, str::len)
            + c.socket.as_deref().map_or(0, str::len);
        dom.update(&aor, |r| r.contacts.push(c));
    }
    let grown = (LIVE.load(Ordering::Relaxed) - before) as usize;
    let per_contact = grown / N;
    let overhead = (grown - string_bytes) / N;
    println!(
        "usrloc memory: {per_contact} bytes per contact in all, {overhead} without its {} bytes of strings (Ucontact {} bytes)",
        string_bytes / N,
        std::mem::size_of::<Ucontact>()
    );
    assert!(overhead < 512, "{overhead} bytes of overhead per contact");
    assert_eq!(dom.counts(), (N, N));
}
