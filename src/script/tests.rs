//! Whole-configuration tests: statements, expressions, top-level items,
//! error positions, the stock `kamailio.cfg`, a multi-file config, and
//! arbitrary input.

use std::path::Path;

use super::ast::*;
use super::*;

fn opts(files: &MemoryFiles) -> Options<'_> {
    Options::with_files(files)
}

fn parse(text: &str) -> Config {
    let files = MemoryFiles::new();
    parse_str("t.cfg", text, &opts(&files)).unwrap_or_else(|d| panic!("{text}\n---\n{d}"))
}

/// The first diagnostic, rendered.
fn error(text: &str) -> String {
    let files = MemoryFiles::new();
    match parse_str("t.cfg", text, &opts(&files)) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(d) => d.rendered().remove(0),
    }
}

fn body(stmts: &str) -> Vec<Stmt> {
    let cfg = parse(&format!("request_route {{\n{stmts}\n}}"));
    cfg.route(RouteKind::Request, None)
        .expect("request_route")
        .body
        .stmts
        .clone()
}

fn cond(text: &str) -> String {
    let stmts = body(&format!("if ({text}) exit;"));
    match &stmts[0].kind {
        StmtKind::If { cond, .. } => sx(cond),
        other => panic!("{other:?}"),
    }
}

/// A compact S-expression of an expression, for table tests.
fn sx(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Null => "null".into(),
        ExprKind::Pv(pv) => pv.raw.clone(),
        ExprKind::Select(s) => format!("@{s}"),
        ExprKind::Keyword(k) => format!("{k:?}").to_lowercase(),
        ExprKind::Myself => "myself".into(),
        ExprKind::Ip(ip) => ip.to_string(),
        ExprKind::Net { addr, mask } => match mask {
            NetMask::Bits(b) => format!("{addr}/{b}"),
            NetMask::Addr(m) => format!("{addr}/{m}"),
        },
        ExprKind::Word(w) => format!("w:{w}"),
        ExprKind::Call(c) => format!(
            "{}({})",
            c.name,
            c.args.iter().map(sx).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Route(RouteTarget::Name(n)) => format!("route:{n}"),
        ExprKind::Route(RouteTarget::Dynamic(e)) => format!("route:{}", sx(e)),
        ExprKind::Unary { op, operand } => format!("({op:?} {})", sx(operand)),
        ExprKind::Binary { op, lhs, rhs } => format!("({op:?} {} {})", sx(lhs), sx(rhs)),
    }
}

