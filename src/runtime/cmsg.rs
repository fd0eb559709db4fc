//! Control messages (`cmsg(3)`): reading the destination address of a
//! datagram received on a wildcard socket (IP_PKTINFO, IPV6_PKTINFO) and the
//! time the kernel received it (SCM_TIMESTAMPNS), and naming the source
//! address of a datagram to send from a wildcard socket.

use super::clock::timespec_nanos;
use std::mem::{align_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr;

use std::mem::MaybeUninit;

use compio::buf::{IoBuf, IoBufMut, SetLen};

/// `CMSG_ALIGN` of glibc and musl on Linux.
const fn cmsg_align(len: usize) -> usize {
    (len + size_of::<usize>() - 1) & !(size_of::<usize>() - 1)
}

/// `CMSG_LEN(0)`: where the data of a control message starts.
const HEADER: usize = cmsg_align(size_of::<libc::cmsghdr>());

/// `CMSG_SPACE` of the larger of the two packet-info structures.
const SOURCE_SPACE: usize = cmsg_align(HEADER + size_of::<libc::in6_pktinfo>());

/// `CMSG_SPACE` of a receive timestamp.
const TIMESTAMP_SPACE: usize = cmsg_align(HEADER + size_of::<libc::timespec>());

/// Control buffer length asked for on receive: one IPv6 packet info and one
/// timestamp fit (40 + 32 bytes on 64-bit Linux) with room to spare.
pub(super) const RECV_CONTROL_LEN: usize = 128;

const _: () = assert!(align_of::<libc::cmsghdr>() <= 8);
const _: () = assert!(SOURCE_SPACE + TIMESTAMP_SPACE <= RECV_CONTROL_LEN);

/// The control messages in `control`, as `(level, type, data)`, in order;
/// the walk stops at the first malformed header (a length below a header or
/// past the end).
fn messages(control: &[u8]) -> impl Iterator<Item = (libc::c_int, libc::c_int, &[u8])> {
    let mut rest = control;
    std::iter::from_fn(move || {
        if rest.len() < size_of::<libc::cmsghdr>() {
            return None;
        }
        // SAFETY: `rest` holds at least one `cmsghdr` worth of bytes, and
        // `read_unaligned` accepts any alignment; every bit pattern is a valid
        // `cmsghdr` (plain integers).
        let header: libc::cmsghdr = unsafe { ptr::read_unaligned(rest.as_ptr().cast()) };
        let len = header.cmsg_len as usize;
        if len < HEADER || len > rest.len() {
            rest = &[];
            return None;
        }
        let data = &rest[HEADER..len];
        rest = rest.get(cmsg_align(len)..).unwrap_or_default();
        Some((header.cmsg_level, header.cmsg_type, data))
    })
}

/// The address a datagram was sent to, from the packet info in `control`
/// (`ipi_addr` / `ipi6_addr`, the destination in the IP header).
pub(super) fn packet_destination(control: &[u8]) -> Option<IpAddr> {
    messages(control).find_map(|(level, ty, data)| match (level, ty) {
        (libc::IPPROTO_IP, libc::IP_PKTINFO) if data.len() >= size_of::<libc::in_pktinfo>() => {
            // SAFETY: `data` holds a whole `in_pktinfo` (checked above);
            // unaligned read, integer fields only.
            let info: libc::in_pktinfo = unsafe { ptr::read_unaligned(data.as_ptr().cast()) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                info.ipi_addr.s_addr,
            ))))
        }
        (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
            if data.len() >= size_of::<libc::in6_pktinfo>() =>
        {
            // SAFETY: `data` holds a whole `in6_pktinfo` (checked above);
            // unaligned read, integer fields only.
            let info: libc::in6_pktinfo = unsafe { ptr::read_unaligned(data.as_ptr().cast()) };
            Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)))
        }
        _ => None,
    })
}

/// When the kernel received the datagram, from its `SCM_TIMESTAMPNS` control
/// message (SO_TIMESTAMPNS): nanoseconds since the Unix epoch on
/// CLOCK_REALTIME. `None` without one, or with a stamp before the epoch or
/// out of range.
pub(super) fn receive_timestamp(control: &[u8]) -> Option<u64> {
    messages(control).find_map(|(level, ty, data)| match (level, ty) {
        (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) if data.len() >= size_of::<libc::timespec>() => {
            // SAFETY: `data` holds a whole `timespec` (checked above);
            // unaligned read, integer fields only.
            let ts: libc::timespec = unsafe { ptr::read_unaligned(data.as_ptr().cast()) };
            timespec_nanos(ts.tv_sec, ts.tv_nsec)
        }
        _ => None,
    })
}

