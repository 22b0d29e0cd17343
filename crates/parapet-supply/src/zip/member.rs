//! Zip members: local-header checks against the central directory, decompression (stored,
//! deflate, bzip2, LZMA, zstd) with size limits, CRC and size verification, and scanning of
//! whatever the member turns out to be; local entries hidden from the central directory.

use super::{u16le, u32le, Entry, MAX_MEMBER, MAX_RATIO};
use crate::blob::{read_exact_at, read_upto, Blob, BlobReader, Sub};
use crate::finding::{Ctx, Format};
use crate::sniff::PREFIX;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// Parses the local header of `en` at `off`, compares it with the central entry, scans the
/// member's content; returns the end offset of its extent.
pub(super) fn scan_entry(
    b: &dyn Blob,
    en: &Entry,
    off: u64,
    ctx: &mut Ctx<'_>,
    dir: Option<&Path>,
) -> Option<u64> {
    let mut h = [0u8; 30];
    if read_exact_at(b, off, &mut h).is_err() || !h.starts_with(b"PK\x03\x04") {
        ctx.report(
            "zip.malformed",
            Some(off),
            format!("member {:?}: no local header at offset {off}", en.name),
            Some(en.name.clone()),
        );
        ctx.error(format!("member {:?} unreadable", en.name));
        return None;
    }
    let (lflags, lmethod, lcrc) = (
        u16le(&h, 6) as u16,
        u16le(&h, 8) as u16,
        u32le(&h, 14) as u32,
    );
    let (lcs, lus) = (u32le(&h, 18), u32le(&h, 22));
    let (nl, xl) = (u16le(&h, 26), u16le(&h, 28));
    let lname = read_upto(b, off + 30, nl as usize).unwrap_or_default();
    let lname = String::from_utf8_lossy(&lname).into_owned();
    if lname != en.name {
        ctx.report(
            "zip.name-mismatch",
            Some(off),
            format!(
                "local header names the member {lname:?}, central directory {:?}",
                en.name
            ),
            Some(format!("{lname} != {}", en.name)),
        );
    }
    if lmethod != en.method || (lflags & 1) != (en.flags & 1) {
        ctx.report("zip.flags", Some(off), format!("member {:?}: method/encryption differ between local ({lmethod}/{lflags:#x}) and central ({}/{:#x}) headers", en.name, en.method, en.flags), Some(en.name.clone()));
    }
    if en.flags & 8 == 0
        && lcs != 0xffff_ffff
        && (lcrc != en.crc || lcs != en.csize || lus != en.usize)
    {
        ctx.report(
            "zip.flags",
            Some(off),
            format!(
                "member {:?}: CRC or sizes differ between local and central headers",
                en.name
            ),
            Some(en.name.clone()),
        );
    }
    if en.flags & !(0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0800) != 0 {
        ctx.report(
            "zip.flags",
            Some(off),
            format!("member {:?}: unusual flag bits {:#06x}", en.name, en.flags),
            Some(en.name.clone()),
        );
    }
    let data = off + 30 + nl + xl;
    let end = data.saturating_add(en.csize);
    if end > b.len() {
        ctx.report(
            "zip.malformed",
            Some(off),
            format!("member {:?} extends past the end of the file", en.name),
            Some(en.name.clone()),
        );
        ctx.error(format!("member {:?} truncated", en.name));
        return None;
    }
    ctx.within(en.name.clone(), |c| member(b, en, data, c, dir));
    Some(end + if en.flags & 8 != 0 { 12 } else { 0 })
}

/// Largest LZMA member decoded (LZMA members are decoded into memory: lzma-rs has no pull
/// reader); larger ones are a `zip.bomb` finding and an error.
pub const MAX_LZMA_MEMBER: u64 = crate::scan::MAX_BUFFER;

/// Reader over a member's decompressed bytes: stored (0), deflate (8), bzip2 (12), LZMA (14,
/// APPNOTE 5.8.8: 2-byte version, 2-byte properties size, properties, raw stream; flag bit 1
/// = end-of-stream marker), zstd (93, and the pre-standard id 20 some writers used).
///
/// # Errors
/// The method is not supported, or an LZMA member is corrupt or larger than
/// [`MAX_LZMA_MEMBER`] (the message says which).
fn open<'a>(
    b: &'a dyn Blob,
    en: &Entry,
    data: u64,
    csize: u64,
) -> Result<Box<dyn Read + 'a>, String> {
    let raw = BufReader::new(BlobReader::new(b, data, csize));
    match en.method {
        0 => Ok(Box::new(raw)),
        8 => Ok(Box::new(flate2::read::DeflateDecoder::new(raw))),
        12 => Ok(Box::new(bzip2::read::BzDecoder::new(raw))),
        14 => lzma_member(raw, en).map(|v| Box::new(io::Cursor::new(v)) as Box<dyn Read>),
        20 | 93 => ruzstd::decoding::StreamingDecoder::new(raw)
            .map(|d| Box::new(d) as Box<dyn Read>)
            .map_err(|e| format!("zstd member: {e}")),
        m => Err(format!("unsupported compression method {m}")),
    }
}

