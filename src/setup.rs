//! Start-up of the modules that keep state shared by every core (usrloc,
//! registrar, auth, auth_db, permissions, acc's database): their parameters are read, their
//! databases opened on store threads, their tables loaded, and the result put
//! in `Env::shared` for the workers.

use std::sync::Arc;

use ringsip::intercept::NioConfig;
use ringsip::modules::acc::AccDb;
use ringsip::modules::auth::db::{AuthDb, AuthDbParams};
use ringsip::modules::auth::Auth;
use ringsip::modules::cfgutils::Cfgutils;
use ringsip::modules::core::dns::{DnsConfig, Resolver};
use ringsip::modules::corex::alias::AliasSubdomains;
use ringsip::modules::dialog::{Dialogs, DlgParams};
use ringsip::modules::dialplan::Dialplan;
use ringsip::modules::dispatcher::Dispatcher;
use ringsip::modules::domain::{DomainParams, Domains};
use ringsip::modules::exec::Exec;
use ringsip::modules::nathelper::ping::{NatPinger, PingParams};
use ringsip::modules::nathelper::{self, NatParams};
use ringsip::modules::permissions::{self, Permissions};
use ringsip::modules::pike::{Pike, PikeParams};
use ringsip::modules::regex::PcreGroups;
use ringsip::modules::registrar::{RegParams, Registrar};
use ringsip::modules::rtpengine::{self, Rtpengine};
use ringsip::modules::rtpproxy::relay::RelayTransport;
use ringsip::modules::rtpproxy::{self, Rtpproxy};
use ringsip::modules::statistics::Statistics;
use ringsip::modules::usrloc::{UlParams, Usrloc};
use ringsip::runtime::dns::{ClientParams, DnsClient, ResolvConf};
use ringsip::runtime::{SystemHttp, SystemShell};
use ringsip::script::ctx::{Epoch, Shared};
use ringsip::script::registry::ModParams;
use ringsip::script::settings::DnsParams;
use ringsip::store::{StoreHandle, Stores};

/// What start-up built: the shared state, and what shutdown must finish.
pub struct Services {
    pub shared: Shared,
    pub usrloc: Arc<Usrloc>,
    pub stores: Stores,
}

impl Services {
    /// Writes what is still only in memory (usrloc write-back) and stops the store threads.
    pub fn shutdown(self) {
        self.usrloc.flush();
        drop(self.shared);
        self.stores.finish();
    }
}

/// The store thread for `module`'s `db_url`, if it has one.
fn store_for(
    mp: &ModParams,
    stores: &mut Stores,
    module: &str,
) -> Result<Option<StoreHandle>, String> {
    match mp.str(module, "db_url") {
        Some(url) => stores
            .handle(url)
            .map(Some)
            .map_err(|e| format!("{module}: {e}")),
        None => Ok(None),
    }
}

