use super::*;

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp(name: &str) -> (TempDir, std::path::PathBuf) {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "parapet-audit-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("audit.db");
    (TempDir(dir), p)
}

fn rec(i: u64) -> AuditRecord {
    AuditRecord {
        request_id: format!("req-{i}"),
        time_ms: 1_700_000_000_000 + i,
        key_id: "team-a".into(),
        route: "POST /v1/chat/completions".into(),
        model: "gpt-4o".into(),
        status: 200,
        verdict: "allow".into(),
        findings: BTreeMap::from([("pii".to_string(), i)]),
        total_us: 1250,
        ..AuditRecord::default()
    }
}

fn filled(n: u64) -> (TempDir, std::path::PathBuf, SqliteSink) {
    let (d, p) = temp("chain");
    let mut s = SqliteSink::open(&p).unwrap();
    let batch: Vec<AuditRecord> = (1..=n).map(rec).collect();
    s.append(&batch[..2]).unwrap();
    s.append(&batch[2..]).unwrap();
    (d, p, s)
}

fn broken_at(s: &SqliteSink) -> u64 {
    match verify(s) {
        Err(AuditError::Broken { seq, .. }) => seq,
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn intact_chain_verifies_and_survives_reopen() {
    let (_d, p, s) = filled(5);
    let r = verify(&s).unwrap();
    assert_eq!(r.records, 5);
    assert_eq!(r.head.len(), 64);
    drop(s);
    let mut s = SqliteSink::open(&p).unwrap();
    s.append(&[rec(6)]).unwrap();
    let r2 = verify(&s).unwrap();
    assert_eq!(r2.records, 6);
    assert_ne!(r2.head, r.head);
}

#[test]
fn changed_record_is_found() {
    let (_d, _p, s) = filled(5);
    let c: String = s
        .connection()
        .query_row("SELECT canonical FROM audit_log WHERE seq = 3", [], |r| {
            r.get(0)
        })
        .unwrap();
    let edited = c.replace("\"status\":200", "\"status\":403");
    assert_ne!(c, edited);
    s.connection()
        .execute(
            "UPDATE audit_log SET canonical = ?1 WHERE seq = 3",
            [edited],
        )
        .unwrap();
    assert_eq!(broken_at(&s), 3);
}

#[test]
fn deleted_record_is_found() {
    let (_d, _p, s) = filled(5);
    s.connection()
        .execute("DELETE FROM audit_log WHERE seq = 2", [])
        .unwrap();
    assert_eq!(broken_at(&s), 2);
}

#[test]
fn inserted_record_is_found() {
    let (_d, _p, s) = filled(3);
    // shift records 3.. up and insert a forged record 3 linked to record 2's hash
    s.connection()
        .execute("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3", [])
        .unwrap();
    let prev: String = s
        .connection()
        .query_row("SELECT hash FROM audit_log WHERE seq = 2", [], |r| r.get(0))
        .unwrap();
    let c = canonical(3, &prev, &rec(99)).unwrap();
    let h = chain_hash(&prev, &c);
    s.connection()
        .execute(
            "INSERT INTO audit_log (seq, time_ms, canonical, hash) VALUES (3, 0, ?1, ?2)",
            [c, h],
        )
        .unwrap();
    s.connection()
        .execute("UPDATE audit_log SET seq = 4 WHERE seq = 103", [])
        .unwrap();
    assert_eq!(broken_at(&s), 4);
}

#[test]
fn reordered_records_are_found() {
    let (_d, _p, s) = filled(4);
    let conn = s.connection();
    conn.execute("UPDATE audit_log SET seq = 100 WHERE seq = 2", [])
        .unwrap();
    conn.execute("UPDATE audit_log SET seq = 2 WHERE seq = 3", [])
        .unwrap();
    conn.execute("UPDATE audit_log SET seq = 3 WHERE seq = 100", [])
        .unwrap();
    assert_eq!(broken_at(&s), 2);
}

#[test]
fn export_writes_jsonl_since() {
    let (_d, _p, s) = filled(4);
    let mut out = Vec::new();
    assert_eq!(export(&s, 3, &mut out).unwrap(), 2);
    let lines: Vec<StoredRecord> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].seq, 3);
    assert_eq!(lines[0].record.request_id, "req-3");
    assert_eq!(lines[1].prev, lines[0].hash);
}

#[test]
fn writer_flushes_everything_on_close() {
    let (_d, p) = temp("writer");
    let w = AuditWriter::spawn(Box::new(SqliteSink::open(&p).unwrap()));
    for i in 1..=1000 {
        w.record(rec(i));
    }
    w.close();
    assert_eq!(w.dropped(), 0);
    assert_eq!(w.failed(), 0);
    w.record(rec(1001)); // after close: counted as dropped, never panics
    assert_eq!(w.dropped(), 1);
    let s = SqliteSink::open(&p).unwrap();
    assert_eq!(verify(&s).unwrap().records, 1000);
}
