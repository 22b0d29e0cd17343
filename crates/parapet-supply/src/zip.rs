//! Our own zip reader (APPNOTE 6.3.10): central directory *and* local headers are parsed and
//! compared, because the tricks that break scanners live in their disagreements (a name that
//! differs between the two, duplicate names, CRC or flag mismatches, entries that only a
//! streaming reader sees). Members are read the way a permissive loader reads them (central
//! directory offsets and sizes, CRC ignored) and every member that *is* a pickle — whatever
//! its name — is scanned. Nothing here panics or allocates from a hostile length field.

use crate::blob::{read_exact_at, read_upto, Blob, BlobReader, Sub};
use crate::finding::{Ctx, Format};
use crate::sniff::PREFIX;
use std::collections::HashMap;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// Most central-directory entries read.
pub const MAX_ENTRIES: u64 = 1 << 20;
/// Largest decompressed member scanned (larger ones are a `zip.bomb` finding and an error).
pub const MAX_MEMBER: u64 = 4 << 30;
/// Ratio above which a member counts as a zip bomb (with a size of at least 64 MiB).
pub const MAX_RATIO: u64 = 1000;

/// End-of-central-directory summary.
#[derive(Debug, Clone, Copy)]
pub struct Eocd {
    /// Offset of the EOCD record.
    pub pos: u64,
    /// Entry count declared.
    pub entries: u64,
    /// Central directory size.
    pub cd_size: u64,
    /// Central directory offset (as declared).
    pub cd_offset: u64,
}

fn u16le(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]) as u64)
}
fn u32le(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64)
}
fn u64le(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Finds and parses the end-of-central-directory record (ZIP64 aware).
pub fn eocd(b: &dyn Blob) -> Option<Eocd> {
    let len = b.len();
    let tail_len = 65_557u64.min(len);
    let tail = read_upto(b, len - tail_len, tail_len as usize).ok()?;
    let base = len - tail_len;
    let mut found = None;
    for i in (0..tail.len().saturating_sub(21)).rev() {
        if tail.get(i..i + 4) == Some(b"PK\x05\x06") {
            let comment = u16le(&tail, i + 20);
            found = Some(i);
            if i as u64 + 22 + comment == tail.len() as u64 {
                break;
            }
        }
    }
    let i = found?;
    let r = tail.get(i..i + 22)?;
    let mut e = Eocd {
        pos: base + i as u64,
        entries: u16le(r, 10),
        cd_size: u32le(r, 12),
        cd_offset: u32le(r, 16),
    };
    if (e.entries == 0xffff || e.cd_size == 0xffff_ffff || e.cd_offset == 0xffff_ffff)
        && e.pos >= 20
    {
        let loc = read_upto(b, e.pos - 20, 20).ok()?;
        if loc.starts_with(b"PK\x06\x07") {
            let rec = read_upto(b, u64le(&loc, 8), 56).ok()?;
            if rec.starts_with(b"PK\x06\x06") {
                e.entries = u64le(&rec, 32);
                e.cd_size = u64le(&rec, 40);
                e.cd_offset = u64le(&rec, 48);
            }
        }
    }
    Some(e)
}

/// One central-directory entry, with what its local header said.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    flags: u16,
    method: u16,
    crc: u32,
    csize: u64,
    usize: u64,
    local: u64,
}

fn parse_cd(cd: &[u8], max: u64, ctx: &mut Ctx<'_>) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while (out.len() as u64) < max {
        let Some(h) = cd.get(p..p + 46) else { break };
        if !h.starts_with(b"PK\x01\x02") {
            break;
        }
        let (nl, xl, cl) = (
            u16le(h, 28) as usize,
            u16le(h, 30) as usize,
            u16le(h, 32) as usize,
        );
        let Some(name) = cd.get(p + 46..p + 46 + nl) else {
            ctx.report(
                "zip.malformed",
                None,
                "central directory entry truncated".into(),
                None,
            );
            break;
        };
        let extra = cd.get(p + 46 + nl..p + 46 + nl + xl).unwrap_or(&[]);
        let mut e = Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            flags: u16le(h, 8) as u16,
            method: u16le(h, 10) as u16,
            crc: u32le(h, 16) as u32,
            csize: u32le(h, 20),
            usize: u32le(h, 24),
            local: u32le(h, 42),
        };
        zip64_extra(extra, &mut e);
        out.push(e);
        p += 46 + nl + xl + cl;
    }
    out
}

