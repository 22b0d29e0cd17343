//! Streaming pickle disassembler for protocols 0–5.
//!
//! Opcode set and argument encodings follow CPython's `Lib/pickletools.py` (the normative
//! description of the pickle format) and `Lib/pickle.py` (`_Unpickler`). Nothing is executed:
//! this module only turns bytes into [`Op`]s, reading from any [`Read`] without seeking, with
//! bounded buffering (hostile length fields are skipped in bounded chunks, never allocated).

use super::text::{int_text, long_bytes, raw_unicode_escape, strip_quotes, unescape_py};
use std::io::{self, Read};

/// Largest string argument kept in memory (longer ones are kept truncated; their full length
/// is still consumed from the stream).
pub const MAX_KEEP_STR: usize = 1 << 20;
/// Largest bytes argument kept in memory (enough for nested pickle payloads).
pub const MAX_KEEP_BYTES: usize = 16 << 20;
/// Longest text line accepted for protocol-0 opcodes (`GLOBAL`, `INT`, `STRING`, …).
pub const MAX_LINE: usize = 1 << 20;

/// One decoded argument of an opcode.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// Opcode without argument.
    None,
    /// Integer argument (`BININT*`, `INT`, memo indices, `PROTO`, `EXT*`, `FRAME`).
    Int(i64),
    /// Integer too large for `i64` (`LONG`, `LONG1`, `LONG4`), little-endian two's complement
    /// bytes for the binary forms, decimal text for `LONG`.
    BigInt(Vec<u8>),
    /// Float argument.
    Float(f64),
    /// Text argument; `truncated` when longer than [`MAX_KEEP_STR`].
    Str {
        /// The text (lossy UTF-8 when truncated).
        s: String,
        /// True when longer than [`MAX_KEEP_STR`].
        truncated: bool,
    },
    /// Bytes argument; `len` is the declared length, `data` at most [`MAX_KEEP_BYTES`] of it.
    Bytes {
        /// The kept prefix.
        data: Vec<u8>,
        /// Declared length.
        len: u64,
    },
    /// `GLOBAL` / `INST`: module and qualified name, as two text lines.
    Pair(String, String),
}

/// One disassembled instruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Byte offset of the opcode in the stream given to the [`Disassembler`].
    pub offset: u64,
    /// The opcode byte.
    pub code: u8,
    /// Decoded argument.
    pub arg: Arg,
}

/// Why disassembly stopped.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Underlying read failed.
    #[error("read error at offset {offset}: {source}")]
    Io {
        /// Offset where the read was attempted.
        offset: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// Stream ended inside an instruction.
    #[error("truncated pickle: stream ends inside opcode 0x{code:02x} at offset {offset}")]
    Truncated {
        /// Offset of the opcode.
        offset: u64,
        /// The opcode.
        code: u8,
    },
    /// Byte that is not a pickle opcode.
    #[error("invalid pickle opcode 0x{code:02x} at offset {offset}")]
    BadOpcode {
        /// Offset.
        offset: u64,
        /// The byte.
        code: u8,
    },
    /// An argument that does not decode the way CPython would accept.
    #[error("malformed argument of opcode 0x{code:02x} at offset {offset}: {why}")]
    BadArg {
        /// Offset of the opcode.
        offset: u64,
        /// The opcode.
        code: u8,
        /// What was wrong.
        why: String,
    },
    /// A limit of this scanner (not of the pickle format) was exceeded.
    #[error("scanner limit exceeded at offset {offset}: {why}")]
    Limit {
        /// Offset.
        offset: u64,
        /// Which limit.
        why: String,
    },
}

impl OpError {
    /// True when the error reflects the pickle being invalid for CPython too (as opposed to a
    /// limit of this scanner or an I/O failure).
    pub fn is_semantic(&self) -> bool {
        matches!(
            self,
            OpError::BadOpcode { .. } | OpError::BadArg { .. } | OpError::Truncated { .. }
        )
    }
}

/// Opcode names from `pickletools.py`, for evidence strings; `None` for non-opcodes.
pub fn name(code: u8) -> Option<&'static str> {
    Some(match code {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => return None,
    })
}

