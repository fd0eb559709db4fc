//! The shell behind the `exec` module ([`Shell`]): `/bin/sh -c COMMAND` as
//! `popen(3)` runs it for Kamailio, with the job's environment added, its
//! stdin fed from the job, its stdout read or discarded, and its stderr
//! left to ringsip's. The calling worker waits for it to finish.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::modules::exec::{Finished, Job, Shell};

/// Runs jobs with the system shell.
pub struct SystemShell;

/// How often a job with a time limit is checked on.
const POLL: Duration = Duration::from_millis(1);

impl Shell for SystemShell {
    fn run(&self, job: &Job) -> io::Result<Finished> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(OsStr::from_bytes(&job.command));
        for (name, value) in &job.env {
            cmd.env(OsStr::from_bytes(name), OsStr::from_bytes(value));
        }
        cmd.stdin(if job.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if job.read_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        // Its own process group, so that a time limit stops what it started too.
        cmd.process_group(0);
        let mut child = cmd.spawn()?;

        // Its stdin is written from a thread of its own, so that a command
        // printing a lot before it reads cannot block both sides.
        let writer = match (child.stdin.take(), job.stdin.clone()) {
            (Some(mut pipe), Some(data)) => Some(thread::spawn(move || {
                // A command that does not read its input is not an error.
                match pipe.write_all(&data) {
                    Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
                    _ => Ok(()),
                }
            })),
            _ => None,
        };
        let reader = child.stdout.take().map(|mut out| {
            thread::spawn(move || {
                let mut buf = Vec::new();
                out.read_to_end(&mut buf).map(|_| buf)
            })
        });

        let exited = wait(&mut child, job.time_limit)?;
        if let Some(w) = writer {
            w.join()
                .map_err(|_| io::Error::other("stdin writer panicked"))??;
        }
        let stdout = match reader {
            Some(r) => r
                .join()
                .map_err(|_| io::Error::other("stdout reader panicked"))??,
            None => Vec::new(),
        };
        Ok(Finished {
            success: exited,
            stdout,
        })
    }
}

/// Waits for `child`; true when it exited with status 0. Past `limit` it and
/// its process group are killed (false).
fn wait(child: &mut Child, limit: Option<Duration>) -> io::Result<bool> {
    let Some(limit) = limit else {
        return Ok(child.wait()?.success());
    };
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.success());
        }
        if Instant::now() >= deadline {
            log::warn!("exec: command still running after {limit:?}: killed");
            if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) takes plain integers; the child is not
                // reaped yet, so its process group id is still its own.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            child.kill()?;
            child.wait()?;
            return Ok(false);
        }
        thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(command: &str) -> Job {
        Job {
            command: command.as_bytes().to_vec(),
            env: Vec::new(),
            stdin: None,
            read_stdout: true,
            time_limit: None,
        }
    }

    #[test]
    fn output_status_environment_and_input() {
        let done = SystemShell.run(&job("echo one; echo two")).unwrap();
        assert_eq!(
            done,
            Finished {
                success: true,
                stdout: b"one\ntwo\n".to_vec()
            }
        );
        assert!(!SystemShell.run(&job("exit 3")).unwrap().success);

        let mut j = job("printf %s \"$SIP_X\"");
        j.env = vec![(b"SIP_X".to_vec(), b"a b".to_vec())];
        assert_eq!(SystemShell.run(&j).unwrap().stdout, b"a b");

        let mut j = job("tr a-z A-Z");
        j.stdin = Some(bytes::Bytes::from_static(b"invite"));
        assert_eq!(SystemShell.run(&j).unwrap().stdout, b"INVITE");
    }

    #[test]
    fn a_command_that_ignores_its_input_still_succeeds() {
        let mut j = job("true");
        j.stdin = Some(bytes::Bytes::from(vec![b'x'; 1 << 20]));
        assert!(SystemShell.run(&j).unwrap().success);
    }

    #[test]
    fn a_command_past_its_time_limit_is_killed() {
        let mut j = job("sleep 5; echo late");
        j.time_limit = Some(Duration::from_millis(100));
        let started = Instant::now();
        let done = SystemShell.run(&j).unwrap();
        assert!(!done.success);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}
