//! Methods of the load-balancing and core-extension modules: `dispatcher.*`,
//! `pike.top`, corex's allocator reports and its socket and alias lists.
//! Each reaches the module's shared state through [`Ctl::services`] and
//! answers an error when it is not loaded; the lists read [`Ctl::env`].

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::methods::{Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::cfgutils::Cfgutils;
use crate::modules::corex::rpc as corex;
use crate::modules::dialog::{rpc as dlg, Dialogs};
use crate::modules::dispatcher::{rpc as ds, Dispatcher};
use crate::modules::pike::Pike;
use crate::modules::presence::state::Event;
use crate::modules::presence::Presence;

pub static METHODS: &[Method] = &[
    Method {
        name: "dispatcher.list",
        help: "Every destination set with its destinations and their state.",
        call: ds_list,
    },
    Method {
        name: "dispatcher.reload",
        help: "Read the destination sets again (list file or table).",
        call: ds_reload,
    },
    Method {
        name: "dispatcher.set_state",
        help: "dispatcher.set_state STATE GROUP ADDRESS|all: mark destinations (a, i, d, t; p for probing).",
        call: ds_set_state,
    },
    Method {
        name: "dlg.list",
        help: "Every dialog: identifiers, state, tags, profiles and variables.",
        call: dlg_list,
    },
    Method {
        name: "dlg.profile_get_size",
        help: "dlg.profile_get_size PROFILE [VALUE]: how many dialogs are in the profile.",
        call: dlg_profile_get_size,
    },
    Method {
        name: "dlg.stats_active",
        help: "Dialogs not ended, by state (starting, connecting, answering, ongoing).",
        call: dlg_stats_active,
    },
    Method {
        name: "presence.cleanup",
        help: "Run the presence expiry round now (lapsed publications and subscriptions).",
        call: presence_cleanup,
    },
    Method {
        name: "presence.refreshWatchers",
        help: "presence.refreshWatchers URI EVENT [TYPE]: NOTIFY every watcher of URI with the current state.",
        call: presence_refresh,
    },
    Method {
        name: "pike.top",
        help: "pike.top [ALL|HOT|WARM]: source addresses pike is tracking.",
        call: pike_top,
    },
    Method {
        name: "corex.shm_status",
        help: "Allocator statistics (mimalloc; workers share one heap).",
        call: shm_status,
    },
    Method {
        name: "corex.shm_summary",
        help: "Allocator summary (mimalloc; workers share one heap).",
        call: shm_summary,
    },
    Method {
        name: "corex.list_sockets",
        help: "The listening sockets: protocol, address, port, advertised address.",
        call: list_sockets,
    },
    Method {
        name: "corex.list_aliases",
        help: "The host names that are \"myself\": alias= entries, then alias_subdomains.",
        call: list_aliases,
    },
    Method {
        name: "corex.pkg_summary",
        help: "corex.pkg_summary [WORKER]: per-worker memory (threads share one heap).",
        call: pkg_summary,
    },
    Method {
        name: "cfgutils.rand_set_prob",
        help: "cfgutils.rand_set_prob N: the probability of rand_event(), 0..100 percent.",
        call: cfg_set_prob,
    },
    Method {
        name: "cfgutils.rand_reset_prob",
        help: "Back to initial_probability.",
        call: cfg_reset_prob,
    },
    Method {
        name: "cfgutils.rand_get_prob",
        help: "The probability of rand_event().",
        call: cfg_get_prob,
    },
    Method {
        name: "cfgutils.get_config_hash",
        help: "The MD5 of hash_file at start-up.",
        call: cfg_get_hash,
    },
    Method {
        name: "cfgutils.check_config_hash",
        help: "Whether hash_file still has the MD5 it had at start-up.",
        call: cfg_check_hash,
    },
    Method {
        name: "cfgutils.set_gflag",
        help: "cfgutils.set_gflag MASK: sets these global flag bits.",
        call: cfg_set_gflag,
    },
    Method {
        name: "cfgutils.reset_gflag",
        help: "cfgutils.reset_gflag MASK: clears these global flag bits.",
        call: cfg_reset_gflag,
    },
    Method {
        name: "cfgutils.is_gflag",
        help: "cfgutils.is_gflag MASK: TRUE when all these bits are set.",
        call: cfg_is_gflag,
    },
    Method {
        name: "cfgutils.get_gflags",
        help: "The global flags.",
        call: cfg_get_gflags,
    },
    Method {
        name: "siptrace.status",
        help: "siptrace.status on|off|check: turn tracing on or off, or say whether it is.",
        call: siptrace_status,
    },
];

/// Kamailio's answers: "Enabled" / "Disabled", errors with code 500.
fn siptrace_status(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let st = ctl
        .services
        .get::<crate::modules::siptrace::Siptrace>()
        .ok_or_else(|| RpcError::failed("siptrace is not loaded"))?;
    let Some(arg) = p.text(0) else {
        return Err(RpcError::new(
            500,
            "Not enough parameters (on, off or check)",
        ));
    };
    match arg.as_str() {
        "on" => st.set_on(true),
        "off" => st.set_on(false),
        "check" => {}
        _ => return Err(RpcError::new(500, "Bad parameter (on, off or check)")),
    }
    let state = if st.is_on() { "Enabled" } else { "Disabled" };
    Ok(Value::String(state.to_string()))
}

fn cfgutils(ctl: &Ctl) -> Result<&Cfgutils, RpcError> {
    ctl.services
        .get::<Cfgutils>()
        .ok_or_else(|| RpcError::failed("cfgutils is not loaded"))
}

/// Parameter `i` as a number (JSON number or numeric text).
fn number(p: &Params, i: usize) -> Result<i64, RpcError> {
    let v = p
        .get(i)
        .ok_or_else(|| RpcError::new(500, "Invalid Parameters"))?;
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| RpcError::new(500, "Invalid Parameters"))
}

