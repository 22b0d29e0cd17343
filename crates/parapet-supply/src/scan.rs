//! Dispatch by detected format, file and directory scanning (parallel, streamed).

use crate::blob::{read_upto, Blob, BlobReader};
use crate::finding::{Ctx, FileReport, Format, MAX_DEPTH};
use crate::rules::Rules;
use crate::sniff::{self, PREFIX};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Largest payload buffered in memory when a random-access format (zip, safetensors …) is
/// found inside a compressed stream or archive member.
pub const MAX_BUFFER: u64 = 512 << 20;

/// Scans a random-access blob: sniffs, dispatches, and checks for polyglots.
/// `dir` is the folder of the file on disk (for ONNX external data), when there is one.
pub fn scan_blob(b: &dyn Blob, ctx: &mut Ctx<'_>, dir: Option<&Path>) -> Format {
    if ctx.depth > MAX_DEPTH {
        ctx.error(format!("nesting deeper than {MAX_DEPTH} levels"));
        return Format::Unknown;
    }
    let prefix = match read_upto(b, 0, PREFIX) {
        Ok(p) => p,
        Err(e) => {
            ctx.error(format!("read error: {e}"));
            return Format::Unknown;
        }
    };
    let fmt = sniff::sniff(&prefix, b.len(), ctx.rules);
    let fmt = dispatch(fmt, b, ctx, dir);
    if fmt != Format::Pickle
        && fmt != Format::TorchLegacy
        && crate::pickle::looks_like_pickle(&prefix, ctx.rules)
    {
        ctx.report(
            "format.polyglot",
            Some(0),
            format!(
                "the {} file is also a valid pickle prefix; scanned as a pickle too",
                fmt.as_str()
            ),
            Some(format!("{}+pickle", fmt.as_str())),
        );
        crate::pickle::scan_stream(BufReader::new(BlobReader::whole(b)), ctx);
    }
    let zip_family = matches!(
        fmt,
        Format::Zip | Format::TorchZip | Format::TorchScript | Format::Npz | Format::Keras
    );
    if !zip_family && b.len() >= 22 {
        let tail_len = 65_557u64.min(b.len());
        if let Ok(tail) = read_upto(b, b.len() - tail_len, tail_len as usize) {
            if sniff::has_zip_tail(&tail) && crate::zip::eocd(b).is_some() {
                ctx.report(
                    "format.polyglot",
                    None,
                    format!("the {} file ends with a zip archive (read by zipfile-based loaders); scanned as a zip too", fmt.as_str()),
                    Some(format!("{}+zip", fmt.as_str())),
                );
                crate::zip::scan_zip(b, ctx, dir);
            }
        }
    }
    fmt
}

fn dispatch(fmt: Format, b: &dyn Blob, ctx: &mut Ctx<'_>, dir: Option<&Path>) -> Format {
    match fmt {
        Format::Pickle => {
            let s = crate::pickle::scan_stream(BufReader::new(BlobReader::whole(b)), ctx);
            if s.torch_legacy {
                Format::TorchLegacy
            } else {
                Format::Pickle
            }
        }
        Format::Zip => crate::zip::scan_zip(b, ctx, dir),
        Format::Npy => {
            crate::numpy::scan_npy(&mut BufReader::new(BlobReader::whole(b)), ctx);
            Format::Npy
        }
        Format::Compressed => {
            crate::compress::scan_compressed(&mut BufReader::new(BlobReader::whole(b)), ctx, dir);
            Format::Compressed
        }
        Format::TorchTar => {
            crate::compress::scan_tar(b, ctx, dir);
            Format::TorchTar
        }
        Format::Safetensors => {
            crate::safetensors::scan(b, ctx);
            Format::Safetensors
        }
        Format::Gguf => {
            crate::gguf::scan(b, ctx);
            Format::Gguf
        }
        Format::Onnx => {
            crate::onnx::scan(b, ctx, dir);
            Format::Onnx
        }
        Format::Hdf5 => {
            crate::h5::scan_h5(b, ctx);
            Format::Hdf5
        }
        Format::Json => {
            match crate::blob::read_bounded(&mut BlobReader::whole(b), 64 << 20) {
                Ok(Some(v)) => crate::keras::scan_json(&v, ctx),
                Ok(None) => ctx.error("JSON file larger than 64 MiB not scanned"),
                Err(e) => ctx.error(format!("read error: {e}")),
            }
            Format::Json
        }
        Format::Python => {
            ctx.report(
                "hub.python-file",
                None,
                "Python source file: runs if the repository is loaded with trust_remote_code=True or imported".into(),
                None,
            );
            Format::Python
        }
        other => other,
    }
}

