//! usrloc with a database, as the binary runs it: one "process lifetime"
//! (`start` … `stop`) over a store URL, and the REGISTER/INVITE those tests send.

use std::sync::Arc;

use ringsip::modules::registrar::{RegParams, Registrar};
use ringsip::modules::usrloc::{UlParams, Usrloc};
use ringsip::script::ctx::Shared;
use ringsip::store::Stores;

use super::Bench;

/// A REGISTER of `user` binding `contact`.
pub fn register(user: &str, contact: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-{user}
From: <sip:{user}@example.com>;tag=f1
To: <sip:{user}@example.com>
Call-ID: {user}-call
CSeq: 1 REGISTER
Contact: <{contact}>
User-Agent: test-ua
Content-Length: 0"
    )
}

/// An INVITE to `user`.
pub fn invite(user: &str) -> String {
    format!(
        "INVITE sip:{user}@example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-i
From: <sip:x@example.com>;tag=1
To: <sip:{user}@example.com>
Call-ID: i1
CSeq: 1 INVITE
Content-Length: 0"
    )
}

/// One "process lifetime": usrloc over the database at `url`.
pub struct Life {
    pub stores: Stores,
    pub ul: Arc<Usrloc>,
    pub bench: Bench,
}

pub fn start(url: &str, db_mode: u8, unix_ms: u64) -> Life {
    let mut stores = Stores::default();
    let handle = stores.handle(url).unwrap();
    let params = UlParams {
        db_mode,
        ..UlParams::default()
    };
    let ul = Arc::new(Usrloc::new(params, Some(handle), unix_ms).unwrap());
    let mut shared = Shared::default();
    shared.insert(ul.clone());
    shared.insert(Arc::new(Registrar {
        params: RegParams::default(),
    }));
    Life {
        stores,
        ul,
        bench: Bench::new(shared, unix_ms),
    }
}

impl Life {
    /// What the binary does on SIGTERM.
    pub fn stop(self) {
        self.ul.flush();
        drop(self.bench);
        self.stores.finish();
    }
}
