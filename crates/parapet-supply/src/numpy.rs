//! NumPy `.npy` (format spec: `numpy/lib/format.py`, versions 1.0–3.0): the header dict is
//! checked for an object dtype, whose data section is a pickle (loaded when
//! `allow_pickle=True`); that pickle is scanned.

use crate::finding::Ctx;
use std::io::Read;

/// Largest header accepted (NumPy itself defaults `max_header_size` to 10 000).
pub const MAX_HEADER: u64 = 1 << 20;

/// True when the header's `descr` holds an object type code (`|O`, `O`, `O8`, also inside a
/// structured dtype list).
pub fn header_has_object(header: &str) -> bool {
    let mut parts = header.split(['\'', '"']).skip(1).step_by(2);
    parts.any(|s| {
        let s = s.trim_start_matches(['<', '>', '|', '=']);
        s.starts_with('O') && s[1..].bytes().all(|b| b.is_ascii_digit())
    })
}

/// Scans a `.npy` stream positioned at its magic string.
pub fn scan_npy(r: &mut dyn Read, ctx: &mut Ctx<'_>) {
    let mut head = [0u8; 8];
    if r.read_exact(&mut head).is_err() || &head[..6] != b"\x93NUMPY" {
        ctx.report(
            "numpy.malformed",
            Some(0),
            "truncated .npy magic".into(),
            None,
        );
        ctx.error(".npy unreadable");
        return;
    }
    let major = head[6];
    let hlen = match major {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map(|_| u16::from_le_bytes(b) as u64)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map(|_| u32::from_le_bytes(b) as u64)
        }
        v => {
            ctx.report(
                "numpy.malformed",
                Some(6),
                format!("unknown .npy version {v}"),
                None,
            );
            ctx.error(".npy version not supported");
            return;
        }
    };
    let Ok(hlen) = hlen else {
        ctx.report(
            "numpy.malformed",
            Some(8),
            "truncated .npy header length".into(),
            None,
        );
        ctx.error(".npy unreadable");
        return;
    };
    if hlen > MAX_HEADER {
        ctx.report(
            "numpy.malformed",
            Some(8),
            format!("header of {hlen} bytes exceeds {MAX_HEADER}"),
            None,
        );
        ctx.error(".npy header too large");
        return;
    }
    let mut h = Vec::new();
    if r.take(hlen).read_to_end(&mut h).is_err() || h.len() as u64 != hlen {
        ctx.report(
            "numpy.malformed",
            Some(10),
            "truncated .npy header".into(),
            None,
        );
        ctx.error(".npy unreadable");
        return;
    }
    let header = String::from_utf8_lossy(&h);
    if !header.contains("descr") {
        ctx.report(
            "numpy.malformed",
            Some(10),
            "header has no 'descr' key".into(),
            None,
        );
    }
    if header_has_object(&header) {
        let descr: String = header.chars().take(200).collect();
        ctx.report(
            "numpy.object-dtype",
            Some(0),
            "array with object dtype: its data is a pickle, loaded with allow_pickle=True".into(),
            Some(descr.trim().to_string()),
        );
        crate::pickle::scan_stream(std::io::BufReader::new(r), ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::header_has_object;

    #[test]
    fn object_detection() {
        assert!(header_has_object(
            "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"
        ));
        assert!(header_has_object(
            "{'descr': [('a', '<f4'), ('b', 'O')], 'shape': (2,)}"
        ));
        assert!(!header_has_object(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
        ));
    }
}