fn zip64_extra(mut x: &[u8], e: &mut Entry) {
    while x.len() >= 4 {
        let (id, n) = (u16le(x, 0), u16le(x, 2) as usize);
        let Some(data) = x.get(4..4 + n) else { return };
        if id == 1 {
            let mut o = 0;
            for field in [&mut e.usize, &mut e.csize, &mut e.local] {
                if *field == 0xffff_ffff {
                    if let Some(v) = data.get(o..o + 8) {
                        *field = u64le(v, 0);
                        o += 8;
                    }
                }
            }
        }
        x = &x[4 + n..];
    }
}

/// Scans a zip archive; returns the refined format (torch checkpoint, npz, keras …).
pub fn scan_zip(b: &dyn Blob, ctx: &mut Ctx<'_>, dir: Option<&Path>) -> Format {
    let Some(e) = eocd(b) else {
        // No central directory: read local headers sequentially, as a streaming unzip would.
        ctx.report(
            "zip.malformed",
            None,
            "no end-of-central-directory record: archive read by local headers only".into(),
            None,
        );
        let n = walk_locals(b, 0, b.len(), ctx, dir, &[]);
        if n == 0 {
            ctx.error("zip archive without readable entries");
        }
        return Format::Zip;
    };
    // Bytes prepended to the archive shift every offset (Python zipfile's `concat`).
    let concat = e.pos.saturating_sub(e.cd_size).saturating_sub(e.cd_offset);
    if concat > 0 {
        ctx.report(
            "zip.hidden-entry",
            Some(0),
            format!("{concat} bytes precede the archive (offsets shifted)"),
            None,
        );
    }
    if e.entries > MAX_ENTRIES || e.cd_size > b.len() {
        ctx.report(
            "zip.bomb",
            None,
            format!(
                "{} entries / {}-byte central directory declared",
                e.entries, e.cd_size
            ),
            None,
        );
        ctx.error("zip central directory beyond limits");
        return Format::Zip;
    }
    let cd = match read_upto(b, e.cd_offset + concat, e.cd_size as usize) {
        Ok(v) => v,
        Err(err) => {
            ctx.error(format!("cannot read central directory: {err}"));
            return Format::Zip;
        }
    };
    let entries = parse_cd(&cd, e.entries.min(MAX_ENTRIES), ctx);
    if entries.len() as u64 != e.entries {
        ctx.report(
            "zip.malformed",
            None,
            format!(
                "central directory declares {} entries, {} parsed",
                e.entries,
                entries.len()
            ),
            None,
        );
    }
    let format = classify(&entries);
    layout_checks(&entries, format, ctx);
    let mut extents: Vec<(u64, u64)> = Vec::new();
    let mut scanned = std::collections::HashSet::new();
    for en in &entries {
        let off = en.local + concat;
        if !scanned.insert(off) {
            ctx.report(
                "zip.bomb",
                Some(off),
                format!(
                    "member {:?} reuses the data of another entry (overlapping entries)",
                    en.name
                ),
                Some(en.name.clone()),
            );
            continue;
        }
        if let Some(end) = scan_entry(b, en, off, ctx, dir) {
            extents.push((off, end));
        }
    }
    // Gaps between entries (and before the central directory) may hide local entries.
    extents.sort_unstable();
    let mut cursor = 0u64;
    let cd_start = e.cd_offset + concat;
    let mut gaps = Vec::new();
    for &(s, end) in &extents {
        if s < cursor {
            ctx.report(
                "zip.bomb",
                Some(s),
                format!("entry at offset {s} overlaps the previous entry (ends at {cursor})"),
                None,
            );
        }
        if s > cursor {
            gaps.push((cursor, s));
        }
        cursor = cursor.max(end);
    }
    if cd_start > cursor {
        gaps.push((cursor, cd_start));
    }
    let known: Vec<u64> = extents.iter().map(|x| x.0).collect();
    for (s, t) in gaps {
        if s == 0 && t == concat {
            continue;
        }
        walk_locals(b, s, t, ctx, dir, &known);
    }
    format
}

