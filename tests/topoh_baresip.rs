//! Real user agents through topoh: two baresip softphones register (REGISTER
//! is not masked), Alice calls Bob through the stock-auth configuration with
//! `loadmodule "topoh.so"` (masked Call-ID too), Bob answers and hangs up.
//! baresip checks its own dialog state, so a Via, Contact, Route or Call-ID
//! that topoh failed to give back would break the call. As with Kamailio,
//! rr's `append_fromtag` is needed: topoh tells the direction of an
//! in-dialog request by the `ftag` of its first Route (without it Bob's BYE
//! would reach Alice with the masked Call-ID, and she answers 481).

mod common;

use std::process::Command;
use std::time::Duration;

use common::baresip::{Account, Baresip};
use common::{ringsip_bin, Proxy};

const WAIT: Duration = Duration::from_secs(10);

fn account(user: &str, password: &str, proxy: &Proxy) -> Account {
    Account {
        user: user.into(),
        password: password.into(),
        proxy: proxy.addr(),
        transport: "udp",
        cafile: None,
        certificate: None,
        auto_answer: true,
    }
}

#[test]
fn baresip_call_through_topoh_with_call_id_masking() {
    let dir = tempfile::Builder::new()
        .prefix("ringsip-topoh-pbx-")
        .tempdir()
        .expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("ringsip.db").display());
    let addr = common::free_udp_addr();
    for (user, password) in [("alice", "alice-secret"), ("bob", "bob-secret")] {
        let status = Command::new(ringsip_bin())
            .args(["user", "add", "--db", &url])
            .arg(format!("{user}@{}", addr.ip()))
            .arg(password)
            .status()
            .expect("run ringsip user add");
        assert!(status.success(), "ringsip user add {user}: {status}");
    }
    let config = include_str!("configs/stock-auth/kamailio.cfg")
        .replace("listen=@LISTEN@", "listen=udp:@IP@:@PORT@")
        .replace("@DBURL@", &url)
        .replace("@DB_MODE@", "0")
        .replace(
            "loadmodule \"rr.so\"\n",
            "loadmodule \"rr.so\"\nloadmodule \"topoh.so\"\n\
             modparam(\"topoh\", \"mask_key\", \"baresip-key\")\n\
             modparam(\"topoh\", \"mask_ip\", \"192.0.2.251\")\n\
             modparam(\"topoh\", \"mask_callid\", 1)\n",
        )
        .replace(
            "modparam(\"rr\", \"append_fromtag\", 0)",
            "modparam(\"rr\", \"append_fromtag\", 1)",
        );
    assert!(config.contains("topoh.so") && config.contains("\"append_fromtag\", 1"));
    let proxy = Proxy::builder(&config).listen(addr).workers(2).start();
    let alice_acc = account("alice", "alice-secret", &proxy);
    let bob_acc = account("bob", "bob-secret", &proxy);
    let mut alice = Baresip::start("alice", &alice_acc);
    if let Err(output) = alice.registration(WAIT) {
        panic!("alice did not register:\n{output}");
    }
    let mut bob = Baresip::start("bob", &bob_acc);
    if let Err(output) = bob.registration(WAIT) {
        panic!("bob did not register:\n{output}");
    }

    alice.command("dial", &format!("sip:bob@{}", proxy.addr()));
    let answered = bob.wait_event("CALL_ESTABLISHED", WAIT);
    // Bob sees the proxy's mask address as Alice's contact, not Alice.
    assert!(
        answered["peeruri"]
            .as_str()
            .unwrap_or_default()
            .contains("alice@"),
        "{answered}"
    );
    alice.wait_event("CALL_ESTABLISHED", WAIT);

    bob.command("hangup", "");
    bob.wait_event("CALL_CLOSED", WAIT);
    let closed = alice.wait_event("CALL_CLOSED", WAIT);
    assert!(
        closed["param"]
            .as_str()
            .unwrap_or_default()
            .contains("reset by peer"),
        "Alice's call ends by Bob's BYE (it found her dialog): {closed}\n{}",
        alice.output()
    );
    drop(dir);
}
