//! `$shv` and hash tables are shared by every core: one `SharedState`, many
//! threads. (Here rather than beside the code because the sans-IO layer may
//! not name threads or read the clock, not even in its unit tests.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringsip::script::shared::{HeldLocks, Htable, HtableDef, SharedState};
use ringsip::script::value::Value;

#[test]
fn items_expire_with_the_clock_given() {
    let t = Htable::new(HtableDef::parse("t=>size=2;autoexpire=10").unwrap());
    let t0 = Instant::now();
    t.set(b"k", Value::Int(1), t0);
    assert_eq!(
        t.get(b"k", t0 + Duration::from_secs(9)),
        Some(Value::Int(1))
    );
    // Setting again restarts the item's life.
    t.set(b"k", Value::Int(2), t0 + Duration::from_secs(9));
    assert_eq!(
        t.get(b"k", t0 + Duration::from_secs(18)),
        Some(Value::Int(2))
    );
    assert_eq!(t.get(b"k", t0 + Duration::from_secs(19)), None);
    assert!(t.is_empty());
    t.set(b"a", Value::Int(1), t0);
    t.set(b"b", Value::Int(2), t0);
    assert_eq!(t.expire(t0 + Duration::from_secs(11)), 2);
    t.set(b"a", Value::Int(1), t0);
    assert_eq!(t.remove_if(|k, _| k == b"a"), 1);
    assert!(!t.remove(b"a"));
}

#[test]
fn initval_answers_for_missing_items() {
    let t = Htable::new(HtableDef::parse("t=>initval=0").unwrap());
    assert_eq!(t.get(b"nope", Instant::now()), Some(Value::Int(0)));
}

#[test]
fn many_threads_write_one_table() {
    let program = ringsip::script::ir::Program {
        htables: vec![HtableDef::parse("t=>size=4").unwrap()],
        shv_init: vec![Value::Int(0)],
        ..Default::default()
    };
    let state = Arc::new(SharedState::for_program(&program));
    let now = Instant::now();
    std::thread::scope(|sc| {
        for n in 0..4u8 {
            let s = state.clone();
            sc.spawn(move || {
                let t = s.htable(0).unwrap();
                for i in 0..500u32 {
                    let key = format!("{n}-{i}");
                    t.set(key.as_bytes(), Value::Int(i64::from(i)), now);
                }
                s.set_shv(0, Value::Int(i64::from(n)));
            });
        }
    });
    let t = state.htable(0).unwrap();
    assert_eq!(t.len(), 2000);
    assert_eq!(t.get(b"3-499", now), Some(Value::Int(499)));
    assert!(matches!(state.shv(0), Some(Value::Int(0..=3))));
    assert!(state.htable_named("t").is_some());
}

#[test]
fn add_counts_atomically_from_initval() {
    let t0 = Instant::now();
    let t = Htable::new(HtableDef::parse("t=>initval=10;autoexpire=5").unwrap());
    assert_eq!(t.add(b"k", 1, t0), Some(11));
    assert_eq!(t.add(b"k", -3, t0), Some(8));
    // An expired item starts again from initval.
    assert_eq!(t.add(b"k", 1, t0 + Duration::from_secs(6)), Some(11));
    t.set(b"s", Value::owned(b"text".to_vec()), t0);
    assert_eq!(t.add(b"s", 1, t0), None);
    // Without an integer initval a missing item is not made (Kamailio reads $null).
    let plain = Htable::new(HtableDef::parse("p=>size=1").unwrap());
    assert_eq!(plain.add(b"n", -1, t0), None);
    assert_eq!(plain.get(b"n", t0), None);
    plain.set(b"n", Value::Int(4), t0);
    assert_eq!(plain.add(b"n", -1, t0), Some(3));
}