fn lzma_member(mut raw: impl io::BufRead, en: &Entry) -> Result<Vec<u8>, String> {
    let mut h = [0u8; 4];
    raw.read_exact(&mut h)
        .map_err(|e| format!("LZMA member header: {e}"))?;
    let props = u16::from_le_bytes([h[2], h[3]]);
    if props != 5 {
        return Err(format!(
            "LZMA member with {props}-byte properties (expected 5)"
        ));
    }
    let opts = lzma_rs::decompress::Options {
        unpacked_size: lzma_rs::decompress::UnpackedSize::UseProvided(if en.flags & 2 != 0 {
            None
        } else {
            Some(en.usize)
        }),
        memlimit: Some(MAX_LZMA_MEMBER as usize),
        allow_incomplete: false,
    };
    if en.flags & 2 == 0 && en.usize > MAX_LZMA_MEMBER {
        return Err(format!(
            "LZMA member declares {} bytes, over the {MAX_LZMA_MEMBER}-byte limit",
            en.usize
        ));
    }
    let mut out = Vec::new();
    let mut lim = crate::compress::LimitedWriter::new(&mut out, MAX_LZMA_MEMBER);
    lzma_rs::lzma_decompress_with_options(&mut raw, &mut lim, &opts)
        .map_err(|e| format!("LZMA member: {e}"))?;
    Ok(out)
}

/// Counts bytes and computes the CRC-32 of what passes through.
struct Crc<R> {
    r: R,
    h: crc32fast::Hasher,
    n: u64,
}

impl<R: Read> Read for Crc<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.r.read(buf)?;
        self.h.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
}

fn member(b: &dyn Blob, en: &Entry, data: u64, ctx: &mut Ctx<'_>, dir: Option<&Path>) {
    if en.flags & 1 != 0 {
        ctx.report(
            "zip.flags",
            None,
            "encrypted member cannot be scanned".into(),
            Some(en.name.clone()),
        );
        ctx.error("encrypted member not scanned");
        return;
    }
    let mut r = match open(b, en, data, en.csize) {
        Ok(r) => r,
        Err(why) => {
            let rule = if why.contains("limit") {
                "zip.bomb"
            } else {
                "zip.malformed"
            };
            ctx.report(rule, None, why.clone(), Some(en.name.clone()));
            ctx.error(format!("member not scanned: {why}"));
            return;
        }
    };
    let mut prefix = Vec::new();
    if let Err(e) = (&mut r).take(PREFIX as u64).read_to_end(&mut prefix) {
        ctx.error(format!("cannot decompress member: {e}"));
        return;
    }
    let mut fmt = crate::sniff::sniff_member(&prefix, en.usize, ctx.rules);
    let lname = en.name.to_ascii_lowercase();
    if lname.ends_with(".pkl") || lname.ends_with(".pickle") {
        // The loader unpickles this member by name (torch: <folder>/data.pkl): it is read as a
        // pickle whatever it looks like (a first byte `{` is the opcode EMPTY_DICT, not JSON),
        // so a damaged one is a parse error, never "unknown" or another format.
        fmt = Format::Pickle;
    }
    if fmt == Format::Unknown {
        return; // raw tensor data, version files …: nothing executable for any loader
    }
    if en.usize >= 64 << 20 && en.usize / en.csize.max(1) > MAX_RATIO {
        ctx.report(
            "zip.bomb",
            None,
            format!("declared ratio {}:1", en.usize / en.csize.max(1)),
            Some(en.name.clone()),
        );
    }
    if en.method == 0 && !matches!(fmt, Format::Pickle | Format::Npy | Format::Compressed) {
        // Stored random-access payloads (zip in zip, safetensors …) are scanned in place.
        crate::scan::scan_blob(&Sub::new(b, data, en.csize), ctx, dir);
        return;
    }
    if !ctx.spend(en.usize.max(en.csize)) {
        return;
    }
    let r2 = match open(b, en, data, en.csize) {
        Ok(r) => r,
        Err(why) => {
            ctx.error(format!("member not scanned: {why}"));
            return;
        }
    };
    let mut counted = Crc {
        r: r2.take(MAX_MEMBER + 1),
        h: crc32fast::Hasher::new(),
        n: 0,
    };
    if fmt == Format::Pickle {
        crate::pickle::scan_stream(BufReader::new(&mut counted), ctx);
    } else {
        crate::scan::scan_reader(&mut counted, ctx, dir);
    }
    // Drain what the scanner did not need so the CRC covers the whole member.
    if let Err(e) = io::copy(&mut counted, &mut io::sink()) {
        ctx.error(format!("cannot decompress member: {e}"));
        return;
    }
    if counted.n > MAX_MEMBER {
        ctx.report(
            "zip.bomb",
            None,
            format!("member decompresses to more than {MAX_MEMBER} bytes"),
            Some(en.name.clone()),
        );
        ctx.error("member beyond the decompression limit");
        return;
    }
    let crc = counted.h.finalize();
    if crc != en.crc {
        ctx.report(
            "zip.crc-mismatch",
            None,
            format!("CRC-32 is {crc:08x}, header says {:08x}", en.crc),
            Some(en.name.clone()),
        );
    }
    if counted.n != en.usize {
        ctx.report(
            "zip.flags",
            None,
            format!(
                "member decompresses to {} bytes, header says {}",
                counted.n, en.usize
            ),
            Some(en.name.clone()),
        );
    }
}