#[test]
fn expression_table() {
    let cases = [
        ("is_method(\"INVITE\")", "is_method(\"INVITE\")"),
        ("!t_relay()", "(Not t_relay())"),
        ("uri==myself", "(Eq uri myself)"),
        (
            "uri!=myself && $rU==$null",
            "(And (Ne uri myself) (Eq $rU null))",
        ),
        ("a() || b() && c()", "(Or a() (And b() c()))"),
        ("a() or b() and not c()", "(Or a() (And b() (Not c())))"),
        ("$var(a) + 2 * 3 - 1", "(Sub (Add $var(a) (Mul 2 3)) 1)"),
        ("$var(a) == 1 | 2", "(BitOr (Eq $var(a) 1) 2)"),
        ("1 << 2 >> 3", "(Shl 1 (Shr 2 3))"),
        ("$var(a) & 4 == 4", "(BitAnd $var(a) (Eq 4 4))"),
        ("$var(a) < 3 == 1", "(Eq (Lt $var(a) 3) 1)"),
        ("7 mod 3 == 1", "(Eq (Mod 7 3) 1)"),
        ("10 % 3", "(Mod 10 3)"),
        ("~0 ^ 5", "(BitXor (BitNot 0) 5)"),
        ("-$var(x) * 2", "(Mul (Neg $var(x)) 2)"),
        ("-1", "-1"),
        ("(int)\"12\" + 1", "(Add (IntCast \"12\") 1)"),
        ("(str)12 + \"a\"", "(Add (StrCast 12) \"a\")"),
        (
            "defined $avp(x) && !defined $var(y)",
            "(And (Defined $avp(x)) (Not (Defined $var(y))))",
        ),
        ("strlen($ru) > 10", "(Gt (StrLen $ru) 10)"),
        (
            "strempty($sel(cfg_get.pstn.gw_ip))",
            "(StrEmpty $sel(cfg_get.pstn.gw_ip))",
        ),
        (
            "$ua =~ \"friendly|scanner\"",
            "(Match $ua \"friendly|scanner\")",
        ),
        ("$rU !~ \"^[0-9]+$\"", "(NotMatch $rU \"^[0-9]+$\")"),
        (
            "$var(a) eq \"x\" || $var(b) ne \"y\"",
            "(Or (StrEq $var(a) \"x\") (StrNe $var(b) \"y\"))",
        ),
        (
            "$var(a) ieq 1 && $var(b) ine 2",
            "(And (IntEq $var(a) 1) (IntNe $var(b) 2))",
        ),
        (
            "$var(a) <= 1 && $var(b) >= 2",
            "(And (Le $var(a) 1) (Ge $var(b) 2))",
        ),
        (
            "status=~\"[12][0-9][0-9]\"",
            "(Match status \"[12][0-9][0-9]\")",
        ),
        ("method==\"INVITE\"", "(Eq method \"INVITE\")"),
        ("method==INVITE", "(Eq method w:INVITE)"),
        ("from_uri==myself", "(Eq fromuri myself)"),
        ("to_uri=~\"sip:.*\"", "(Match touri \"sip:.*\")"),
        ("src_ip==10.0.0.0/8", "(Eq srcip 10.0.0.0/8)"),
        (
            "src_ip==10.0.0.0/255.0.0.0",
            "(Eq srcip 10.0.0.0/255.0.0.0)",
        ),
        ("src_ip!=127.0.0.1", "(Ne srcip 127.0.0.1)"),
        ("src_ip==myself", "(Eq srcip myself)"),
        ("src_ip==gw-1.example.com", "(Eq srcip w:gw-1.example.com)"),
        ("dst_ip==::1", "(Eq dstip ::1)"),
        ("src_ip==2001:db8::/32", "(Eq srcip 2001:db8::/32)"),
        (
            "src_port==5060 && dst_port!=5061",
            "(And (Eq srcport 5060) (Ne dstport 5061))",
        ),
        ("af==INET6", "(Eq af w:INET6)"),
        (
            "proto==UDP || proto==tls",
            "(Or (Eq proto w:UDP) (Eq proto w:tls))",
        ),
        ("msg:len > 4096", "(Gt msglen 4096)"),
        (
            "snd_ip==1.2.3.4 && to_proto==TCP",
            "(And (Eq sndip 1.2.3.4) (Eq sndproto w:TCP))",
        ),
        ("myself==uri", "(Eq myself uri)"),
        (
            "!uri == myself && !f()",
            "(And (Not (Eq uri myself)) (Not f()))",
        ),
        ("!src_ip==10.0.0.0/8", "(Not (Eq srcip 10.0.0.0/8))"),
        (
            "uri == \"sip:\" + $var(u)",
            "(Eq uri (Add \"sip:\" $var(u)))",
        ),
        (
            "dst_port < 1024 || af == INET",
            "(Or (Lt dstport 1024) (Eq af w:INET))",
        ),
        (
            "(method==OPTIONS) && (! uri=~\"sip:.*[@]+.*\")",
            "(And (Eq method w:OPTIONS) (Not (Match uri \"sip:.*[@]+.*\")))",
        ),
        ("proto == wss", "(Eq proto w:wss)"),
        (
            "$sht(f2b=>$au::last_auth) > $var(exp)",
            "(Gt $sht(f2b=>$au::last_auth) $var(exp))",
        ),
        ("$sht(ipban=>$si)!=$null", "(Ne $sht(ipban=>$si) null)"),
        (
            "$(hdr(Via)[-1]{s.len}) > 0",
            "(Gt $(hdr(Via)[-1]{s.len}) 0)",
        ),
        ("@via[1].host == \"x\"", "(Eq @via[1].host \"x\")"),
        ("route(AUTH)", "route:AUTH"),
        ("yes && off", "(And 1 0)"),
        ("$rc < 0", "(Lt $rc 0)"),
        ("$? == 1", "(Eq $? 1)"),
        ("(($var(a)))", "$var(a)"),
        ("$T_reply_code >= 300", "(Ge $T_reply_code 300)"),
        ("$xavp(a[0]=>b[1]) == 1", "(Eq $xavp(a[0]=>b[1]) 1)"),
        ("$TV(s) - $var(t) > 5", "(Gt (Sub $TV(s) $var(t)) 5)"),
    ];
    for (text, want) in cases {
        assert_eq!(cond(text), want, "condition {text:?}");
    }
}

fn kinds(stmts: &[Stmt]) -> Vec<String> {
    stmts
        .iter()
        .map(|s| match &s.kind {
            StmtKind::Empty => "empty".to_string(),
            StmtKind::Block(b) => format!("block[{}]", kinds(&b.stmts).join(",")),
            StmtKind::If { otherwise, .. } => {
                if otherwise.is_some() {
                    "if-else".into()
                } else {
                    "if".into()
                }
            }
            StmtKind::Switch { cases, .. } => format!("switch{}", cases.len()),
            StmtKind::While { .. } => "while".into(),
            StmtKind::Break => "break".into(),
            StmtKind::Return(v) => format!(
                "return{}",
                v.as_ref()
                    .map(sx)
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default()
            ),
            StmtKind::Exit(v) => format!(
                "exit{}",
                v.as_ref()
                    .map(sx)
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default()
            ),
            StmtKind::Drop(v) => format!(
                "drop{}",
                v.as_ref()
                    .map(sx)
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default()
            ),
            StmtKind::Route(RouteTarget::Name(n)) => format!("route {n}"),
            StmtKind::Route(RouteTarget::Dynamic(e)) => format!("route {}", sx(e)),
            StmtKind::Call(c) => {
                let args = c.args.iter().map(sx).collect::<Vec<_>>().join(", ");
                if c.parens {
                    format!("{}({args})", c.name)
                } else {
                    c.name.clone()
                }
            }
            StmtKind::Assign { target, op, value } => {
                format!("{} {op:?} {}", target.raw, sx(value))
            }
        })
        .collect()
}

