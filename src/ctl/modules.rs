//! Methods of the load-balancing and core-extension modules: `dispatcher.*`,
//! `pike.top` and corex's allocator reports. Each reaches the module's shared
//! state through [`Ctl::services`] and answers an error when it is not loaded.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::methods::{Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::corex::rpc as corex;
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

fn pkg_summary(_: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let worker = p.text(0).and_then(|t| t.trim().parse().ok());
    Ok(corex::pkg_summary(worker))
}

#[cfg(test)]
mod tests {
    use super::*;

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
