//! Process-wide memory settings made once at start-up.

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`).
///
/// mimalloc asks for huge pages on its arenas (`MADV_HUGEPAGE`), so the first
/// touch of each 2 MiB region faults in and zeroes all of it while the proxy
/// uses a few 64 KiB pages of it: measured on the stateful load test (sipp,
/// 500 calls/s, 10,000 calls, one worker) RSS 42.5 MB with huge pages and
/// 24.6 MB without, and the zeroing (`clear_page_erms` under
/// `do_huge_pmd_anonymous_page`) was 4% of the proxy's CPU in a 10 s run.
/// Memory figures per transaction and per contact are only honest without
/// them. Later faults of every region, huge-page advice or not, are 4 KiB.
pub fn no_transparent_huge_pages() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a
    // flag of this process; no memory is passed to the kernel.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn huge_pages_are_off_after_the_call() {
        super::no_transparent_huge_pages().expect("prctl");
        // SAFETY: integer arguments only; reads a flag of this process.
        let rc = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(rc, 1);
    }
}
