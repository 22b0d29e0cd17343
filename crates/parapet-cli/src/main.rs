//! `parapet`: the command-line front door. Argument parsing and output formatting only; every
//! command is a thin call into a library crate. Each subcommand lives in its own `cmd_*.rs`
//! module with its clap `Args` struct and a `run(args) -> anyhow::Result<i32>` function that
//! returns the process exit status.

use clap::{Parser, Subcommand};

mod cmd_audit;
mod cmd_serve;

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
    /// Run the OpenAI-compatible security gateway.
    Serve(cmd_serve::ServeArgs),
    /// Verify or export the gateway's audit log.
    Audit(cmd_audit::AuditArgs),
}

fn main() {
    let cli = Cli::parse();
    let code: anyhow::Result<i32> = match cli.command {
        Command::Version => {
            println!("parapet {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
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
