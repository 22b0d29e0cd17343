//! Text and number decoding for the protocol-0 opcodes of [`super::ops`]: decimal integers,
//! little-endian longs, Python string-literal escapes (`STRING`) and raw-unicode-escape
//! (`UNICODE`), as CPython's `pickle.py` decodes them.

use super::ops::Arg;

pub(crate) fn int_text(s: &str) -> Option<Arg> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    Some(match s.parse::<i64>() {
        Ok(i) => Arg::Int(i),
        Err(_) => Arg::BigInt(s.as_bytes().to_vec()),
    })
}

pub(crate) fn long_bytes(b: Vec<u8>) -> Arg {
    if b.len() <= 8 {
        let neg = b.last().is_some_and(|x| x & 0x80 != 0);
        let mut buf = if neg { [0xffu8; 8] } else { [0u8; 8] };
        buf[..b.len()].copy_from_slice(&b);
        Arg::Int(i64::from_le_bytes(buf))
    } else {
        Arg::BigInt(b)
    }
}

pub(crate) fn strip_quotes(l: &[u8]) -> Option<&[u8]> {
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    if l.len() >= 2 && (l[0] == b'\'' || l[0] == b'"') && l[l.len() - 1] == l[0] {
        Some(&l[1..l.len() - 1])
    } else {
        None
    }
}

/// Decodes Python string-literal escapes (`\n`, `\xNN`, octal `\NNN`, `\\`, `\'`).
pub fn unescape_py(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b != b'\\' || i + 1 >= s.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let e = s[i + 1];
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let mut v: u32 = (e - b'0') as u32;
                let mut k = 0;
                while k < 2 && i < s.len() && (b'0'..=b'7').contains(&s[i]) {
                    v = v * 8 + (s[i] - b'0') as u32;
                    i += 1;
                    k += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hex = s.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.extend_from_slice(b"\\x"),
                }
            }
            b'\n' => {}
            other => {
                if !matches!(other, b'\\' | b'\'' | b'"') {
                    out.push(b'\\');
                }
                out.push(other);
            }
        }
    }
    out
}

/// Decodes Python's `raw-unicode-escape` (`\uXXXX`, `\UXXXXXXXX`; other bytes are Latin-1).
pub fn raw_unicode_escape(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 1 < s.len() && (s[i + 1] == b'u' || s[i + 1] == b'U') {
            let n = if s[i + 1] == b'u' { 4 } else { 8 };
            let hex = s
                .get(i + 2..i + 2 + n)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(ch) = hex
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
            {
                out.push(ch);
                i += 2 + n;
                continue;
            }
        }
        out.push(s[i] as char);
        i += 1;
    }
    out
}
