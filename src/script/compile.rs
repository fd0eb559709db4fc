//! The compiler: checks a parsed [`Config`] against the module table and turns
//! it into a [`Program`] where every route, function and variable is resolved.
//! Every problem is a [`Diagnostic`] at the place it was written; a config that
//! compiles can run.

use std::collections::HashMap;

use bytes::Bytes;

use super::ast::{self, Config, ExprKind, RouteKind, RouteTarget, StmtKind};
use super::diag::{Diagnostic, Diagnostics, Span};
use super::format::{self, parse_format_at};
use super::ir::{
    AssignOp, BinOp, Block, Call, CaseLabel, Expr, Format, FormatPart, IpNet, Program, Route,
    RouteId, Stmt, UnOp,
};
use super::pvkind::{self, PvKind, PvRef, SndPart};
use super::registry::{
    Arg, Args, FunctionDef, ModParams, ModuleDef, ParamKind, ParamValue, RouteType,
};
use super::settings::Settings;
use super::value::Value;
use crate::modules;

mod flags;
mod pvs;

/// The result of compiling a configuration.
#[derive(Debug)]
pub struct Compiled {
    pub program: Program,
    pub settings: Settings,
    /// Module parameters as set by `modparam`.
    pub modparams: ModParams,
}

/// Kamailio modules that ringsip does not provide yet: loading one is reported
/// as "not implemented yet" rather than "unknown".
const PLANNED_MODULES: &[&str] = &[
    "rr", "outbound", "pua", "uac", "mi_fifo", "mi_rpc", "avpops",
];

/// Compiles a parsed configuration.
pub fn compile(cfg: &Config) -> Result<Compiled, Diagnostics> {
    let mut c = Compiler::new(cfg);
    let settings = super::settings::from_config(cfg, &mut c.diags);
    c.flag_bits = flags::table(&cfg.flags, &mut c.diags);
    c.load_modules();
    c.module_params();
    c.shared_defs();
    c.module_settings();
    c.program.via.advertised_address = (settings.advertised_address.as_deref())
        .map(|a| bytes::Bytes::copy_from_slice(a.as_bytes()));
    c.program.via.advertised_port = settings.advertised_port;
    c.program.via.force_rport = settings.force_rport;
    c.declare_routes();
    c.compile_routes();
    c.check_network_intercept();
    c.check_rtimer();
    c.xhttp_settings();
    c.log_custom_settings();
    c.websocket_settings();
    c.topos_settings();
    c.uac_needs_rr();
    if !c.diags.is_empty() {
        return Err(Diagnostics {
            sources: cfg.sources.clone(),
            list: c.diags,
        });
    }
    let Compiler {
        program,
        modparams,
        vars,
        loaded,
        shvs,
        ..
    } = c;
    let mut program = program;
    program.loaded_modules = loaded.iter().map(|m| m.name).collect();
    program.var_slots = vars.len();
    let mut names = vec![String::new(); vars.len()];
    for (name, slot) in vars {
        names[slot as usize] = name;
    }
    program.var_names = names;
    let mut names = vec![String::new(); shvs.len()];
    for (name, slot) in shvs {
        names[slot as usize] = name;
    }
    program.shv_init.resize(names.len(), Value::Int(0));
    program.shv_names = names;
    Ok(Compiled {
        program,
        settings,
        modparams,
    })
}

struct Compiler<'c> {
    cfg: &'c Config,
    diags: Vec<Diagnostic>,
    loaded: Vec<&'static ModuleDef>,
    modparams: ModParams,
    program: Program,
    /// Named routes (`route[X]`, `failure_route[X]`…) by kind and name.
    route_ids: HashMap<(RouteKind, String), RouteId>,
    vars: HashMap<String, u32>,
    shvs: HashMap<String, u32>,
    /// The kind of the top-level block being compiled (for where-allowed checks).
    current: RouteKind,
    /// Its name (`$cfg(route)`).
    current_name: String,
    /// Where the pseudo-variable being resolved was written (`$cfg(line)`).
    pv_span: Span,
    /// The index of the block being compiled.
    current_id: RouteId,
    /// Calls made inside `route[X]` blocks, checked once it is known which
    /// route types reach each block.
    sub_route_calls: Vec<(RouteId, Span, &'static FunctionDef)>,
    /// `route()` calls: from block, to block (`None`: a name computed at run time).
    route_edges: Vec<(RouteId, Option<RouteId>)>,
    /// The bits of the `flags` declarations, by name.
    flag_bits: HashMap<String, i64>,
    /// Routes made of the statements after an `async_sleep()` (numbered
    /// after the configuration's own blocks).
    continuations: Vec<Route>,
}

