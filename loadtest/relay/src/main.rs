//! `relay`: the raw UDP relay used as the IO yardstick (DESIGN.md, "IO
//! runtime"). It parses nothing: a datagram from the UAS goes to the last
//! client seen, any other datagram goes to the UAS. sipp's built-in `uac` and
//! `uas` (or `ringsip-gen`) run through it unchanged, because both answer to
//! the source address of what they receive.
//!
//! Two loops, chosen by `--io`:
//! - `plain`: blocking `recvfrom`/`sendto`, one system call per datagram each way;
//! - `uring`: io_uring set up as DESIGN.md says it must be, to match the plain
//!   loop: `SINGLE_ISSUER | DEFER_TASKRUN`, one multishot `recvmsg` into a
//!   provided buffer ring, sends straight from the receive buffer (the buffer
//!   goes back to the ring when its send completes), one `io_uring_enter` per
//!   wake-up (`submit_and_wait(1)` submits the queued sends and waits).
//!
//! ```text
//! relay --listen 127.0.0.1:5060 --to 127.0.0.1:5070 [--io plain|uring] [--max-seconds 3600]
//! ```
//!
//! It stops on SIGTERM/SIGINT (default action) or after `--max-seconds`.

mod plain;
mod uring;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// Largest datagram relayed; larger ones are truncated (SIP over UDP stays
/// well below this on loopback).
pub const MAX_DATAGRAM: usize = 65_535;

struct Args {
    listen: SocketAddr,
    to: SocketAddr,
    io: String,
    max_seconds: u64,
}

const USAGE: &str =
    "usage: relay --listen ADDR:PORT --to ADDR:PORT [--io plain|uring] [--max-seconds N]";

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut to = None;
    let mut io = "uring".to_string();
    let mut max_seconds = 3600;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(parse_addr(&value()?)?),
            "--to" => to = Some(parse_addr(&value()?)?),
            "--io" => io = value()?,
            "--max-seconds" => {
                max_seconds = value()?
                    .parse()
                    .map_err(|e| format!("--max-seconds: {e}"))?
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        to: to.ok_or("--to is required")?,
        io,
        max_seconds,
    })
}

/// Socket buffers asked for, as ringsip asks (RuntimeConfig: 4 MiB each way;
/// the kernel caps them at net.core.rmem_max / wmem_max): the yardstick must
/// absorb a burst as well as the proxy it is compared with.
const SOCKET_BUFFER: libc::c_int = 4 << 20;

/// Binds the relay's socket with ringsip's buffer sizes.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use std::os::fd::AsRawFd;
    let sock = std::net::UdpSocket::bind(addr)?;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: a valid socket fd and a c_int option value of the right size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&SOCKET_BUFFER as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            eprintln!("relay: setsockopt: {}", std::io::Error::last_os_error());
        }
    }
    Ok(sock)
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("bad address {s}: {e}"))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("relay: {e}");
            return ExitCode::from(2);
        }
    };
    // The hard time bound: a forgotten relay does not outlive its load test.
    let bound = Duration::from_secs(args.max_seconds);
    std::thread::spawn(move || {
        std::thread::sleep(bound);
        eprintln!("relay: --max-seconds reached, exiting");
        std::process::exit(0);
    });
    let result = match args.io.as_str() {
        "plain" => plain::run(args.listen, args.to),
        "uring" => uring::run(args.listen, args.to),
        other => Err(std::io::Error::other(format!(
            "--io {other}: expected plain or uring"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay: {e}");
            ExitCode::FAILURE
        }
    }
}