#[test]
fn statement_table() {
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (";", vec!["empty"]),
        ("exit;", vec!["exit"]),
        ("exit(); drop; drop();", vec!["exit", "drop", "drop"]),
        ("return; return(); return 1; return(-2); return $var(x);", vec!["return", "return", "return 1", "return -2", "return $var(x)"]),
        ("break;", vec!["break"]),
        ("route(RELAY); route(1); route(\"X\"); route($var(r));", vec!["route RELAY", "route 1", "route X", "route $var(r)"]),
        ("sl_send_reply(\"404\", \"Not here\");", vec!["sl_send_reply(\"404\", \"Not here\")"]),
        ("t_relay();", vec!["t_relay()"]),
        ("force_rport; set_reply_no_connect; revert_uri;", vec!["force_rport", "set_reply_no_connect", "revert_uri"]),
        ("$var(x) = 1; $avp(y) := \"a\"; $var(x) += 2;", vec!["$var(x) Assign 1", "$avp(y) ColonAssign \"a\"", "$var(x) AddAssign 2"]),
        ("$ru = \"sip:\" + $rU + \"@\" + $sel(cfg_get.pstn.gw_ip);", vec!["$ru Assign (Add (Add (Add \"sip:\" $rU) \"@\") $sel(cfg_get.pstn.gw_ip))"]),
        ("$du = $null;", vec!["$du Assign null"]),
        ("$var(rc) = $rc;", vec!["$var(rc) Assign $rc"]),
        ("$sht(ipban=>$si) = 1;", vec!["$sht(ipban=>$si) Assign 1"]),
        ("$xavp(a[0]=>b) = \"v\";", vec!["$xavp(a[0]=>b) Assign \"v\""]),
        ("{ a(); { b(); } }", vec!["block[a(),block[b()]]"]),
        ("if (a()) b();", vec!["if"]),
        ("if is_method(\"REGISTER\") { exit; }", vec!["if"]),
        ("if (a()) { b(); } else if (c()) d(); else { e(); }", vec!["if-else"]),
        ("if(!t_is_set(\"branch_route\")) t_on_branch(\"MANAGE_BRANCH\");", vec!["if"]),
        ("while ($var(i) < 10) { $var(i) = $var(i) + 1; }", vec!["while"]),
        ("switch ($var(rc)) { case -1: case -3: send_reply(\"404\", \"Not Found\"); exit; case -2: exit; }", vec!["switch3"]),
        ("switch ($rm) { case \"INVITE\": a(); break; default: b(); }", vec!["switch2"]),
        ("switch ($rU) { case /\"^00\": a(); break; }", vec!["switch1"]),
        ("switch ($var(x)) { }", vec!["switch0"]),
        ("forward(1.2.3.4, 5060); forward(uri:host, uri:port); forward(sip.example.com);", vec!["forward(1.2.3.4, 5060)", "forward(w:uri:host, w:uri:port)", "forward(w:sip.example.com)"]),
        ("force_send_socket(udp:10.0.0.1:5060); force_send_socket(tcp:[::1]:5061);", vec!["force_send_socket(w:udp:10.0.0.1:5060)", "force_send_socket(w:tcp:[::1]:5061)"]),
        ("setflag(MYFLAG); set_advertised_address(1.2.3.4);", vec!["setflag(w:MYFLAG)", "set_advertised_address(1.2.3.4)"]),
        ("xlog(\"L_INFO\", \"from $fu (IP:$si:$sp)\\n\");", vec!["xlog(\"L_INFO\", \"from $fu (IP:$si:$sp)\\n\")"]),
        ("f($var(a), 1 + 2, \"s\", -3);", vec!["f($var(a), (Add 1 2), \"s\", -3)"]),
        ("$var(r) = t_relay();", vec!["$var(r) Assign t_relay()"]),
    ];
    for (text, want) in cases {
        assert_eq!(kinds(&body(text)), want, "statements {text:?}");
    }
}

#[test]
fn switch_details() {
    let stmts = body("switch ($var(rc)) { case -1: case -3: a(); exit; case /\"^x\": b(); default: c(); break; }");
    let StmtKind::Switch { subject, cases } = &stmts[0].kind else {
        panic!()
    };
    assert_eq!(sx(subject), "$var(rc)");
    assert_eq!(cases.len(), 4);
    assert_eq!(
        cases[0].label.as_ref().map(|l| sx(&l.value)),
        Some("-1".into())
    );
    assert!(cases[0].body.is_empty());
    assert_eq!(kinds(&cases[1].body), ["a()", "exit"]);
    assert!(cases[2].label.as_ref().is_some_and(|l| l.regex));
    assert!(cases[3].label.is_none());
    assert_eq!(kinds(&cases[3].body), ["c()", "break"]);
}

#[test]
fn if_else_chain_structure() {
    let stmts = body("if (a()) x(); else if (b()) y(); else z();");
    let StmtKind::If {
        otherwise: Some(e), ..
    } = &stmts[0].kind
    else {
        panic!()
    };
    let StmtKind::If {
        otherwise: Some(e2),
        ..
    } = &e.kind
    else {
        panic!()
    };
    assert_eq!(kinds(std::slice::from_ref(e2)), ["z()"]);
}

