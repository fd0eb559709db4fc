//! The `ringsip` binary: command line, configuration loading, logging, and
//! the runtime started with one engine per core.

mod admin;
mod cli;
mod setup;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::AtomicI32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use mimalloc::MiMalloc;

use cli::{Cli, Command, ConfigArgs, IoChoice, RunArgs};
use ringsip::ctl;
use ringsip::modules::core::engine::RouteTimer;
use ringsip::modules::core::Engine;
use ringsip::runtime::{self, IoMode, ListenSpec, RuntimeConfig, WorkerInfo};
use ringsip::script::compile::{compile, Compiled};
use ringsip::script::ctx::{Env, Epoch, SocketInfo, WallClock};
use ringsip::script::settings::{ListenDef, TcpParams};
use ringsip::script::shared::SharedState;
use ringsip::script::{self as script_lang, Options};
use ringsip::sip::Proto;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// The configuration used when no `-f FILE` is given.
const DEFAULT_CFG: &str = include_str!("default.cfg");

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check(&args.cfg, args.verbose),
        Command::Run(args) => run(args),
        Command::User(cmd) => admin::user(cmd),
        Command::Address(cmd) => admin::address(cmd),
        Command::Ctl(args) => ctl_command(args),
    }
}

/// Reads, preprocesses, parses and compiles the configuration; the error is
/// every diagnostic, one `file:line:col: message` per line.
fn load(cfg: &ConfigArgs) -> Result<Compiled, String> {
    let mut opts = Options::default();
    opts.defines.extend(cfg.defines.iter().cloned());
    let parsed = match cfg.path() {
        Some(path) => script_lang::load(path, &opts),
        None => script_lang::parse_str("<embedded default config>", DEFAULT_CFG, &opts),
    };
    let config = parsed.map_err(|d| d.rendered().join("\n"))?;
    compile(&config).map_err(|d| d.rendered().join("\n"))
}

/// The `tls` module's profiles (its `config` file and modparams) when it is
/// loaded. Relative file names are under the main config's directory.
fn tls_profiles(
    compiled: &Compiled,
    cfg: &ConfigArgs,
) -> Result<Option<runtime::TlsProfiles>, String> {
    if !compiled.program.loaded_modules.contains(&"tls") {
        return Ok(None);
    }
    let base = cfg
        .path()
        .and_then(|p| p.parent())
        .map_or_else(|| std::path::PathBuf::from("."), |d| d.to_path_buf());
    let params = ringsip::modules::tls::TlsParams::from_modparams(&compiled.modparams);
    for p in &params.ignored {
        log::warn!("tls: modparam {p} has no effect (rustls chooses)");
    }
    runtime::TlsProfiles::from_params(&params, &base).map(Some)
}