/// The control message of one send: empty, or a packet info that names the
/// source address (the kernel picks the interface by route).
#[repr(C, align(8))]
pub(super) struct SendControl {
    buf: [u8; SOURCE_SPACE],
    len: usize,
}

impl SendControl {
    /// No control message: the kernel chooses the source address.
    pub fn none() -> SendControl {
        SendControl {
            buf: [0; SOURCE_SPACE],
            len: 0,
        }
    }

    /// Send from `source` (IP_PKTINFO `ipi_spec_dst`, IPV6_PKTINFO `ipi6_addr`).
    pub fn source(source: IpAddr) -> SendControl {
        let mut control = SendControl::none();
        match source {
            IpAddr::V4(ip) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(ip).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                control.push(libc::IPPROTO_IP, libc::IP_PKTINFO, &info);
            }
            IpAddr::V6(ip) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: ip.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                control.push(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info);
            }
        }
        control
    }

    /// Writes one control message (header, then `data`) at the start of the buffer.
    fn push<T: Copy>(&mut self, level: libc::c_int, ty: libc::c_int, data: &T) {
        let space = cmsg_align(HEADER + size_of::<T>());
        assert!(space <= self.buf.len(), "control message too large");
        // SAFETY: all-zero bytes are a valid `cmsghdr` (integers, and on musl
        // private padding integers); the fields we need are set below.
        let mut header: libc::cmsghdr = unsafe { std::mem::zeroed() };
        header.cmsg_len = (HEADER + size_of::<T>()) as _;
        header.cmsg_level = level;
        header.cmsg_type = ty;
        // SAFETY: `space <= buf.len()` (asserted), so both writes stay inside
        // `buf`; `write_unaligned` needs no alignment and `T` is `Copy`.
        unsafe {
            ptr::write_unaligned(self.buf.as_mut_ptr().cast::<libc::cmsghdr>(), header);
            ptr::write_unaligned(self.buf.as_mut_ptr().add(HEADER).cast::<T>(), *data);
        }
        self.len = space;
    }
}

impl IoBuf for SendControl {
    fn as_init(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Room for the control messages of one `recvmsg`, aligned for `cmsghdr`
/// (compio asserts the alignment).
#[repr(C, align(8))]
pub(super) struct RecvControl {
    buf: [u8; RECV_CONTROL_LEN],
}

impl RecvControl {
    pub fn new() -> RecvControl {
        RecvControl {
            buf: [0; RECV_CONTROL_LEN],
        }
    }

    /// The first `len` bytes, as the kernel reported (`msg_controllen`).
    pub fn received(&self, len: usize) -> &[u8] {
        &self.buf[..len.min(RECV_CONTROL_LEN)]
    }
}

// The whole array is always initialized, so its "initialized part" is all of
// it and setting a length is a no-op, as for compio's own `[u8; N]`.
impl IoBuf for RecvControl {
    fn as_init(&self) -> &[u8] {
        &self.buf
    }
}

impl SetLen for RecvControl {
    // SAFETY: nothing to uphold: the length is fixed and every byte is
    // initialized, so any `len` up to the size is already true.
    unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= RECV_CONTROL_LEN);
    }
}

