//! # parapet-audit
//!
//! Parapet's tamper-evident audit log: one [`AuditRecord`] per gateway request (ids, route,
//! model, upstream, decision, finding kinds and counts, latencies, status — never the
//! sensitive text), chained by SHA-256 and stored through an [`AuditSink`] (SQLite first).
//!
//! **Chain.** Record `n` is stored as its canonical form `c_n`: compact JSON of
//! `{"seq": n, "prev": h_{n-1}, "record": {…}}` with fields in declaration order and maps
//! sorted, and `h_n = SHA-256(h_{n-1} ‖ c_n)` in lower-case hex (`h_0` is 64 zeros). [`verify`]
//! recomputes every hash and checks sequence numbers and back-links, so a changed, deleted,
//! inserted or reordered record is reported with the first bad sequence number. Like any
//! unkeyed chain it cannot detect a rewrite of the whole chain or the removal of the newest
//! records on its own: signed [`checkpoint`]s (Ed25519 over a record's sequence number and
//! hash) close that gap; [`verify_checkpoints`] reports a truncated tail or a rewritten chain.
//!
//! **Writer.** [`AuditWriter`] appends off the request path: a single thread owns the sink
//! and writes batches (up to 256 records per transaction). [`AuditWriter::close`] flushes
//! everything queued, so a clean shutdown loses nothing. SQLite runs in WAL mode with
//! `synchronous = NORMAL`: a process crash loses nothing committed; a power loss can lose the
//! last committed transactions; records still queued (at most the queue, 65 536) are lost on
//! a crash.
//!
//! ```
//! use parapet_audit::{AuditRecord, AuditSink, SqliteSink, verify};
//!
//! let dir = std::env::temp_dir().join(format!("parapet-audit-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("audit.db");
//! let mut sink = SqliteSink::open(&path).unwrap();
//! let rec = AuditRecord { request_id: "req-1".into(), status: 200, ..AuditRecord::default() };
//! sink.append(&[rec.clone(), rec]).unwrap();
//! let report = verify(&sink).unwrap();
//! assert_eq!(report.records, 2);
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

pub mod checkpoint;

pub use checkpoint::{
    checkpoint, verify_checkpoints, Checkpoint, CheckpointReport, CheckpointSigner,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// One request's audit record. No prompt or answer text, only kinds, counts and locations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Gateway request id (`x-request-id`).
    pub request_id: String,
    /// Time the request arrived, Unix milliseconds.
    pub time_ms: u64,
    /// Id of the gateway key used (`anonymous`, or empty when authentication failed).
    pub key_id: String,
    /// HTTP method and path, e.g. `POST /v1/chat/completions`.
    pub route: String,
    /// Model name the client asked for.
    pub model: String,
    /// Upstream name (empty when the request never reached one).
    pub upstream: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Status returned to the client.
    pub status: u16,
    /// Upstream HTTP status (0 when none).
    pub upstream_status: u16,
    /// Strictest enforced verdict (`allow`, `flag`, `redact`, `block`).
    pub verdict: String,
    /// Strictest verdict before shadow mode.
    pub decided: String,
    /// Number of findings per kind (input and output together).
    pub findings: BTreeMap<String, u64>,
    /// Where a block came from (`messages[2] (tool)`, `choices[0]`).
    pub blocked_at: Option<String>,
    /// How the request ended: `ok`, `blocked_input`, `blocked_output`, `client_error`,
    /// `upstream_error`, `stream_stopped`, `client_disconnected`.
    pub outcome: String,
    /// Error code returned, if any (`invalid_api_key`, `output_blocked`, …).
    pub error_code: Option<String>,
    /// Total time in the gateway, microseconds (integers keep the canonical form exact).
    pub total_us: u64,
    /// Time waiting for the upstream, microseconds.
    pub upstream_us: u64,
    /// Gateway overhead (`total - upstream`), microseconds.
    pub overhead_us: u64,
    /// Token usage reported by the upstream (`prompt_tokens`, `completion_tokens`, …).
    pub usage: BTreeMap<String, u64>,
}