/// Looks for local headers in `[start, end)` that the central directory does not list
/// (streaming readers see them); scans them. Returns how many were found.
pub(super) fn walk_locals(
    b: &dyn Blob,
    start: u64,
    end: u64,
    ctx: &mut Ctx<'_>,
    dir: Option<&Path>,
    known: &[u64],
) -> usize {
    let mut found = 0;
    let mut pos = start;
    let end = end.min(b.len());
    while found < 10_000 {
        let Some(off) = next_local(b, pos, end) else {
            break;
        };
        pos = off + 4;
        if known.contains(&off) {
            continue;
        }
        let h = read_upto(b, off, 30).unwrap_or_default();
        if h.len() < 30 {
            break;
        }
        let (nl, xl) = (u16le(&h, 26), u16le(&h, 28));
        let name =
            String::from_utf8_lossy(&read_upto(b, off + 30, nl as usize).unwrap_or_default())
                .into_owned();
        let en = Entry {
            flags: u16le(&h, 6) as u16,
            method: u16le(&h, 8) as u16,
            crc: u32le(&h, 14) as u32,
            csize: u32le(&h, 18),
            usize: u32le(&h, 22),
            local: off,
            name: name.clone(),
        };
        found += 1;
        ctx.report(
            "zip.hidden-entry",
            Some(off),
            format!("local entry {name:?} is not in the central directory"),
            Some(name.clone()),
        );
        let data = off + 30 + nl + xl;
        let csize = if en.flags & 8 != 0 {
            end.saturating_sub(data)
        } else {
            en.csize
        };
        // This walk visits every local header in the range, so a member's data stops at the
        // next one: were it to span later headers, scanning it (a stored zip is scanned in
        // place) would walk them again one level down, and a few overlapping headers nested
        // six deep make that exponential (a 7 KB file took minutes before this clip).
        let csize = match next_local(b, data.saturating_add(1), end) {
            Some(next) if next < data.saturating_add(csize) => next - data,
            _ => csize,
        };
        let en = Entry { csize, ..en };
        ctx.within(format!("hidden:{name}"), |c| member(b, &en, data, c, dir));
    }
    found
}

/// Offset of the first local-header signature (`PK\x03\x04`) starting in `[from, end)`.
fn next_local(b: &dyn Blob, from: u64, end: u64) -> Option<u64> {
    let end = end.min(b.len());
    let chunk = 1 << 20;
    let mut pos = from;
    while pos.saturating_add(4) <= end {
        let want = usize::try_from(end - pos).unwrap_or(chunk).min(chunk) + 3;
        let buf = read_upto(b, pos, want).ok()?;
        if buf.len() < 4 {
            return None;
        }
        match buf.windows(4).position(|w| w == b"PK\x03\x04") {
            Some(i) => return Some(pos + i as u64),
            None => pos += buf.len().saturating_sub(3).max(1) as u64,
        }
    }
    None
}
