//! Opening one worker's sockets: SO_REUSEPORT so every worker binds the
//! same address and the kernel spreads flows (UDP) and connections (TCP)
//! over them (DESIGN.md "Thread-per-core"), v6-only for IPv6; for UDP large
//! buffers, packet info on wildcard addresses so the worker learns which
//! local address a datagram was sent to, and receive timestamps so it learns
//! when the kernel got it (the arrival of `ctl latency`). Also outgoing TCP
//! sockets and the open-files limit.

use std::io;
use std::mem::size_of;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// Socket buffer sizes to ask for.
#[derive(Clone, Copy, Debug)]
pub(super) struct BufferSizes {
    pub recv: usize,
    pub send: usize,
}

/// Opens and binds one nonblocking UDP socket on `addr` that other workers may
/// bind too.
pub(super) fn bind_udp(addr: SocketAddr, sizes: BufferSizes) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        // One listen = one family; `[::]` must not also take IPv4 (that is a
        // listen of its own), and mapped addresses would confuse `local`.
        socket.set_only_v6(true)?;
    }
    set_buffer_sizes(&socket, sizes);
    if addr.ip().is_unspecified() {
        enable_packet_info(&socket, addr)?;
    }
    if let Err(e) = set_int_option(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1) {
        // Only the latency measurement needs it: it falls back to the round's start.
        log::warn!(
            "udp {addr}: SO_TIMESTAMPNS refused ({e}); latency counts from the worker's wake-up"
        );
    }
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("bind udp {addr}: {e}")))?;
    Ok(socket.into())
}

/// Pending connections a TCP listener queues before accept (the kernel caps
/// it at `net.core.somaxconn`).
const TCP_BACKLOG: i32 = 1024;

/// Opens, binds and listens on one nonblocking TCP socket on `addr` that
/// other workers may bind too: the kernel hands each new connection to one
/// of them.
pub(super) fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("bind tcp {addr}: {e}")))?;
    socket.listen(TCP_BACKLOG)?;
    Ok(socket.into())
}

/// A nonblocking TCP socket to connect to `dst` from, bound to `local`'s
/// address (any port) when one is given, so the peer sees the address our
/// Via names.
pub(super) fn tcp_client(dst: SocketAddr, local: Option<SocketAddr>) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(dst), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(local) = local.filter(|l| !l.ip().is_unspecified() && l.is_ipv4() == dst.is_ipv4())
    {
        socket.bind(&SocketAddr::new(local.ip(), 0).into())?;
    }
    Ok(socket)
}

/// Raises the soft limit on open files (RLIMIT_NOFILE) to `want`, or to the
/// hard limit if that is lower; returns the soft limit now in force. Each
/// TCP connection is a file, so a proxy with many clients needs more than
/// the usual 1024.
pub fn raise_open_files_limit(want: u64) -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // rlim_t is u64 on Linux.
    let target = want.min(limit.rlim_max);
    if target <= limit.rlim_cur {
        return Ok(limit.rlim_cur);
    }
    limit.rlim_cur = target;
    // SAFETY: `limit` is a valid rlimit; the soft value does not exceed the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(target)
}

/// Larger buffers ride out bursts; the kernel silently caps what we ask, so
/// failure is only logged.
fn set_buffer_sizes(socket: &Socket, sizes: BufferSizes) {
    if sizes.recv > 0 {
        if let Err(e) = socket.set_recv_buffer_size(sizes.recv) {
            log::debug!("SO_RCVBUF {}: {e}", sizes.recv);
        }
    }
    if sizes.send > 0 {
        if let Err(e) = socket.set_send_buffer_size(sizes.send) {
            log::debug!("SO_SNDBUF {}: {e}", sizes.send);
        }
    }
    log::debug!(
        "socket buffers: rcv {:?} snd {:?}",
        socket.recv_buffer_size(),
        socket.send_buffer_size()
    );
}

/// IP_PKTINFO / IPV6_RECVPKTINFO: each datagram carries the address it was
/// sent to, and a send may name the source address in the same kind of
/// control message.
fn enable_packet_info(socket: &Socket, addr: SocketAddr) -> io::Result<()> {
    let (level, name) = match addr {
        SocketAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_PKTINFO),
        SocketAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO),
    };
    set_int_option(socket, level, name, 1)
}

/// `setsockopt` of an `int` option.
fn set_int_option(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the fd is open (owned by `socket`), `value` outlives the call
    // and the length passed is exactly its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: BufferSizes = BufferSizes {
        recv: 1 << 20,
        send: 1 << 20,
    };

    #[test]
    fn two_sockets_share_one_port() {
        let first = bind_udp("127.0.0.1:0".parse().unwrap(), SIZES).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind_udp(addr, SIZES).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
    }

    #[test]
    fn two_tcp_listeners_share_one_port() {
        let first = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind_tcp(addr).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
    }

    #[test]
    fn open_files_limit_only_rises() {
        let now = raise_open_files_limit(0).unwrap();
        assert!(now > 0);
        assert_eq!(raise_open_files_limit(now).unwrap(), now);
    }

    #[test]
    fn udp_sockets_ask_for_receive_timestamps() {
        for addr in ["127.0.0.1:0", "0.0.0.0:0", "[::1]:0"] {
            let sock = Socket::from(bind_udp(addr.parse().unwrap(), SIZES).unwrap());
            let mut value: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: the fd is open; `value` and `len` are valid for writes
            // and `len` holds the size of `value`.
            let rc = unsafe {
                libc::getsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_TIMESTAMPNS,
                    (&mut value as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0, "{addr}: {}", io::Error::last_os_error());
            assert_eq!(value, 1, "{addr}");
        }
    }

    #[test]
    fn ipv6_socket_is_v6_only() {
        let sock = bind_udp("[::1]:0".parse().unwrap(), SIZES).unwrap();
        assert!(Socket::from(sock).only_v6().unwrap());
    }
}
