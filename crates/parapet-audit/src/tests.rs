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

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[7u8; 32])
}

fn cp_err(s: &SqliteSink, extra: &[Checkpoint]) -> String {
    let r = verify(s).unwrap();
    match verify_checkpoints(s, &r, &signer().verifying_key(), extra) {
        Err(AuditError::Checkpoint { reason, .. }) => reason,
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

#[test]
fn checkpoints_verify_and_report_the_uncovered_tail() {
    let (_d, _p, mut s) = filled(5);
    let cp = checkpoint(&mut s, &signer()).unwrap().unwrap();
    assert_eq!(cp.seq, 5);
    assert_eq!(cp.hash, s.head().unwrap().unwrap().1);
    s.append(&[rec(6), rec(7)]).unwrap();
    let r = verify(&s).unwrap();
    let c = verify_checkpoints(&s, &r, &signer().verifying_key(), &[]).unwrap();
    assert_eq!(
        c,
        CheckpointReport {
            checkpoints: 1,
            last_seq: Some(5),
            uncovered: 2
        }
    );
}

#[test]
fn truncated_tail_behind_a_checkpoint_is_detected() {
    let (_d, _p, mut s) = filled(6);
    checkpoint(&mut s, &signer()).unwrap();
    // the attacker deletes the newest records: the chain alone still verifies
    s.connection()
        .execute("DELETE FROM audit_log WHERE seq >= 4", [])
        .unwrap();
    let s = SqliteSink::open(&_p).unwrap();
    assert_eq!(verify(&s).unwrap().records, 3);
    let e = cp_err(&s, &[]);
    assert!(e.contains("truncated") && e.contains("record 6"), "{e}");
}

#[test]
fn rewritten_chain_and_forged_checkpoints_are_detected() {
    let (_d, p, mut s) = filled(4);
    let cp = checkpoint(&mut s, &signer()).unwrap().unwrap();
    // rebuild the whole chain from changed records: consistent, but not what was signed
    let (_d2, p2, mut other) = {
        let (d, p) = temp("rewrite");
        let s = SqliteSink::open(&p).unwrap();
        (d, p, s)
    };
    let mut changed: Vec<AuditRecord> = (1..=4).map(rec).collect();
    changed[1].status = 500;
    other.append(&changed).unwrap();
    assert!(verify(&other).is_ok());
    let e = cp_err(&other, std::slice::from_ref(&cp));
    assert!(e.contains("differs from the signed checkpoint"), "{e}");
    drop(p2);
    // an edited checkpoint (pointing at an earlier head) fails its signature
    let mut forged = cp.clone();
    forged.seq = 2;
    let e = cp_err(&s, std::slice::from_ref(&forged));
    assert!(e.contains("signature does not verify"), "{e}");
    // a checkpoint signed by another key
    let other_key = CheckpointSigner::from_seed(&[9u8; 32]).sign(4, &cp.hash, 1);
    let e = cp_err(&s, &[other_key]);
    assert!(e.contains("another key"), "{e}");
    drop(p);
}

#[test]
fn writer_signs_every_n_records_and_on_close() {
    let (_d, p) = temp("auto");
    let w = AuditWriter::spawn_with(
        Box::new(SqliteSink::open(&p).unwrap()),
        Some((signer(), 10)),
    );
    for i in 1..=5 {
        w.record(rec(i));
    }
    w.close(); // 5 < 10, but a clean shutdown signs the head
    let w = AuditWriter::spawn_with(
        Box::new(SqliteSink::open(&p).unwrap()),
        Some((signer(), 10)),
    );
    for i in 6..=17 {
        w.record(rec(i));
    }
    w.close();
    let s = SqliteSink::open(&p).unwrap();
    let seqs: Vec<u64> = s.checkpoints().unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(seqs.first(), Some(&5), "{seqs:?}");
    assert_eq!(seqs.last(), Some(&17), "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let r = verify(&s).unwrap();
    let c = verify_checkpoints(&s, &r, &signer().verifying_key(), &[]).unwrap();
    assert_eq!((c.last_seq, c.uncovered), (Some(17), 0));
}

#[test]
fn key_files_are_checked() {
    let (d, _p) = temp("keys");
    let path = d.0.join("k.json");
    std::fs::write(&path, "{\"kty\": \"rsa\", \"public_key\": \"\"}").unwrap();
    let e = CheckpointSigner::from_key_file(&path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not ed25519") && e.contains("k.json"), "{e}");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let pk = b64.encode(signer().verifying_key().to_bytes());
    std::fs::write(
        &path,
        format!("{{\"kty\": \"ed25519\", \"public_key\": \"{pk}\"}}"),
    )
    .unwrap();
    let e = CheckpointSigner::from_key_file(&path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no private_key"), "{e}");
    assert_eq!(
        checkpoint::read_public_key(&path).unwrap(),
        signer().verifying_key()
    );
    std::fs::write(
        &path,
        format!(
            "{{\"kty\": \"ed25519\", \"public_key\": \"{pk}\", \"private_key\": \"{}\"}}",
            b64.encode([7u8; 32])
        ),
    )
    .unwrap();
    let s = CheckpointSigner::from_key_file(&path).unwrap();
    assert_eq!(s.verifying_key(), signer().verifying_key());
}
