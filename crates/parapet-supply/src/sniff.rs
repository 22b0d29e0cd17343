//! Content-based format detection: magic bytes and structure, never the file name.

use crate::finding::Format;
use crate::rules::Rules;

/// Bytes of a file's beginning that the sniffer looks at.
pub const PREFIX: usize = 4096;

/// HDF5 superblock signature (may sit at 0, 512, 1024, 2048 …).
pub const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Detects the format from the first bytes (`prefix`, up to [`PREFIX`]) and the total length.
/// A file that starts with `PROTO 0..5` counts as a pickle even when the rest is broken (so a
/// damaged pickle is an error, never "unknown"); see [`sniff_member`] for archive members.
pub fn sniff(prefix: &[u8], total_len: u64, rules: &Rules) -> Format {
    // A safetensors header length of 0x80 + 256·k (k ≤ 5) starts with the bytes of a pickle
    // PROTO opcode: the safetensors structure wins (a file that is also a clean pickle
    // prefix is still scanned as a pickle too, as a polyglot, by the caller).
    if is_safetensors(prefix, total_len) {
        return Format::Safetensors;
    }
    if prefix.first() == Some(&0x80) && prefix.get(1).is_some_and(|&p| p <= 5) {
        return Format::Pickle;
    }
    sniff_member(prefix, total_len, rules)
}

/// Like [`sniff`], but a pickle must also run cleanly over the prefix: raw tensor data in
/// archive members may start with `0x80 0x0N` by chance.
pub fn sniff_member(prefix: &[u8], total_len: u64, rules: &Rules) -> Format {
    let p = prefix;
    if p.starts_with(b"PK\x03\x04") || p.starts_with(b"PK\x05\x06") {
        return Format::Zip;
    }
    if p.starts_with(b"\x93NUMPY") {
        return Format::Npy;
    }
    if p.starts_with(b"GGUF") {
        return Format::Gguf;
    }
    if [0usize, 512, 1024, 2048]
        .iter()
        .any(|&o| p.get(o..o + 8) == Some(HDF5_MAGIC))
    {
        return Format::Hdf5;
    }
    if compression(p).is_some() {
        return Format::Compressed;
    }
    if p.len() >= 512 && p.get(257..262) == Some(b"ustar") {
        return Format::TorchTar;
    }
    if is_safetensors(p, total_len) {
        return Format::Safetensors;
    }
    if crate::pickle::looks_like_pickle(p, rules) {
        return Format::Pickle;
    }
    if crate::onnx::looks_like_onnx(p) {
        return Format::Onnx;
    }
    let text = p.trim_ascii_start();
    if text.starts_with(b"{")
        || (text.starts_with(b"[")
            && text
                .get(1..)
                .is_some_and(|t| t.trim_ascii_start().starts_with(b"{")))
    {
        return Format::Json;
    }
    if looks_like_python(p) {
        return Format::Python;
    }
    Format::Unknown
}

/// Compression container detected from magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// RFC 1950 zlib (joblib `compress=zlib`, Python `zlib.compress`).
    Zlib,
    /// RFC 1952 gzip.
    Gzip,
    /// bzip2.
    Bz2,
    /// xz container.
    Xz,
    /// Legacy `.lzma` (LZMA-alone).
    Lzma,
    /// joblib < 0.10 "ZF" header followed by zlib.
    JoblibZf,
}

/// The compression of a stream, from its first bytes.
pub fn compression(p: &[u8]) -> Option<Compression> {
    match p {
        [0x1f, 0x8b, 0x08, ..] => Some(Compression::Gzip),
        [b'B', b'Z', b'h', b'1'..=b'9', 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, ..] => {
            Some(Compression::Bz2)
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some(Compression::Xz),
        [b'Z', b'F', b'0', b'x', ..] => Some(Compression::JoblibZf),
        [0x78, b, ..] if (0x7800u16 | *b as u16) % 31 == 0 => Some(Compression::Zlib),
        // LZMA-alone: properties byte (lc/lp/pb, 0x5d by default), dictionary size as a
        // power of two, then an uncompressed size (-1 for unknown, as Python writes it).
        [0x5d, 0, 0, d, 0, ..] if d.is_power_of_two() => Some(Compression::Lzma),
        _ => None,
    }
}

fn is_safetensors(p: &[u8], total: u64) -> bool {
    let Some(n) = p.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return false;
    };
    let n = u64::from_le_bytes(n);
    p.get(8) == Some(&b'{') && (2..(1 << 40)).contains(&n) && total >= 10
}

fn looks_like_python(p: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(p).or_else(|e| std::str::from_utf8(&p[..e.valid_up_to()]))
    else {
        return false;
    };
    s.lines().take(200).any(|l| {
        l.starts_with("import ")
            || (l.starts_with("from ") && l.contains(" import "))
            || l.starts_with("def ")
            || l.starts_with("class ")
            || l.starts_with("#!/usr/bin/env python")
    })
}

/// True when the last 64 KiB + 22 bytes hold a zip end-of-central-directory record.
pub fn has_zip_tail(tail: &[u8]) -> bool {
    tail.windows(4).any(|w| w == b"PK\x05\x06")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        let r = Rules::load().unwrap();
        assert_eq!(sniff(b"\x80\x02}q\x00.", 6, &r), Format::Pickle);
        assert_eq!(sniff(b"cos\nsystem\n(S'x'\ntR.", 20, &r), Format::Pickle);
        assert_eq!(sniff(b"PK\x03\x04rest", 10, &r), Format::Zip);
        assert_eq!(sniff(b"GGUF\x03\x00\x00\x00", 8, &r), Format::Gguf);
        assert_eq!(sniff(b"\x93NUMPY\x01\x00", 8, &r), Format::Npy);
        assert_eq!(sniff(b"import os\nimport sys\n", 21, &r), Format::Python);
        assert_eq!(sniff(b"{\"a\": 1}", 8, &r), Format::Json);
        assert_eq!(sniff(b"little", 6, &r), Format::Unknown);
        assert_eq!(sniff(b"3\n", 2, &r), Format::Unknown);
        assert_eq!(sniff(b"\x1f\x8b\x08\x00", 4, &r), Format::Compressed);
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        assert_eq!(sniff(&st, 10, &r), Format::Safetensors);
        // header length 0x180: first bytes 0x80 0x01 look like a pickle PROTO opcode
        let mut st = 0x180u64.to_le_bytes().to_vec();
        st.push(b'{');
        assert_eq!(sniff(&st, 0x190, &r), Format::Safetensors);
    }
}
