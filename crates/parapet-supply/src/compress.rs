//! Compressed streams (joblib `compress=` with zlib, gzip, bz2, xz, lzma; joblib < 0.10 "ZF"
//! files) and tar archives (legacy `torch.save` tar format). Decompression is streamed and
//! bounded by [`MAX_INFLATED`]; the inner content is sniffed and scanned like a file.

use crate::blob::{read_upto, Blob, Sub};
use crate::finding::Ctx;
use crate::sniff::{compression, Compression};
use std::io::{self, BufRead, Read};
use std::path::Path;

/// Largest decompressed size scanned (larger is a finding and an error: never clean).
pub const MAX_INFLATED: u64 = 16 << 30;

struct Counting<R> {
    r: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.r.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

/// An lzma-rs decoder run on a thread-free pipe would need buffering; xz/lzma are decoded
/// into memory up to [`crate::scan::MAX_BUFFER`].
fn lz(r: &mut dyn BufRead, xz: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut lim = LimitedWriter {
        v: &mut out,
        left: crate::scan::MAX_BUFFER,
    };
    let res = if xz {
        lzma_rs::xz_decompress(&mut &mut *r, &mut lim)
    } else {
        lzma_rs::lzma_decompress(&mut &mut *r, &mut lim)
    };
    res.map_err(|e| e.to_string())?;
    Ok(out)
}

/// A `Write` into a vector that fails once `left` bytes have been written (bounded
/// decompression into memory).
pub(crate) struct LimitedWriter<'a> {
    v: &'a mut Vec<u8>,
    left: u64,
}

impl<'a> LimitedWriter<'a> {
    /// Writer into `v` accepting at most `limit` bytes.
    pub(crate) fn new(v: &'a mut Vec<u8>, limit: u64) -> Self {
        LimitedWriter { v, left: limit }
    }
}

impl io::Write for LimitedWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.len() as u64 > self.left {
            return Err(io::Error::other("decompression limit reached"));
        }
        self.left -= b.len() as u64;
        self.v.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Scans a compressed stream positioned at its magic bytes.
pub fn scan_compressed(r: &mut dyn BufRead, ctx: &mut Ctx<'_>, dir: Option<&Path>) {
    let kind = match r.fill_buf() {
        Ok(b) => compression(b),
        Err(e) => {
            ctx.error(format!("read error: {e}"));
            return;
        }
    };
    let Some(kind) = kind else {
        ctx.error("unknown compression");
        return;
    };
    let label = format!("{kind:?}").to_lowercase();
    match kind {
        Compression::Xz | Compression::Lzma => match lz(r, kind == Compression::Xz) {
            Ok(v) => {
                ctx.within(format!("{label}-decompressed"), |c| {
                    crate::scan::scan_bytes_as_model(&v, c)
                });
            }
            Err(e) => {
                ctx.report(
                    "compressed.unsupported",
                    None,
                    format!("{label} stream not fully decoded: {e}"),
                    None,
                );
                ctx.error(format!("{label} decompression failed: {e}"));
            }
        },
        _ => {
            if kind == Compression::JoblibZf {
                // "ZF" + hex length left-justified to 19 bytes + zlib stream (joblib < 0.10).
                if io::copy(&mut r.take(21), &mut io::sink()).is_err() {
                    ctx.error("truncated joblib ZF header");
                    return;
                }
            }
            let dec: Box<dyn Read + '_> = match kind {
                Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
                Compression::Bz2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
                _ => Box::new(flate2::read::ZlibDecoder::new(r)),
            };
            let mut c = Counting {
                r: dec.take(MAX_INFLATED + 1),
                n: 0,
            };
            ctx.within(format!("{label}-decompressed"), |cx| {
                crate::scan::scan_reader(&mut c, cx, dir);
            });
            if let Err(e) = io::copy(&mut c, &mut io::sink()) {
                ctx.report(
                    "compressed.unsupported",
                    None,
                    format!("{label} stream corrupt: {e}"),
                    None,
                );
                ctx.error(format!("{label} decompression failed: {e}"));
            } else if c.n > MAX_INFLATED {
                ctx.report(
                    "zip.bomb",
                    None,
                    format!("{label} stream inflates beyond {MAX_INFLATED} bytes"),
                    None,
                );
                ctx.error("decompression limit reached");
            }
        }
    }
}

fn octal(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// Scans each regular member of a (ustar) tar archive by content.
pub fn scan_tar(b: &dyn Blob, ctx: &mut Ctx<'_>, dir: Option<&Path>) {
    let mut pos = 0u64;
    let mut members = 0u32;
    while pos + 512 <= b.len() && members < 100_000 {
        let Ok(h) = read_upto(b, pos, 512) else { break };
        if h.iter().all(|&x| x == 0) {
            break;
        }
        let name = String::from_utf8_lossy(
            h.get(..100)
                .unwrap_or(&[])
                .split(|&c| c == 0)
                .next()
                .unwrap_or(&[]),
        )
        .into_owned();
        let Some(size) = h.get(124..136).and_then(octal) else {
            ctx.report(
                "zip.malformed",
                Some(pos),
                format!("tar member {name:?}: bad size field"),
                None,
            );
            ctx.error("tar header unreadable");
            return;
        };
        let kind = h.get(156).copied().unwrap_or(0);
        let data = pos + 512;
        if data.saturating_add(size) > b.len() {
            ctx.report(
                "zip.malformed",
                Some(pos),
                format!("tar member {name:?} extends past the end"),
                None,
            );
            ctx.error("tar truncated");
            return;
        }
        if name.starts_with('/') || name.split('/').any(|c| c == "..") {
            ctx.report(
                "zip.outside-folder",
                Some(pos),
                format!("tar member path {name:?} escapes"),
                Some(name.clone()),
            );
        }
        if kind == b'0' || kind == 0 {
            let sub = Sub::new(b, data, size);
            let special = match name.as_str() {
                "storages" => Some(crate::pickle::TarMember::Storages),
                "tensors" => Some(crate::pickle::TarMember::Tensors),
                _ => None,
            };
            ctx.within(name.clone(), |c| match special {
                Some(k) => {
                    crate::pickle::scan_torch_tar_member(k, crate::blob::BlobReader::whole(&sub), c)
                }
                None => {
                    crate::scan::scan_blob(&sub, c, dir);
                }
            });
        }
        members += 1;
        pos = data + size.div_ceil(512) * 512;
    }
}