#[test]
fn top_level_items() {
    let cfg = parse(concat!(
        "#!KAMAILIO\n",
        "debug=2\nlog_stderror=no\nfork=yes\nmemdbg=-1\n",
        "log_facility=LOG_LOCAL0\n",
        "log_prefix=\"{$mt $hdr(CSeq) $ci} \"\n",
        "advertised_address=1.2.3.4\n",
        "listen=udp:127.0.0.1:5060\n",
        "listen=tcp:[::1]:5061 advertise 203.0.113.7:5061 name \"pub\"\n",
        "listen=127.0.0.2 eth0:5070 sctp:(10.0.0.1, 10.0.0.2):5060 virtual\n",
        "alias=\"sip.example.com\" alias2.example.com:5060\n",
        "pstn.gw_ip = \"\" desc \"PSTN GW Address\"\n",
        "pstn.gw_port = 5060 descr \"port\"\n",
        "flags FLAG_A:1, FLAG_B : 2, FLAG_C\n",
        "avpflags dialog_cookie\n",
        "mpath=\"/usr/lib/kamailio/modules/\"\n",
        "loadpath \"/opt/mods\"\n",
        "loadmodule \"tm.so\"\nloadmodule \"sl\"\n",
        "modparam(\"tm\", \"fr_timer\", 30000)\n",
        "modparam(\"nathelper|registrar\", \"received_avp\", \"$avp(RECEIVED)\")\n",
        "modparam(\"auth_db\", \"calculate_ha1\", yes)\n",
        "modparam(\"x\", \"neg\", -5);\n",
        "modparam(\"acc\", \"log_extra\",\n\t\"src_user=$fU;\"\n\t\"dst_user=$rU\")\n",
        "request_route { exit; }\n",
    ));
    assert_eq!(cfg.compat, Compat::Kamailio);
    assert_eq!(cfg.global("debug").map(|g| &g.value), Some(&Value::Int(2)));
    assert_eq!(
        cfg.global("log_stderror").map(|g| &g.value),
        Some(&Value::Bool(false))
    );
    assert_eq!(
        cfg.global("memdbg").map(|g| &g.value),
        Some(&Value::Int(-1))
    );
    assert_eq!(
        cfg.global("log_facility").map(|g| &g.value),
        Some(&Value::Word("LOG_LOCAL0".into()))
    );
    assert_eq!(
        cfg.global("advertised_address").map(|g| &g.value),
        Some(&Value::Word("1.2.3.4".into()))
    );
    assert_eq!(
        cfg.global("log_prefix").map(|g| &g.value),
        Some(&Value::Str("{$mt $hdr(CSeq) $ci} ".into()))
    );
    let listens: Vec<&GlobalParam> = cfg.globals.iter().filter(|g| g.name == "listen").collect();
    assert_eq!(listens.len(), 3);
    let Value::Sockets(s) = &listens[0].value else {
        panic!()
    };
    assert_eq!(
        (s[0].proto.as_deref(), s[0].hosts.clone(), s[0].port),
        (Some("udp"), vec!["127.0.0.1".to_string()], Some(5060))
    );
    let Value::Sockets(s) = &listens[1].value else {
        panic!()
    };
    assert_eq!(s[0].hosts, ["::1"]);
    assert_eq!(
        s[0].advertise,
        Some(Advertise {
            host: "203.0.113.7".into(),
            port: Some(5061)
        })
    );
    assert_eq!(s[0].name.as_deref(), Some("pub"));
    let Value::Sockets(s) = &listens[2].value else {
        panic!()
    };
    assert_eq!(s.len(), 3);
    assert_eq!(
        (s[1].hosts.clone(), s[1].port),
        (vec!["eth0".to_string()], Some(5070))
    );
    assert_eq!(s[2].hosts, ["10.0.0.1", "10.0.0.2"]);
    assert!(s[2].virtual_ip && !s[1].virtual_ip);
    let Some(Value::Sockets(a)) = cfg.global("alias").map(|g| &g.value) else {
        panic!()
    };
    assert_eq!(a[1].hosts, ["alias2.example.com"]);
    let gw = cfg.global("pstn.gw_ip").unwrap();
    assert_eq!(
        (gw.value.clone(), gw.description.as_deref()),
        (Value::Str(String::new()), Some("PSTN GW Address"))
    );
    assert_eq!(cfg.global("pstn.gw_port").unwrap().value, Value::Int(5060));
    assert_eq!(
        cfg.flags
            .iter()
            .map(|f| (f.name.as_str(), f.bit))
            .collect::<Vec<_>>(),
        [("FLAG_A", Some(1)), ("FLAG_B", Some(2)), ("FLAG_C", None)]
    );
    assert_eq!(cfg.avpflags[0].name, "dialog_cookie");
    assert_eq!(
        cfg.load_paths
            .iter()
            .map(|l| l.path.as_str())
            .collect::<Vec<_>>(),
        ["/usr/lib/kamailio/modules/", "/opt/mods"]
    );
    assert_eq!(
        cfg.modules.iter().map(|m| m.name()).collect::<Vec<_>>(),
        ["tm", "sl"]
    );
    assert_eq!(cfg.modparams_for("registrar").count(), 1);
    assert_eq!(
        cfg.modparams_for("auth_db").next().unwrap().value,
        Value::Bool(true)
    );
    assert_eq!(cfg.modparams_for("x").next().unwrap().value, Value::Int(-5));
    assert_eq!(
        cfg.modparams_for("acc").next().unwrap().value,
        Value::Str("src_user=$fU;dst_user=$rU".into())
    );
    assert!(cfg.is_defined("MOD_tm"));
}

