//! The `ringsip` binary: command line, configuration loading, logging, and
//! the runtime started with one engine per core.

mod admin;
mod cli;
mod setup;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use clap::Parser;
use mimalloc::MiMalloc;

use cli::{Cli, Command, ConfigArgs, IoChoice, RunArgs};
use ringsip::modules::core::Engine;
use ringsip::runtime::{self, IoMode, ListenSpec, RuntimeConfig, WorkerInfo};
use ringsip::script::compile::{compile, Compiled};
use ringsip::script::ctx::{Env, Epoch, SocketInfo};
use ringsip::script::settings::ListenDef;
use ringsip::script::{self as script_lang, Options};

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
    }
}

/// Reads, preprocesses, parses and compiles the configuration; the error is
/// every diagnostic, one `file:line:col: message` per line.
fn load(cfg: &ConfigArgs) -> Result<Compiled, String> {
    let mut opts = Options::default();
    opts.defines.extend(cfg.defines.iter().cloned());
    let parsed = match &cfg.config {
        Some(path) => script_lang::load(path, &opts),
        None => script_lang::parse_str("<embedded default config>", DEFAULT_CFG, &opts),
    };
    let config = parsed.map_err(|d| d.rendered().join("\n"))?;
    compile(&config).map_err(|d| d.rendered().join("\n"))
}

fn check(cfg: &ConfigArgs, verbose: bool) -> ExitCode {
    match load(cfg) {
        Ok(compiled) => {
            if verbose {
                for (name, _) in &compiled.settings.ignored {
                    println!("accepted but ignored: {name}");
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
        listens.push(ListenDef::parse("udp:0.0.0.0").expect("constant listen spec"));
    }
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
        if l.proto != ringsip::sip::Proto::Udp {
            log::warn!(
                "listen {}:{}: only UDP is served yet; skipped",
                l.proto,
                l.host
            );
            continue;
        }
        let port = l.port.unwrap_or(default_port);
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
    rt.workers = args.workers.or(settings.children).unwrap_or(0);
    rt.pin_cores = !args.no_pin;
    rt.io = match args.io {
        IoChoice::Auto => IoMode::Auto,
        IoChoice::Uring => IoMode::Uring,
        IoChoice::Poll => IoMode::Poll,
    };

    // The one wall-clock reading: modules get time as `now` against this anchor.
    let epoch = Epoch {
        at: Some(Instant::now()),
        unix_ms: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    let services = match setup::build(&compiled.modparams, epoch) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let shared = services.shared.clone();
    let program = Arc::new(compiled.program);
    let aliases = settings.aliases.clone();
    let server_header = settings.server_header.clone();
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
        let mut env = Env {
            sockets,
            aliases: aliases.clone(),
            debug,
            epoch,
            shared: shared.clone(),
            ..Env::default()
        };
        if let Some(h) = &server_header {
            env.server_header = h.clone().into_bytes().into();
        }
        Engine::new(Arc::new(env), program.clone())
    };
    let server = match runtime::start(rt, make) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for addr in server.local_addrs() {
        log::info!("listening on udp:{addr}");
    }
    let result = server.wait();
    services.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stopped with error: {e}");
            ExitCode::FAILURE
        }
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
    let level = match debug {
        i32::MIN..=-1 => log::LevelFilter::Error,
        0 => log::LevelFilter::Warn,
        1 | 2 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