/// Parameters accepted so that Kamailio configurations load, but not acted on
/// yet, with Kamailio's default: setting another value only draws a warning.
enum ParamDefault {
    Int(i64),
    Str(&'static str),
}

const NOT_YET: &[(&str, &str, ParamDefault)] = &[
    ("registrar", "default_expires_range", ParamDefault::Int(0)),
    ("registrar", "expires_range", ParamDefault::Int(0)),
    ("registrar", "path_check_local", ParamDefault::Int(0)),
    ("registrar", "gruu_enabled", ParamDefault::Int(0)),
    ("registrar", "outbound_mode", ParamDefault::Int(0)),
    ("registrar", "regid_mode", ParamDefault::Int(0)),
    ("registrar", "flow_timer", ParamDefault::Int(0)),
    ("registrar", "sock_mode", ParamDefault::Int(0)),
    ("registrar", "sock_hdr_name", ParamDefault::Str("")),
    ("registrar", "xavp_cfg", ParamDefault::Str("")),
    ("registrar", "xavp_rcd", ParamDefault::Str("")),
    ("registrar", "lookup_filter_mode", ParamDefault::Int(0)),
    ("registrar", "use_expired_contacts", ParamDefault::Int(0)),
    ("registrar", "reg_callid_avp", ParamDefault::Str("")),
    ("registrar", "contact_check", ParamDefault::Int(0)),
    ("registrar", "received_param", ParamDefault::Str("received")),
    ("auth", "auth_checks_register", ParamDefault::Int(0)),
    ("auth", "auth_checks_no_dlg", ParamDefault::Int(0)),
    ("auth", "auth_checks_in_dlg", ParamDefault::Int(0)),
    ("auth", "force_stateless_reply", ParamDefault::Int(0)),
    ("auth", "add_authinfo_hdr", ParamDefault::Int(0)),
    ("auth", "protect_contacts", ParamDefault::Int(0)),
    ("usrloc", "handle_lost_tcp", ParamDefault::Int(0)),
    ("usrloc", "close_expired_tcp", ParamDefault::Int(0)),
    ("usrloc", "ka_mode", ParamDefault::Int(0)),
    ("usrloc", "skip_remote_socket", ParamDefault::Int(0)),
    ("usrloc", "xavp_contact", ParamDefault::Str("")),
    ("usrloc", "db_timer_clean", ParamDefault::Int(0)),
    ("usrloc", "rm_expired_delay", ParamDefault::Int(0)),
    ("usrloc", "desc_time_order", ParamDefault::Int(0)),
    ("usrloc", "preload", ParamDefault::Str("")),
    // The location table has Kamailio's column names.
    ("usrloc", "user_column", ParamDefault::Str("username")),
    ("usrloc", "domain_column", ParamDefault::Str("domain")),
    ("usrloc", "contact_column", ParamDefault::Str("contact")),
    ("usrloc", "expires_column", ParamDefault::Str("expires")),
    ("usrloc", "q_column", ParamDefault::Str("q")),
    ("usrloc", "callid_column", ParamDefault::Str("callid")),
    ("usrloc", "cseq_column", ParamDefault::Str("cseq")),
    ("usrloc", "methods_column", ParamDefault::Str("methods")),
    ("usrloc", "flags_column", ParamDefault::Str("flags")),
    ("usrloc", "cflags_column", ParamDefault::Str("cflags")),
    (
        "usrloc",
        "user_agent_column",
        ParamDefault::Str("user_agent"),
    ),
    ("usrloc", "received_column", ParamDefault::Str("received")),
    ("usrloc", "socket_column", ParamDefault::Str("socket")),
    ("usrloc", "path_column", ParamDefault::Str("path")),
    ("usrloc", "ruid_column", ParamDefault::Str("ruid")),
    ("usrloc", "instance_column", ParamDefault::Str("instance")),
    ("usrloc", "server_id_column", ParamDefault::Str("server_id")),
];

/// Warns about each parameter of [`NOT_YET`] set to something else than its default.
fn warn_not_yet(mp: &ModParams) {
    for (module, param, default) in NOT_YET {
        let ignored = match default {
            ParamDefault::Int(d) => mp.int(module, param).is_some_and(|v| v != *d),
            ParamDefault::Str(d) => mp.str(module, param).is_some_and(|v| v != *d),
        };
        if ignored {
            log::warn!("{module}: parameter {param} is not implemented yet; its value is ignored");
        }
    }
}

pub fn build(
    mp: &ModParams,
    loaded: &[&str],
    epoch: Epoch,
    dns: &DnsParams,
) -> Result<Services, String> {
    warn_not_yet(mp);
    let mut stores = Stores::default();
    let mut shared = Shared::default();
    let resolver = Arc::new(resolver(dns)?);
    shared.insert(resolver.clone());
    // jsonrpcs's jsonrpc_dispatch()/jsonrpc_exec() reach the control
    // methods through this, connected once the control plane is built.
    shared.insert(Arc::new(ringsip::modules::jsonrpcs::RpcGate::default()));

    let ul_params = UlParams::from_modparams(mp)?;
    let ul_store = if ul_params.db_mode != 0 {
        store_for(mp, &mut stores, "usrloc")?
    } else {
        None
    };
    let usrloc = Arc::new(Usrloc::new(ul_params, ul_store, epoch.unix_ms)?);
    shared.insert(usrloc.clone());
    shared.add_timer(usrloc.clone());
    if loaded.contains(&"htable") {
        shared.add_timer(Arc::new(
            ringsip::modules::htable::ExpiryTick::from_modparams(mp),
        ));
    }
    shared.insert(Arc::new(Registrar {
        params: RegParams::from_modparams(mp)?,
    }));

    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("auth: no random secret: {e}"))?;
    shared.insert(Arc::new(Auth::from_modparams(mp, &secret)?));
    let auth_store = store_for(mp, &mut stores, "auth_db")?;
    shared.insert(Arc::new(AuthDb::new(
        AuthDbParams::from_modparams(mp),
        auth_store,
    )?));

