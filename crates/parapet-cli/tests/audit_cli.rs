//! `parapet audit checkpoint` and `parapet audit verify --pubkey`: signed checkpoints catch a
//! truncated tail that the hash chain alone cannot.

use parapet_audit::{AuditRecord, AuditSink, SqliteSink};
use std::path::Path;
use std::process::{Command, Output};

fn parapet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parapet"))
        .args(args)
        .env_remove("PARAPET_AUDIT_SIGNING_KEY_FILE")
        .output()
        .expect("run parapet")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fill(db: &Path, from: u64, to: u64) {
    let mut s = SqliteSink::open(db).unwrap();
    let recs: Vec<AuditRecord> = (from..=to)
        .map(|i| AuditRecord {
            request_id: format!("req-{i}"),
            status: 200,
            ..AuditRecord::default()
        })
        .collect();
    s.append(&recs).unwrap();
}

#[test]
fn checkpoint_then_truncation_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let key = dir.path().join("audit");
    let (db_s, key_s) = (db.to_str().unwrap(), key.to_str().unwrap());
    fill(&db, 1, 8);
    assert!(parapet(&["model", "keygen", "--out", key_s])
        .status
        .success());
    let (private, public) = (format!("{key_s}.key"), format!("{key_s}.pub"));

    // no key: a clear error
    let o = parapet(&["audit", "checkpoint", "--db", db_s]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("PARAPET_AUDIT_SIGNING_KEY_FILE"));
    // a public key cannot sign
    let o = parapet(&["audit", "checkpoint", "--db", db_s, "--key", &public]);
    assert!(!o.status.success());

    let o = parapet(&["audit", "checkpoint", "--db", db_s, "--key", &private]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let cp: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(cp["seq"], 8);
    let copies = dir.path().join("checkpoints.jsonl");
    std::fs::write(&copies, stdout(&o)).unwrap();

    fill(&db, 9, 10);
    let o = parapet(&["audit", "verify", "--db", db_s, "--pubkey", &public]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(
        out.contains("10 records")
            && out.contains("1 checkpoints verified, last at record 8")
            && out.contains("2 records after it"),
        "{out}"
    );

    // delete the tail (records 7..10): the chain still verifies, the checkpoint does not
    SqliteSink::open(&db)
        .unwrap()
        .connection()
        .execute("DELETE FROM audit_log WHERE seq >= 7", [])
        .unwrap();
    let o = parapet(&["audit", "verify", "--db", db_s]);
    assert_eq!(o.status.code(), Some(0), "the chain alone cannot tell");
    let o = parapet(&["audit", "verify", "--db", db_s, "--pubkey", &public]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).contains("log truncated"), "{}", stdout(&o));

    // the attacker also deletes the checkpoints: the copy kept elsewhere still catches it
    SqliteSink::open(&db)
        .unwrap()
        .connection()
        .execute("DELETE FROM audit_checkpoint", [])
        .unwrap();
    let o = parapet(&["audit", "verify", "--db", db_s, "--pubkey", &public]);
    assert_eq!(o.status.code(), Some(0));
    let o = parapet(&[
        "audit",
        "verify",
        "--db",
        db_s,
        "--pubkey",
        &public,
        "--checkpoints",
        copies.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).contains("record 8"), "{}", stdout(&o));
}