fn check(cfg: &ConfigArgs, verbose: bool) -> ExitCode {
    match load(cfg).and_then(|c| tls_profiles(&c, cfg).map(|_| c)) {
        Ok(compiled) => {
            for w in &compiled.settings.warnings {
                eprintln!("warning: {w}");
            }
            // uac's remote-registration parameters (refused ones included).
            if compiled.program.loaded_modules.contains(&"uac") {
                let mp = &compiled.modparams;
                if let Err(e) = ringsip::modules::uac::reg::RegConfig::from_modparams(mp) {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
            if verbose {
                for (name, _) in &compiled.settings.ignored {
                    println!("accepted but ignored: {name}");
                }
                if compiled.program.loaded_modules.contains(&"nathelper") {
                    for w in ringsip::modules::nathelper::unsupported_params(&compiled.modparams) {
                        println!("accepted but ignored: {w}");
                    }
                }
                let mp = &compiled.modparams;
                let loaded = &compiled.program.loaded_modules;
                type Lister = fn(&ringsip::script::registry::ModParams) -> Vec<String>;
                let listers: [(&str, Lister); 7] = [
                    ("rtpproxy", ringsip::modules::rtpproxy::unsupported_params),
                    ("rtpengine", ringsip::modules::rtpengine::unsupported_params),
                    ("debugger", ringsip::modules::debugger::unsupported_params),
                    (
                        "dispatcher",
                        ringsip::modules::dispatcher::unsupported_params,
                    ),
                    ("tm", ringsip::modules::tm::unsupported_params),
                    ("websocket", ringsip::modules::websocket::unsupported_params),
                    ("uac", ringsip::modules::uac::reg::unsupported_params),
                ];
                for (module, list) in listers {
                    if loaded.contains(&module) {
                        for w in list(mp) {
                            println!("accepted but ignored: {w}");
                        }
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    let compiled = match load(&args.cfg) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = &compiled.settings;
    let debug = args.debug.unwrap_or(settings.debug);
    init_logger(debug);
    for w in &settings.warnings {
        log::warn!("{w}");
    }
    // Memory is faulted in 4 KiB at a time and RSS counts what is used
    // (runtime::no_transparent_huge_pages says why).
    if let Err(e) = runtime::no_transparent_huge_pages() {
        log::warn!("cannot turn transparent huge pages off: {e}");
    }

    let mut listens: Vec<ListenDef> = Vec::new();
    for l in &args.listen {
        match ListenDef::parse(l) {
            Ok(d) => listens.push(d),
            Err(e) => {
                eprintln!("-l {l}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if listens.is_empty() {
        listens = settings.listens.clone();
    }
    if listens.is_empty() {
        // Kamailio listens on every address when no listen= is given.
        listens.push(ListenDef::parse("0.0.0.0").expect("constant listen spec"));
    }
    let listens = with_every_proto(listens, settings.disable_tcp, settings.enable_tls);
    let default_port = settings.port.unwrap_or(5060);
    let mut specs = Vec::new();
    for l in &listens {
        let Ok(ip) = l.host.parse::<IpAddr>() else {
            eprintln!(
                "listen address {} is not an IP address (host names are not resolved yet)",
                l.host
            );
            return ExitCode::FAILURE;
        };
        let port = l.port.unwrap_or(match l.proto {
            // Kamailio's tls_port_no: 5061 unless set.
            Proto::Tls => 5061,
            _ => default_port,
        });
        let advertise = l.advertise.clone().map(|(h, p)| (h, p.unwrap_or(port)));
        specs.push(ListenSpec {
            proto: l.proto,
            addr: SocketAddr::new(ip, port),
            advertise,
        });
    }
    if specs.is_empty() {
        eprintln!("nothing to listen on");
        return ExitCode::FAILURE;
    }

    let mut rt = RuntimeConfig::new(specs.clone());
    apply_tcp_params(&mut rt, &settings.tcp);
    rt.tls_certificate = args.tls_certificate.clone();
    rt.tls_private_key = args.tls_private_key.clone();
    rt.tls_ca_list = args.tls_ca_list.clone();
    rt.tls_verify_client = args.tls_verify_client;
    match tls_profiles(&compiled, &args.cfg) {
        Ok(p) => rt.tls_profiles = p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    if specs.iter().any(|s| s.proto.is_reliable()) {
        // Each connection is a file: allow as many as tcp_max_connections, and some.
        let want = rt.tcp_max_connections as u64 + 1024;
        match runtime::raise_open_files_limit(want) {
            Ok(n) if n < want => {
                log::warn!("open files limit {n} is below tcp_max_connections + 1024 ({want})")
            }
            Ok(_) => {}
            Err(e) => log::warn!("cannot raise the open files limit: {e}"),
        }
    }
    rt.workers = args.workers.or(settings.children).unwrap_or(0);
    rt.pin_cores = !args.no_pin;
    rt.io = match args.io {
        IoChoice::Auto => IoMode::Auto,
        IoChoice::Uring => IoMode::Uring,
        IoChoice::Poll => IoMode::Poll,
    };

    let ctl_config = match ctl::config(
        &compiled.modparams,
        args.ctl.as_deref(),
        args.http.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Bound before the workers start, served once they run.
    let ctl_bound = match ctl::bind(&ctl_config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let metrics = Arc::new(ctl::Metrics::new(
        rt.worker_count(),
        compiled
            .program
            .routes
            .iter()
            .map(|r| ctl::metrics::route_label(r.kind, &r.name))
            .collect(),
    ));

    let mut tm_config = ringsip::modules::tm::config_from(&compiled.modparams);
    let specs_for_log = specs.clone();
    // `listen=… name "id"` of each socket, in the order of `specs`.
    let socket_names: Vec<Option<Box<str>>> = listens
        .iter()
        .map(|l| l.name.as_deref().map(Box::from))
        .collect();
    // The one wall-clock reading: modules get time as `now` against this anchor.
    let epoch = Epoch {
        at: Some(Instant::now()),
        unix_ms: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    // dns_try_ipv6 unset: AAAA only when an IPv6 socket could use it
    // (Kamailio turns it off without one, checked live).
    let mut dns = settings.dns.clone();
    dns.try_ipv6 = dns
        .try_ipv6
        .or_else(|| Some(listens.iter().any(|l| l.host.contains(':'))));
    let services = match setup::build(
        &compiled.modparams,
        &compiled.program.loaded_modules,
        epoch,
        &dns,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let module_services = services.shared.clone();
    let program = Arc::new(compiled.program);
    // `$shv` and hash tables: one state shared by every core.
    let shared = Arc::new(SharedState::for_program(&program));
    // The wall clock, read once here: the cores map their monotonic `now` onto it.
    let clock = WallClock {
        base: Some(Instant::now()),
        unix_at_base: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    };
    // server_header / user_agent_header / server_signature=no.
    let signature = |value: &Option<String>| match value {
        _ if settings.no_server_signature => Some(bytes::Bytes::new()),
        Some(v) => Some(bytes::Bytes::from(v.clone().into_bytes())),
        None => None,
    };
    let server_header = signature(&settings.server_header);
    let user_agent = signature(&settings.user_agent_header);
    // What every core's Env shares; the workers add their sockets.
    let mut base_env = Env {
        debug,
        shared: shared.clone(),
        clock,
        pid: std::process::id(),
        epoch,
        services: module_services.clone(),
        aliases: settings.aliases.clone(),
        socket_names,
        ..Env::default()
    };
    if let Some(h) = server_header {
        tm_config.server_header = h.clone();
        base_env.server_header = h;
    }
    if let Some(h) = user_agent {
        base_env.user_agent = h;
    }
    // Start-up event routes (htable:mod-init) run once, before any worker.
    {
        let mut dropped = Vec::new();
        Engine::new(Arc::new(base_env.clone()), program.clone())
            .run_startup_routes(Instant::now(), &mut dropped);
    }
    let worker_metrics = metrics.clone();
    rt.ws_peers = module_services.get_arc::<ringsip::modules::websocket::WsPeers>();
    if let Some(peers) = &rt.ws_peers {
        let ws = &ringsip::modules::websocket::keepalive_settings(
            &compiled.modparams,
            &base_env.server_header,
        );
        rt.ws_keepalive = ws.0.clone();
        peers.set_ping_data(ws.1.clone());
    }
    let make = move |info: WorkerInfo| {
        let sockets = specs
            .iter()
            .zip(info.locals.iter())
            .map(|(spec, local)| SocketInfo {
                proto: spec.proto,
                addr: *local,
                advertise: spec.advertise.clone(),
            })
            .collect();
        let env = Env {
            sockets,
            ..base_env.clone()
        };
        let engine = Engine::new(Arc::new(env), program.clone())
            .with_tm(tm_config.clone(), info.index as u16)
            .with_route_timer(RouteTimer {
                metrics: worker_metrics.clone(),
                core: info.index,
                clock: Instant::now,
            });
        runtime::Metered::new(engine, worker_metrics.clone(), info.index)
    };
    let server = match runtime::start(rt, make) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (spec, addr) in specs_for_log.iter().zip(server.local_addrs()) {
        log::info!("listening on {}:{addr}", spec.proto);
    }
    // What corex.list_sockets / list_aliases show: the sockets as bound.
    let ctl_env = Env {
        sockets: specs_for_log
            .iter()
            .zip(server.local_addrs())
            .map(|(spec, local)| SocketInfo {
                proto: spec.proto,
                addr: *local,
                advertise: spec.advertise.clone(),
            })
            .collect(),
        aliases: settings.aliases.clone(),
        services: services.shared.clone(),
        // The `$shv` and mqueue state the workers share (mqueue.* methods).
        shared: shared.clone(),
        ..Env::default()
    };
    let control = ctl::Ctl {
        env: Arc::new(ctl_env),
        metrics,
        services: services.shared.clone(),
        started: Instant::now(),
        started_unix: ctl::methods::unix_now(),
        workers: server
            .drivers()
            .iter()
            .enumerate()
            .map(|(index, d)| ctl::WorkerDesc {
                index,
                driver: d.name().to_string(),
            })
            .collect(),
        debug: AtomicI32::new(debug),
        set_log_level: |level| log::set_max_level(level_filter(level)),
    };
    let control = Arc::new(control);
    // jsonrpcs's script functions run the same methods (held weakly: the
    // control plane holds the module state).
    if let Some(gate) = services.shared.get::<ringsip::modules::jsonrpcs::RpcGate>() {
        let methods: Arc<dyn ringsip::modules::jsonrpcs::RpcMethods> = control.clone();
        gate.connect(Arc::downgrade(&methods));
    }
    // Served or not (the socket may be someone else's), the control plane
    // lives as long as the workers that call it.
    let ctl_server = match ctl_bound.serve(control.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            server.stop();
            let _ = server.wait();
            services.shutdown();
            return ExitCode::FAILURE;
        }
    };
    let result = server.wait();
    drop(ctl_server);
    drop(control);
    services.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stopped with error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Kamailio's rule for a listen that names no transport: every enabled one,
/// that is UDP, TCP unless `disable_tcp=yes`, and with `enable_tls=yes` TLS
/// on the next port (the TLS default, 5061, when no port is written).
fn with_every_proto(
    listens: Vec<ListenDef>,
    disable_tcp: bool,
    enable_tls: bool,
) -> Vec<ListenDef> {
    let mut all = Vec::with_capacity(listens.len() * 3);
    for l in listens {
        let tcp = (l.any_proto && !disable_tcp).then(|| ListenDef {
            proto: Proto::Tcp,
            ..l.clone()
        });
        let tls = (l.any_proto && enable_tls).then(|| ListenDef {
            proto: Proto::Tls,
            port: l.port.and_then(|p| p.checked_add(1)),
            ..l.clone()
        });
        all.push(l);
        all.extend(tcp);
        all.extend(tls);
    }
    all
}

/// The `tcp_*` core parameters that were set, over the runtime's defaults.
fn apply_tcp_params(rt: &mut RuntimeConfig, tcp: &TcpParams) {
    let secs = |n: u32| Duration::from_secs(u64::from(n));
    if let Some(n) = tcp.connection_lifetime {
        rt.tcp_connection_lifetime = secs(n);
    }
    if let Some(n) = tcp.max_connections {
        rt.tcp_max_connections = n as usize;
    }
    if let Some(n) = tcp.connect_timeout {
        rt.tcp_connect_timeout = secs(n);
    }
    if let Some(n) = tcp.send_timeout {
        rt.tcp_send_timeout = secs(n);
    }
    if let Some(n) = tcp.msg_read_timeout {
        rt.tcp_msg_read_timeout = secs(n);
    }
    if let Some(b) = tcp.accept_no_cl {
        rt.tcp_accept_no_cl = b;
    }
    if let Some(n) = tcp.conn_wq_max {
        rt.tcp_send_queue_max = (n as usize).max(1);
    }
    if let Some(n) = tcp.tls_max_connections {
        rt.tls_max_connections = n as usize;
    }
}

/// Logs to standard error, filtered by Kamailio's `debug` level
/// (≤ -1 errors, 0 warnings, 1–2 notices and info, 3 debug).
fn init_logger(debug: i32) {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.level() <= log::max_level()
        }
        fn log(&self, r: &log::Record<'_>) {
            if !self.enabled(r.metadata()) {
                return;
            }
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{:>5} [{}] {}", r.level(), r.target(), r.args());
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level_filter(debug));
    }
}

/// Kamailio's `debug` level as a log filter.
fn level_filter(debug: i32) -> log::LevelFilter {
    match debug {
        i32::MIN..=-1 => log::LevelFilter::Error,
        0 => log::LevelFilter::Warn,
        1 | 2 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    }
}

/// `ringsip ctl`: exit 0 with the result printed, 1 when the method failed,
/// 2 when no server answers on the socket (or the answer is not JSON-RPC).
fn ctl_command(args: cli::CtlArgs) -> ExitCode {
    let socket = match ctl::client::socket_path(args.socket.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("-s {e}");
            return ExitCode::from(2);
        }
    };
    let params: Vec<serde_json::Value> =
        args.params.iter().map(|p| ctl::client::param(p)).collect();
    loop {
        let result = ctl::client::call(&socket, &args.method, &params);
        let text = match &result {
            Ok(v) if args.json => serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
            Ok(v) => ctl::client::render(&args.method, v),
            Err(e) => {
                eprintln!("ringsip ctl {}: {e}", args.method);
                return match e {
                    ctl::client::CallError::Rpc { .. } => ExitCode::from(1),
                    _ => ExitCode::from(2),
                };
            }
        };
        let Some(every) = args.watch.filter(|s| *s > 0.0) else {
            print!("{text}");
            return ExitCode::SUCCESS;
        };
        // Like top: home, clear, the table, and the time of the reading.
        print!(
            "\x1b[H\x1b[2J{} — every {every}s, Ctrl-C to stop\n\n{text}",
            args.method
        );
        let _ = std::io::stdout().flush();
        std::thread::sleep(Duration::from_secs_f64(every));
    }
}
