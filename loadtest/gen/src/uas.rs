//! The UAS side: answers every request it gets at once and forgets it
//! (INVITE: 180 then 200; ACK: nothing; anything else: 200). Replies go to
//! the source address of the request, i.e. back through the proxy.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::sip;

#[derive(Default, Debug)]
pub struct UasStats {
    pub requests: u64,
    pub unparsable: u64,
    pub send_errors: u64,
}

pub fn run(sock: UdpSocket, stop: Arc<AtomicBool>) -> UasStats {
    let contact = sock.local_addr().expect("bound socket");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("set read timeout");
    let mut stats = UasStats::default();
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(2048);
    while !stop.load(Ordering::Relaxed) {
        let (len, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // ECONNREFUSED from an ICMP error of an earlier send: keep going.
            Err(_) => continue,
        };
        let Some(req) = sip::parse(&buf[..len]).filter(|p| p.status.is_none()) else {
            stats.unparsable += 1;
            continue;
        };
        stats.requests += 1;
        match req.method {
            "ACK" => {}
            "INVITE" => {
                send(
                    &sock, &mut out, &req, 180, "Ringing", contact, src, &mut stats,
                );
                send(&sock, &mut out, &req, 200, "OK", contact, src, &mut stats);
            }
            _ => send(&sock, &mut out, &req, 200, "OK", contact, src, &mut stats),
        }
    }
    stats
}

#[allow(clippy::too_many_arguments)]
fn send(
    sock: &UdpSocket,
    out: &mut Vec<u8>,
    req: &sip::Parsed<'_>,
    code: u16,
    reason: &str,
    contact: SocketAddr,
    to: SocketAddr,
    stats: &mut UasStats,
) {
    sip::reply(out, req, code, reason, contact);
    if sock.send_to(out, to).is_err() {
        stats.send_errors += 1;
    }
}
