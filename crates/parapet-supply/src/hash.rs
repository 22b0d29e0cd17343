//! Streamed, parallel SHA-256 manifests of model folders.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Name of the signature file written beside a model (excluded from manifests).
pub const SIGNATURE_FILE: &str = "model.sig.json";

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SHA-256 of a file, read in 1 MiB chunks (never the whole file in memory).
///
/// # Errors
/// The I/O error of opening or reading the file.
pub fn sha256_file(p: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// A manifest: relative path (with `/` separators) → SHA-256 hex, sorted by path.
pub type Manifest = BTreeMap<String, String>;

/// Hashes every regular file under `root` (or `root` itself when it is a file), skipping
/// [`SIGNATURE_FILE`] and the `.git` folder, with up to `threads` workers (0 = CPUs).
///
/// # Errors
/// The first I/O error, naming the file.
pub fn manifest(root: &Path, threads: usize) -> Result<Manifest, String> {
    let (files, errs) = crate::scan::collect_files(&[root.to_path_buf()]);
    if let Some((p, e)) = errs.first() {
        return Err(format!("{}: {e}", p.display()));
    }
    let base = if root.is_file() {
        root.parent().unwrap_or(Path::new("")).to_path_buf()
    } else {
        root.to_path_buf()
    };
    let files: Vec<(String, PathBuf)> = files
        .into_iter()
        .filter_map(|p| {
            let rel = p
                .strip_prefix(&base)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            let skip = rel == SIGNATURE_FILE || rel.starts_with(".git/") || rel.contains("/.git/");
            (!skip).then_some((rel, p))
        })
        .collect();
    let n = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8)
    } else {
        threads
    };
    let next = AtomicUsize::new(0);
    let out = Mutex::new((Manifest::new(), None::<String>));
    std::thread::scope(|s| {
        for _ in 0..n.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((rel, p)) = files.get(i) else { break };
                let r = sha256_file(p);
                if let Ok(mut o) = out.lock() {
                    match r {
                        Ok(h) => {
                            o.0.insert(rel.clone(), h);
                        }
                        Err(e) => {
                            o.1.get_or_insert(format!("{}: {e}", p.display()));
                        }
                    }
                }
            });
        }
    });
    let (m, err) = out
        .into_inner()
        .map_err(|_| "hash worker panicked".to_string())?;
    match err {
        Some(e) => Err(e),
        None => Ok(m),
    }
}

/// SHA-256 over the canonical manifest text (`<hex>  <path>\n` per file, sorted), the digest
/// that a signature's subject carries.
pub fn manifest_digest(m: &Manifest) -> String {
    let mut h = Sha256::new();
    for (p, d) in m {
        h.update(format!("{d}  {p}\n").as_bytes());
    }
    hex(&h.finalize())
}