fn classify(entries: &[Entry]) -> Format {
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    if names.iter().any(|n| n.ends_with("constants.pkl"))
        && names
            .iter()
            .any(|n| n.contains("/code/") || n.starts_with("code/"))
    {
        Format::TorchScript
    } else if names
        .iter()
        .any(|n| n == &"data.pkl" || n.ends_with("/data.pkl"))
    {
        Format::TorchZip
    } else if names.contains(&"config.json")
        && (names.contains(&"metadata.json") || names.iter().any(|n| n.ends_with(".weights.h5")))
    {
        Format::Keras
    } else if !names.is_empty() && names.iter().all(|n| n.ends_with(".npy")) {
        Format::Npz
    } else {
        Format::Zip
    }
}

fn layout_checks(entries: &[Entry], format: Format, ctx: &mut Ctx<'_>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for en in entries {
        *seen.entry(en.name.as_str()).or_default() += 1;
        let n = &en.name;
        if n.starts_with('/')
            || n.contains('\\')
            || n.split('/').any(|c| c == "..")
            || n.contains('\0')
            || n.get(1..2) == Some(":")
        {
            ctx.report(
                "zip.outside-folder",
                None,
                format!("member path {n:?} is absolute, climbs with '..' or has odd characters"),
                Some(n.clone()),
            );
        }
    }
    for (n, c) in &seen {
        if *c > 1 {
            ctx.report(
                "zip.duplicate-name",
                None,
                format!("{c} members are named {n:?}"),
                Some(n.to_string()),
            );
        }
    }
    if matches!(format, Format::TorchZip | Format::TorchScript) {
        let top = |n: &str| n.split('/').next().unwrap_or("").to_string();
        let first = entries.first().map(|e| top(&e.name)).unwrap_or_default();
        for en in entries {
            if !en.name.contains('/') || top(&en.name) != first {
                ctx.report(
                    "zip.outside-folder",
                    None,
                    format!(
                        "member {:?} lies outside the checkpoint folder {first:?}/",
                        en.name
                    ),
                    Some(en.name.clone()),
                );
            }
        }
        if format == Format::TorchScript {
            ctx.report(
                "torch.torchscript-code",
                None,
                "TorchScript archive: code/ is compiled and run by torch.jit.load".into(),
                None,
            );
        }
    }
}

/// Parses the local header of `en` at `off`, compares it with the central entry, scans the
/// member's content; returns the end offset of its extent.
fn scan_entry(
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

/// Reader over a member's decompressed bytes.
fn open<'a>(b: &'a dyn Blob, method: u16, data: u64, csize: u64) -> Option<Box<dyn Read + 'a>> {
    let raw = BufReader::new(BlobReader::new(b, data, csize));
    match method {
        0 => Some(Box::new(raw)),
        8 => Some(Box::new(flate2::read::DeflateDecoder::new(raw))),
        12 => Some(Box::new(bzip2::read::BzDecoder::new(raw))),
        _ => None,
    }
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
    let Some(mut r) = open(b, en.method, data, en.csize) else {
        ctx.report(
            "zip.malformed",
            None,
            format!("unsupported compression method {}", en.method),
            Some(en.name.clone()),
        );
        ctx.error(format!(
            "member compressed with method {} not scanned",
            en.method
        ));
        return;
    };
    let mut prefix = Vec::new();
    if let Err(e) = (&mut r).take(PREFIX as u64).read_to_end(&mut prefix) {
        ctx.error(format!("cannot decompress member: {e}"));
        return;
    }
    let mut fmt = crate::sniff::sniff_member(&prefix, en.usize, ctx.rules);
    let lname = en.name.to_ascii_lowercase();
    if fmt == Format::Unknown && (lname.ends_with(".pkl") || lname.ends_with(".pickle")) {
        // The loader unpickles this member by name (torch: <folder>/data.pkl): it is read as a
        // pickle whatever it looks like, so a damaged one is a parse error, never "unknown".
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
    let Some(r2) = open(b, en.method, data, en.csize) else {
        return;
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
fn walk_locals(
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
    let chunk = 1 << 20;
    while pos + 4 <= end && found < 10_000 {
        let want = usize::try_from(end - pos).unwrap_or(chunk).min(chunk) + 3;
        let Ok(buf) = read_upto(b, pos, want) else {
            break;
        };
        if buf.len() < 4 {
            break;
        }
        let Some(i) = buf.windows(4).position(|w| w == b"PK\x03\x04") else {
            pos += buf.len().saturating_sub(3).max(1) as u64;
            continue;
        };
        let off = pos + i as u64;
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
        let en = Entry { csize, ..en };
        ctx.within(format!("hidden:{name}"), |c| member(b, &en, data, c, dir));
    }
    found
}