impl<'c> Compiler<'c> {
    fn new(cfg: &'c Config) -> Compiler<'c> {
        let loaded = modules::MODULES
            .iter()
            .copied()
            .filter(|m| m.always)
            .collect();
        Compiler {
            cfg,
            diags: Vec::new(),
            loaded,
            modparams: ModParams::default(),
            program: Program::default(),
            route_ids: HashMap::new(),
            vars: HashMap::new(),
            shvs: HashMap::new(),
            current: RouteKind::Request,
            current_name: String::new(),
            pv_span: Span::default(),
            current_id: 0,
            sub_route_calls: Vec::new(),
            route_edges: Vec::new(),
            flag_bits: HashMap::new(),
            continuations: Vec::new(),
        }
    }

    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, message));
    }

    fn load_modules(&mut self) {
        for lm in &self.cfg.modules {
            let name = lm.name();
            match modules::find(name) {
                Some(m) => {
                    if !self.loaded.iter().any(|l| std::ptr::eq(*l, m)) {
                        self.loaded.push(m);
                    }
                }
                None if PLANNED_MODULES.contains(&name) => self.error(
                    lm.span,
                    format!("module \"{name}\" is not implemented in ringsip yet"),
                ),
                None => self.error(lm.span, format!("unknown module \"{name}\"")),
            }
        }
    }

    fn loaded_module(&self, name: &str) -> Option<&'static ModuleDef> {
        self.loaded.iter().copied().find(|m| m.answers_to(name))
    }

    fn module_params(&mut self) {
        for mp in &self.cfg.modparams {
            for name in mp.module_names() {
                let Some(module) = self.loaded_module(name) else {
                    if !self.cfg.modules.iter().any(|m| m.name() == name) {
                        self.error(
                            mp.span,
                            format!("modparam for module \"{name}\", which is not loaded"),
                        );
                    }
                    continue;
                };
                let Some(def) = module.param(&mp.param) else {
                    self.error(
                        mp.span,
                        format!("module \"{name}\" has no parameter \"{}\"", mp.param),
                    );
                    continue;
                };
                let value = match (&mp.value, def.kind) {
                    (ast::Value::Int(i), ParamKind::Int | ParamKind::Any) => ParamValue::Int(*i),
                    (ast::Value::Bool(b), ParamKind::Int | ParamKind::Any) => {
                        ParamValue::Int(i64::from(*b))
                    }
                    (ast::Value::Str(s), ParamKind::Str | ParamKind::Any) => {
                        ParamValue::Str(s.clone())
                    }
                    (ast::Value::Str(s), ParamKind::Pv) => {
                        if let Some(f) = self.format(s, mp.span) {
                            let key = (module.name, mp.param.clone());
                            self.program
                                .param_formats
                                .retain(|(m, p, _)| (*m, p) != (key.0, &key.1));
                            self.program.param_formats.push((key.0, key.1, f));
                        }
                        ParamValue::Str(s.clone())
                    }
                    (ast::Value::Str(s), ParamKind::Int) => match s.trim().parse() {
                        Ok(i) => ParamValue::Int(i),
                        Err(_) => {
                            self.error(
                                mp.span,
                                format!("parameter \"{}\" of \"{name}\" needs a number", mp.param),
                            );
                            continue;
                        }
                    },
                    (ast::Value::Int(i), ParamKind::Str) => ParamValue::Str(i.to_string()),
                    _ => {
                        self.error(
                            mp.span,
                            format!(
                                "parameter \"{}\" of \"{name}\" has a value of the wrong kind",
                                mp.param
                            ),
                        );
                        continue;
                    }
                };
                let checked = match module.name {
                    "corex" => modules::corex::params::check(&mp.param, &value),
                    "rtpproxy" => modules::rtpproxy::check_param(&mp.param, &value),
                    "rtpengine" => modules::rtpengine::check_param(&mp.param, &value),
                    "topos" => modules::topos::check_param(&mp.param, &value),
                    _ => Ok(()),
                };
                if let Err(e) = checked {
                    self.error(mp.span, format!("{}: {e}", module.name));
                    continue;
                }
                self.modparams.push(module.name, &mp.param, value);
            }
        }
    }

    /// Settings of loaded modules that the program carries (acc), and the
    /// core parameters corex's and the core's Via read.
    fn module_settings(&mut self) {
        self.program.via = super::ir::ViaExtras {
            server_id: self.cfg.global("server_id").and_then(|g| match &g.value {
                ast::Value::Int(i) => Some(*i),
                _ => None,
            }),
            xavp_params: self
                .cfg
                .global("xavp_via_params")
                .and_then(|g| match &g.value {
                    ast::Value::Str(s) | ast::Value::Word(s) if !s.is_empty() => {
                        Some(bytes::Bytes::copy_from_slice(s.as_bytes()))
                    }
                    _ => None,
                }),
            // `advertised_*` and `force_rport`: set by `compile` from the settings.
            ..super::ir::ViaExtras::default()
        };
        if self.loaded_module("acc").is_some() {
            match crate::modules::acc::AccConfig::from_modparams(&self.modparams) {
                Ok(mut acc) => {
                    acc.extra = std::mem::take(&mut self.program.acc.extra);
                    acc.db_extra = std::mem::take(&mut self.program.acc.db_extra);
                    self.program.acc = acc;
                }
                Err(e) => {
                    let span = self
                        .cfg
                        .modules
                        .iter()
                        .find(|m| m.name() == "acc")
                        .map_or_else(Span::default, |m| m.span);
                    self.error(span, e);
                }
            }
        }
    }

    /// rtimer's timers and the routes they run: a bad parameter or a route
    /// the script does not define is a start-up error at the `modparam`.
    fn check_rtimer(&mut self) {
        if self.loaded_module("rtimer").is_none() {
            return;
        }
        let span = |c: &Self, param: &str| {
            c.cfg
                .modparams
                .iter()
                .find(|m| m.module_names().any(|n| n == "rtimer") && m.param == param)
                .map_or_else(Span::default, |m| m.span)
        };
        match crate::modules::rtimer::timers(&self.modparams) {
            Err(e) => {
                let at = span(self, if e.contains("exec") { "exec" } else { "timer" });
                self.error(at, e);
            }
            Ok(timers) => {
                for route in timers.iter().flat_map(|t| &t.routes) {
                    if !self
                        .route_ids
                        .contains_key(&(RouteKind::Named, route.clone()))
                    {
                        let at = self
                            .cfg
                            .modparams
                            .iter()
                            .find(|m| {
                                m.param == "exec"
                                    && matches!(&m.value, ast::Value::Str(v) if v.contains(route.as_str()))
                            })
                            .map_or_else(|| span(self, "exec"), |m| m.span);
                        self.error(at, format!("rtimer: no route[{route}] in the script"));
                    }
                }
            }
        }
    }

    /// corex `nio_intercept` (or `network_io_intercept`) on needs a non-empty
    /// `event_route[network:msg]` (KAMAILIO-REFERENCE §8).
    fn check_network_intercept(&mut self) {
        use crate::intercept::stage::{EVENT_ROUTE, PARAM_INTERCEPT};
        let on = PARAM_INTERCEPT
            .iter()
            .find_map(|n| self.modparams.int("corex", n))
            .is_some_and(|v| v != 0);
        if !on {
            return;
        }
        let has_route = self.cfg.routes.iter().any(|r| {
            r.kind == RouteKind::Event
                && r.name.as_deref() == Some(EVENT_ROUTE)
                && !r.body.stmts.is_empty()
        });
        if has_route {
            return;
        }
        let span = self
            .cfg
            .modparams
            .iter()
            .rev()
            .find(|mp| {
                PARAM_INTERCEPT.contains(&mp.param.as_str())
                    && mp.module_names().any(|m| m == "corex")
            })
            .map(|mp| mp.span)
            .unwrap_or_default();
        self.error(
            span,
            format!("corex nio_intercept is on but event_route[{EVENT_ROUTE}] is missing or empty"),
        );
    }

    /// uac restores the From/To it replaced through rr's Record-Route
    /// parameters and callbacks: Kamailio refuses to start uac without rr
    /// unless `restore_mode` is "none" ("can't load RR API"), and so does ringsip.
    fn uac_needs_rr(&mut self) {
        let Some(span) = self
            .cfg
            .modules
            .iter()
            .find(|m| crate::modules::uac::MODULE.answers_to(m.name()))
            .map(|m| m.span)
        else {
            return;
        };
        let mode = self.modparams.str("uac", "restore_mode");
        if self.loaded_module("rr").is_some()
            || mode.is_some_and(|m| m.eq_ignore_ascii_case("none"))
        {
            return;
        }
        self.error(
            span,
            format!(
                "module uac needs module rr for restore_mode \"{}\" (load rr.so, or set restore_mode to \"none\")",
                mode.filter(|m| !m.is_empty()).unwrap_or("auto")
            ),
        );
    }

    /// topos: its event routes on received messages are not run by ringsip,
    /// and topoh with it is not supported; both are refused.
    fn topos_settings(&mut self) {
        let Some(span) = self
            .cfg
            .modules
            .iter()
            .find(|m| crate::modules::topos::MODULE.answers_to(m.name()))
            .map(|m| m.span)
        else {
            return;
        };
        if self.loaded_module("topoh").is_some() {
            self.error(
                span,
                "topos together with topoh is not implemented in ringsip yet",
            );
        }
        let mode = self
            .modparams
            .int("topos", "event_mode")
            .unwrap_or(crate::modules::topos::EVENT_MODE_DEFAULT);
        let not_yet: Vec<(Span, String)> = self
            .cfg
            .routes
            .iter()
            .filter(|r| r.kind == RouteKind::Event)
            .filter_map(|r| {
                let name = r.name.as_deref()?;
                crate::modules::topos::EVENTS_NOT_YET
                    .iter()
                    .any(|(n, bit)| *n == name && mode & bit != 0)
                    .then(|| (r.span, name.to_string()))
            })
            .collect();
        for (span, name) in not_yet {
            self.error(
                span,
                format!("event_route[{name}] is not implemented in ringsip yet"),
            );
        }
    }

    /// xhttp needs its event route (Kamailio refuses to start without it)
    /// and valid URL expressions.
    /// log_custom's destination: a start-up error at its `loadmodule` when
    /// the core parameters do not give one (as Kamailio refuses to start).
    fn log_custom_settings(&mut self) {
        let Some(span) = (self.cfg.modules.iter())
            .find(|m| crate::modules::log_custom::MODULE.answers_to(m.name()))
            .map(|m| m.span)
        else {
            return;
        };
        match crate::modules::log_custom::destination(self.cfg) {
            Ok(dst) => self.program.log_udp = Some(dst),
            Err(e) => self.error(span, e),
        }
    }

    fn xhttp_settings(&mut self) {
        let Some(span) = self
            .cfg
            .modules
            .iter()
            .find(|m| crate::modules::xhttp::MODULE.answers_to(m.name()))
            .map(|m| m.span)
        else {
            return;
        };
        let route = crate::modules::xhttp::EVENT_ROUTE;
        let Some(&id) = self.program.event_routes.get(route) else {
            self.error(
                span,
                format!("xhttp is loaded but event_route[{route}] is missing"),
            );
            return;
        };
        match crate::modules::xhttp::Xhttp::new(id, &self.modparams) {
            Ok(x) => self.program.xhttp = Some(x),
            Err(e) => {
                let span = self
                    .cfg
                    .modparams
                    .iter()
                    .rev()
                    .find(|mp| mp.module_names().any(|m| m == "xhttp"))
                    .map_or(span, |mp| mp.span);
                self.error(span, e);
            }
        }
    }

    /// websocket needs xhttp (the handshake runs in its event route); its
    /// parameters are checked, and what ringsip does not do is refused.
    fn websocket_settings(&mut self) {
        let module = &crate::modules::websocket::MODULE;
        let Some(span) = self
            .cfg
            .modules
            .iter()
            .find(|m| module.answers_to(m.name()))
            .map(|m| m.span)
        else {
            return;
        };
        if self.loaded_module("xhttp").is_none() {
            self.error(
                span,
                "websocket needs the xhttp module (loadmodule \"xhttp.so\")",
            );
        }
        if let Err(e) = crate::modules::websocket::check(&self.modparams) {
            let span = self
                .cfg
                .modparams
                .iter()
                .rev()
                .find(|mp| mp.module_names().any(|m| m == "websocket"))
                .map_or(span, |mp| mp.span);
            self.error(span, e);
        }
    }

    /// Gives every route block its index first, so calls can refer forward.
    fn declare_routes(&mut self) {
        for (i, block) in self.cfg.routes.iter().enumerate() {
            let id = i as RouteId;
            let name = block.name.clone().unwrap_or_default();
            let kind = block.kind;
            let unnamed_request = matches!(kind, RouteKind::Request)
                || (kind == RouteKind::Named && block.name.is_none());
            if let Some(prev) = self.route_ids.get(&(kind, name.clone())) {
                let what = if name.is_empty() {
                    kind.keyword().to_string()
                } else {
                    format!("{}[{name}]", kind.keyword())
                };
                let prev_span = self.cfg.routes[*prev as usize].span;
                self.diags.push(
                    Diagnostic::new(block.span, format!("{what} is defined twice"))
                        .with_note(prev_span, "first defined here"),
                );
                continue;
            }
            self.route_ids.insert((kind, name.clone()), id);
            if kind == RouteKind::Named && !name.is_empty() {
                self.program.route_names.insert(name.as_bytes().into(), id);
            }
            if unnamed_request {
                self.program.request_route = Some(id);
            }
            match kind {
                RouteKind::Reply => self.program.reply_route = Some(id),
                RouteKind::OnSend => self.program.onsend_route = Some(id),
                RouteKind::Event => {
                    self.program.event_routes.insert(name.clone(), id);
                }
                _ => {}
            }
        }
    }

    fn compile_routes(&mut self) {
        let mut routes = Vec::with_capacity(self.cfg.routes.len());
        for (i, block) in self.cfg.routes.iter().enumerate() {
            self.current_id = i as RouteId;
            self.current = block.kind;
            self.current_name = block
                .name
                .clone()
                .unwrap_or_else(|| block.kind.keyword().to_string());
            let body = self.block(&block.body.stmts);
            let kind = route_type_of(block.kind).unwrap_or(RouteType::Request);
            routes.push(Route {
                name: block.name.clone().unwrap_or_default(),
                kind,
                body,
            });
        }
        routes.append(&mut self.continuations);
        self.program.routes = routes;
        self.check_sub_route_calls();
    }

    /// A function inside `route[X]` that none of the route types reaching X
    /// allows is an error (one that some of them allow is checked when it runs,
    /// as a config may guard it with `is_request()` and the like).
    fn check_sub_route_calls(&mut self) {
        let n = self.cfg.routes.len();
        let mut reach = vec![0u16; n];
        for (i, block) in self.cfg.routes.iter().enumerate() {
            if let Some(t) = route_type_of(block.kind) {
                reach[i] = t.mask().0;
            }
        }
        let named: Vec<usize> = (0..n)
            .filter(|&i| self.cfg.routes[i].kind == RouteKind::Named)
            .collect();
        // Propagate along route() calls until nothing changes (at most n rounds).
        for _ in 0..n {
            let mut changed = false;
            for &(from, to) in &self.route_edges {
                let bits = reach[from as usize];
                let targets: &[usize] = match to {
                    Some(t) => &[t as usize],
                    None => &named,
                };
                for &t in targets {
                    if reach[t] | bits != reach[t] {
                        reach[t] |= bits;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let calls = std::mem::take(&mut self.sub_route_calls);
        for (route, span, def) in calls {
            let bits = reach[route as usize];
            // Kamailio counts a `route[X]` block as a request route when it
            // checks the config: a request-route function is fine there
            // whoever calls it (it runs where it is called).
            if bits != 0 && def.routes.0 & bits == 0 && !def.routes.allows(RouteType::Request) {
                let kinds: Vec<&str> = [
                    (RouteType::Request, "request_route"),
                    (RouteType::Failure, "failure_route"),
                    (RouteType::Branch, "branch_route"),
                    (RouteType::OnReply, "onreply_route"),
                    (RouteType::Reply, "reply_route"),
                    (RouteType::OnSend, "onsend_route"),
                    (RouteType::Event, "event_route"),
                ]
                .iter()
                .filter(|(t, _)| bits & t.mask().0 != 0)
                .map(|(_, name)| *name)
                .collect();
                self.error(
                    span,
                    format!(
                        "{}() cannot be used in {} (this route is only called from {})",
                        def.name,
                        self.cfg.routes[route as usize].kind.keyword(),
                        kinds.join(", ")
                    ),
                );
            }
        }
    }

    fn block(&mut self, stmts: &[ast::Stmt]) -> Block {
        let mut out = Vec::with_capacity(stmts.len());
        self.stmts(stmts, &mut out);
        out.into_boxed_slice()
    }

    /// The statements of one block. After `async_sleep()` the rest of the
    /// block also becomes a route of its own, which the call gets as its
    /// last argument: the request goes on there once the time is up (as
    /// Kamailio goes on with the actions after the call in its block). The
    /// rest stays in place too, for when the call fails.
    fn stmts(&mut self, stmts: &[ast::Stmt], out: &mut Vec<Stmt>) {
        for (i, s) in stmts.iter().enumerate() {
            if let StmtKind::Call(call) = &s.kind {
                if modules::r#async::SLEEPS.contains(&call.name.as_str()) {
                    if let Some(mut c) = self.call(call) {
                        let rest = &stmts[i + 1..];
                        if !rest.is_empty() && c.args.len() == modules::r#async::CONTINUATION_ARG {
                            let id = self.continuation(rest);
                            c.args.0.push(Arg::Int(i64::from(id)));
                        }
                        out.push(Stmt::Eval(Expr::Call(c)));
                    }
                    continue;
                }
            }
            self.stmt(s, out);
        }
    }

    /// A route holding `rest` (see [`Compiler::stmts`]); its problems are
    /// reported once, where the statements are compiled in place.
    fn continuation(&mut self, rest: &[ast::Stmt]) -> RouteId {
        let errors = self.diags.len();
        let body = self.block(rest);
        self.diags.truncate(errors);
        let id = (self.cfg.routes.len() + self.continuations.len()) as RouteId;
        self.continuations.push(Route {
            name: format!("{}:async", self.current_name),
            kind: route_type_of(self.current).unwrap_or(RouteType::Request),
            body,
        });
        id
    }

    fn boxed(&mut self, stmt: &ast::Stmt) -> Block {
        let mut out = Vec::new();
        self.stmt(stmt, &mut out);
        out.into_boxed_slice()
    }

    fn stmt(&mut self, s: &ast::Stmt, out: &mut Vec<Stmt>) {
        match &s.kind {
            StmtKind::Empty => {}
            StmtKind::Block(b) => self.stmts(&b.stmts, out),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let cond = self.expr(cond);
                let then = self.boxed(then);
                let otherwise = match otherwise {
                    Some(o) => self.boxed(o),
                    None => Box::new([]),
                };
                out.push(Stmt::If {
                    cond,
                    then,
                    otherwise,
                });
            }
            StmtKind::Switch { subject, cases } => {
                let subject = self.expr(subject);
                let mut body = Vec::new();
                let mut labels = Vec::new();
                let mut default = None;
                for case in cases {
                    match &case.label {
                        None => default = Some(body.len()),
                        Some(label) if label.regex => match &label.value.kind {
                            ExprKind::Str(re) => match build_regex(re, false) {
                                Ok(re) => labels.push((CaseLabel::Regex(Box::new(re)), body.len())),
                                Err(e) => self.error(
                                    label.value.span,
                                    format!(
                                        "bad regular expression \"{re}\": {}",
                                        regex_problem(&e)
                                    ),
                                ),
                            },
                            _ => self.error(
                                label.value.span,
                                "a regular-expression case label must be a string: case /\"re\":",
                            ),
                        },
                        Some(label) => match self.constant(&label.value) {
                            Some(v) => labels.push((CaseLabel::Value(v), body.len())),
                            None => self.error(
                                label.value.span,
                                "a case label must be a constant string or number",
                            ),
                        },
                    }
                    self.stmts(&case.body, &mut body);
                }
                out.push(Stmt::Switch {
                    subject,
                    cases: labels.into_boxed_slice(),
                    default,
                    body: body.into_boxed_slice(),
                });
            }
            StmtKind::While { cond, body } => {
                let cond = self.expr(cond);
                let body = self.boxed(body);
                out.push(Stmt::While { cond, body });
            }
            StmtKind::Break => out.push(Stmt::Break),
            StmtKind::Return(e) => {
                let e = e.as_ref().map(|e| self.expr(e));
                out.push(Stmt::Return(e));
            }
            StmtKind::Exit(_) => out.push(Stmt::Exit),
            StmtKind::Drop(_) => out.push(Stmt::Drop),
            StmtKind::Route(target) => {
                if let Some(e) = self.route_call(target, s.span) {
                    out.push(Stmt::Eval(e));
                }
            }
            StmtKind::Call(call) => {
                if let Some(c) = self.call(call) {
                    out.push(Stmt::Eval(Expr::Call(c)));
                }
            }
            StmtKind::Assign { target, op, value } => {
                if !target.transforms.is_empty() {
                    self.error(
                        target.span,
                        format!("cannot assign to {}: it has transformations", target.raw),
                    );
                    return;
                }
                let Some(target_ref) = self.pv(target) else {
                    return;
                };
                if !target_ref.is_writable() {
                    self.error(target.span, format!("{} is read-only", target.raw));
                    return;
                }
                let value = self.expr(value);
                let op = match op {
                    ast::AssignOp::Assign => AssignOp::Set,
                    ast::AssignOp::ColonAssign => AssignOp::SetAll,
                    ast::AssignOp::AddAssign => AssignOp::Add,
                };
                out.push(Stmt::Assign {
                    target: target_ref,
                    op,
                    value,
                });
            }
        }
    }

    /// `route(NAME)` bound to its block, or `route($x)` looked up per message.
    fn route_call(&mut self, target: &RouteTarget, span: Span) -> Option<Expr> {
        match target {
            RouteTarget::Name(name) => {
                let id = self
                    .route_ids
                    .get(&(RouteKind::Named, name.clone()))
                    .copied();
                if id.is_none() {
                    self.error(
                        span,
                        format!("route({name}) calls a route that is not defined"),
                    );
                }
                if let Some(id) = id {
                    self.route_edges.push((self.current_id, Some(id)));
                }
                id.map(Expr::Route)
            }
            RouteTarget::Dynamic(e) => {
                self.route_edges.push((self.current_id, None));
                Some(Expr::DynRoute(Box::new(self.expr(e))))
            }
        }
    }

    /// Finds a function in the loaded modules and binds it with its arguments.
    fn call(&mut self, call: &ast::Call) -> Option<Call> {
        let def = self.function(&call.name, call.span)?;
        let n = call.args.len();
        if n < usize::from(def.min_args) || n > usize::from(def.max_args) {
            let want = if def.min_args == def.max_args {
                format!("{}", def.min_args)
            } else {
                format!("{} to {}", def.min_args, def.max_args)
            };
            self.error(
                call.span,
                format!("{}() takes {want} argument(s), {n} given", call.name),
            );
            return None;
        }
        if self.current == RouteKind::Named {
            self.sub_route_calls.push((self.current_id, call.span, def));
        }
        if let Some(kind) = self.top_level_route_type() {
            if !def.routes.allows(kind) {
                self.error(
                    call.span,
                    format!(
                        "{}() cannot be used in {}",
                        call.name,
                        self.current.keyword()
                    ),
                );
                return None;
            }
        }
        let mut args = Args(Vec::with_capacity(n));
        for a in &call.args {
            args.0.push(self.arg(a)?);
        }
        // Route names given to t_on_failure() & co. are bound to the route here.
        if let Some((_, kind)) = modules::tm::ROUTE_NAME_ARGS
            .iter()
            .find(|(f, _)| *f == def.name)
        {
            let name = match args.0.first() {
                Some(Arg::Str(s)) => String::from_utf8_lossy(s).into_owned(),
                Some(Arg::Int(i)) => i.to_string(),
                _ => {
                    self.error(call.span, format!("{}() needs a route name", call.name));
                    return None;
                }
            };
            let Some(id) = self.route_ids.get(&(*kind, name.clone())).copied() else {
                self.error(
                    call.span,
                    format!("{}[{name}] is not defined", kind.keyword()),
                );
                return None;
            };
            args.0[0] = Arg::Int(i64::from(id));
        }
        flags::resolve(def.name, &mut args, &self.flag_bits);
        if let Some(fixup) = def.fixup {
            if let Err(e) = fixup(&mut args, &self.modparams) {
                self.error(call.span, format!("{}(): {e}", call.name));
                return None;
            }
        }
        // xlogl()/xdbgl() print the line they are called on.
        if modules::xlog::WANTS_LINE.contains(&def.name) {
            args.0.push(Arg::Int(i64::from(call.span.line)));
        }
        Some(Call {
            def,
            args,
            line: call.span.line,
        })
    }

    /// The route type to check a call against, when known at compile time
    /// (a `route[X]` may be called from several kinds: checked when it runs).
    fn top_level_route_type(&self) -> Option<RouteType> {
        route_type_of(self.current)
    }

    fn function(&mut self, name: &str, span: Span) -> Option<&'static FunctionDef> {
        if let Some(f) = self.loaded.iter().find_map(|m| m.function(name)) {
            return Some(f);
        }
        match modules::MODULES.iter().find(|m| m.function(name).is_some()) {
            Some(m) => self.error(span, format!("{name}() needs loadmodule \"{}.so\"", m.name)),
            None => self.error(span, format!("unknown function {name}() (not provided by any loaded module, or not implemented in ringsip yet)")),
        }
        None
    }

    /// A function argument: constant, format string or variable.
    fn arg(&mut self, e: &ast::Expr) -> Option<Arg> {
        Some(match &e.kind {
            ExprKind::Int(i) => Arg::Int(*i),
            ExprKind::Str(s) => match self.format(s, e.span)? {
                f if f.as_literal().is_some() => {
                    Arg::Str(Bytes::copy_from_slice(f.as_literal().unwrap_or(b"")))
                }
                f => Arg::Fmt(f),
            },
            ExprKind::Word(w) => Arg::Str(Bytes::copy_from_slice(w.as_bytes())),
            ExprKind::Pv(pv) => Arg::Pv(self.pv(pv)?),
            ExprKind::Ip(ip) => Arg::Str(Bytes::from(ip.to_string().into_bytes())),
            ExprKind::Null => Arg::Pv(PvRef::new(PvKind::Null)),
            _ => {
                self.error(
                    e.span,
                    "a function argument must be a number, a string or a variable",
                );
                return None;
            }
        })
    }

    fn format(&mut self, text: &str, span: Span) -> Option<Format> {
        let parsed = match parse_format_at(text, span) {
            Ok(f) => f,
            Err(e) => {
                self.error(span.shifted(e.offset), e.message);
                return None;
            }
        };
        self.compile_format(&parsed)
    }

    fn compile_format(&mut self, parsed: &format::Format) -> Option<Format> {
        let mut parts = Vec::with_capacity(parsed.parts.len());
        for p in &parsed.parts {
            parts.push(match p {
                format::FormatPart::Literal(s) => {
                    FormatPart::Lit(Bytes::copy_from_slice(s.as_bytes()))
                }
                format::FormatPart::Pv(pv) => FormatPart::Pv(self.pv(pv)?),
            });
        }
        Some(Format { parts })
    }

    fn constant(&mut self, e: &ast::Expr) -> Option<Value<'static>> {
        match &e.kind {
            ExprKind::Int(i) => Some(Value::Int(*i)),
            ExprKind::Str(s) => Some(Value::owned(s.clone().into_bytes())),
            ExprKind::Word(w) => Some(Value::owned(w.clone().into_bytes())),
            ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                operand,
            } => match operand.kind {
                ExprKind::Int(i) => Some(Value::Int(-i)),
                _ => None,
            },
            _ => None,
        }
    }

    fn keyword(&mut self, k: ast::CondKeyword, span: Span) -> Expr {
        use ast::CondKeyword as K;
        let kind = match k {
            K::Method => PvKind::Rm,
            K::Uri => PvKind::Ru,
            K::Status => PvKind::Rs,
            K::SrcIp => PvKind::Si,
            K::SrcPort => PvKind::Sp,
            K::DstIp => PvKind::Ri,
            K::DstPort => PvKind::Rp,
            K::Proto => PvKind::Proto,
            K::Af => PvKind::Af,
            K::MsgLen => PvKind::Ml,
            K::FromUri => PvKind::From(pvkind::NamePart::Uri),
            K::ToUri => PvKind::To(pvkind::NamePart::Uri),
            K::SndIp | K::SndPort | K::SndProto | K::SndAf | K::ToIp | K::ToPort => {
                let known = self.top_level_route_type();
                if known.is_some() && known != Some(RouteType::OnSend) {
                    self.error(
                        span,
                        "snd_ip, snd_port, snd_proto, snd_af, to_ip and to_port are only known in onsend_route",
                    );
                }
                PvKind::Snd(match k {
                    K::SndIp | K::ToIp => SndPart::Ip,
                    K::SndPort | K::ToPort => SndPart::Port,
                    K::SndProto => SndPart::Proto,
                    _ => SndPart::Af,
                })
            }
        };
        Expr::Pv(PvRef::new(kind))
    }

    fn expr(&mut self, e: &ast::Expr) -> Expr {
        self.expr_inner(e).mark_pure()
    }

    fn expr_inner(&mut self, e: &ast::Expr) -> Expr {
        match &e.kind {
            // A C `int` in Kamailio: `3000000000` is -1294967296.
            ExprKind::Int(i) => Expr::Const(Value::Int(super::vm::wrap32(*i))),
            // A string in an expression is a constant: Kamailio prints
            // pseudo-variables only in function parameters (checked on 5.6.3).
            ExprKind::Str(s) => Expr::Const(Value::owned(s.as_bytes().to_vec())),
            ExprKind::Null => Expr::Const(Value::Null),
            ExprKind::Pv(pv) => self.pv(pv).map_or(Expr::Const(Value::Null), Expr::Pv),
            ExprKind::Select(s) => {
                self.pv_span = e.span;
                match pvkind::select(s, self) {
                    Ok(kind) => Expr::Pv(PvRef::new(kind)),
                    Err(msg) => {
                        self.error(e.span, msg);
                        Expr::Const(Value::Null)
                    }
                }
            }
            ExprKind::Keyword(k) => self.keyword(*k, e.span),
            ExprKind::Myself => {
                self.error(e.span, "myself can only be compared (x == myself)");
                Expr::Const(Value::Null)
            }
            ExprKind::Ip(ip) => Expr::Const(Value::owned(ip.to_string().into_bytes())),
            ExprKind::Net { .. } => {
                self.error(
                    e.span,
                    "a network can only be compared with an address (src_ip == 10.0.0.0/8)",
                );
                Expr::Const(Value::Null)
            }
            ExprKind::Word(w) => Expr::Const(Value::owned(w.clone().into_bytes())),
            ExprKind::Call(call) => match self.call(call) {
                Some(c) => Expr::Call(c),
                None => Expr::Const(Value::Null),
            },
            ExprKind::Route(target) => self
                .route_call(target, e.span)
                .unwrap_or(Expr::Const(Value::Null)),
            ExprKind::Unary { op, operand } => {
                let inner = Box::new(self.expr(operand));
                let op = match op {
                    ast::UnaryOp::Not => UnOp::Not,
                    ast::UnaryOp::Neg => UnOp::Neg,
                    ast::UnaryOp::BitNot => UnOp::BitNot,
                    ast::UnaryOp::Defined => UnOp::Defined,
                    ast::UnaryOp::StrLen => UnOp::Strlen,
                    ast::UnaryOp::StrEmpty => UnOp::Strempty,
                    ast::UnaryOp::IntCast => UnOp::CastInt,
                    ast::UnaryOp::StrCast => UnOp::CastStr,
                };
                Expr::Unary(op, inner)
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs),
        }
    }

    fn binary(&mut self, op: ast::BinaryOp, lhs: &ast::Expr, rhs: &ast::Expr) -> Expr {
        use ast::BinaryOp as B;
        let negate = matches!(op, B::Ne | B::NotMatch | B::StrNe);
        // `x == myself`, `myself == x`
        if matches!(op, B::Eq | B::Ne) {
            let subject = match (&lhs.kind, &rhs.kind) {
                (_, ExprKind::Myself) => Some(lhs),
                (ExprKind::Myself, _) => Some(rhs),
                _ => None,
            };
            if let Some(subject) = subject {
                return Expr::Myself {
                    subject: Box::new(self.expr(subject)),
                    negate,
                };
            }
            // `src_ip == 10.0.0.0/8`, `src_ip == 1.2.3.4`
            let net = match &rhs.kind {
                ExprKind::Net { addr, mask } => net_of(*addr, *mask),
                ExprKind::Ip(ip) => Some(IpNet {
                    addr: *ip,
                    prefix: if ip.is_ipv4() { 32 } else { 128 },
                }),
                _ => None,
            };
            if let Some(net) = net {
                return Expr::InNet {
                    subject: Box::new(self.expr(lhs)),
                    net,
                    negate,
                };
            }
        }
        if matches!(op, B::Match | B::NotMatch) {
            let subject = Box::new(self.expr(lhs));
            if let ExprKind::Str(pattern) = &rhs.kind {
                return match build_regex(pattern, true) {
                    Ok(re) => Expr::Match {
                        subject,
                        regex: Box::new(re),
                        negate,
                    },
                    Err(err) => {
                        self.error(
                            rhs.span,
                            format!(
                                "bad regular expression \"{pattern}\": {}",
                                regex_problem(&err)
                            ),
                        );
                        Expr::Const(Value::Null)
                    }
                };
            }
            return Expr::DynMatch {
                subject,
                pattern: Box::new(self.expr(rhs)),
                negate,
            };
        }
        // Core keywords compared to strings are case-insensitive (KAMAILIO-REFERENCE §1.4).
        let keyword_side = |e: &ast::Expr| {
            matches!(
                e.kind,
                ExprKind::Keyword(
                    ast::CondKeyword::Method
                        | ast::CondKeyword::Uri
                        | ast::CondKeyword::FromUri
                        | ast::CondKeyword::ToUri
                        | ast::CondKeyword::Proto
                        | ast::CondKeyword::Af
                )
            )
        };
        let ci = keyword_side(lhs) || keyword_side(rhs);
        if op == B::Add && matches!(rhs.kind, ExprKind::Str(_)) && is_int_typed(lhs) {
            // KAMAILIO-REFERENCE §1.4: the left operand gives the type, and
            // Kamailio refuses a string constant added to a number.
            self.error(
                rhs.span,
                "a string constant cannot be added to a number (the left operand decides: use (str) on the left, or a string first)",
            );
            return Expr::Const(Value::Null);
        }
        if matches!(op, B::Div | B::Mod) && matches!(rhs.kind, ExprKind::Int(0)) {
            // Kamailio folds constants at start-up and refuses to start
            // ("rv div by 0", checked live).
            self.error(rhs.span, "division or modulo by the constant 0");
            return Expr::Const(Value::Null);
        }
        let bop = match op {
            B::Or => BinOp::Or,
            B::And => BinOp::And,
            B::BitOr => BinOp::BitOr,
            B::BitAnd => BinOp::BitAnd,
            B::BitXor => BinOp::BitXor,
            B::Shl => BinOp::Shl,
            B::Shr => BinOp::Shr,
            B::Eq if ci => BinOp::IEq,
            B::Ne if ci => BinOp::INe,
            B::Eq => BinOp::Eq,
            B::Ne => BinOp::Ne,
            B::StrEq => BinOp::StrEq,
            B::StrNe => BinOp::StrNe,
            B::IntEq => BinOp::IntEq,
            B::IntNe => BinOp::IntNe,
            B::Lt => BinOp::Lt,
            B::Le => BinOp::Le,
            B::Gt => BinOp::Gt,
            B::Ge => BinOp::Ge,
            B::Add => BinOp::Add,
            B::Sub => BinOp::Sub,
            B::Mul => BinOp::Mul,
            B::Div => BinOp::Div,
            B::Mod => BinOp::Mod,
            B::Match | B::NotMatch => unreachable!("handled above"),
        };
        Expr::Binary(bop, Box::new(self.expr(lhs)), Box::new(self.expr(rhs)))
    }
}

