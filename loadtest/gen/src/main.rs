//! `ringsip-gen`: a SIP load generator for rates one sipp cannot reach. It
//! runs its own UAC and UAS (two threads, two UDP sockets) and sends the UAC's
//! requests through the proxy under test, which forwards them to the UAS.
//!
//! ```text
//! ringsip-gen --proxy 127.0.0.1:5060 --mode calls --rate 2000 --count 20000
//! ringsip-gen --proxy 127.0.0.1:5060 --mode options --rate 20000 --count 200000
//! ringsip-gen --proxy 127.0.0.1:5060 --mode options --no-uas --ruri sip:127.0.0.1:5060
//! ```
//!
//! Modes: `calls` (INVITE/180/200/ACK/BYE/200, in-dialog requests follow the
//! Record-Route set, so a record-routing stateful proxy works too), `options`
//! and `message` (one request, one 200). Every run is bounded by `--count`
//! and by `--max-seconds`. Client-side latency goes to hdrhistograms; the
//! last line is `RESULT key=value ...` for scripts.

mod hist;
mod sip;
mod uac;
mod uas;

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use uac::{Mode, Plan};

const USAGE: &str = "usage: ringsip-gen --proxy ADDR:PORT [--mode calls|options|message]
       [--rate PER_SECOND] [--count N] [--max-seconds S] [--timeout-ms MS]
       [--uac ADDR:PORT] [--uas ADDR:PORT | --no-uas] [--ruri URI]
       [--max-inflight N] [--interval S]

  --proxy        where the UAC sends its requests (the proxy under test; the
                 UAS address itself for a run with no proxy)
  --mode         calls (default), options or message
  --rate         new calls (or requests) per second, open loop (default 500)
  --count        how many (default 5000)
  --max-seconds  hard bound on the run (default count/rate + 10 s)
  --timeout-ms   a call not finished this long after it started fails (default 5000)
  --uac, --uas   local addresses to bind (default 127.0.0.1, any port)
  --no-uas       run no UAS (requests answered by the proxy itself; needs --ruri)
  --ruri         Request-URI of initial requests (default sip:uas@UAS)
  --max-inflight stop starting new calls while this many are unfinished (default 100000)
  --interval     print an INTERVAL line every S seconds (soak runs); 0: never";

struct Args {
    proxy: SocketAddr,
    mode: Mode,
    rate: f64,
    count: usize,
    max_seconds: Option<f64>,
    timeout_ms: u64,
    uac: SocketAddr,
    uas: Option<SocketAddr>,
    no_uas: bool,
    ruri: Option<String>,
    max_inflight: usize,
    interval: f64,
}

fn parse_args() -> Result<Args, String> {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let mut a = Args {
        proxy: any,
        mode: Mode::Calls,
        rate: 500.0,
        count: 5000,
        max_seconds: None,
        timeout_ms: 5000,
        uac: any,
        uas: None,
        no_uas: false,
        ruri: None,
        max_inflight: 100_000,
        interval: 0.0,
    };
    let mut proxy = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-uas" {
            a.no_uas = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v}: {e}");
        match flag.as_str() {
            "--proxy" => proxy = Some(v.parse().map_err(|e| bad(&e))?),
            "--mode" => {
                a.mode = match v.as_str() {
                    "calls" => Mode::Calls,
                    "options" => Mode::Flood("OPTIONS"),
                    "message" => Mode::Flood("MESSAGE"),
                    _ => return Err(bad(&"expected calls, options or message")),
                }
            }
            "--rate" => a.rate = v.parse().map_err(|e| bad(&e))?,
            "--count" => a.count = v.parse().map_err(|e| bad(&e))?,
            "--max-seconds" => a.max_seconds = Some(v.parse().map_err(|e| bad(&e))?),
            "--timeout-ms" => a.timeout_ms = v.parse().map_err(|e| bad(&e))?,
            "--uac" => a.uac = v.parse().map_err(|e| bad(&e))?,
            "--uas" => a.uas = Some(v.parse().map_err(|e| bad(&e))?),
            "--ruri" => a.ruri = Some(v),
            "--max-inflight" => a.max_inflight = v.parse().map_err(|e| bad(&e))?,
            "--interval" => a.interval = v.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    a.proxy = proxy.ok_or("--proxy is required")?;
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        return Err("--rate must be positive".into());
    }
    if a.no_uas && a.ruri.is_none() {
        return Err("--no-uas needs --ruri".into());
    }
    if a.no_uas && a.mode == Mode::Calls {
        return Err("--no-uas works with --mode options or message only".into());
    }
    Ok(a)
}

