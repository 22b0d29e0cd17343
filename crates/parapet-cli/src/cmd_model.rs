//! `parapet model`: supply-chain checks for model files (scan, hash, keygen, sign, verify,
//! bom), a thin layer over `parapet-supply`.

use anyhow::{anyhow, Context, Result};
use clap::{Subcommand, ValueEnum};
use parapet_core::Severity;
use parapet_supply::{hash, report, sign, Rules};
use std::path::{Path, PathBuf};

/// Arguments of `parapet model`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Output format of `scan`.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum Out {
    Table,
    Json,
    Sarif,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Scan model files or folders (recursively). Exit 0 clean, 1 findings at or above
    /// --fail-on, 2 a file could not be fully scanned (never counts as clean).
    Scan {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Out,
        /// Lowest severity that makes the exit status 1 (info, low, medium, high, critical).
        #[arg(long, default_value = "medium")]
        fail_on: String,
        /// Worker threads (0 = number of CPUs, at most 8).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Write the report to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print the SHA-256 manifest of a model file or folder (streamed, parallel).
    Hash {
        /// File or directory.
        path: PathBuf,
        /// Print JSON instead of `sha256sum`-style lines.
        #[arg(long)]
        json: bool,
    },
    /// Generate an ed25519 key pair: PREFIX.key (private, mode 0600) and PREFIX.pub.
    Keygen {
        /// Output prefix.
        #[arg(long, default_value = "parapet-model")]
        out: PathBuf,
    },
    /// Sign a model folder: writes a DSSE envelope (in-toto statement) beside the model.
    Sign {
        /// Model folder (or file).
        model: PathBuf,
        /// Private key file from `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Signature path (default: MODEL/model.sig.json, or MODEL.sig.json for a file).
        #[arg(long)]
        sig: Option<PathBuf>,
    },
    /// Verify a model against its signature: reports modified, added and removed files and a
    /// bad signature; exit 1 on any of them.
    Verify {
        /// Model folder (or file).
        model: PathBuf,
        /// Public key file from `keygen`.
        #[arg(long = "pub")]
        public: PathBuf,
        /// Signature path (default as for `sign`).
        #[arg(long)]
        sig: Option<PathBuf>,
    },
    /// Write a CycloneDX 1.6 JSON AI-BOM (one machine-learning-model component per path).
    Bom {
        /// Model files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn default_sig(model: &Path) -> PathBuf {
    if model.is_dir() {
        model.join(hash::SIGNATURE_FILE)
    } else {
        let mut s = model.as_os_str().to_owned();
        s.push(".sig.json");
        PathBuf::from(s)
    }
}

fn emit(text: &str, output: Option<&Path>) -> Result<()> {
    match output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

fn rules() -> Result<&'static Rules> {
    Rules::global().map_err(|e| anyhow!("rules: {e}"))
}

/// Runs `parapet model …`; returns the exit status.
pub fn run(args: Args) -> Result<i32> {
    match args.cmd {
        Cmd::Scan {
            paths,
            format,
            fail_on,
            threads,
            output,
        } => {
            let fail_on = Severity::parse(&fail_on)
                .ok_or_else(|| anyhow!("--fail-on: unknown severity {fail_on:?}"))?;
            let rules = rules()?;
            let reports = parapet_supply::scan_paths(&paths, threads, rules);
            let text = match format {
                Out::Table => report::to_table(&reports, fail_on),
                Out::Json => serde_json::to_string_pretty(&report::to_json(&reports, fail_on))?,
                Out::Sarif => serde_json::to_string_pretty(&report::to_sarif(&reports, rules))?,
            };
            emit(&text, output.as_deref())?;
            Ok(report::exit_code(&reports, fail_on))
        }
        Cmd::Hash { path, json } => {
            let m = hash::manifest(&path, 0).map_err(|e| anyhow!(e))?;
            if json {
                let v =
                    serde_json::json!({"files": m, "manifest_sha256": hash::manifest_digest(&m)});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (p, d) in &m {
                    println!("{d}  {p}");
                }
            }
            Ok(0)
        }
        Cmd::Keygen { out } => {
            let (private, public) = sign::keygen().map_err(|e| anyhow!(e))?;
            let kp = out.with_extension("key");
            let pp = out.with_extension("pub");
            write_private(&kp, &serde_json::to_string_pretty(&private)?)?;
            std::fs::write(&pp, serde_json::to_string_pretty(&public)?)
                .with_context(|| format!("writing {}", pp.display()))?;
            println!(
                "private key: {}\npublic key:  {}",
                kp.display(),
                pp.display()
            );
            Ok(0)
        }
        Cmd::Sign { model, key, sig } => {
            let k = sign::read_key(&key).map_err(|e| anyhow!(e))?;
            let env = sign::sign(&model, &k).map_err(|e| anyhow!(e))?;
            let out = sig.unwrap_or_else(|| default_sig(&model));
            std::fs::write(&out, serde_json::to_string_pretty(&env)?)
                .with_context(|| format!("writing {}", out.display()))?;
            println!("signed {} -> {}", model.display(), out.display());
            Ok(0)
        }
        Cmd::Verify { model, public, sig } => {
            let k = sign::read_key(&public).map_err(|e| anyhow!(e))?;
            let sp = sig.unwrap_or_else(|| default_sig(&model));
            let text = std::fs::read_to_string(&sp)
                .with_context(|| format!("reading {}", sp.display()))?;
            let env: sign::Envelope =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", sp.display()))?;
            let r = sign::verify(&model, &env, &k).map_err(|e| anyhow!(e))?;
            println!("signature: {}", if r.signature_ok { "good" } else { "BAD" });
            for (what, list) in [
                ("modified", &r.modified),
                ("added", &r.added),
                ("removed", &r.removed),
            ] {
                for p in list {
                    println!("{what}: {p}");
                }
            }
            for p in &r.problems {
                println!("problem: {p}");
            }
            println!("{}", if r.ok() { "OK" } else { "FAILED" });
            Ok(if r.ok() { 0 } else { 1 })
        }
        Cmd::Bom { paths, output } => {
            let reports = parapet_supply::scan_paths(&paths, 0, rules()?);
            let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            let bom = parapet_supply::bom::build(&refs, &reports).map_err(|e| anyhow!(e))?;
            emit(&serde_json::to_string_pretty(&bom)?, output.as_deref())?;
            Ok(0)
        }
    }
}

fn write_private(p: &Path, text: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(p)
            .with_context(|| format!("creating {} (refusing to overwrite)", p.display()))?;
        f.write_all(text.as_bytes())?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))
    }
}
