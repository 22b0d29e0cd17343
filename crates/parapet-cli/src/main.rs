//! `parapet`: the command-line front door. Argument parsing and output formatting only; every
//! command is a thin call into a library crate. Each subcommand lives in its own `cmd_*.rs`
//! module with its clap `Args` struct and a `run(args) -> anyhow::Result<i32>` function that
//! returns the process exit status.

use clap::{Parser, Subcommand};

mod cmd_audit;
mod cmd_eval;
mod cmd_model;
mod cmd_redteam;
mod cmd_scan;
mod cmd_serve;
mod cmd_train;
mod judge;
mod semantic;
mod table;

/// Parapet: security for large language models.
#[derive(Parser)]
#[command(name = "parapet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan text or JSONL for prompt injection, jailbreaks, PII, secrets and smuggled text.
    Scan(cmd_scan::ScanArgs),
    /// Measure detection quality on a labelled JSONL dataset.
    Eval(cmd_eval::EvalArgs),
    /// Train the prompt-injection classifier (reproducible; writes models/pi-linear).
    Train(cmd_train::TrainArgs),
    /// Print version and build information.
    Version,
    /// Supply-chain checks for model files: scan, hash, keygen, sign, verify, bom.
    Model(cmd_model::Args),
    /// Red-team an LLM endpoint (OWASP LLM Top 10 2025 / MITRE ATLAS probes).
    Redteam(cmd_redteam::RedteamArgs),
    /// Run the OpenAI-compatible security gateway.
    Serve(cmd_serve::ServeArgs),
    /// Verify, checkpoint (sign) or export the gateway's audit log.
    Audit(cmd_audit::AuditArgs),
}

fn main() {
    let cli = Cli::parse();
    let code: anyhow::Result<i32> = match cli.command {
        Command::Scan(a) => cmd_scan::run(a),
        Command::Eval(a) => cmd_eval::run(a),
        Command::Train(a) => cmd_train::run(a),
        Command::Version => {
            println!("parapet {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Model(a) => cmd_model::run(a),
        Command::Redteam(a) => cmd_redteam::run(a),
        Command::Serve(args) => cmd_serve::run(args),
        Command::Audit(args) => cmd_audit::run(args),
    };
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("parapet: error: {e:#}");
            std::process::exit(2);
        }
    }
}
