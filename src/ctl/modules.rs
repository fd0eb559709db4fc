//! Methods of the load-balancing and core-extension modules: `dispatcher.*`,
//! `pike.top`, corex's allocator reports and its socket and alias lists.
//! Each reaches the module's shared state through [`Ctl::services`] and
//! answers an error when it is not loaded; the lists read [`Ctl::env`].

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::methods::{Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::corex::rpc as corex;
use crate::modules::dialog::{rpc as dlg, Dialogs};
use crate::modules::dispatcher::{rpc as ds, Dispatcher};
use crate::modules::pike::Pike;

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
];

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
    ds::reload(dispatcher(ctl)?).map_err(fault)
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