#[test]
fn route_blocks_by_kind_and_name() {
    let cfg = parse(concat!(
        "route { exit; }\n",
        "route[RELAY] { exit; }\nroute[1] { exit; }\nroute[\"q s\"] { exit; }\n",
        "failure_route[MANAGE_FAILURE] { exit; }\n",
        "branch_route[MANAGE_BRANCH] { exit; }\n",
        "onreply_route[MANAGE_REPLY] { exit; }\n",
        "onreply_route { exit; }\n",
        "onsend_route { exit; }\n",
        "event_route[xhttp:request] { exit; }\n",
        "event_route[tm:branch-failure:MANAGE] { exit; }\n",
        "event_route[core:worker-one-init] { exit; }\n",
    ));
    assert!(cfg.route(RouteKind::Request, None).is_some());
    for name in ["RELAY", "1", "q s"] {
        assert!(cfg.route(RouteKind::Named, Some(name)).is_some(), "{name}");
    }
    assert!(cfg
        .route(RouteKind::Failure, Some("MANAGE_FAILURE"))
        .is_some());
    assert!(cfg
        .route(RouteKind::Branch, Some("MANAGE_BRANCH"))
        .is_some());
    assert!(cfg
        .route(RouteKind::TmReply, Some("MANAGE_REPLY"))
        .is_some());
    assert!(cfg.route(RouteKind::Reply, None).is_some());
    assert!(cfg.route(RouteKind::OnSend, None).is_some());
    assert_eq!(
        cfg.routes_of(RouteKind::Event)
            .map(|r| r.name.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        [
            "xhttp:request",
            "tm:branch-failure:MANAGE",
            "core:worker-one-init"
        ]
    );
    // onreply_route[0] is the core reply route too, and a second unnamed
    // block of a kind is appended to the first.
    let cfg = parse("route[0] { a(); }\nreply_route { drop; }\nonreply_route[0] { exit; }\nrequest_route { b(); }\n");
    assert_eq!(
        kinds(&cfg.route(RouteKind::Reply, None).unwrap().body.stmts),
        ["drop", "exit"]
    );
    assert_eq!(
        kinds(&cfg.route(RouteKind::Request, None).unwrap().body.stmts),
        ["a()", "b()"]
    );
    assert_eq!(cfg.routes.len(), 2);
}

#[test]
fn spans_point_at_source() {
    let cfg =
        parse("\n\nrequest_route {\n   xlog(\"a\");\n  if ($var(x) == 1) {\n      exit;\n  }\n}\n");
    let r = cfg.route(RouteKind::Request, None).unwrap();
    assert_eq!((r.span.line, r.span.col), (3, 1));
    assert_eq!(
        (r.body.stmts[0].span.line, r.body.stmts[0].span.col),
        (4, 4)
    );
    let StmtKind::If { cond, then, .. } = &r.body.stmts[1].kind else {
        panic!()
    };
    assert_eq!((cond.span.line, cond.span.col), (5, 6));
    let StmtKind::Block(b) = &then.kind else {
        panic!()
    };
    assert_eq!((b.stmts[0].span.line, b.stmts[0].span.col), (6, 7));
}

/// Broken configs: each gives one clear diagnostic at the right place.
#[test]
fn error_table() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "request_route {\n  xlog(\"abc);\n}\n",
            "t.cfg:2:8:",
            "unterminated string",
        ),
        ("#!ifdef A\nx=1\n", "t.cfg:1:1:", "missing #!endif"),
        ("x=1\n#!endif\n", "t.cfg:2:1:", "#!endif without"),
        ("#!else\n", "t.cfg:1:1:", "#!else without"),
        ("request_route {\n  exit;\n", "t.cfg:1:15:", "missing '}'"),
        (
            "route[A] {\n  exit;\n\nroute[B] {\n  exit;\n}\n",
            "t.cfg:4:1:",
            "missing '}' before",
        ),
        (
            "#!define A 1\n#!define A 2\n",
            "t.cfg:2:10:",
            "'A' is already defined",
        ),
        (
            "include_file \"missing.cfg\"\n",
            "t.cfg:1:14:",
            "cannot read included file 'missing.cfg'",
        ),
        (
            "request_route {\n  if ($var(x) === 1) exit;\n}\n",
            "t.cfg:2:17:",
            "expected an expression, found '='",
        ),
        (
            "/* never closed\nrequest_route { exit; }\n",
            "t.cfg:1:1:",
            "unterminated comment",
        ),
        (
            "request_route {\n  exit;\n}\n}\n",
            "t.cfg:4:1:",
            "unexpected '}' at top level",
        ),
        (
            "request_route {\n  $var(x = 1;\n}\n",
            "t.cfg:2:3:",
            "unterminated pseudo-variable",
        ),
        (
            "request_route {\n  $(var(x){s.len) = 1;\n}\n",
            "t.cfg:2:11:",
            "bad pseudo-variable",
        ),
        (
            "request_route {\n  xlog(\"x\")\n  exit;\n}\n",
            "t.cfg:2:12:",
            "expected ';' after the call to 'xlog'",
        ),
        (
            "request_route {\n  foo bar;\n}\n",
            "t.cfg:2:7:",
            "expected '(' after the function name 'foo'",
        ),
        (
            "request_route {\n  sl_send_reply(CODE, \"x\");\n}\n",
            "t.cfg:2:17:",
            "unknown identifier 'CODE'",
        ),
        (
            "request_route {\n  if (uri == MY_DOMAIN) exit;\n}\n",
            "t.cfg:2:14:",
            "unknown identifier 'MY_DOMAIN'",
        ),
        (
            "modparam(\"acc\", \"db_url\", DBURL)\n",
            "t.cfg:1:27:",
            "needs a string or a number, found 'DBURL'",
        ),
        (
            "debug 3\n",
            "t.cfg:1:7:",
            "expected '=' after the parameter name 'debug'",
        ),
        (
            "route[A] { exit; }\nroute[A] { exit; }\n",
            "t.cfg:2:1:",
            "duplicate route block route[A]",
        ),
        (
            "request_route {\n  else exit;\n}\n",
            "t.cfg:2:3:",
            "'else' without a matching 'if'",
        ),
        (
            "request_route {\n  case 1: exit;\n}\n",
            "t.cfg:2:3:",
            "'case' outside of a switch",
        ),
        (
            "event_route[nocolon] { exit; }\n",
            "t.cfg:1:13:",
            "bad event_route name",
        ),
        (
            "listen=udp:1.2.3.4:99999\n",
            "t.cfg:1:20:",
            "port 99999 is out of range",
        ),
        (
            "request_route {\n  $var(x) == 1;\n}\n",
            "t.cfg:2:11:",
            "'==' compares",
        ),
        (
            "request_route {\n  if (src_ip==10.0.0.0/33) exit;\n}\n",
            "t.cfg:2:24:",
            "bad network mask /33",
        ),
        (
            "request_route {\n  x = 1;\n}\n",
            "t.cfg:2:3:",
            "cannot assign to 'x'",
        ),
        (
            "xlog(\"x\");\n",
            "t.cfg:1:1:",
            "function calls belong inside route blocks",
        ),
        (
            "request_route {\n  $(ru{s.len}) = 1;\n}\n",
            "t.cfg:2:3:",
            "it has transformations",
        ),
        (
            "request_route {\n  switch ($x) { default: a(); default: b(); }\n}\n",
            "t.cfg:2:31:",
            "second 'default'",
        ),
        (
            "request_route {\n  f(1 2);\n}\n",
            "t.cfg:2:7:",
            "expected ',' or ')' in the arguments of 'f'",
        ),
        ("x = @\n", "t.cfg:1:5:", "bad select"),
        (
            "request_route {\n  if (1 +) exit;\n}\n",
            "t.cfg:2:10:",
            "expected an operand after '+'",
        ),
        (
            "loadmodule\n",
            "t.cfg:2:1:",
            "expected a module name after loadmodule",
        ),
        (
            "request_route {\n  $hdr() = 1;\n}\n",
            "t.cfg:2:7:",
            "empty name in '$hdr()'",
        ),
    ];
    for (text, location, message) in cases {
        let got = error(text);
        assert!(
            got.starts_with(location),
            "for {text:?}\n  want {location} {message}\n  got  {got}"
        );
        assert!(
            got.contains(message),
            "for {text:?}\n  want {location} {message}\n  got  {got}"
        );
    }
}