/// Scans a stream (decompressed data, archive member): pickles and `.npy` are streamed,
/// random-access formats are buffered up to [`MAX_BUFFER`].
pub fn scan_reader(r: &mut dyn Read, ctx: &mut Ctx<'_>, dir: Option<&Path>) -> Format {
    if ctx.depth > MAX_DEPTH {
        ctx.error(format!("nesting deeper than {MAX_DEPTH} levels"));
        return Format::Unknown;
    }
    let mut prefix = Vec::with_capacity(PREFIX);
    if let Err(e) = r.take(PREFIX as u64).read_to_end(&mut prefix) {
        ctx.error(format!("read error: {e}"));
        return Format::Unknown;
    }
    let fmt = sniff::sniff(&prefix, u64::MAX, ctx.rules);
    let mut whole = std::io::Cursor::new(prefix).chain(r);
    match fmt {
        Format::Pickle => {
            let s = crate::pickle::scan_stream(BufReader::new(&mut whole), ctx);
            if s.torch_legacy {
                Format::TorchLegacy
            } else {
                Format::Pickle
            }
        }
        Format::Npy => {
            crate::numpy::scan_npy(&mut BufReader::new(&mut whole), ctx);
            Format::Npy
        }
        Format::Compressed => {
            crate::compress::scan_compressed(&mut BufReader::new(&mut whole), ctx, dir);
            Format::Compressed
        }
        Format::Unknown => Format::Unknown,
        _ => match crate::blob::read_bounded(&mut whole, MAX_BUFFER) {
            Ok(Some(v)) => scan_blob(&v, ctx, dir),
            Ok(None) => {
                ctx.report(
                    "compressed.unsupported",
                    None,
                    format!(
                        "embedded {} payload larger than {} MiB not scanned",
                        fmt.as_str(),
                        MAX_BUFFER >> 20
                    ),
                    None,
                );
                ctx.error("embedded payload too large to scan");
                fmt
            }
            Err(e) => {
                ctx.error(format!("read error: {e}"));
                fmt
            }
        },
    }
}

/// Scans an in-memory payload found inside another (nested pickle argument, decompressed data).
pub fn scan_bytes_as_model(bytes: &[u8], ctx: &mut Ctx<'_>) -> Format {
    scan_blob(&bytes, ctx, None)
}

/// Scans one file on disk.
pub fn scan_file(path: &Path, rules: &Rules) -> FileReport {
    let mut ctx = Ctx::new(rules);
    let display = path.display().to_string();
    let (size, format) = match std::fs::File::open(path) {
        Ok(f) => {
            let size = Blob::len(&f);
            let fmt = scan_blob(&f, &mut ctx, path.parent());
            (size, fmt)
        }
        Err(e) => {
            ctx.error(format!("cannot open: {e}"));
            (0, Format::Unknown)
        }
    };
    FileReport {
        path: display,
        size,
        format,
        findings: ctx.findings,
        errors: ctx.errors,
        facts: ctx.facts,
    }
}

/// Lists the regular files under each path (directories recursively, in sorted order,
/// skipping `.git` folders below the given paths).
/// Symlinks to files are followed (hub caches link snapshots to blobs); symlinked
/// directories are not entered (no loops). Errors are returned per path.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut errs = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(p) = stack.pop() {
        let lmeta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) => {
                errs.push((p, e.to_string()));
                continue;
            }
        };
        if lmeta.is_dir() {
            if p.file_name().is_some_and(|n| n == ".git") && !paths.contains(&p) {
                continue; // git internals (compressed objects, packs) are not model files
            }
            match std::fs::read_dir(&p) {
                Ok(rd) => {
                    let mut kids: Vec<PathBuf> =
                        rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                    kids.sort();
                    stack.extend(kids.into_iter().rev());
                }
                Err(e) => errs.push((p, e.to_string())),
            }
        } else if lmeta.file_type().is_symlink() {
            match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => files.push(p),
                Ok(_) => {}
                Err(e) => errs.push((p, format!("broken symlink: {e}"))),
            }
        } else if lmeta.is_file() {
            files.push(p);
        }
    }
    (files, errs)
}

/// Scans files and directories with `threads` workers (0 = number of CPUs, at most 8);
/// reports come back in the order of [`collect_files`].
pub fn scan_paths(paths: &[PathBuf], threads: usize, rules: &Rules) -> Vec<FileReport> {
    let (files, errs) = collect_files(paths);
    let n = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8)
    } else {
        threads
    };
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<FileReport>>> = Mutex::new(vec![None; files.len()]);
    std::thread::scope(|s| {
        for _ in 0..n.max(1).min(files.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = files.get(i) else { break };
                let r = scan_file(p, rules);
                if let Ok(mut o) = out.lock() {
                    if let Some(slot) = o.get_mut(i) {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut reports: Vec<FileReport> = out
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    for (p, e) in errs {
        reports.push(FileReport {
            path: p.display().to_string(),
            size: 0,
            format: Format::Unknown,
            findings: Vec::new(),
            errors: vec![e],
            facts: Default::default(),
        });
    }
    reports
}
