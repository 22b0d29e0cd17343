//! [`SemanticPool`]: dedicated inference threads with a bounded queue.
//!
//! Inference takes tens of milliseconds of CPU per text, so it must not run on an async
//! executor's threads. The pool owns `threads` OS threads that take jobs from a bounded queue;
//! [`SemanticPool::try_submit`] never blocks (it fails with [`SemanticError::QueueFull`] when
//! the queue is full, which is the caller's back-pressure signal) and delivers the result
//! through a callback, so an async caller can complete a oneshot channel from it:
//!
//! ```ignore
//! let (tx, rx) = tokio::sync::oneshot::channel();
//! pool.try_submit(vec![text], move |r| { let _ = tx.send(r); })?;
//! let scores = rx.await??;
//! ```
//!
//! For throughput, run each request single-threaded and let the pool parallelise across
//! requests (see [`crate::limit_intra_op_threads`]).

use crate::error::SemanticError;
use crate::model::SemanticModel;
use parapet_detect::TierScores;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The result a job delivers.
pub type PoolResult = Result<Vec<TierScores>, SemanticError>;

type Reply = Box<dyn FnOnce(PoolResult) + Send + 'static>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// A fixed set of inference threads sharing one [`SemanticModel`], fed by a bounded queue.
/// Dropping the pool lets queued jobs finish, then joins the threads.
pub struct SemanticPool {
    model: Arc<SemanticModel>,
    tx: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    queued: Arc<AtomicUsize>,
}

impl std::fmt::Debug for SemanticPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticPool")
            .field("threads", &self.workers.len())
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn worker(model: Arc<SemanticModel>, rx: Arc<Mutex<Receiver<Job>>>, queued: Arc<AtomicUsize>) {
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        queued.fetch_sub(1, Ordering::Relaxed);
        let refs: Vec<&str> = job.texts.iter().map(String::as_str).collect();
        let result = model.score_batch(&refs);
        (job.reply)(result);
    }
}

impl SemanticPool {
    /// Starts `threads` workers (at least 1) with a queue of `queue` jobs (at least 1).
    ///
    /// # Errors
    /// [`SemanticError::Io`] if the OS refuses to start a thread.
    pub fn new(
        model: Arc<SemanticModel>,
        threads: usize,
        queue: usize,
    ) -> Result<SemanticPool, SemanticError> {
        let (tx, rx) = sync_channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let queued = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let (m, r, q) = (model.clone(), rx.clone(), queued.clone());
            let h = std::thread::Builder::new()
                .name(format!("parapet-semantic-{i}"))
                .spawn(move || worker(m, r, q))
                .map_err(|source| SemanticError::Io {
                    path: "<thread>".into(),
                    source,
                })?;
            workers.push(h);
        }
        Ok(SemanticPool {
            model,
            tx: Some(tx),
            workers,
            queued,
        })
    }

    /// The shared model.
    pub fn model(&self) -> &Arc<SemanticModel> {
        &self.model
    }

    /// Jobs waiting in the queue (not yet taken by a worker).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Queues `texts` for scoring; `reply` is called on a worker thread with one
    /// [`TierScores`] per text (or the error). Never blocks.
    ///
    /// # Errors
    /// [`SemanticError::QueueFull`] when the queue is full, [`SemanticError::PoolClosed`] when
    /// the workers have stopped; `reply` is then not called.
    pub fn try_submit(
        &self,
        texts: Vec<String>,
        reply: impl FnOnce(PoolResult) + Send + 'static,
    ) -> Result<(), SemanticError> {
        let tx = self.tx.as_ref().ok_or(SemanticError::PoolClosed)?;
        self.queued.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            texts,
            reply: Box::new(reply),
        };
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(match e {
                    TrySendError::Full(_) => SemanticError::QueueFull(self.queued()),
                    TrySendError::Disconnected(_) => SemanticError::PoolClosed,
                })
            }
        }
    }

    /// Scores `texts` on the pool and waits for the result (for callers on ordinary threads,
    /// e.g. inside `spawn_blocking`).
    ///
    /// # Errors
    /// As [`SemanticPool::try_submit`], or the scoring error.
    pub fn score_blocking(&self, texts: Vec<String>) -> PoolResult {
        let (tx, rx) = std::sync::mpsc::channel();
        self.try_submit(texts, move |r| {
            let _ = tx.send(r);
        })?;
        rx.recv().map_err(|_| SemanticError::PoolClosed)?
    }
}

impl Drop for SemanticPool {
    fn drop(&mut self) {
        self.tx = None;
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

impl parapet_detect::ScoreTier for SemanticPool {
    fn id(&self) -> &str {
        "semantic"
    }
    fn score_batch(&self, texts: &[&str]) -> Result<Vec<TierScores>, String> {
        self.score_blocking(texts.iter().map(|s| s.to_string()).collect())
            .map_err(|e| e.to_string())
    }
}