#[test]
fn several_independent_errors_are_reported() {
    let files = MemoryFiles::new();
    let text = "request_route {\n  foo bar;\n  exit;\n  baz qux;\n}\nroute[X] { a() }\n";
    let d = parse_str("t.cfg", text, &opts(&files)).unwrap_err();
    let all = d.rendered();
    assert!(all.len() >= 3, "{all:?}");
    assert!(all[0].starts_with("t.cfg:2:7:"));
    assert!(all[1].starts_with("t.cfg:4:7:"));
}

#[test]
fn errors_in_included_files_name_that_file() {
    let mut files = MemoryFiles::new();
    files
        .insert("/cfg/main.cfg", "include_file \"routes.cfg\"\n")
        .insert("/cfg/routes.cfg", "request_route {\n\n   exit\n}\n");
    let d = load("/cfg/main.cfg", &opts(&files)).unwrap_err();
    assert_eq!(
        d.rendered()[0],
        "/cfg/routes.cfg:3:8: expected ';' after 'exit', found '}'"
    );
}

#[test]
fn errors_from_defines_note_the_define() {
    let d = parse_str(
        "t.cfg",
        "#!define BAD 1 2\ndebug=BAD\n",
        &Options::with_files(&MemoryFiles::new()),
    )
    .unwrap_err();
    let text = d.to_string();
    assert!(text.starts_with("t.cfg:2:7:"), "{text}");
    assert!(
        text.contains("note: the token comes from this #!define value"),
        "{text}"
    );
    assert!(text.contains("t.cfg:1:16:"), "{text}");
}

#[test]
fn missing_config_file() {
    let files = MemoryFiles::new();
    let d = load("/nope/kamailio.cfg", &opts(&files)).unwrap_err();
    assert!(d
        .to_string()
        .starts_with("/nope/kamailio.cfg:1:1: cannot read config file"));
}

/// The stock Debian kamailio.cfg in the define combinations operators use.
#[test]
fn stock_kamailio_cfg() {
    let path = Path::new("/etc/kamailio/kamailio.cfg");
    if !path.exists() {
        eprintln!(
            "skipping: {} is not installed (Debian package kamailio)",
            path.display()
        );
        return;
    }
    let all = [
        "WITH_MYSQL",
        "WITH_AUTH",
        "WITH_NAT",
        "WITH_ANTIFLOOD",
        "WITH_USRLOCDB",
        "WITH_PRESENCE",
        "WITH_TLS",
        "WITH_DEBUG",
    ];
    let mut combos: Vec<Vec<&str>> = vec![vec![], all.to_vec()];
    for d in all {
        // WITH_AUTH, WITH_USRLOCDB and WITH_PRESENCE use DBURL, defined by WITH_MYSQL.
        if matches!(d, "WITH_AUTH" | "WITH_USRLOCDB" | "WITH_PRESENCE") {
            combos.push(vec!["WITH_MYSQL", d]);
        } else {
            combos.push(vec![d]);
        }
    }
    combos.push(vec![
        "WITH_MYSQL",
        "WITH_AUTH",
        "WITH_IPAUTH",
        "WITH_NAT",
        "WITH_RTPENGINE",
        "WITH_NATSIPPING",
        "WITH_PSTN",
        "WITH_VOICEMAIL",
        "WITH_BLOCK3XX",
        "WITH_BLOCK401407",
        "WITH_JSONRPC",
        "WITH_ACCDB",
        "WITH_ALIASDB",
        "WITH_SPEEDDIAL",
        "WITH_MULTIDOMAIN",
        "WITH_MSGREBUILD",
    ]);
    for combo in combos {
        let mut options = Options::default();
        for d in &combo {
            options = options.define(*d);
        }
        let cfg = load(path, &options).unwrap_or_else(|d| panic!("defines {combo:?}:\n{d}"));
        assert!(cfg.route(RouteKind::Request, None).is_some(), "{combo:?}");
        for name in [
            "RELAY",
            "REQINIT",
            "WITHINDLG",
            "REGISTRAR",
            "LOCATION",
            "PRESENCE",
            "AUTH",
            "NATDETECT",
            "NATMANAGE",
            "DLGURI",
            "SIPOUT",
            "PSTN",
            "TOVOICEMAIL",
        ] {
            assert!(
                cfg.route(RouteKind::Named, Some(name)).is_some(),
                "{combo:?}: route[{name}]"
            );
        }
        assert!(cfg
            .route(RouteKind::Branch, Some("MANAGE_BRANCH"))
            .is_some());
        assert!(cfg
            .route(RouteKind::TmReply, Some("MANAGE_REPLY"))
            .is_some());
        assert!(cfg
            .route(RouteKind::Failure, Some("MANAGE_FAILURE"))
            .is_some());
        assert!(cfg.route(RouteKind::Reply, None).is_some());
        assert!(cfg.modules.iter().any(|m| m.name() == "tm"));
        if combo.contains(&"WITH_AUTH") {
            assert!(
                cfg.modules.iter().any(|m| m.name() == "auth_db"),
                "{combo:?}"
            );
        }
        assert_eq!(
            cfg.modparams_for("acc")
                .find(|m| m.param == "log_extra")
                .map(|m| m.value.clone()),
            Some(Value::Str(
                "src_user=$fU;src_domain=$fd;src_ip=$si;dst_ouser=$tU;dst_user=$rU;dst_domain=$rd"
                    .into()
            ))
        );
    }
    // Windows line endings and a byte-order mark change nothing.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let crlf = format!("\u{feff}{}", text.replace('\n', "\r\n"));
    let cfg = parse_str("crlf.cfg", &crlf, &Options::default().define("WITH_NAT"))
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(cfg.compat, Compat::Kamailio);
    assert!(cfg
        .route(RouteKind::Named, Some("NATMANAGE"))
        .is_some_and(|r| !r.body.stmts.is_empty()));
    // WITH_AUTH alone fails as in Kamailio: DBURL is only defined with WITH_MYSQL.
    let d = load(path, &Options::default().define("WITH_AUTH")).unwrap_err();
    assert!(d.to_string().contains("found 'DBURL'"), "{d}");
}

