//! `parapet`: the command-line front door. Argument parsing and output formatting only; every
//! command is a thin call into a library crate. Each subcommand lives in its own `cmd_*.rs`
//! module with its clap `Args` struct and a `run(args) -> anyhow::Result<i32>` function that
//! returns the process exit status.

use clap::{Parser, Subcommand};

mod cmd_redteam;

/// Parapet: security for large language models.
#[derive(Parser)]
#[command(name = "parapet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print version and build information.
    Version,
    /// Red-team an LLM endpoint (OWASP LLM Top 10 2025 / MITRE ATLAS probes).
    Redteam(cmd_redteam::RedteamArgs),
}

fn main() {
    let cli = Cli::parse();
    let code: anyhow::Result<i32> = match cli.command {
        Command::Version => {
            println!("parapet {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Redteam(a) => cmd_redteam::run(a),
    };
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("parapet: error: {e:#}");
            std::process::exit(2);
        }
    }
}