    // An address_file takes the place of the database (KAMAILIO-REFERENCE §7.1).
    if let Some(file) = mp.str("permissions", "address_file") {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("permissions: address_file {file}: {e}"))?;
        let rows = permissions::parse_address_file(&text)
            .map_err(|e| format!("permissions: address_file {file}: {e}"))?;
        let mut p = Permissions::from_rows(&rows);
        p.peer_tag_avp = permissions::peer_tag_avp(mp)?;
        shared.insert(Arc::new(p));
    } else if let Some(store) = store_for(mp, &mut stores, "permissions")? {
        shared.insert(Arc::new(Permissions::from_store(mp, store)?));
    }
    // allow_trusted reads the `trusted` table of the same database.
    if loaded.contains(&"permissions") {
        if let Some(store) = store_for(mp, &mut stores, "permissions")? {
            shared.insert(Arc::new(permissions::trusted::Trusted::from_modparams(
                mp, store,
            )?));
        }
    }

    if loaded.contains(&"dispatcher") {
        let store = store_for(mp, &mut stores, "dispatcher")?;
        let seed = random_seed("dispatcher")?;
        let d = Arc::new(Dispatcher::from_modparams(
            mp,
            store,
            seed,
            Some(resolver.clone()),
        )?);
        shared.insert(d.clone());
        shared.add_requester(d);
    }

    if loaded.contains(&"rtimer") {
        let r = ringsip::modules::rtimer::Rtimer::new(ringsip::modules::rtimer::timers(mp)?);
        if !r.is_empty() {
            shared.add_requester(Arc::new(r));
        }
    }

    if loaded.contains(&"pipelimit") {
        use ringsip::modules::pipelimit::Pipelimit;
        let rows = match store_for(mp, &mut stores, "pipelimit")? {
            Some(store) => Pipelimit::load_pipes(&store, mp)?,
            None => Vec::new(),
        };
        let seed = random_seed("pipelimit")?;
        let p = Arc::new(Pipelimit::new(mp, rows, seed)?);
        shared.insert(p.clone());
        shared.add_timer(p);
    }

    if loaded.contains(&"siptrace") {
        use ringsip::modules::siptrace::Siptrace;
        shared.insert(Arc::new(Siptrace::from_modparams(mp)?));
    }

    if loaded.contains(&"http_client") {
        shared.insert(Arc::new(
            ringsip::modules::http_client::HttpClientModule::from_modparams(
                mp,
                Box::new(SystemHttp::default()),
            )?,
        ));
    }

    if loaded.contains(&"exec") {
        shared.insert(Arc::new(Exec::from_modparams(mp, Box::new(SystemShell))?));
    }

    if loaded.contains(&"uac") {
        let cfg = ringsip::modules::uac::UacConfig::from_modparams(mp)?;
        // auto restore tells the directions apart by rr's ftag.
        if cfg.restore_mode == ringsip::modules::uac::RestoreMode::Auto
            && mp.int("rr", "append_fromtag") == Some(0)
        {
            return Err("uac: restore_mode auto needs rr's append_fromtag".into());
        }
        for name in ["restore_from_avp", "restore_to_avp"] {
            if mp.str("uac", name).is_some() {
                // Kamailio keeps the header value the request arrived
                // with there and puts it into replies: what is restored
                // here from the transaction's request.
                log::warn!("accepted but ignored: uac {name}");
            }
        }
        shared.insert(Arc::new(cfg));
        for w in ringsip::modules::uac::reg::unsupported_params(mp) {
            log::warn!("accepted but ignored: {w}");
        }
        if let Some(rc) = ringsip::modules::uac::reg::RegConfig::from_modparams(mp)? {
            use ringsip::modules::uac::reg::{load, Registrations};
            let store = stores
                .handle(&rc.db_url)
                .map_err(|e| format!("uac: reg_db_url: {e}"))?;
            // Kamailio loads the table in its registration process and runs
            // on with no records when it cannot (a missing table only logs).
            let records = load(&store, &rc.table, None).unwrap_or_else(|e| {
                log::error!("{e}");
                Vec::new()
            });
            log::info!("uac: {} remote registration records", records.len());
            let seed = random_seed("uac")?;
            let now = epoch.unix_ms / 1000;
            let r = Arc::new(Registrations::new(rc, records, seed, now, Some(store)));
            shared.insert(r.clone());
            shared.add_requester(r);
        }
    }

    // dialplan's rules come from the database only (as in Kamailio).
    if loaded.contains(&"dialplan") {
        let store = store_for(mp, &mut stores, "dialplan")?
            .ok_or("dialplan: db_url is not set (the rules are read from the database)")?;
        shared.insert(Arc::new(Dialplan::from_modparams(mp, store)?));
    }

    if let Some(file) = mp
        .str("regex", "file")
        .filter(|_| loaded.contains(&"regex"))
    {
        let text = std::fs::read(file).map_err(|e| format!("regex: file {file}: {e}"))?;
        shared.insert(Arc::new(PcreGroups::new(mp, file, &text)?));
    }

    if loaded.contains(&"dialog") {
        for w in ringsip::modules::dialog::unsupported_params(mp) {
            log::warn!("accepted but ignored: {w}");
        }
        let d = Arc::new(Dialogs::new(DlgParams::from_modparams(mp)?));
        shared.insert(d.clone());
        shared.add_timer(d);
    }

    if loaded.contains(&"presence") {
        use ringsip::modules::presence::{self, Presence, PresenceConfig};
        for w in presence::unsupported_params(mp) {
            log::warn!("accepted but ignored: {w}");
        }
        let cfg = PresenceConfig::from_modparams(mp)?;
        let db = store_for(mp, &mut stores, "presence")?
            .map(|s| presence::db::Db::new(s, cfg.subs_db_mode));
        let now = (epoch.unix_ms / 1000) as i64;
        let loaded = match &db {
            Some(d) => Some(d.load(&cfg, now)?),
            None => None,
        };
        let p = Arc::new(Presence::new(cfg, db, now, std::process::id()));
        if let Some(l) = loaded {
            log::info!(
                "presence: loaded {} publications and {} subscriptions",
                l.presentities.len(),
                l.subscriptions.len()
            );
            p.restore(l);
        }
        shared.insert(p.clone());
        shared.add_requester(p);
    }

    if loaded.contains(&"pike") {
        let p = Arc::new(Pike::new(PikeParams::from_modparams(mp)?));
        shared.insert(p.clone());
        shared.add_timer(p);
    }

    if loaded.contains(&"nathelper") {
        shared.insert(Arc::new(NatParams::from_modparams(mp)));
        for w in nathelper::unsupported_params(mp) {
            log::warn!("accepted but ignored: {w}");
        }
        if let Some(pp) = PingParams::from_modparams(mp)? {
            let seed = random_seed("nathelper")?;
            let pinger = NatPinger::new(pp, usrloc.clone(), seed);
            shared.add_requester(Arc::new(pinger));
        }
    }

    if loaded.contains(&"cfgutils") {
        let seed = random_seed("cfgutils")?;
        shared.insert(Arc::new(Cfgutils::from_modparams(mp, seed, |f| {
            std::fs::read(f)
        })?));
    }

    if loaded.contains(&"statistics") {
        shared.insert(Arc::new(Statistics::from_modparams(mp)?));
    }

    media_relays(mp, loaded, &resolver, &mut shared)?;

    if loaded.contains(&"debugger") {
        for w in ringsip::modules::debugger::unsupported_params(mp) {
            log::warn!("accepted but ignored: {w}");
        }
    }

    if loaded.contains(&"sqlops") {
        shared.insert(ringsip::modules::sqlops::open(mp, |url| {
            stores.handle(url).map_err(|e| e.to_string())
        })?);
    }

    if loaded.contains(&"avpops") {
        if let Some(db) =
            ringsip::modules::avpops::open(mp, |url| stores.handle(url).map_err(|e| e.to_string()))?
        {
            shared.insert(Arc::new(db));
        }
    }

    // domain, alias_db and speeddial read their tables from the database only.
    if loaded.contains(&"domain") {
        let store = store_for(mp, &mut stores, "domain")?
            .ok_or("domain: db_url is not set (the domains are read from the database)")?;
        shared.insert(Arc::new(Domains::open(
            DomainParams::from_modparams(mp)?,
            store,
        )?));
    }
    if loaded.contains(&"alias_db") {
        shared.insert(Arc::new(ringsip::modules::alias_db::open(mp, |url| {
            stores.handle(url).map_err(|e| e.to_string())
        })?));
    }
    // drouting's gateways and rules come from the database only.
    if loaded.contains(&"drouting") {
        let store = store_for(mp, &mut stores, "drouting")?
            .ok_or("drouting: db_url is not set (the routing data is read from the database)")?;
        let seed = random_seed("drouting")?;
        shared.insert(Arc::new(ringsip::modules::drouting::Drouting::open(
            ringsip::modules::drouting::DrParams::from_modparams(mp)?,
            store,
            Some(resolver.clone()),
            seed,
        )?));
    }
    if loaded.contains(&"speeddial") {
        shared.insert(Arc::new(ringsip::modules::speeddial::open(mp, |url| {
            stores.handle(url).map_err(|e| e.to_string())
        })?));
    }

    if let Some(store) = store_for(mp, &mut stores, "acc")? {
        shared.insert(Arc::new(AccDb { store }));
    }

    // corex: the network intercept stage's settings and alias_subdomains.
    shared.insert(Arc::new(NioConfig::from_modparams(mp)?));
    shared.insert(Arc::new(AliasSubdomains::from_modparams(mp)?));
    if loaded.contains(&"topoh") {
        shared.insert(Arc::new(
            ringsip::modules::topoh::TopohConfig::from_modparams(mp, loaded.contains(&"sanity"))?,
        ));
    }

    if loaded.contains(&"topos") {
        let store = store_for(mp, &mut stores, "topos")?.ok_or(
            "topos: db_url is not set (the dialog and transaction records live in the database)",
        )?;
        shared.insert(Arc::new(ringsip::modules::topos::ToposShared::open(
            mp,
            loaded.contains(&"sanity"),
            std::process::id(),
            Some(store),
        )?));
    }

    if loaded.contains(&"websocket") {
        shared.insert(Arc::new(ringsip::modules::websocket::WsPeers::default()));
    }

    Ok(Services {
        shared,
        usrloc,
        stores,
    })
}