#[test]
fn multi_file_config_from_disk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/multi/main.cfg");
    let env: std::collections::HashMap<String, String> =
        [("RINGSIP_PUBLIC_IP".to_string(), "203.0.113.10".to_string())].into();
    let options = Options {
        defines: vec!["WITH_NAT".into(), "EXTRA=7".into()],
        files: &FsReader,
        env: &env,
    };
    let cfg = load(&root, &options).unwrap_or_else(|d| panic!("{d}"));
    let names: Vec<String> = cfg.sources.files().iter().map(|f| f.name.clone()).collect();
    assert!(
        names.iter().any(|n| n.ends_with("multi/params.cfg")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.ends_with("multi/routes/request.cfg")),
        "{names:?}"
    );
    assert!(cfg.route(RouteKind::Request, None).is_some());
    assert!(cfg.route(RouteKind::Named, Some("NAT")).is_some());
    assert!(cfg
        .route(RouteKind::Event, Some("tm:local-request"))
        .is_some());
    assert_eq!(
        cfg.global("advertised_address").map(|g| g.value.clone()),
        Some(Value::Str("203.0.113.10".into()))
    );
    assert_eq!(
        cfg.global("extra_level").map(|g| g.value.clone()),
        Some(Value::Int(7))
    );
    // #!subst rewrote the domain inside strings.
    assert!(cfg
        .modparams
        .iter()
        .any(|m| m.value == Value::Str("sip:pinger@voice.example.net".into())));
    // Spans of included statements point into the included file.
    let r = cfg.route(RouteKind::Request, None).unwrap();
    assert!(cfg
        .sources
        .name(r.span.file)
        .ends_with("routes/request.cfg"));
    // Without WITH_NAT the NAT route comes from the #!else branch and is empty.
    let options = Options {
        defines: vec!["EXTRA=1".into()],
        files: &FsReader,
        env: &env,
    };
    let cfg = load(&root, &options).unwrap_or_else(|d| panic!("{d}"));
    assert!(cfg
        .route(RouteKind::Named, Some("NAT"))
        .is_some_and(|r| r.body.stmts.len() == 1));
}

/// Shapes seen in operators' configs (written anew here).
#[test]
fn real_world_shapes() {
    let cfg = parse(concat!(
        "#!substdef \"!PUB_IP!198.51.100.7!g\"\n",
        "#!substdef \"!EMPTY_V6!!g\"\n",
        "#!substdef \"!TLS_PORT!5061!g\"\n",
        "log_prefix = \"[$cfg(name):$cfg(line)] [$ci:$rm:$rs] \"\n",
        "listen = tls:PUB_IP:TLS_PORT advertise \"sbc.example.org\":TLS_PORT\n",
        "server_header= \"Server: edge\"\n",
        "loadmodule \"tm\"\n",
        "modparam(\"xmlrpc\", \"route\", \"XMLRPC\");\n",
        "route {\n",
        "  if (msg:len >= 4096) { sl_send_reply(\"513\", \"Message Too Large\"); exit; }\n",
        "  $vn(t) = -2147483000; $shv(t) = 0;\n",
        "  if(from_uri =~ \".*example.com\")\n  {\n    $xavp(tls=>server_name) = \"sbc\";\n  }\n",
        "  import_file \"checks.cfg\"\n",
        "  t_relay();\n",
        "}\n",
        "onreply_route[FROM_GW]\n{\n  if (has_body(\"application/sdp\")) { xinfo(\"sdp\"); }\n}\n",
    ));
    let Some(Value::Sockets(s)) = cfg.global("listen").map(|g| &g.value) else {
        panic!()
    };
    assert_eq!(
        (s[0].hosts[0].as_str(), s[0].port),
        ("198.51.100.7", Some(5061))
    );
    assert_eq!(
        s[0].advertise,
        Some(Advertise {
            host: "sbc.example.org".into(),
            port: Some(5061)
        })
    );
    assert!(cfg
        .defines
        .iter()
        .any(|d| d.name == "EMPTY_V6" && d.value.is_none()));
    assert!(cfg.route(RouteKind::TmReply, Some("FROM_GW")).is_some());
}

