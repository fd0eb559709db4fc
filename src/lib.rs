//! ringsip: a SIP proxy and registrar that runs Kamailio-style routing
//! configurations on thread-per-core io_uring workers.
//!
//! The layers follow `DESIGN.md`: everything except [`runtime`] is sans-IO
//! (bytes, addresses and `now` in; transmissions and deadlines out).

pub mod ctl;
pub mod intercept;
pub mod modules;
pub mod runtime;
pub mod script;
pub mod sip;
pub mod store;
pub mod tm;

/// Property-test settings shared by every proptest block: `cases` per run,
/// failing seeds kept under `tests/proptest-regressions/` (mirroring `src/`).
#[cfg(test)]
pub(crate) fn proptest_config(cases: u32) -> proptest::prelude::ProptestConfig {
    proptest::prelude::ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::SourceParallel(
                "tests/proptest-regressions",
            ),
        )),
        ..proptest::prelude::ProptestConfig::default()
    }
}
