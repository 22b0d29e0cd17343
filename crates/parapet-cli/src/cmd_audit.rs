//! `parapet audit`: verify, checkpoint and export the gateway's tamper-evident audit log
//! (crate `parapet-audit`).

use anyhow::Context;
use clap::{Args, Subcommand};
use parapet_audit::{AuditError, Checkpoint, CheckpointSigner, SqliteSink};
use std::path::{Path, PathBuf};

/// Environment variable naming the signing key file when `--key` is not given.
pub const KEY_ENV: &str = "PARAPET_AUDIT_SIGNING_KEY_FILE";

/// Verify, checkpoint or export the audit log.
#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// `parapet audit` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute the hash chain (and, with --pubkey, every signed checkpoint); exit 0 when
    /// intact, 1 naming the first bad record or checkpoint (a truncated tail included).
    Verify {
        /// Audit database (the gateway's `audit.path`).
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// Public key file (from `parapet model keygen`) to check checkpoints against.
        #[arg(long, value_name = "FILE")]
        pubkey: Option<PathBuf>,
        /// Checkpoints kept elsewhere (JSON lines printed by `parapet audit checkpoint`).
        #[arg(long, value_name = "FILE", requires = "pubkey")]
        checkpoints: Option<PathBuf>,
    },
    /// Verify the chain, then sign its head and store the checkpoint; prints it as a JSON
    /// line (keep a copy elsewhere).
    Checkpoint {
        /// Audit database.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// Private key file from `parapet model keygen` (default: the file named by
        /// $PARAPET_AUDIT_SIGNING_KEY_FILE).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Write records as JSON lines to standard output.
    Export {
        /// Audit database.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// First sequence number to export.
        #[arg(long, value_name = "SEQ", default_value_t = 1)]
        since: u64,
    },
}

/// Runs the command; returns the exit status.
pub fn run(args: AuditArgs) -> anyhow::Result<i32> {
    match args.command {
        AuditCommand::Verify {
            db,
            pubkey,
            checkpoints,
        } => verify(&db, pubkey.as_deref(), checkpoints.as_deref()),
        AuditCommand::Checkpoint { db, key } => {
            let key = match key {
                Some(k) => k,
                None => PathBuf::from(std::env::var_os(KEY_ENV).with_context(|| {
                    format!("no signing key: pass --key FILE or set {KEY_ENV}")
                })?),
            };
            let signer = CheckpointSigner::from_key_file(&key)?;
            let mut sink = open(&db)?;
            match parapet_audit::verify(&sink) {
                Ok(_) => {}
                Err(e @ AuditError::Broken { .. }) => {
                    println!("BROKEN: {e} (not signing a broken chain)");
                    return Ok(1);
                }
                Err(e) => return Err(e.into()),
            }
            match parapet_audit::checkpoint(&mut sink, &signer)? {
                Some(cp) => println!("{}", serde_json::to_string(&cp)?),
                None => eprintln!("the log is empty: nothing to sign"),
            }
            Ok(0)
        }
        AuditCommand::Export { db, since } => {
            let sink = open(&db)?;
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            parapet_audit::export(&sink, since, &mut lock)?;
            Ok(0)
        }
    }
}

fn open(db: &Path) -> anyhow::Result<SqliteSink> {
    anyhow::ensure!(db.exists(), "{}: no such file", db.display());
    SqliteSink::open(db).with_context(|| format!("opening {}", db.display()))
}

fn verify(db: &Path, pubkey: Option<&Path>, extra: Option<&Path>) -> anyhow::Result<i32> {
    let sink = open(db)?;
    let r = match parapet_audit::verify(&sink) {
        Ok(r) => r,
        Err(e @ AuditError::Broken { .. }) => {
            println!("BROKEN: {e}");
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let Some(pk) = pubkey else {
        println!("ok: {} records, head {}", r.records, r.head);
        return Ok(0);
    };
    let vk = parapet_audit::checkpoint::read_public_key(pk)?;
    let mut copies = Vec::new();
    if let Some(f) = extra {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let cp: Checkpoint = serde_json::from_str(line)
                .with_context(|| format!("{}: line {}: not a checkpoint", f.display(), i + 1))?;
            copies.push(cp);
        }
    }
    match parapet_audit::verify_checkpoints(&sink, &r, &vk, &copies) {
        Ok(c) => {
            println!(
                "ok: {} records, head {}; {} checkpoints verified, last at record {}; {} records after it not yet signed",
                r.records,
                r.head,
                c.checkpoints,
                c.last_seq.map_or("-".to_string(), |s| s.to_string()),
                c.uncovered
            );
            if c.checkpoints == 0 {
                eprintln!("warning: no checkpoints: a deleted tail cannot be detected");
            }
            Ok(0)
        }
        Err(e @ AuditError::Checkpoint { .. }) => {
            println!("BROKEN: {e}");
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
