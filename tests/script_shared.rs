//! `$shv` and hash tables are shared by every core: one `SharedState`, many
//! threads. (Here rather than beside the code because the sans-IO layer may
//! not name threads or read the clock, not even in its unit tests.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringsip::script::shared::{Htable, HtableDef, SharedState};
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