impl IoBufMut for RecvControl {
    fn as_uninit(&mut self) -> &mut [MaybeUninit<u8>] {
        self.buf.as_uninit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_control_has_no_destination() {
        assert_eq!(packet_destination(&[]), None);
        assert_eq!(packet_destination(&[0; 7]), None);
    }

    #[test]
    fn reads_the_destination_of_a_v6_packet_info() {
        // A send control for IPv6 is laid out exactly like a received one.
        let ip: IpAddr = "2001:db8::7".parse().unwrap();
        let control = SendControl::source(ip);
        assert_eq!(control.as_init().len(), SOURCE_SPACE);
        assert_eq!(packet_destination(control.as_init()), Some(ip));
    }

    #[test]
    fn reads_ipi_addr_not_spec_dst_of_a_v4_packet_info() {
        let mut control = SendControl::none();
        let info = libc::in_pktinfo {
            ipi_ifindex: 1,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::new(10, 0, 0, 1)).to_be(),
            },
            ipi_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::new(127, 0, 0, 2)).to_be(),
            },
        };
        control.push(libc::IPPROTO_IP, libc::IP_PKTINFO, &info);
        assert_eq!(
            packet_destination(control.as_init()),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        );
    }

    #[test]
    fn skips_other_messages_and_survives_garbage() {
        let mut bytes = vec![0u8; 2 * SOURCE_SPACE];
        let mut other = SendControl::none();
        other.push(libc::SOL_SOCKET, libc::SO_TIMESTAMP, &[0u64; 2]);
        bytes[..other.len].copy_from_slice(other.as_init());
        let v6 = SendControl::source("::1".parse().unwrap());
        bytes[other.len..other.len + v6.len].copy_from_slice(v6.as_init());
        assert_eq!(packet_destination(&bytes), Some("::1".parse().unwrap()));

        // Lengths that point past the end, or below a header, stop the walk.
        for len in [0usize, 1, 15, 1000, usize::MAX] {
            let mut bad = v6.as_init().to_vec();
            bad[..size_of::<usize>()].copy_from_slice(&len.to_ne_bytes());
            assert_eq!(packet_destination(&bad), None, "cmsg_len {len}");
        }
    }
    /// A control buffer as the kernel lays it out: the messages one after
    /// the other, each at its `CMSG_SPACE`.
    fn concat(parts: &[&SendControl]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for part in parts {
            bytes.extend_from_slice(&part.buf[..part.len]);
        }
        bytes
    }

    fn stamp(tv_sec: i64, tv_nsec: i64) -> SendControl {
        let mut c = SendControl::none();
        // SAFETY: all-zero bytes are a valid `timespec` (integers, and on
        // some targets private padding integers).
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        ts.tv_sec = tv_sec as _;
        ts.tv_nsec = tv_nsec as _;
        c.push(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &ts);
        c
    }

    #[test]
    fn reads_a_receive_timestamp_beside_a_packet_info() {
        let v6 = SendControl::source("2001:db8::9".parse().unwrap());
        let ts = stamp(1_764_000_000, 123_456_789);
        assert_eq!(ts.as_init().len(), TIMESTAMP_SPACE);
        let expected = 1_764_000_000_123_456_789u64;
        for bytes in [concat(&[&v6, &ts]), concat(&[&ts, &v6])] {
            assert!(bytes.len() <= RECV_CONTROL_LEN);
            assert_eq!(receive_timestamp(&bytes), Some(expected));
            assert_eq!(
                packet_destination(&bytes),
                Some("2001:db8::9".parse().unwrap())
            );
        }
        assert_eq!(receive_timestamp(ts.as_init()), Some(expected));
        assert_eq!(packet_destination(ts.as_init()), None);
    }

    #[test]
    fn no_or_odd_timestamps_are_none() {
        assert_eq!(receive_timestamp(&[]), None);
        let v4 = SendControl::source(Ipv4Addr::new(127, 0, 0, 1).into());
        assert_eq!(receive_timestamp(v4.as_init()), None);
        // Before the epoch, nanoseconds out of range.
        assert_eq!(receive_timestamp(stamp(-1, 0).as_init()), None);
        assert_eq!(receive_timestamp(stamp(5, 1_000_000_000).as_init()), None);
        assert_eq!(receive_timestamp(stamp(5, -1).as_init()), None);
        // SO_TIMESTAMP (microseconds, a timeval) is another message: not read as one.
        let mut micro = SendControl::none();
        micro.push(libc::SOL_SOCKET, libc::SCM_TIMESTAMP, &[7u64, 8u64]);
        assert_eq!(receive_timestamp(micro.as_init()), None);
        // A data part shorter than a timespec.
        let mut short = SendControl::none();
        short.push(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &7u64);
        assert_eq!(receive_timestamp(short.as_init()), None);
        // A bad length in the first header stops the walk before the stamp.
        let mut bad = concat(&[&v4, &stamp(9, 9)]);
        bad[..size_of::<usize>()].copy_from_slice(&1000usize.to_ne_bytes());
        assert_eq!(receive_timestamp(&bad), None);
    }
}
