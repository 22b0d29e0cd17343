//! `parapet model scan PATH… --format json` without the rest of the CLI: the same library
//! call (`scan_paths` + `report::to_json`), for benchmarks that should not build the whole
//! `parapet` binary. Usage: `cargo run --release -p parapet-supply --example scan -- PATH…`
//! (exit status as `parapet model scan` with `--fail-on medium`).

use parapet_core::Severity;
use parapet_supply::{report, Rules};
use std::path::PathBuf;

fn main() {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let rules = match Rules::global() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rules: {e}");
            std::process::exit(2);
        }
    };
    let reports = parapet_supply::scan_paths(&paths, 0, rules);
    let json = report::to_json(&reports, Severity::Medium);
    println!("{}", serde_json::to_string(&json).unwrap_or_default());
    std::process::exit(report::exit_code(&reports, Severity::Medium));
}