#[test]
fn include_inside_a_route_block() {
    let mut files = MemoryFiles::new();
    files
        .insert("/k/main.cfg", "request_route {\n  include_file \"checks.cfg\"\n  t_relay();\n}\n")
        .insert("/k/checks.cfg", "if (!mf_process_maxfwd_header(\"10\")) {\n  sl_send_reply(\"483\", \"Too Many Hops\");\n  exit;\n}\n");
    let cfg = load("/k/main.cfg", &opts(&files)).unwrap_or_else(|d| panic!("{d}"));
    let r = cfg.route(RouteKind::Request, None).unwrap();
    assert_eq!(kinds(&r.body.stmts), ["if", "t_relay()"]);
    assert_eq!(cfg.sources.name(r.body.stmts[0].span.file), "/k/checks.cfg");
    // Sockets built from defines, as operators parameterise them.
    let cfg = parse(concat!(
        "#!define PROTO udp\n#!define IF 10.1.2.3\n#!define PORT 5080\n#!define PUB 192.0.2.9\n",
        "listen=PROTO:IF:PORT advertise PUB:PORT\n",
    ));
    let Some(Value::Sockets(s)) = cfg.global("listen").map(|g| &g.value) else {
        panic!()
    };
    assert_eq!(
        (s[0].proto.as_deref(), s[0].hosts[0].as_str(), s[0].port),
        (Some("udp"), "10.1.2.3", Some(5080))
    );
    assert_eq!(
        s[0].advertise,
        Some(Advertise {
            host: "192.0.2.9".into(),
            port: Some(5080)
        })
    );
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    fn try_parse(text: &str) {
        let mut files = MemoryFiles::new();
        files
            .insert("inc.cfg", "#!define INC 1\nroute[INC] { exit; }\n")
            .insert("self.cfg", text);
        let _ = parse_str("fuzz.cfg", text, &Options::with_files(&files));
    }

    /// Fragments of real syntax, so that random mixes reach deep states.
    const PIECES: &[&str] = &[
        "#!define A 1\n",
        "#!ifdef A\n",
        "#!ifndef B\n",
        "#!else\n",
        "#!endif\n",
        "#!subst \"/a/b/g\"\n",
        "#!substdef \"/X/1/\"\n",
        "include_file \"inc.cfg\"\n",
        "import_file \"self.cfg\"\n",
        "import_file \"x\"\n",
        "request_route {",
        "route[R] {",
        "event_route[a:b] {",
        "}",
        "{",
        "(",
        ")",
        "[",
        "]",
        "if",
        "else",
        "switch",
        "case 1:",
        "default:",
        "while",
        "$var(x)",
        "$(hdr(V)[-1]{s.len})",
        "$sht(t=>$si)",
        "=",
        "==",
        "&&",
        "!",
        "\"str\"",
        "'s'",
        "/*",
        "*/",
        "//",
        "#",
        ";",
        ",",
        "1.2.3.4",
        "::1",
        "/8",
        "xlog(\"$ru\")",
        "route(R)",
        "exit",
        "return",
        "listen=",
        "udp:",
        "modparam(\"a\",\"b\",",
        "loadmodule",
        "A",
        "B",
        "X",
        "\\\n",
        "\n",
        " ",
        "@a.b",
        "$",
        "-",
        ":",
        "msg:len",
        "myself",
        "(int)",
        "defined",
        "strlen(",
    ];

    proptest! {
        #![proptest_config(crate::proptest_config(300))]

        #[test]
        fn random_text_never_panics(text in "\\PC{0,200}") {
            try_parse(&text);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            try_parse(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn random_syntax_pieces_never_panic(pieces in proptest::collection::vec(0..PIECES.len(), 0..60)) {
            let text: String = pieces.iter().map(|i| PIECES[*i]).collect::<Vec<_>>().join(" ");
            try_parse(&text);
        }
    }

    #[test]
    fn long_else_if_chains_are_not_nesting() {
        let mut text = String::from("request_route {\n if ($var(x) == 0) { a(); }");
        for i in 1..1000 {
            text.push_str(&format!(" else if ($var(x) == {i}) {{ a(); }}"));
        }
        text.push_str(" else { b(); }\n}\n");
        let cfg = parse(&text);
        let mut stmt = &cfg.route(RouteKind::Request, None).unwrap().body.stmts[0];
        let mut arms = 0;
        while let StmtKind::If {
            otherwise: Some(next),
            ..
        } = &stmt.kind
        {
            arms += 1;
            stmt = next;
        }
        assert_eq!(arms, 1000);
        assert_eq!(kinds(std::slice::from_ref(stmt)), ["block[b()]"]);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // Deep parentheses and blocks must not overflow the stack.
        let text = format!(
            "request_route {{ if ({}1{}) exit; }}",
            "(".repeat(3000),
            ")".repeat(3000)
        );
        try_parse(&text);
        let text = format!("request_route {{ {} }}", "{".repeat(3000));
        try_parse(&text);
        let text = format!("request_route {{ if ({}1) exit; }}", "!".repeat(3000));
        try_parse(&text);
        let text = format!("request_route {{ $var(x) = {}1; }}", "-".repeat(3000));
        try_parse(&text);
    }
}