/// Reads [`Op`]s one by one from a byte stream.
pub struct Disassembler<R: Read> {
    r: R,
    pos: u64,
    peeked: Option<u8>,
}

impl<R: Read> Disassembler<R> {
    /// Wraps a reader; offsets are counted from its current position as 0.
    pub fn new(r: R) -> Self {
        Disassembler {
            r,
            pos: 0,
            peeked: None,
        }
    }

    /// Offset of the next byte to be read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Returns the next byte without consuming it; `Ok(None)` at end of stream.
    pub fn peek(&mut self) -> Result<Option<u8>, OpError> {
        if self.peeked.is_none() {
            let mut b = [0u8; 1];
            loop {
                match self.r.read(&mut b) {
                    Ok(0) => return Ok(None),
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(OpError::Io {
                            offset: self.pos,
                            source,
                        })
                    }
                }
            }
            self.peeked = Some(b[0]);
        }
        Ok(self.peeked)
    }

    fn fill(&mut self, buf: &mut [u8], op: u64, code: u8) -> Result<(), OpError> {
        let mut start = 0;
        if let Some(p) = self.peeked.take() {
            if let Some(first) = buf.first_mut() {
                *first = p;
                start = 1;
                self.pos += 1;
            } else {
                self.peeked = Some(p);
                return Ok(());
            }
        }
        let rest = &mut buf[start..];
        match self.r.read_exact(rest) {
            Ok(()) => {
                self.pos += rest.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(OpError::Truncated { offset: op, code })
            }
            Err(source) => Err(OpError::Io {
                offset: self.pos,
                source,
            }),
        }
    }

    fn fixed<const N: usize>(&mut self, op: u64, code: u8) -> Result<[u8; N], OpError> {
        let mut b = [0u8; N];
        self.fill(&mut b, op, code)?;
        Ok(b)
    }

    /// Reads `len` bytes, keeping at most `keep` of them; the rest is consumed in chunks.
    fn counted(&mut self, len: u64, keep: usize, op: u64, code: u8) -> Result<Vec<u8>, OpError> {
        let kept = usize::try_from(len).unwrap_or(usize::MAX).min(keep);
        let mut data = vec![0u8; kept];
        self.fill(&mut data, op, code)?;
        let mut left = len - kept as u64;
        if left == 0 {
            return Ok(data);
        }
        let mut chunk = vec![0u8; 8192];
        while left > 0 {
            let n = usize::try_from(left)
                .unwrap_or(chunk.len())
                .min(chunk.len());
            self.fill(&mut chunk[..n], op, code)?;
            left -= n as u64;
        }
        Ok(data)
    }

    fn line(&mut self, op: u64, code: u8) -> Result<Vec<u8>, OpError> {
        let mut out = Vec::new();
        loop {
            let [b] = self.fixed::<1>(op, code)?;
            if b == b'\n' {
                return Ok(out);
            }
            if out.len() >= MAX_LINE {
                return Err(OpError::Limit {
                    offset: op,
                    why: format!("text line longer than {MAX_LINE} bytes"),
                });
            }
            out.push(b);
        }
    }

    fn utf8(&self, b: Vec<u8>, op: u64, code: u8) -> Result<String, OpError> {
        String::from_utf8(b).map_err(|_| OpError::BadArg {
            offset: op,
            code,
            why: "not valid UTF-8".into(),
        })
    }

    fn text(&mut self, len: u64, op: u64, code: u8) -> Result<Arg, OpError> {
        let data = self.counted(len, MAX_KEEP_STR, op, code)?;
        let truncated = (data.len() as u64) < len;
        let s = if truncated {
            String::from_utf8_lossy(&data).into_owned()
        } else {
            // CPython decodes with 'surrogatepass'; lone surrogates are rare, keep them lossy.
            match String::from_utf8(data) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }
        };
        Ok(Arg::Str { s, truncated })
    }

    fn bytes(&mut self, len: u64, op: u64, code: u8) -> Result<Arg, OpError> {
        let data = self.counted(len, MAX_KEEP_BYTES, op, code)?;
        Ok(Arg::Bytes { data, len })
    }

    /// Consumes `n` raw bytes that are not opcodes (joblib inline array data), returning the
    /// first byte when `n == 1` and nothing otherwise.
    ///
    /// # Errors
    /// [`OpError::Truncated`] when the stream ends first.
    pub fn skip(&mut self, n: u64) -> Result<Vec<u8>, OpError> {
        let at = self.pos;
        self.counted(n, if n == 1 { 1 } else { 0 }, at, b'b')
    }

    /// Consumes and returns `n` (at most [`MAX_KEEP_BYTES`]) raw bytes.
    ///
    /// # Errors
    /// [`OpError::Truncated`] when the stream ends first.
    pub fn skip_keep(&mut self, n: u64) -> Result<Vec<u8>, OpError> {
        let at = self.pos;
        self.counted(n, MAX_KEEP_BYTES, at, b'b')
    }

    /// Next instruction; `Ok(None)` when the stream ends exactly at an opcode boundary.
    pub fn next_op(&mut self) -> Result<Option<Op>, OpError> {
        let offset = self.pos;
        let Some(code) = self.peek()? else {
            return Ok(None);
        };
        self.peeked = None;
        self.pos += 1;
        let (o, c) = (offset, code);
        let bad = |why: &str| OpError::BadArg {
            offset: o,
            code: c,
            why: why.to_string(),
        };
        let arg = match code {
            b'(' | b'.' | b'0' | b'1' | b'2' | b'N' | b'Q' | b'R' | b'a' | b'b' | b'd' | b'}'
            | b'e' | b'l' | b']' | b'o' | b's' | b't' | b')' | b'u' | 0x81 | 0x85 | 0x86 | 0x87
            | 0x88 | 0x89 | 0x8f | 0x90 | 0x91 | 0x92 | 0x93 | 0x94 | 0x97 | 0x98 => Arg::None,
            b'F' => {
                let l = self.line(o, c)?;
                let s = String::from_utf8_lossy(&l);
                Arg::Float(s.trim().parse::<f64>().map_err(|_| bad("bad float"))?)
            }
            b'I' => {
                let l = self.line(o, c)?;
                let s = String::from_utf8_lossy(&l).trim().to_string();
                match s.as_str() {
                    "00" => Arg::Int(0),
                    "01" => Arg::Int(1),
                    _ => int_text(&s).ok_or_else(|| bad("bad decimal integer"))?,
                }
            }
            b'L' => {
                let l = self.line(o, c)?;
                let s = String::from_utf8_lossy(&l).trim().to_string();
                let s = s.strip_suffix('L').unwrap_or(&s).to_string();
                int_text(&s).ok_or_else(|| bad("bad decimal long"))?
            }
            b'J' => Arg::Int(i32::from_le_bytes(self.fixed::<4>(o, c)?) as i64),
            b'K' | b'h' | b'q' | 0x80 | 0x82 => Arg::Int(self.fixed::<1>(o, c)?[0] as i64),
            b'M' | 0x83 => Arg::Int(u16::from_le_bytes(self.fixed::<2>(o, c)?) as i64),
            b'j' | b'r' | 0x84 => Arg::Int(u32::from_le_bytes(self.fixed::<4>(o, c)?) as i64),
            b'G' => Arg::Float(f64::from_be_bytes(self.fixed::<8>(o, c)?)),
            0x8a => {
                let n = self.fixed::<1>(o, c)?[0] as u64;
                long_bytes(self.counted(n, MAX_KEEP_STR, o, c)?)
            }
            0x8b => {
                let n = i32::from_le_bytes(self.fixed::<4>(o, c)?);
                if n < 0 {
                    return Err(bad("negative LONG4 length"));
                }
                long_bytes(self.counted(n as u64, MAX_KEEP_STR, o, c)?)
            }
            b'P' => {
                let l = self.line(o, c)?;
                Arg::Str {
                    s: String::from_utf8_lossy(&l).into_owned(),
                    truncated: false,
                }
            }
            b'S' => {
                let l = self.line(o, c)?;
                let inner = strip_quotes(&l).ok_or_else(|| bad("STRING not quoted"))?;
                Arg::Bytes {
                    len: inner.len() as u64,
                    data: unescape_py(inner),
                }
            }
            b'T' => {
                let n = i32::from_le_bytes(self.fixed::<4>(o, c)?);
                if n < 0 {
                    return Err(bad("negative BINSTRING length"));
                }
                self.bytes(n as u64, o, c)?
            }
            b'U' | b'C' => {
                let n = self.fixed::<1>(o, c)?[0] as u64;
                self.bytes(n, o, c)?
            }
            b'B' | b'X' => {
                let n = u32::from_le_bytes(self.fixed::<4>(o, c)?) as u64;
                if code == b'X' {
                    self.text(n, o, c)?
                } else {
                    self.bytes(n, o, c)?
                }
            }
            0x8c => {
                let n = self.fixed::<1>(o, c)?[0] as u64;
                self.text(n, o, c)?
            }
            0x8d => {
                let n = u64::from_le_bytes(self.fixed::<8>(o, c)?);
                self.text(n, o, c)?
            }
            0x8e | 0x96 => {
                let n = u64::from_le_bytes(self.fixed::<8>(o, c)?);
                self.bytes(n, o, c)?
            }
            0x95 => Arg::Int(u64::from_le_bytes(self.fixed::<8>(o, c)?) as i64),
            b'V' => {
                let l = self.line(o, c)?;
                Arg::Str {
                    s: raw_unicode_escape(&l),
                    truncated: false,
                }
            }
            b'c' | b'i' => {
                let m = self.line(o, c)?;
                let n = self.line(o, c)?;
                let m = self.utf8(m, o, c)?;
                let n = self.utf8(n, o, c)?;
                Arg::Pair(m, n)
            }
            b'g' | b'p' => {
                let l = self.line(o, c)?;
                let s = String::from_utf8_lossy(&l).trim().to_string();
                match int_text(&s) {
                    Some(Arg::Int(i)) => Arg::Int(i),
                    _ => return Err(bad("bad memo index")),
                }
            }
            other => {
                return Err(OpError::BadOpcode {
                    offset: o,
                    code: other,
                })
            }
        };
        Ok(Some(Op { offset, code, arg }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(b: &[u8]) -> Result<Vec<Op>, OpError> {
        let mut d = Disassembler::new(b);
        let mut v = Vec::new();
        while let Some(op) = d.next_op()? {
            v.push(op);
        }
        Ok(v)
    }

    #[test]
    fn protocol0_global_and_offsets() {
        let ops = all(b"cos\nsystem\n(S'ls'\ntR.").unwrap();
        assert_eq!(ops[0].arg, Arg::Pair("os".into(), "system".into()));
        assert_eq!(ops[1].offset, 11);
        assert_eq!(
            ops[2].arg,
            Arg::Bytes {
                data: b"ls".to_vec(),
                len: 2
            }
        );
        assert_eq!(ops.last().map(|o| o.code), Some(b'.'));
    }

    #[test]
    fn binary_lengths_are_bounded_and_truncation_detected() {
        // BINBYTES8 claiming 2^60 bytes: must fail as truncated, not allocate.
        let mut b = vec![0x8e];
        b.extend_from_slice(&(1u64 << 60).to_le_bytes());
        b.extend_from_slice(b"abc");
        assert!(matches!(all(&b), Err(OpError::Truncated { offset: 0, .. })));
        assert!(matches!(
            all(&[0xff]),
            Err(OpError::BadOpcode { code: 0xff, .. })
        ));
    }

    #[test]
    fn long1_decodes_small_and_negative() {
        assert_eq!(all(&[0x8a, 1, 0xff]).unwrap()[0].arg, Arg::Int(-1));
        assert_eq!(all(&[0x8a, 2, 0x00, 0x01]).unwrap()[0].arg, Arg::Int(256));
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape_py(br"a\x41\101\n\\"), b"aAA\n\\".to_vec());
        assert_eq!(raw_unicode_escape(br"\u00e9x"), "\u{e9}x");
    }
}
