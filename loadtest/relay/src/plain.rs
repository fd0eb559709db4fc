//! The plain loop: blocking `recvfrom`, then `sendto`.

use std::io;
use std::net::SocketAddr;

use crate::MAX_DATAGRAM;

pub fn run(listen: SocketAddr, uas: SocketAddr) -> io::Result<()> {
    let sock = crate::bind(listen)?;
    eprintln!("relay: plain loop on {listen}, UAS {uas}");
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut client: Option<SocketAddr> = None;
    loop {
        let (n, src) = sock.recv_from(&mut buf)?;
        let dst = if src == uas {
            match client {
                Some(c) => c,
                None => continue,
            }
        } else {
            client = Some(src);
            uas
        };
        // A full socket buffer or an unreachable peer loses this datagram,
        // as a UDP proxy would; the relay goes on.
        let _ = sock.send_to(&buf[..n], dst);
    }
}