/// Kamailio's regular expressions: POSIX extended; `=~` ignores case, a
/// `case /"re":` label does not (both checked on 5.6.3).
fn build_regex(pattern: &str, ignore_case: bool) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .size_limit(1 << 20)
        .build()
}

/// The regex crate's error in one line (its display draws the pattern over several).
fn regex_problem(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.trim_start_matches("error: ").to_string())
        .unwrap_or(text)
}

/// Whether an expression is an integer by its form (for the `int + "str"` rule).
fn is_int_typed(e: &ast::Expr) -> bool {
    use ast::BinaryOp as B;
    match &e.kind {
        ExprKind::Int(_) => true,
        ExprKind::Unary { op, .. } => !matches!(op, ast::UnaryOp::StrCast),
        ExprKind::Binary {
            op: B::Add, lhs, ..
        } => is_int_typed(lhs),
        ExprKind::Binary { .. } => true,
        _ => false,
    }
}

/// The route type a top-level block runs as (`None` for `route[X]`, which
/// runs as whatever calls it).
fn route_type_of(kind: RouteKind) -> Option<RouteType> {
    Some(match kind {
        RouteKind::Request => RouteType::Request,
        RouteKind::Failure => RouteType::Failure,
        RouteKind::Branch => RouteType::Branch,
        RouteKind::TmReply => RouteType::OnReply,
        RouteKind::Reply => RouteType::Reply,
        RouteKind::OnSend => RouteType::OnSend,
        RouteKind::Event => RouteType::Event,
        RouteKind::Named => return None,
    })
}

fn net_of(addr: std::net::IpAddr, mask: ast::NetMask) -> Option<IpNet> {
    let prefix = match mask {
        ast::NetMask::Bits(b) => b,
        ast::NetMask::Addr(m) => match m {
            std::net::IpAddr::V4(v4) => u32::from(v4).leading_ones() as u8,
            std::net::IpAddr::V6(v6) => u128::from(v6).leading_ones() as u8,
        },
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some(IpNet { addr, prefix })
}
