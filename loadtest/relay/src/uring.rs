//! The tuned io_uring loop (DESIGN.md, "IO runtime"): the set-up that makes
//! io_uring cost no more than the plain loop.
//!
//! - `SINGLE_ISSUER | DEFER_TASKRUN`: completions are run in this thread, only
//!   when it enters the kernel to wait, so no interrupt-time task work;
//! - one multishot `recvmsg` selecting buffers from a provided buffer ring;
//! - each datagram is sent (`IORING_OP_SEND` with a destination address)
//!   straight from its receive buffer; the buffer returns to the ring when the
//!   send completes, so nothing is copied;
//! - one `io_uring_enter` per wake-up: it submits the sends queued while
//!   handling the last batch and waits for their completions plus one more.
//!   A UDP send completes inline during the submit, so waiting for "one" would
//!   return at once with the send's completion and cost a second enter per
//!   datagram (the naive set-up DESIGN.md measured at +15-25 %).

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

/// Provided buffers in the ring (a power of two, at most 32768).
const BUFFERS: u16 = 1024;
/// Bytes per provided buffer: the `io_uring_recvmsg_out` header, the source
/// address and the datagram.
const BUF_SIZE: usize = 4096;
const BUF_GROUP: u16 = 0;
const RECV_TAG: u64 = u64::MAX;
const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 4096;

/// The provided buffer ring: the ring of descriptors the kernel reads and the
/// buffers they point to, both in one anonymous mapping.
struct BufRing {
    base: *mut u8,
    map_len: usize,
    entries: *mut types::BufRingEntry,
    buffers: *mut u8,
    tail: u16,
}

impl BufRing {
    fn new(ring: &IoUring) -> io::Result<BufRing> {
        let ring_bytes = usize::from(BUFFERS) * mem::size_of::<types::BufRingEntry>();
        let map_len = ring_bytes + usize::from(BUFFERS) * BUF_SIZE;
        // SAFETY: a fresh private anonymous mapping; checked for MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = base.cast::<u8>();
        let mut br = BufRing {
            base,
            map_len,
            entries: base.cast(),
            // SAFETY: within the mapping (ring_bytes < map_len).
            buffers: unsafe { base.add(ring_bytes) },
            tail: 0,
        };
        // SAFETY: `entries` is page aligned (start of the mapping), holds
        // BUFFERS entries, and lives until `Drop`, after the ring is gone
        // (the relay never returns from its loop but on error, and the
        // kernel keeps its own reference to the pages until unregistered).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                br.entries as u64,
                BUFFERS,
                BUF_GROUP,
                0,
            )?;
        }
        for bid in 0..BUFFERS {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    fn buffer(&self, bid: u16) -> &[u8] {
        // SAFETY: bid < BUFFERS, so the slice lies within the mapping; the
        // kernel wrote it before posting the completion that named bid, and
        // does not touch it again until bid is pushed back.
        unsafe {
            std::slice::from_raw_parts(self.buffers.add(usize::from(bid) * BUF_SIZE), BUF_SIZE)
        }
    }

    /// Queues buffer `bid` for the kernel (visible after [`BufRing::publish`]).
    fn push(&mut self, bid: u16) {
        let idx = usize::from(self.tail & (BUFFERS - 1));
        // SAFETY: idx < BUFFERS; the kernel only reads entries before the
        // published tail, and this one is past it.
        unsafe {
            let e = &mut *self.entries.add(idx);
            e.set_addr(self.buffers.add(usize::from(bid) * BUF_SIZE) as u64);
            e.set_len(BUF_SIZE as u32);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the pushed buffers: one release store of the tail.
    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's `resv`, which is
        // 2-byte aligned and shared with the kernel as an atomic u16.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.base.cast(), self.map_len);
        }
    }
}

/// A socket address in the kernel's layout, big enough for IPv6.
#[derive(Clone, Copy)]
#[repr(C)]
struct RawAddr {
    storage: libc::sockaddr_in6,
    len: libc::socklen_t,
}

