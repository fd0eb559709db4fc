//! The network side of media-relay control (rtpproxy, rtpengine): the
//! modules build a request and call [`RelayTransport::exchange`]; this sends
//! it over UDP and waits for the answer that carries the same cookie.
//!
//! Each worker thread has its own blocking UDP socket (one per address
//! family, bound to an ephemeral port on first use). As in Kamailio, the
//! worker waits for the answer: while a relay is slow or silent the core
//! handles nothing else, for at most `timeout × attempts` per request. A
//! relay that stays silent is then taken out of service by the module
//! (`*_disable_tout`), so a dead relay costs that wait once, not on every call.

use std::cell::RefCell;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::modules::rtpproxy::relay::{RelayError, RelayTransport};

/// Sends control requests from a per-thread UDP socket.
#[derive(Debug, Default)]
pub struct UdpRelayClient;

thread_local! {
    /// This thread's sockets: IPv4, IPv6.
    static SOCKETS: RefCell<[Option<UdpSocket>; 2]> = const { RefCell::new([None, None]) };
}

/// The largest answer read (an rtpengine answer carries a whole SDP).
const MAX_ANSWER: usize = 65_535;

fn with_socket<T>(
    v6: bool,
    f: impl FnOnce(&UdpSocket) -> Result<T, RelayError>,
) -> Result<T, RelayError> {
    SOCKETS.with(|cell| {
        let mut socks = cell.borrow_mut();
        let slot = &mut socks[usize::from(v6)];
        if slot.is_none() {
            let any: SocketAddr = if v6 {
                "[::]:0".parse().expect("constant address")
            } else {
                "0.0.0.0:0".parse().expect("constant address")
            };
            let s = UdpSocket::bind(any)
                .map_err(|e| RelayError::Io(format!("media relay socket: {e}")))?;
            *slot = Some(s);
        }
        match slot.as_ref() {
            Some(s) => f(s),
            None => Err(RelayError::Io("media relay socket missing".into())),
        }
    })
}

impl RelayTransport for UdpRelayClient {
    fn exchange(
        &self,
        relay: SocketAddr,
        cookie: &str,
        payload: &[u8],
        timeout: Duration,
        attempts: u32,
    ) -> Result<Vec<u8>, RelayError> {
        let mut datagram = Vec::with_capacity(cookie.len() + 1 + payload.len());
        datagram.extend_from_slice(cookie.as_bytes());
        datagram.push(b' ');
        datagram.extend_from_slice(payload);
        let prefix = &datagram[..cookie.len() + 1];
        with_socket(relay.is_ipv6(), |sock| {
            let mut buf = vec![0u8; MAX_ANSWER];
            for _ in 0..attempts.max(1) {
                sock.send_to(&datagram, relay)
                    .map_err(|e| RelayError::Io(format!("send to {relay}: {e}")))?;
                let deadline = Instant::now() + timeout;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    sock.set_read_timeout(Some(left))
                        .map_err(|e| RelayError::Io(e.to_string()))?;
                    match sock.recv_from(&mut buf) {
                        // An answer to an earlier, abandoned request has
                        // another cookie: skip it.
                        Ok((n, _)) if buf[..n].starts_with(prefix) => {
                            return Ok(buf[prefix.len()..n].to_vec());
                        }
                        Ok(_) => {}
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            break
                        }
                        // ICMP errors from an earlier send, interrupted calls: wait on.
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::ConnectionRefused | ErrorKind::Interrupted
                            ) => {}
                        Err(e) => return Err(RelayError::Io(format!("receive: {e}"))),
                    }
                }
            }
            Err(RelayError::Timeout)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay on loopback that first answers with a stale cookie, then with the right one.
    #[test]
    fn answer_with_our_cookie_is_returned() {
        let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = relay.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let (n, from) = relay.recv_from(&mut buf).unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (cookie, cmd) = text.split_once(' ').unwrap();
            relay.send_to(b"stale_1 99", from).unwrap();
            relay
                .send_to(format!("{cookie} 35000 for {cmd}\n").as_bytes(), from)
                .unwrap();
        });
        let got = UdpRelayClient
            .exchange(addr, "c_7", b"V", Duration::from_secs(2), 1)
            .unwrap();
        assert_eq!(got, b"35000 for V\n");
        server.join().unwrap();
    }

    #[test]
    fn silence_is_a_timeout_after_every_attempt() {
        let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = relay.local_addr().unwrap();
        let start = Instant::now();
        let r = UdpRelayClient.exchange(addr, "c_8", b"V", Duration::from_millis(50), 3);
        assert_eq!(r, Err(RelayError::Timeout));
        assert!(start.elapsed() >= Duration::from_millis(150));
        // All three attempts reached the relay.
        relay
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 100];
        for _ in 0..3 {
            let (n, _) = relay.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"c_8 V");
        }
    }
}