/// A record as stored: its sequence number, back-link and hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Hash of the previous record (64 zeros for the first).
    pub prev: String,
    /// This record's hash.
    pub hash: String,
    /// The record.
    pub record: AuditRecord,
}

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    prev: &'a str,
    record: &'a AuditRecord,
}

/// The canonical form of record `seq` linked to `prev` (see the crate doc).
///
/// # Errors
/// Serialization errors (none in practice: the record has no floats or non-string keys).
pub fn canonical(seq: u64, prev: &str, record: &AuditRecord) -> Result<String, AuditError> {
    serde_json::to_string(&Canonical { seq, prev, record })
        .map_err(|e| AuditError::Encode(e.to_string()))
}

/// `SHA-256(prev ‖ canonical)` in lower-case hex.
pub fn chain_hash(prev: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Audit errors.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database failed.
    #[error("audit database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A record could not be encoded or decoded.
    #[error("audit record encoding: {0}")]
    Encode(String),
    /// A signing or verifying key could not be used (names the file).
    #[error("audit key: {0}")]
    Key(String),
    /// A checkpoint does not match the log (truncated, rewritten) or its signature fails.
    #[error("audit checkpoint at record {seq}: {reason}")]
    Checkpoint {
        /// The checkpoint's sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The chain is broken at `seq` (the first bad record).
    #[error("audit chain broken at record {seq}: {reason}")]
    Broken {
        /// First bad sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Where audit records go (SQLite now; PostgreSQL for several replicas later).
pub trait AuditSink: Send {
    /// Appends records in order, chaining each to the current head, atomically.
    ///
    /// # Errors
    /// [`AuditError`] when the batch could not be stored (nothing of it is).
    fn append(&mut self, batch: &[AuditRecord]) -> Result<(), AuditError>;
    /// The newest record's sequence number and hash (`None` when empty).
    ///
    /// # Errors
    /// [`AuditError::Db`].
    fn head(&self) -> Result<Option<(u64, String)>, AuditError>;
    /// Up to `limit` stored rows with `seq >= from`, in sequence order, as
    /// `(seq column, canonical text, hash column)`.
    ///
    /// # Errors
    /// [`AuditError::Db`].
    fn read_raw(&self, from: u64, limit: usize) -> Result<Vec<(u64, String, String)>, AuditError>;
    /// Stores a signed checkpoint.
    ///
    /// # Errors
    /// [`AuditError`]; the default implementation stores nothing and says so.
    fn write_checkpoint(&mut self, _cp: &Checkpoint) -> Result<(), AuditError> {
        Err(AuditError::Encode(
            "this audit sink cannot store checkpoints".into(),
        ))
    }
    /// Every stored checkpoint, oldest first (none by default).
    ///
    /// # Errors
    /// [`AuditError::Db`].
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        Ok(Vec::new())
    }
}

/// The SQLite sink: table `audit_log(seq INTEGER PRIMARY KEY, time_ms, canonical, hash)`, WAL.
pub struct SqliteSink {
    conn: rusqlite::Connection,
    head: Option<(u64, String)>,
}

impl std::fmt::Debug for SqliteSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSink")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl SqliteSink {
    /// Opens (creating if needed) the audit database at `path`.
    ///
    /// # Errors
    /// [`AuditError::Db`] when the file cannot be opened or is not an audit database.
    pub fn open(path: &Path) -> Result<SqliteSink, AuditError> {
        let conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS audit_log (
                seq INTEGER PRIMARY KEY,
                time_ms INTEGER NOT NULL,
                canonical TEXT NOT NULL,
                hash TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS audit_checkpoint (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                seq INTEGER NOT NULL,
                hash TEXT NOT NULL,
                time_ms INTEGER NOT NULL,
                key_id TEXT NOT NULL,
                signature TEXT NOT NULL
            );",
        )?;
        let mut s = SqliteSink { conn, head: None };
        s.head = s.load_head()?;
        Ok(s)
    }

    fn load_head(&self) -> Result<Option<(u64, String)>, AuditError> {
        let mut st = self
            .conn
            .prepare("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?;
        let mut rows = st.query([])?;
        match rows.next()? {
            Some(r) => Ok(Some((r.get::<_, i64>(0)?.max(0) as u64, r.get(1)?))),
            None => Ok(None),
        }
    }

    /// Direct access for tests and tools (e.g. to demonstrate tampering).
    pub fn connection(&self) -> &rusqlite::Connection {
        &self.conn
    }
}

impl AuditSink for SqliteSink {
    fn append(&mut self, batch: &[AuditRecord]) -> Result<(), AuditError> {
        let (mut seq, mut prev) = self.head.clone().unwrap_or((0, GENESIS.to_string()));
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO audit_log (seq, time_ms, canonical, hash) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in batch {
                seq += 1;
                let c = canonical(seq, &prev, r)?;
                let h = chain_hash(&prev, &c);
                st.execute(rusqlite::params![seq as i64, r.time_ms as i64, c, h])?;
                prev = h;
            }
        }
        tx.commit()?;
        if !batch.is_empty() {
            self.head = Some((seq, prev));
        }
        Ok(())
    }

    fn head(&self) -> Result<Option<(u64, String)>, AuditError> {
        Ok(self.head.clone())
    }

    fn read_raw(&self, from: u64, limit: usize) -> Result<Vec<(u64, String, String)>, AuditError> {
        let mut st = self.conn.prepare(
            "SELECT seq, canonical, hash FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = st.query_map(rusqlite::params![from as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn write_checkpoint(&mut self, cp: &Checkpoint) -> Result<(), AuditError> {
        self.conn.execute(
            "INSERT INTO audit_checkpoint (seq, hash, time_ms, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![cp.seq as i64, cp.hash, cp.time_ms as i64, cp.key_id, cp.signature],
        )?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        let mut st = self.conn.prepare(
            "SELECT seq, hash, time_ms, key_id, signature FROM audit_checkpoint ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Checkpoint {
                seq: r.get::<_, i64>(0)?.max(0) as u64,
                hash: r.get(1)?,
                time_ms: r.get::<_, i64>(2)?.max(0) as u64,
                key_id: r.get(3)?,
                signature: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// What [`verify`] found on an intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of records.
    pub records: u64,
    /// Hash of the newest record (record it elsewhere to detect truncation or rewrites).
    pub head: String,
}

#[derive(Deserialize)]
struct CanonicalOwned {
    seq: u64,
    prev: String,
    record: AuditRecord,
}

/// Walks the whole chain: every record's canonical form must parse, carry the expected
/// sequence number (1, 2, 3…), link to the previous hash and hash to the stored value.
///
/// # Errors
/// [`AuditError::Broken`] naming the first bad record; [`AuditError::Db`].
pub fn verify(sink: &dyn AuditSink) -> Result<VerifyReport, AuditError> {
    let mut expected = 1u64;
    let mut prev = GENESIS.to_string();
    loop {
        let rows = sink.read_raw(expected, 1024)?;
        if rows.is_empty() {
            break;
        }
        for (seq, c, hash) in rows {
            let bad = |reason: String| AuditError::Broken {
                seq: expected,
                reason,
            };
            if seq != expected {
                return Err(bad(format!(
                    "record {expected} is missing (next stored is {seq})"
                )));
            }
            let parsed: CanonicalOwned =
                serde_json::from_str(&c).map_err(|e| bad(format!("record is not valid: {e}")))?;
            if parsed.seq != seq {
                return Err(bad(format!("record claims sequence number {}", parsed.seq)));
            }
            if parsed.prev != prev {
                return Err(bad(
                    "back-link does not match the previous record's hash".into()
                ));
            }
            if chain_hash(&prev, &c) != hash {
                return Err(bad("hash does not match the record (edited)".into()));
            }
            prev = hash;
            expected += 1;
        }
    }
    if let Some((seq, _)) = sink.head()? {
        if seq >= expected {
            return Err(AuditError::Broken {
                seq: expected,
                reason: format!("record {expected} is missing (newest is {seq})"),
            });
        }
    }
    Ok(VerifyReport {
        records: expected - 1,
        head: prev,
    })
}

/// Writes every record with `seq >= since` as one JSON line ([`StoredRecord`]).
///
/// # Errors
/// [`AuditError`] for database, decoding or write failures.
pub fn export(
    sink: &dyn AuditSink,
    since: u64,
    out: &mut dyn std::io::Write,
) -> Result<u64, AuditError> {
    let mut from = since.max(1);
    let mut n = 0;
    loop {
        let rows = sink.read_raw(from, 1024)?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        for (_, c, hash) in rows {
            let p: CanonicalOwned =
                serde_json::from_str(&c).map_err(|e| AuditError::Encode(e.to_string()))?;
            let line = serde_json::to_string(&StoredRecord {
                seq: p.seq,
                prev: p.prev,
                hash,
                record: p.record,
            })
            .map_err(|e| AuditError::Encode(e.to_string()))?;
            writeln!(out, "{line}").map_err(|e| AuditError::Encode(e.to_string()))?;
            n += 1;
        }
        from = last + 1;
    }
    Ok(n)
}

/// Capacity of the writer's queue.
pub const QUEUE_CAPACITY: usize = 65_536;

/// A single writer thread that owns the sink and appends in batches (see the crate doc).
#[derive(Debug)]
pub struct AuditWriter {
    tx: Mutex<Option<SyncSender<AuditRecord>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    depth: Arc<AtomicUsize>,
    dropped: AtomicU64,
    failed: Arc<AtomicU64>,
}

impl AuditWriter {
    /// Starts the writer thread over `sink`.
    pub fn spawn(sink: Box<dyn AuditSink>) -> AuditWriter {
        AuditWriter::spawn_with(sink, None)
    }

    /// Starts the writer thread over `sink`; with `checkpoints = Some((signer, every))` it
    /// signs a checkpoint whenever the head passes a multiple of `every` records, and once
    /// more at [`AuditWriter::close`] when records were added since the last one.
    pub fn spawn_with(
        mut sink: Box<dyn AuditSink>,
        checkpoints: Option<(CheckpointSigner, u64)>,
    ) -> AuditWriter {
        let (tx, rx): (SyncSender<AuditRecord>, Receiver<AuditRecord>) =
            sync_channel(QUEUE_CAPACITY);
        let depth = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (d, f) = (Arc::clone(&depth), Arc::clone(&failed));
        let thread = std::thread::Builder::new()
            .name("parapet-audit".into())
            .spawn(move || {
                let signed_at = |s: &dyn AuditSink| {
                    s.checkpoints()
                        .ok()
                        .and_then(|c| c.iter().map(|c| c.seq).max())
                        .unwrap_or(0)
                };
                let mut last_cp = signed_at(sink.as_ref());
                let sign = |sink: &mut Box<dyn AuditSink>, last_cp: &mut u64, force: bool| {
                    let Some((signer, every)) = &checkpoints else {
                        return;
                    };
                    let head = sink.head().ok().flatten().map_or(0, |h| h.0);
                    let due = head / (*every).max(1) > *last_cp / (*every).max(1);
                    if head > *last_cp && (due || force) {
                        if let Ok(Some(cp)) = checkpoint(sink.as_mut(), signer) {
                            *last_cp = cp.seq;
                        }
                    }
                };
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < 256 {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    d.fetch_sub(batch.len(), Ordering::Relaxed);
                    if sink.append(&batch).is_err() {
                        f.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    sign(&mut sink, &mut last_cp, false);
                }
                sign(&mut sink, &mut last_cp, true);
            })
            .ok();
        AuditWriter {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
            depth,
            dropped: AtomicU64::new(0),
            failed,
        }
    }

    /// Queues a record without blocking; a full queue drops it and counts it in
    /// [`AuditWriter::dropped`].
    pub fn record(&self, r: AuditRecord) {
        let guard = match self.tx.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let queued = match guard.as_ref() {
            Some(tx) => tx.try_send(r).is_ok(),
            None => false,
        };
        if queued {
            self.depth.fetch_add(1, Ordering::Relaxed);
        } else {
            // queue full or writer closed
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Records dropped because the queue was full or closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records the sink failed to store.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Stops accepting records, writes everything queued and waits for the thread.
    pub fn close(&self) {
        let tx = match self.tx.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        drop(tx);
        let t = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests;
