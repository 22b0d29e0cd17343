//! `parapet audit`: verify and export the gateway's tamper-evident audit log
//! (crate `parapet-audit`).

use anyhow::Context;
use clap::{Args, Subcommand};
use parapet_audit::{AuditError, SqliteSink};
use std::path::PathBuf;

/// Verify or export the audit log.
#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// `parapet audit` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute the hash chain; exit 0 when intact, 1 naming the first bad record.
    Verify {
        /// Audit database (the gateway's `audit.path`).
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
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
        AuditCommand::Verify { db } => {
            anyhow::ensure!(db.exists(), "{}: no such file", db.display());
            let sink =
                SqliteSink::open(&db).with_context(|| format!("opening {}", db.display()))?;
            match parapet_audit::verify(&sink) {
                Ok(r) => {
                    println!("ok: {} records, head {}", r.records, r.head);
                    Ok(0)
                }
                Err(e @ AuditError::Broken { .. }) => {
                    println!("BROKEN: {e}");
                    Ok(1)
                }
                Err(e) => Err(e.into()),
            }
        }
        AuditCommand::Export { db, since } => {
            anyhow::ensure!(db.exists(), "{}: no such file", db.display());
            let sink =
                SqliteSink::open(&db).with_context(|| format!("opening {}", db.display()))?;
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            parapet_audit::export(&sink, since, &mut lock)?;
            Ok(0)
        }
    }
}
