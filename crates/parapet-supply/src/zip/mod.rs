//! Our own zip reader (APPNOTE 6.3.10): central directory *and* local headers are parsed and
//! compared, because the tricks that break scanners live in their disagreements (a name that
//! differs between the two, duplicate names, CRC or flag mismatches, entries that only a
//! streaming reader sees). Members are read the way a permissive loader reads them (central
//! directory offsets and sizes, CRC ignored) and every member that *is* a pickle — whatever
//! its name — is scanned ([`member`]). Nothing here panics or allocates from a hostile
//! length field.

mod member;

use crate::blob::{read_upto, Blob};
use crate::finding::{Ctx, Format};
use member::{scan_entry, walk_locals};
use std::collections::HashMap;
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