/// rtpproxy and rtpengine: their relays, reached through the runtime's UDP
/// client (a blocking socket per worker thread, see `runtime::media`).
fn media_relays(
    mp: &ModParams,
    loaded: &[&str],
    resolver: &Resolver,
    shared: &mut Shared,
) -> Result<(), String> {
    if !loaded.contains(&"rtpproxy") && !loaded.contains(&"rtpengine") {
        return Ok(());
    }
    let transport: Arc<dyn RelayTransport> = Arc::new(ringsip::runtime::media::UdpRelayClient);
    let mut seed = [0u8; 4];
    getrandom::fill(&mut seed).map_err(|e| format!("media relay: no random cookie: {e}"))?;
    let prefix = u32::from_le_bytes(seed);
    // Relay host names are resolved once, here, by the shared resolver.
    let resolve = |name: &str, v6: bool| -> Result<std::net::IpAddr, String> {
        resolver
            .resolve_uncached(name.as_bytes())
            .into_iter()
            .find(|ip| ip.is_ipv6() == v6)
            .ok_or_else(|| format!("\"{name}\" has no IPv{} address", if v6 { 6 } else { 4 }))
    };
    if loaded.contains(&"rtpproxy") {
        shared.insert(Arc::new(Rtpproxy::from_modparams(
            mp,
            transport.clone(),
            prefix,
            &resolve,
        )?));
        for w in rtpproxy::unsupported_params(mp) {
            log::warn!("accepted but ignored: {w}");
        }
    }
    if loaded.contains(&"rtpengine") {
        shared.insert(Arc::new(Rtpengine::from_modparams(
            mp, transport, prefix, &resolve,
        )?));
        for w in rtpengine::unsupported_params(mp) {
            log::warn!("accepted but ignored: {w}");
        }
    }
    Ok(())
}

