//! `parapet`: the command-line front door. Argument parsing and output formatting only; every
//! command is a thin call into a library crate.

use clap::Parser;

/// Parapet: security for large language models.
#[derive(Parser)]
#[command(name = "parapet", version, about)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
