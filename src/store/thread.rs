//! The store thread (DESIGN.md "Thread-per-core": database writes leave the
//! hot path through a queue to a store thread). One thread per database URL
//! owns the connection and runs, in order, the jobs the workers queue and the
//! periodic tasks modules registered (cache refresh).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use super::{open, Result, Store, StoreError};

/// Work for the store thread.
pub type Job = Box<dyn FnOnce(&mut dyn Store) + Send>;

/// Work the store thread repeats every period.
pub type Task = Box<dyn FnMut(&mut dyn Store) + Send>;

enum Msg {
    Job(Job),
    Every(Duration, Task),
    Stop,
}

/// Counters of one store thread.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Jobs run.
    pub done: AtomicU64,
    /// Writes dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Calls that got no answer in time.
    pub timeouts: AtomicU64,
}

/// How modules reach a store thread; cheap to clone, shared by every core.
#[derive(Clone)]
pub struct StoreHandle {
    tx: Sender<Msg>,
    stats: Arc<StoreStats>,
    url: Arc<str>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreHandle({})", self.url)
    }
}

impl StoreHandle {
    /// Queues `job` without waiting; `false` (and the job dropped, counted) when the queue is full
    /// or the thread is gone.
    pub fn submit(&self, job: impl FnOnce(&mut dyn Store) + Send + 'static) -> bool {
        match self.tx.try_send(Msg::Job(Box::new(job))) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Runs `f` on the store thread and waits at most `timeout` for its result
    /// (start-up loads, and the lookups of usrloc `db_mode` 3).
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> R + Send + 'static,
        timeout: Duration,
    ) -> Option<R> {
        let (tx, rx) = bounded(1);
        let job: Job = Box::new(move |s: &mut dyn Store| {
            let _ = tx.send(f(s));
        });
        if self.tx.send_timeout(Msg::Job(job), timeout).is_err() {
            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match rx.recv_timeout(timeout) {
            Ok(r) => Some(r),
            Err(_) => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Runs `task` on the store thread every `period` (first after one period).
    pub fn every(&self, period: Duration, task: impl FnMut(&mut dyn Store) + Send + 'static) {
        let _ = self.tx.send(Msg::Every(period, Box::new(task)));
    }

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A running store thread; [`StoreThread::finish`] runs what is queued and stops it.
pub struct StoreThread {
    handle: StoreHandle,
    join: Option<JoinHandle<()>>,
}

impl StoreThread {
    /// Starts a thread that owns `store`, with a queue of `capacity` jobs.
    pub fn spawn(store: Box<dyn Store>, capacity: usize, url: &str) -> Result<StoreThread> {
        let (tx, rx) = bounded(capacity.max(1));
        let join = std::thread::Builder::new()
            .name("ringsip-store".into())
            .spawn(move || run(store, rx))
            .map_err(|e| StoreError(format!("cannot start the store thread: {e}")))?;
        Ok(StoreThread {
            handle: StoreHandle {
                tx,
                stats: Arc::new(StoreStats::default()),
                url: url.into(),
            },
            join: Some(join),
        })
    }

    pub fn handle(&self) -> StoreHandle {
        self.handle.clone()
    }

    /// Runs the jobs already queued, then stops the thread and waits for it.
    pub fn finish(mut self) {
        let _ = self.handle.tx.send(Msg::Stop);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn run(mut store: Box<dyn Store>, rx: Receiver<Msg>) {
    let mut tasks: Vec<(Instant, Duration, Task)> = Vec::new();
    loop {
        let wait = tasks
            .iter()
            .map(|(due, _, _)| due.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(wait) {
            Ok(Msg::Job(job)) => job(store.as_mut()),
            Ok(Msg::Every(period, task)) => tasks.push((Instant::now() + period, period, task)),
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        for (due, period, task) in &mut tasks {
            if *due <= now {
                task(store.as_mut());
                *due = now + *period;
            }
        }
    }
}

/// The store threads of a process, one per database URL, opened on first use.
#[derive(Default)]
pub struct Stores {
    threads: HashMap<String, StoreThread>,
}

/// Jobs a store thread queues before writes are dropped.
const QUEUE: usize = 16_384;

impl Stores {
    /// The handle for `url`, opening the database and starting its thread the first time.
    pub fn handle(&mut self, url: &str) -> Result<StoreHandle> {
        if let Some(t) = self.threads.get(url) {
            return Ok(t.handle());
        }
        let thread = StoreThread::spawn(open(url)?, QUEUE, url)?;
        let handle = thread.handle();
        self.threads.insert(url.to_string(), thread);
        Ok(handle)
    }

    /// Finishes every thread (after the last writes were queued).
    pub fn finish(self) {
        for (_, t) in self.threads {
            t.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Sqlite, SubscriberRow};

    #[test]
    fn jobs_run_in_order_and_calls_answer() {
        let t = StoreThread::spawn(Box::new(Sqlite::memory().unwrap()), 8, "mem").unwrap();
        let h = t.handle();
        assert!(h.submit(|s| {
            s.subscriber_put(&SubscriberRow {
                username: "a".into(),
                domain: "d".into(),
                ..SubscriberRow::default()
            })
            .unwrap();
        }));
        let n = h.call(
            |s| s.subscribers(&Default::default()).map(|v| v.len()),
            Duration::from_secs(5),
        );
        assert_eq!(n, Some(Ok(1)));
        t.finish();
        assert!(!h.submit(|_| {}), "a stopped thread takes no work");
        assert_eq!(h.stats().dropped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn periodic_tasks_run() {
        let t = StoreThread::spawn(Box::new(Sqlite::memory().unwrap()), 8, "mem").unwrap();
        let h = t.handle();
        let (tx, rx) = bounded(4);
        h.every(Duration::from_millis(10), move |_| {
            let _ = tx.try_send(());
        });
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());
        t.finish();
    }
}