impl RawAddr {
    fn from_socket_addr(a: SocketAddr) -> RawAddr {
        // SAFETY: all-zero is a valid sockaddr_in6.
        let mut storage: libc::sockaddr_in6 = unsafe { mem::zeroed() };
        let len = match a {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_in (16 bytes) fits in sockaddr_in6 (28).
                unsafe {
                    ptr::write_unaligned(
                        ptr::addr_of_mut!(storage).cast::<libc::sockaddr_in>(),
                        sin,
                    )
                };
                mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                storage.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                storage.sin6_port = v6.port().to_be();
                storage.sin6_flowinfo = v6.flowinfo();
                storage.sin6_addr.s6_addr = v6.ip().octets();
                storage.sin6_scope_id = v6.scope_id();
                mem::size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    fn from_bytes(b: &[u8]) -> Option<RawAddr> {
        if b.len() < 2 || b.len() > mem::size_of::<libc::sockaddr_in6>() {
            return None;
        }
        // SAFETY: all-zero is a valid sockaddr_in6.
        let mut storage: libc::sockaddr_in6 = unsafe { mem::zeroed() };
        // SAFETY: b.len() <= size of storage.
        unsafe {
            ptr::copy_nonoverlapping(b.as_ptr(), ptr::addr_of_mut!(storage).cast::<u8>(), b.len())
        };
        Some(RawAddr {
            storage,
            len: b.len() as libc::socklen_t,
        })
    }

    fn to_socket_addr(self) -> Option<SocketAddr> {
        let b = self.bytes();
        let family = i32::from(u16::from_ne_bytes([b[0], b[1]]));
        let port = u16::from_be_bytes([b[2], b[3]]);
        if family == libc::AF_INET && b.len() >= 8 {
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::new(IpAddr::V4(ip), port))
        } else if family == libc::AF_INET6 && b.len() >= 24 {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
        } else {
            None
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: len <= size of storage (checked at construction).
        unsafe {
            std::slice::from_raw_parts(ptr::addr_of!(self.storage).cast::<u8>(), self.len as usize)
        }
    }
}

pub fn run(listen: SocketAddr, uas: SocketAddr) -> io::Result<()> {
    let sock = crate::bind(listen)?;
    let fd = types::Fd(sock.as_raw_fd());
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES)?;
    let mut bufs = BufRing::new(&ring)?;
    eprintln!("relay: io_uring loop (SINGLE_ISSUER|DEFER_TASKRUN, multishot recvmsg, {BUFFERS} provided buffers) on {listen}, UAS {uas}");

    // The msghdr the multishot recvmsg reads its layout from: room for the
    // source address, no control data. It must outlive the request.
    // SAFETY: all-zero is a valid msghdr.
    let mut recv_hdr: libc::msghdr = unsafe { mem::zeroed() };
    recv_hdr.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;

    let uas_raw = RawAddr::from_socket_addr(uas);
    let mut client: Option<RawAddr> = None;
    // Destination of the send in flight from each buffer (indexed by bid):
    // the kernel reads it while the send runs.
    let mut dests = vec![uas_raw; usize::from(BUFFERS)].into_boxed_slice();
    let mut recv_armed = false;
    let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(CQ_ENTRIES as usize);
    // Sends pushed since the last submit: their completions come with the
    // next wake-up.
    let mut queued = 0usize;

    loop {
        {
            let (submitter, mut sq, _) = ring.split();
            if !recv_armed {
                let e = opcode::RecvMsgMulti::new(fd, &recv_hdr, BUF_GROUP)
                    .build()
                    .user_data(RECV_TAG);
                // SAFETY: recv_hdr and the buffer ring outlive the ring's use of them.
                push(&submitter, &mut sq, &e)?;
                recv_armed = true;
            }
            sq.sync();
            let want = queued + 1;
            queued = 0;
            match submitter.submit_and_wait(want) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
        }
        let (submitter, mut sq, mut cq) = ring.split();
        cq.sync();
        done.clear();
        done.extend(cq.map(|c| (c.user_data(), c.result(), c.flags())));
        let mut returned = false;
        for &(tag, res, flags) in &done {
            if tag != RECV_TAG {
                // A send completed (or failed: the datagram is lost, as with
                // any UDP proxy): its buffer goes back to the ring.
                bufs.push(tag as u16);
                returned = true;
                continue;
            }
            if !cqueue::more(flags) {
                recv_armed = false;
            }
            if res < 0 {
                if res != -libc::ENOBUFS {
                    eprintln!("relay: recvmsg: {}", io::Error::from_raw_os_error(-res));
                }
                continue;
            }
            let Some(bid) = cqueue::buffer_select(flags) else {
                continue;
            };
            let buf = &bufs.buffer(bid)[..res as usize];
            let target = match types::RecvMsgOut::parse(buf, &recv_hdr) {
                Ok(out) if !out.is_payload_truncated() && !out.is_name_data_truncated() => {
                    let src = RawAddr::from_bytes(out.name_data());
                    route(src, uas, &uas_raw, &mut client)
                        .map(|dst| (dst, out.payload_data().as_ptr(), out.payload_data().len()))
                }
                _ => None,
            };
            let Some((dst, data, len)) = target else {
                bufs.push(bid);
                returned = true;
                continue;
            };
            let slot = &mut dests[usize::from(bid)];
            *slot = dst;
            let e = opcode::Send::new(fd, data, len as u32)
                .dest_addr(ptr::addr_of!(slot.storage).cast())
                .dest_addr_len(slot.len)
                .build()
                .user_data(u64::from(bid));
            // SAFETY: the payload lies in buffer bid, which is not returned to
            // the ring until this send completes; the destination lies in
            // dests[bid], not rewritten until then either.
            push(&submitter, &mut sq, &e)?;
            queued += 1;
        }
        if returned {
            bufs.publish();
        }
    }
}

/// Where a datagram from `src` goes: from the UAS to the last client, from
/// anyone else to the UAS.
fn route(
    src: Option<RawAddr>,
    uas: SocketAddr,
    uas_raw: &RawAddr,
    client: &mut Option<RawAddr>,
) -> Option<RawAddr> {
    let src = src?;
    if src.to_socket_addr()? == uas {
        *client
    } else {
        *client = Some(src);
        Some(*uas_raw)
    }
}

/// Pushes one entry, submitting first if the submission queue is full.
fn push(
    submitter: &io_uring::Submitter<'_>,
    sq: &mut io_uring::SubmissionQueue<'_>,
    e: &squeue::Entry,
) -> io::Result<()> {
    loop {
        // SAFETY: the caller keeps everything the entry points to alive until
        // its completion.
        if unsafe { sq.push(e) }.is_ok() {
            return Ok(());
        }
        sq.sync();
        submitter.submit()?;
        sq.sync();
    }
}