fn cfg_set_prob(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let n = number(p, 0)?;
    match u32::try_from(n) {
        Ok(n) if cfgutils(ctl)?.set_probability(n) => Ok(Value::Null),
        _ => Err(RpcError::new(500, "Invalid Percent")),
    }
}

fn cfg_reset_prob(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    cfgutils(ctl)?.reset_probability();
    Ok(Value::Null)
}

fn cfg_get_prob(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let p = cfgutils(ctl)?.probability();
    Ok(Value::String(format!("actual probability: {p} percent")))
}

fn cfg_get_hash(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    match cfgutils(ctl)?.config_hash() {
        Some(h) => Ok(Value::String(h.to_string())),
        None => Err(RpcError::new(500, "No hash file")),
    }
}

fn cfg_check_hash(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    match cfgutils(ctl)?.check_config_hash(|f| std::fs::read(f)) {
        Ok(true) => Ok(Value::String("Identical hash".into())),
        Ok(false) => Ok(Value::String("Different hash".into())),
        Err(e) => Err(RpcError::new(500, e)),
    }
}

fn cfg_set_gflag(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    cfgutils(ctl)?.set_gflags(number(p, 0)? as u32);
    Ok(Value::Null)
}

fn cfg_reset_gflag(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    cfgutils(ctl)?.reset_gflags(number(p, 0)? as u32);
    Ok(Value::Null)
}

fn cfg_is_gflag(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let mask = number(p, 0)? as u32;
    let all = cfgutils(ctl)?.gflags() & mask == mask;
    Ok(Value::String(if all { "TRUE" } else { "FALSE" }.into()))
}

fn cfg_get_gflags(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let f = cfgutils(ctl)?.gflags();
    Ok(Value::String(format!("0x{f:X} ({f})")))
}

fn dispatcher(ctl: &Ctl) -> Result<&Dispatcher, RpcError> {
    ctl.services
        .get::<Dispatcher>()
        .ok_or_else(|| RpcError::failed("dispatcher is not loaded"))
}

fn fault((code, message): (i32, String)) -> RpcError {
    RpcError::new(i64::from(code), message)
}

fn ds_list(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    Ok(ds::list(dispatcher(ctl)?, false))
}

fn ds_reload(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    ds::reload(dispatcher(ctl)?, now).map_err(fault)
}

fn ds_set_state(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let state = p.need_text(0, "state")?;
    let group = p.need_text(1, "group")?;
    let address = p.need_text(2, "address")?;
    ds::set_state(dispatcher(ctl)?, &state, &group, &address).map_err(fault)
}

fn dialogs(ctl: &Ctl) -> Result<&Dialogs, RpcError> {
    ctl.services
        .get::<Dialogs>()
        .ok_or_else(|| RpcError::failed("dialog is not loaded"))
}

