//! Choosing the IO driver of a worker's compio runtime.
//!
//! compio 0.19 (compio-driver 0.12) built with both `io-uring` and `polling`
//! compiles its "fusion" driver: `ProactorBuilder::driver_type` forces
//! `DriverType::IoUring` or `DriverType::Poll`; left unset, it probes the
//! io_uring opcodes and falls back to the poll driver by itself when creating
//! the ring fails (with a `compio-log` warning we would not see). We set the
//! type explicitly and run the fallback ourselves, so that `IoMode::Uring`
//! fails instead of falling back, and the choice is logged through `log`:
//!
//! 1. io_uring with `SINGLE_ISSUER | DEFER_TASKRUN` (DESIGN.md "IO runtime":
//!    one kernel entry per wake-up; Linux 6.1+),
//! 2. plain io_uring, if the kernel refuses those flags,
//! 3. the poll driver (`IoMode::Auto` only) if io_uring is refused at all
//!    (seccomp, `kernel.io_uring_disabled`, a kernel before 6.0, where
//!    multishot `recvmsg` does not exist), or its provided-buffer ring cannot
//!    be registered.

use std::io;
use std::num::NonZeroU16;

use compio::driver::{DriverType, ProactorBuilder};
use compio::runtime::Runtime;

use super::config::{IoDriver, IoMode};

/// Shape of the receive buffer pool of one worker.
#[derive(Clone, Copy, Debug)]
pub(super) struct PoolShape {
    pub buffers: NonZeroU16,
    pub buffer_len: usize,
}

/// Builds the compio runtime for `mode`; tells which driver it runs.
pub(super) fn build_runtime(mode: IoMode, pool: PoolShape) -> io::Result<(Runtime, IoDriver)> {
    match mode {
        IoMode::Poll => Ok((build(DriverType::Poll, false, pool)?, IoDriver::Poll)),
        IoMode::Uring => build_uring(pool)
            .map(|rt| (rt, IoDriver::IoUring))
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("io_uring unavailable (io mode uring): {e}"),
                )
            }),
        IoMode::Auto => match build_uring(pool) {
            Ok(rt) => Ok((rt, IoDriver::IoUring)),
            Err(e) => {
                log::info!("io_uring unavailable ({e}); falling back to the poll driver");
                Ok((build(DriverType::Poll, false, pool)?, IoDriver::Poll))
            }
        },
    }
}

fn build_uring(pool: PoolShape) -> io::Result<Runtime> {
    if let Some((major, minor)) = kernel_version() {
        if major < 6 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("kernel {major}.{minor} has no multishot recvmsg (needs 6.0)"),
            ));
        }
    }
    let rt = match build(DriverType::IoUring, true, pool) {
        Ok(rt) => {
            log::debug!("io_uring ring set up with SINGLE_ISSUER|DEFER_TASKRUN");
            rt
        }
        Err(e) => {
            log::debug!("io_uring with SINGLE_ISSUER|DEFER_TASKRUN refused ({e}); trying without");
            build(DriverType::IoUring, false, pool)?
        }
    };
    if rt.driver_type() != DriverType::IoUring {
        return Err(io::Error::other("compio did not start an io_uring driver"));
    }
    // The provided-buffer ring is registered lazily; do it now so a refusal
    // is a start-up error (or a fallback), not a dead socket later.
    rt.buffer_pool()?;
    Ok(rt)
}

fn build(driver: DriverType, tuned: bool, pool: PoolShape) -> io::Result<Runtime> {
    let mut proactor = ProactorBuilder::new();
    proactor
        .driver_type(driver)
        .buffer_pool_size(pool.buffers)
        .buffer_pool_buffer_len(pool.buffer_len);
    if tuned {
        proactor.single_issuer(true).defer_taskrun(true);
    }
    Runtime::builder().with_proactor(proactor).build()
}

/// `(major, minor)` of the running kernel, if it can be read.
fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_kernel_version(&release)
}

fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: PoolShape = PoolShape {
        buffers: NonZeroU16::new(4).unwrap(),
        buffer_len: 2048,
    };

    #[test]
    fn parses_kernel_releases() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v669\n"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5.4.0-150-generic"), Some((5, 4)));
        assert_eq!(parse_kernel_version("6.1-rc2"), Some((6, 1)));
        assert_eq!(parse_kernel_version("garbage"), None);
    }

    #[test]
    fn poll_mode_runs_the_poll_driver() {
        let (rt, driver) = build_runtime(IoMode::Poll, POOL).unwrap();
        assert_eq!(driver, IoDriver::Poll);
        assert_eq!(rt.driver_type(), DriverType::Poll);
    }

    #[test]
    fn uring_mode_runs_io_uring_here() {
        // This machine supports io_uring: failing here is a finding, not a skip.
        let (rt, driver) = build_runtime(IoMode::Uring, POOL).unwrap();
        assert_eq!(driver, IoDriver::IoUring);
        assert_eq!(rt.driver_type(), DriverType::IoUring);
    }
}
