//! `ringsip check` on broken configurations: each one gives ONE diagnostic,
//! `file:line:col: message`, at the place of the mistake, and exits 1. The
//! real binary runs on files in a temporary directory.

use std::path::Path;
use std::process::Command;

/// Prepended where a case says `{H}`: the modules most cases use.
const H: &str = "loadmodule \"sl.so\"\nloadmodule \"textops.so\"\n";

struct Case {
    name: &'static str,
    text: &'static str,
    /// `line:col` of the diagnostic.
    at: &'static str,
    /// A part of its message.
    says: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "sub_route_reached_only_from_a_wrong_type",
        // A failure_route function in a route only onreply_route calls
        // (Kamailio refuses it in any route[X]: "Command cannot be used in
        // the block"). A request_route function there is accepted, as by
        // Kamailio, and runs where it is called.
        text: r#"{H}loadmodule "tm.so"
route[R] {
    t_drop_replies();
}
onreply_route[X] { route(R); }
request_route { exit; }"#,
        at: "5:5",
        says:
            "t_drop_replies() cannot be used in route (this route is only called from onreply_route)",
    },
    Case {
        name: "assign_to_transformation",
        text: r#"{H}request_route {
    $(var(x){s.len}) = 1;
}"#,
        at: "4:5",
        says: r#"cannot assign to '$(var(x){s.len})': it has transformations"#,
    },
    Case {
        name: "bad_case_regex",
        text: r#"{H}request_route {
    switch ($rm) {
        case /"(": exit;
    }
}"#,
        at: "5:15",
        says: r#"bad regular expression "(": unclosed group"#,
    },
    Case {
        name: "bad_htable_def",
        text: r#"{H}loadmodule "htable.so"
modparam("htable", "htable", "t=>size=x")
request_route { exit; }"#,
        at: "4:1",
        says: r#"htable t: size needs a number, not "x""#,
    },
    Case {
        name: "bad_listen",
        text: r#"listen=udp:1.2.3.4:99999
{H}request_route { exit; }"#,
        at: "1:20",
        says: r#"port 99999 is out of range (0-65535)"#,
    },
    Case {
        name: "bad_regex",
        text: r#"{H}request_route {
    if ($ru =~ "(") { exit; }
}"#,
        at: "4:16",
        says: r#"bad regular expression "(": unclosed group"#,
    },
    Case {
        name: "bad_reply_code",
        text: r#"{H}request_route {
    sl_send_reply("99", "x");
}"#,
        at: "4:5",
        says: r#"sl_send_reply(): reply code 99 is not in 100..699"#,
    },
    Case {
        name: "bad_shvset",
        text: r#"{H}loadmodule "pv.so"
modparam("pv", "shvset", "x=q:1")
request_route { exit; }"#,
        at: "4:1",
        says: r#"shvset: "x=q:1" is not name=i:number or name=s:text"#,
    },
    Case {
        name: "bad_transformation_syntax",
        text: r#"{H}request_route {
    if ($(ru{len}) == 1) { exit; }
}"#,
        at: "4:14",
        says: r#"bad pseudo-variable '$(ru{len})': bad transformation '{len':"#,
    },
    Case {
        name: "define_twice",
        text: r#"#!define X 1
#!define X 2
{H}request_route { exit; }"#,
        at: "2:10",
        says: r#"'X' is already defined"#,
    },
    Case {
        name: "duplicate_route",
        text: r#"{H}route[A] { exit; }
route[A] { drop; }
request_route { route(A); }"#,
        at: "4:1",
        says: r#"duplicate route block route[A]"#,
    },
    Case {
        name: "int_plus_string",
        text: r#"{H}request_route {
    $var(x) = 1 + "a";
}"#,
        at: "4:19",
        says: r#"a string constant cannot be added to a number (the left oper"#,
    },
    Case {
        name: "missing_include",
        text: r#"{H}include_file "nope.cfg"
request_route { exit; }"#,
        at: "3:14",
        says: r#"cannot read included file 'nope.cfg': No such file or direct"#,
    },
    Case {
        name: "modparam_unloaded",
        text: r#"{H}modparam("xlog", "prefix", "x")
request_route { exit; }"#,
        at: "3:1",
        says: r#"modparam for module "xlog", which is not loaded"#,
    },
    Case {
        name: "needs_loadmodule",
        text: r#"{H}request_route {
    xlog("x");
}"#,
        at: "4:5",
        says: r#"xlog() needs loadmodule "xlog.so""#,
    },
    Case {
        name: "not_in_route_type",
        text: r#"{H}onreply_route[R] {
    sl_send_reply("200", "x");
}
request_route { exit; }"#,
        at: "4:5",
        says: r#"sl_send_reply() cannot be used in onreply_route"#,
    },
    Case {
        name: "pv_in_wrong_place",
        text: r#"{H}request_route {
    $var(x) = $hdr();
}"#,
        at: "4:19",
        says: r#"bad pseudo-variable '$hdr()': empty name in '$hdr()'"#,
    },
    Case {
        name: "read_only_pv",
        text: r#"{H}request_route {
    $si = "1.2.3.4";
}"#,
        at: "4:5",
        says: r#"$si is read-only"#,
    },
    Case {
        name: "snd_outside_onsend",
        text: r#"{H}request_route {
    if (snd_ip == 1.2.3.4) { exit; }
}"#,
        at: "4:9",
        says: r#"snd_ip, snd_port, snd_proto, snd_af, to_ip and to_port are o"#,
    },
    Case {
        name: "syntax_error",
        text: r#"{H}request_route {
    if ($rm == "x" { exit; }
}"#,
        at: "4:20",
        says: r#"expected ')' to close '(', found '{'"#,
    },
    Case {
        name: "transformation_arity",
        text: r#"{H}request_route {
    $var(x) = $(ru{s.substr,1});
}"#,
        at: "4:15",
        says: r#"$(ru{s.substr,1}): {s.substr} takes 2 parameter(s), 1 given"#,
    },
    Case {
        name: "tv_needs_name",
        text: r#"{H}request_route {
    $var(t) = $TV;
}"#,
        at: "4:15",
        says: r#"$TV needs a name in parentheses"#,
    },
    Case {
        name: "unknown_core_param",
        text: r#"nope_param = 1
{H}request_route { exit; }"#,
        at: "1:1",
        says: r#"unknown core parameter "nope_param""#,
    },
    Case {
        name: "unknown_function",
        text: r#"{H}request_route {
    foo_bar();
}"#,
        at: "4:5",
        says: r#"unknown function foo_bar() (not provided by any loaded modul"#,
    },
    Case {
        name: "unknown_htable",
        text: r#"{H}loadmodule "htable.so"
request_route {
    $sht(nope=>$si) = 1;
}"#,
        at: "5:5",
        says: r#"$sht(nope=>$si): no hash table "nope" (declare it with modpa"#,
    },
    Case {
        name: "unknown_modparam",
        text: r#"{H}modparam("sl", "nope", 1)
request_route { exit; }"#,
        at: "3:1",
        says: r#"module "sl" has no parameter "nope""#,
    },
    Case {
        name: "unknown_module",
        text: r#"{H}loadmodule "nope.so"
request_route { exit; }"#,
        at: "3:1",
        says: r#"unknown module "nope""#,
    },
    Case {
        name: "unknown_pv",
        text: r#"{H}request_route {
    if ($nope == 1) { exit; }
}"#,
        at: "4:9",
        says: r#"unknown pseudo-variable $nope"#,
    },
    Case {
        name: "unknown_route",
        text: r#"{H}request_route {
    route(NOPE);
}"#,
        at: "4:5",
        says: r#"route(NOPE) calls a route that is not defined"#,
    },
    Case {
        name: "unknown_select",
        text: r#"{H}request_route {
    if (@foo.bar == "x") { exit; }
}"#,
        at: "4:9",
        says: r#"select @foo.bar is not supported"#,
    },
    Case {
        name: "unknown_transformation",
        text: r#"{H}request_route {
    if ($(ru{s.nope}) == 1) { exit; }
}"#,
        at: "4:9",
        says: r#"$(ru{s.nope}): unknown transformation {s.nope}"#,
    },
    Case {
        name: "wrong_arity",
        text: r#"{H}request_route {
    sl_send_reply("200");
}"#,
        at: "4:5",
        says: r#"sl_send_reply() takes 2 argument(s), 1 given"#,
    },
];