/// The shared resolver: ringsip's DNS client on the nameservers of
/// `/etc/resolv.conf` (or `RINGSIP_RESOLV_CONF`), following the core
/// `dns_*` parameters.
fn resolver(p: &DnsParams) -> Result<Resolver, String> {
    let defaults = DnsConfig::default();
    let use_cache = p.use_dns_cache.unwrap_or(true);
    let mut failover = p.use_dns_failover.unwrap_or(false);
    if failover && !use_cache {
        // Kamailio's failover walks the cached answer: without the cache there is none.
        log::warn!("use_dns_failover needs use_dns_cache=yes: DNS failover is off");
        failover = false;
    }
    let try_ipv6 = p.try_ipv6.unwrap_or(defaults.try_ipv6);
    let config = DnsConfig {
        try_naptr: p.try_naptr.unwrap_or(false),
        srv_lb: p.srv_lb.unwrap_or(false),
        failover,
        try_ipv6,
        use_cache,
        udp_pref: p.udp_pref.unwrap_or(defaults.udp_pref),
        tcp_pref: p.tcp_pref.unwrap_or(defaults.tcp_pref),
        tls_pref: p.tls_pref.unwrap_or(defaults.tls_pref),
        min_ttl: p.cache_min_ttl.unwrap_or(defaults.min_ttl),
        max_ttl: p.cache_max_ttl.unwrap_or(defaults.max_ttl),
        negative_ttl: p.cache_negative_ttl.unwrap_or(defaults.negative_ttl),
    };
    let client = DnsClient::new(
        ResolvConf::load(),
        &ClientParams {
            retr_time: p.retr_time,
            retr_no: p.retr_no,
            servers_no: p.servers_no,
            use_search_list: p.use_search_list.unwrap_or(true),
            try_ipv6,
        },
    );
    Ok(Resolver::new(Box::new(client))
        .config(config)
        .seed(random_seed("dns_srv_lb")?))
}

/// A random 64-bit seed for a module's generator, from the system.
fn random_seed(module: &str) -> Result<u64, String> {
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| format!("{module}: no random seed: {e}"))?;
    Ok(u64::from_le_bytes(seed))
}