fn dlg_list(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    Ok(dlg::list(dialogs(ctl)?))
}

fn dlg_profile_get_size(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let profile = p.need_text(0, "profile")?;
    let value = p.text(1);
    dlg::profile_get_size(dialogs(ctl)?, &profile, value.as_deref()).map_err(fault)
}

fn dlg_stats_active(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    Ok(dlg::stats_active(dialogs(ctl)?))
}

fn presence(ctl: &Ctl) -> Result<&Presence, RpcError> {
    ctl.services
        .get::<Presence>()
        .ok_or_else(|| RpcError::failed("presence is not loaded"))
}

fn presence_cleanup(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    presence(ctl)?.timer().force();
    Ok(Value::Null)
}

fn presence_refresh(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let pres = presence(ctl)?;
    let uri = p
        .text(0)
        .ok_or_else(|| RpcError::failed("presence.refreshWatchers URI EVENT [TYPE]"))?;
    let event = p
        .text(1)
        .and_then(|e| Event::parse(e.as_bytes()))
        .ok_or_else(|| RpcError::failed("unknown event"))?;
    pres.timer().refresh(uri, event);
    Ok(Value::Null)
}

fn pike_top(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let pike = ctl
        .services
        .get::<Pike>()
        .ok_or_else(|| RpcError::failed("pike is not loaded"))?;
    let filter = p.text(0).unwrap_or_else(|| "ALL".to_string());
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    pike.top_json(&filter, now_ms).map_err(fault)
}

fn shm_status(_: &Ctl, _: &Params) -> Result<Value, RpcError> {
    Ok(corex::shm_status())
}

fn shm_summary(_: &Ctl, _: &Params) -> Result<Value, RpcError> {
    Ok(corex::shm_summary())
}

fn list_sockets(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    Ok(corex::list_sockets(&ctl.env))
}

fn list_aliases(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    Ok(corex::list_aliases(&ctl.env))
}

fn pkg_summary(_: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let worker = p.text(0).and_then(|t| t.trim().parse().ok());
    Ok(corex::pkg_summary(worker))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::script::ctx::{Env, SocketInfo};
    use crate::sip::packet::Proto;

    #[test]
    fn socket_and_alias_lists_read_the_env() {
        let mut ctl = Ctl::for_tests();
        ctl.env = Arc::new(Env {
            sockets: vec![SocketInfo {
                proto: Proto::Udp,
                addr: "127.0.0.1:5060".parse().unwrap(),
                advertise: Some(("sip.example.com".into(), 5080)),
            }],
            aliases: vec![("example.com".into(), None)],
            ..Env::default()
        });
        let call = |name: &str| {
            let m = METHODS.iter().find(|m| m.name == name).unwrap();
            (m.call)(&ctl, &Params::new(vec![])).unwrap()
        };
        let sockets = call("corex.list_sockets");
        assert_eq!(sockets["SOCKET"][0]["PROTO"], "udp");
        assert_eq!(sockets["SOCKET"][0]["PORT"], 5060);
        assert_eq!(sockets["SOCKET"][0]["ADVERTISE"], "sip.example.com:5080");
        let aliases = call("corex.list_aliases");
        assert_eq!(aliases["ALIAS"][0]["ADDR"], "example.com");
        assert_eq!(aliases["ALIAS"][0]["PORT"], "*");
    }

    #[test]
    fn unloaded_modules_answer_an_error() {
        let ctl = Ctl::for_tests();
        for name in ["dispatcher.list", "dispatcher.reload", "pike.top"] {
            let m = METHODS.iter().find(|m| m.name == name).unwrap();
            let err = (m.call)(&ctl, &Params::new(vec![])).unwrap_err();
            assert!(
                err.message.contains("not loaded"),
                "{name}: {}",
                err.message
            );
        }
        let m = METHODS
            .iter()
            .find(|m| m.name == "dispatcher.set_state")
            .unwrap();
        assert!((m.call)(&ctl, &Params::new(vec![])).is_err());
    }

    #[test]
    fn allocator_reports_are_objects() {
        let ctl = Ctl::for_tests();
        for name in ["corex.shm_status", "corex.shm_summary", "corex.pkg_summary"] {
            let m = METHODS.iter().find(|m| m.name == name).unwrap();
            let v = (m.call)(&ctl, &Params::new(vec![])).unwrap();
            assert!(v.is_object(), "{name}: {v}");
        }
    }
}