fn check(path: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ringsip"))
        .arg("check")
        .arg("-f")
        .arg(path)
        .output()
        .expect("run ringsip check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_broken_config_gives_one_located_diagnostic() {
    assert!(CASES.len() >= 20);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    for case in CASES {
        let path = dir.path().join(format!("{}.cfg", case.name));
        std::fs::write(&path, case.text.replace("{H}", H)).expect("write config");
        let (code, stderr) = check(&path);
        let diags: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with(path.to_str().unwrap_or("")) && !l.contains(": note: "))
            .collect();
        let want = format!("{}:{}: ", path.display(), case.at);
        let ok = code == 1
            && diags.len() == 1
            && diags[0].starts_with(&want)
            && diags[0].contains(case.says)
            && stderr
                .lines()
                .all(|l| l.starts_with(path.to_str().unwrap_or("")));
        if !ok {
            failures.push(format!(
                "{}: exit {code}, wanted one diagnostic at {} saying {:?}, got:\n{stderr}",
                case.name, case.at, case.says
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_good_config_checks_clean() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("good.cfg");
    let text = format!(
        "{H}loadmodule \"pv.so\"\nloadmodule \"htable.so\"\n\
         modparam(\"htable\", \"htable\", \"ipban=>size=8;autoexpire=300;\")\n\
         request_route {{\n\
           if ($sht(ipban=>$si) != $null) {{ exit; }}\n\
           if ($(ru{{uri.user}}{{s.len}}) > 3 && @via[1].host == \"x\") {{ $avp(a) = 1; }}\n\
           $var(r) = \"R\"; route($var(r));\n\
           switch ($rm) {{ case /\"^INV\": break; default: exit; }}\n\
           sl_send_reply(\"200\", \"ok $(fu{{uri.host}})\");\n\
         }}\n\
         route[R] {{ route(BOTH); return; }}\n\
         route[BOTH] {{ if (is_method(\"INVITE\")) {{ sl_send_reply(\"100\", \"guarded\"); }} }}\n\
         onreply_route[X] {{ route(BOTH); }}\n"
    );
    std::fs::write(&path, text).expect("write config");
    let (code, stderr) = check(&path);
    assert_eq!((code, stderr.as_str()), (0, ""));
}