/// Socket buffers of the generator's own sockets: the kernel default
/// (208 KiB, a few hundred datagrams of loopback truesize) overflows when the
/// generator is descheduled for a moment on a shared machine, and a lost
/// datagram is a failed call (no retransmissions). Capped by
/// `net.core.rmem_max`/`wmem_max`; best effort.
const SOCKET_BUFFER: libc::c_int = 4 << 20;

fn grow_buffers(sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: a valid socket fd and a c_int option value of the right size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&SOCKET_BUFFER as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ringsip-gen: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ringsip-gen: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the load; `Ok(true)` when every call completed.
fn run(args: &Args) -> std::io::Result<bool> {
    let uac_sock = UdpSocket::bind(args.uac)?;
    grow_buffers(&uac_sock);
    let stop = Arc::new(AtomicBool::new(false));
    let mut uas_thread = None;
    let mut uas_addr = None;
    if !args.no_uas {
        let sock = UdpSocket::bind(args.uas.unwrap_or("127.0.0.1:0".parse().expect("literal")))?;
        grow_buffers(&sock);
        uas_addr = Some(sock.local_addr()?);
        let stop = Arc::clone(&stop);
        uas_thread = Some(
            std::thread::Builder::new()
                .name("uas".into())
                .spawn(move || uas::run(sock, stop))?,
        );
    }
    let local = uac_sock.local_addr()?;
    let ruri = match (&args.ruri, uas_addr) {
        (Some(r), _) => r.clone(),
        (None, Some(u)) => format!("sip:uas@{u}"),
        (None, None) => unreachable!("checked in parse_args"),
    };
    let uac = sip::Uac {
        local,
        ruri,
        run: std::process::id()
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)),
    };
    let nominal = args.count as f64 / args.rate;
    let plan = Plan {
        mode: args.mode,
        proxy: args.proxy,
        rate: args.rate,
        count: args.count,
        deadline: Duration::from_secs_f64(args.max_seconds.unwrap_or(nominal + 10.0)),
        call_timeout: Duration::from_millis(args.timeout_ms),
        max_inflight: args.max_inflight.max(1),
        interval: Duration::from_secs_f64(args.interval.max(0.0)),
    };
    eprintln!(
        "ringsip-gen: {:?} {} at {}/s via {} (UAC {}, UAS {}, R-URI {})",
        args.mode,
        args.count,
        args.rate,
        args.proxy,
        local,
        uas_addr.map_or("none".into(), |a| a.to_string()),
        uac.ruri
    );
    let (outcome, h) = uac::run(&uac_sock, &uac, &plan);
    // Let the last replies land at the UAS, then stop it.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let uas_stats = uas_thread.map(|t| t.join().unwrap_or_default());

    let failed: usize = outcome.failures.values().sum();
    let secs = outcome.elapsed.as_secs_f64();
    println!(
        "{} started, {} completed, {} failed in {:.2} s ({:.0}/s completed)",
        outcome.started,
        outcome.completed,
        failed,
        secs,
        outcome.completed as f64 / secs
    );
    for (why, n) in &outcome.failures {
        println!("  failed: {n} x {why}");
    }
    let show = |name: &str, l: &hist::Latency| {
        if l.len() > 0 {
            println!(
                "  {name:<22} n={:<8} p50={}us p90={}us p99={}us p99.9={}us max={}us",
                l.len(),
                l.quantile(0.5),
                l.quantile(0.9),
                l.quantile(0.99),
                l.quantile(0.999),
                l.max()
            );
        }
    };
    let (first, setup) = match args.mode {
        Mode::Calls => ("INVITE -> 180", "INVITE -> 200"),
        Mode::Flood(_) => ("request -> response", "request -> 200"),
    };
    show(first, &h.first);
    if args.mode == Mode::Calls {
        show(setup, &h.setup);
        show("BYE -> 200", &h.bye);
    }
    let mut all = hist::Latency::new();
    all.add(&h.setup);
    all.add(&h.bye);
    if let Some(s) = &uas_stats {
        println!(
            "  UAS: {} requests, {} unparsable, {} send errors",
            s.requests, s.unparsable, s.send_errors
        );
    }
    let cpu = cpu_seconds();
    println!(
        "  generator CPU: {cpu:.2} s ({:.0}% of one core)",
        100.0 * cpu / secs
    );
    println!(
        "RESULT started={} completed={} failed={} seconds={:.3} rate={:.1} gen_cpu_s={:.3} {} {} {}",
        outcome.started,
        outcome.completed,
        failed,
        secs,
        outcome.completed as f64 / secs,
        cpu,
        h.setup.fields("setup"),
        h.bye.fields("bye"),
        h.first.fields("first"),
    );
    Ok(failed == 0 && outcome.completed == args.count)
}