#[test]
fn expiry_is_read_and_set_per_item() {
    let t0 = Instant::now();
    let t = Htable::new(HtableDef::parse("t=>autoexpire=60").unwrap());
    assert_eq!(t.expires_in(b"k", t0), 0);
    t.set(b"k", Value::Int(1), t0);
    assert_eq!(t.expires_in(b"k", t0 + Duration::from_millis(500)), 60);
    assert!(t.set_expire(b"k", 5, t0));
    assert_eq!(t.expires_in(b"k", t0), 5);
    assert_eq!(t.get(b"k", t0 + Duration::from_secs(6)), None);
    assert!(!t.set_expire(b"gone", 5, t0));
    t.set(b"x", Value::Int(1), t0);
    assert!(t.set_expire(b"x", 0, t0));
    assert_eq!(
        t.get(b"x", t0 + Duration::from_secs(999)),
        Some(Value::Int(1))
    );
    assert_eq!(t.expires_in(b"x", t0 + Duration::from_secs(999)), 0);
}

fn lock_state() -> Arc<SharedState> {
    let program = ringsip::script::ir::Program {
        htables: vec![
            HtableDef::parse("t=>size=4").unwrap(),
            HtableDef::parse("u=>size=1").unwrap(),
        ],
        ..Default::default()
    };
    Arc::new(SharedState::for_program(&program))
}

#[test]
fn sht_lock_makes_read_modify_write_exclusive_across_threads() {
    let state = lock_state();
    let now = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..4 {
            let s = state.clone();
            sc.spawn(move || {
                for _ in 0..300 {
                    let mut held = HeldLocks::default();
                    assert!(held.lock(&s, 0, b"counter"));
                    let t = s.htable(0).unwrap();
                    let n = t.get(b"counter", now).map_or(0, |v| v.to_int());
                    // Widen the window a lost update would need.
                    std::thread::yield_now();
                    t.set(b"counter", Value::Int(n + 1), now);
                    assert!(held.unlock(&s, 0, b"counter"));
                }
            });
        }
    });
    let t = state.htable(0).unwrap();
    assert_eq!(t.get(b"counter", now), Some(Value::Int(1200)));
}

#[test]
fn sht_lock_is_reentrant_released_on_drop_and_never_holds_and_waits() {
    let state = lock_state();
    let mut a = HeldLocks::default();
    assert!(a.lock(&state, 0, b"k"));
    assert!(a.lock(&state, 0, b"k"), "the same message may lock again");
    assert_eq!(a.len(), 2);
    assert!(!a.unlock(&state, 1, b"k"), "not held in table u");
    assert!(!a.lock(&state, 9, b"k"), "no such table");
    // Another message holding a lock does not wait for a busy one: it fails.
    let mut b = HeldLocks::default();
    assert!(b.lock(&state, 1, b"x"));
    assert!(!b.lock(&state, 0, b"k"));
    // u has 2 slots; a takes a lock there too, while b holds one of them.
    let other = (0..50u8)
        .map(|i| vec![b'y', i])
        .find(|k| {
            let mut c = HeldLocks::default();
            c.lock(&state, 1, k)
        })
        .expect("a key in u's other slot");
    assert!(a.lock(&state, 1, &other));
    drop(b);
    // b's locks were let go when it was dropped; a still holds k twice.
    let waiter = {
        let s = state.clone();
        std::thread::spawn(move || {
            let mut c = HeldLocks::default();
            c.lock(&s, 0, b"k")
        })
    };
    assert!(a.unlock(&state, 0, b"k"));
    drop(a);
    assert!(
        waiter.join().unwrap(),
        "the waiter gets the lock once a is done"
    );
}

#[test]
fn updateexpire_zero_keeps_the_first_deadline() {
    let t0 = Instant::now();
    let t = Htable::new(HtableDef::parse("t=>autoexpire=10;updateexpire=0").unwrap());
    t.set(b"k", Value::Int(1), t0);
    t.set(b"k", Value::Int(2), t0 + Duration::from_secs(8));
    assert_eq!(
        t.get(b"k", t0 + Duration::from_secs(9)),
        Some(Value::Int(2))
    );
    assert_eq!(t.get(b"k", t0 + Duration::from_secs(10)), None);
    // Once expired, a set starts a new life.
    t.set(b"k", Value::Int(3), t0 + Duration::from_secs(11));
    assert_eq!(
        t.get(b"k", t0 + Duration::from_secs(20)),
        Some(Value::Int(3))
    );
}
