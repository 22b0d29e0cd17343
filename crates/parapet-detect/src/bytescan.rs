//! Word-at-a-time byte scans (eight bytes per step, SWAR) for the pre-checks that look at
//! every byte of a text: the first ASCII digit (PII digit windows) and the presence of a
//! control character (normalization).

/// `0x01` in every byte.
const ONES: u64 = u64::from_le_bytes([0x01; 8]);
/// `0x80` in every byte.
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// The high bit of each byte of `x` whose value is below `n` (`n <= 128`), except that bytes
/// above the lowest such byte may be flagged spuriously: the lowest flagged byte is exact,
/// and the result is 0 exactly when no byte is below `n` ("hasless", Anderson's bit hacks).
#[inline]
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS
}

/// The eight bytes of `c` (exactly eight long) as a little-endian word.
#[inline]
fn word(c: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(c);
    u64::from_le_bytes(w)
}

/// Index of the first ASCII digit of `bytes` at or after `from`.
pub(crate) fn next_digit(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut at = from;
    for c in &mut chunks {
        // `b ^ 0x30` is below 10 exactly for the digits `0x30..=0x39`
        let m = below(word(c) ^ (ONES * 0x30), 10);
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(u8::is_ascii_digit)
        .map(|i| at + i)
}

/// True when `b` is an ASCII control character other than tab, line feed and carriage
/// return (C0 controls and DEL).
#[inline]
pub(crate) fn is_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7F
}

/// True when some byte of `bytes` satisfies [`is_control`].
pub(crate) fn has_control(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let x = word(c);
        // a byte below 0x20, or a DEL (a zero byte of `x ^ 0x7f..`)
        if (below(x, 0x20) | below(x ^ (ONES * 0x7F), 1)) != 0 && c.iter().any(|&b| is_control(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| is_control(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte strings from a fixed xorshift seed, biased towards digits, controls and DEL.
    fn samples() -> Vec<Vec<u8>> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        const SPECIAL: [u8; 12] = [
            b'0', b'9', b'/', b':', 0x00, 0x1F, 0x7F, b'\t', b'\n', b'\r', 0x80, 0xB9,
        ];
        (0..3000)
            .map(|_| {
                let n = (next() % 40) as usize;
                (0..n)
                    .map(|_| match next() % 4 {
                        0 => SPECIAL[(next() % SPECIAL.len() as u64) as usize],
                        _ => b'a' + (next() % 60) as u8,
                    })
                    .collect()
            })
            .collect()
    }

    /// The scans must agree with their byte-by-byte definitions: a skipped digit or control
    /// character would change what PII and normalization see.
    #[test]
    fn scans_match_byte_by_byte_definitions() {
        let (mut digits, mut controls) = (0, 0);
        for s in samples() {
            for from in 0..=s.len() + 1 {
                let want = s
                    .get(from..)
                    .and_then(|r| r.iter().position(u8::is_ascii_digit))
                    .map(|i| from + i);
                assert_eq!(next_digit(&s, from), want, "{s:?} from {from}");
                digits += usize::from(want.is_some());
            }
            let want = s.iter().any(|&b| is_control(b));
            assert_eq!(has_control(&s), want, "{s:?}");
            controls += usize::from(want);
        }
        assert!(digits > 1000 && controls > 1000, "{digits} {controls}");
        assert!(!has_control(b"plain text\twith tab\r\nand more text here"));
        assert!(has_control(b"plain text with a DEL here \x7f"));
        assert_eq!(next_digit(b"abcdefghijklmnop7", 0), Some(16));
    }
}
