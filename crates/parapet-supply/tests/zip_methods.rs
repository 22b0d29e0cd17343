//! Zip members compressed with LZMA (method 14) and zstd (method 93) are decompressed and
//! scanned; corrupt or oversized ones are findings and errors, never clean. The compressed
//! bytes are produced in the test with lzma-rs / ruzstd encoders.
mod common;

use common::{evil, rules_of, scan, zip, Member};
use parapet_core::Severity;

/// Zip LZMA member body (APPNOTE 5.8.8): version 9.20, properties size 5, properties,
/// raw LZMA stream with an end-of-stream marker (general-purpose flag bit 1).
fn lzma(data: &[u8]) -> Vec<u8> {
    let mut alone = Vec::new();
    let opts = lzma_rs::compress::Options {
        unpacked_size: lzma_rs::compress::UnpackedSize::SkipWritingToHeader,
    };
    lzma_rs::lzma_compress_with_options(&mut &data[..], &mut alone, &opts).unwrap();
    let mut out = vec![9, 20, 5, 0];
    out.extend(alone);
    out
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

fn torch_zip(method: u16, body: Vec<u8>, data: &[u8]) -> Vec<u8> {
    let mut m = Member::packed("archive/data.pkl", data, method, body);
    if method == 14 {
        m.flags = 2;
    }
    zip(&[m, Member::new("archive/version", b"3\n")])
}

#[test]
fn lzma_and_zstd_members_are_scanned() {
    let p = evil();
    for (method, body) in [(14u16, lzma(&p)), (93, zstd(&p))] {
        let r = scan(&torch_zip(method, body, &p));
        assert!(r.errors.is_empty(), "method {method}: {:?}", r.errors);
        let f = r
            .findings
            .iter()
            .find(|f| f.rule == "pickle.dangerous-global")
            .unwrap_or_else(|| panic!("method {method}: {:?}", r.findings));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.location, "archive/data.pkl");
    }
}

#[test]
fn benign_lzma_and_zstd_members_are_clean() {
    let p = b"\x80\x02}q\x00.".to_vec(); // an empty dict
    for (method, body) in [(14u16, lzma(&p)), (93, zstd(&p))] {
        let r = scan(&torch_zip(method, body, &p));
        assert!(r.errors.is_empty(), "method {method}: {:?}", r.errors);
        assert!(r.findings.is_empty(), "method {method}: {:?}", r.findings);
    }
}

#[test]
fn corrupt_or_unknown_methods_are_never_clean() {
    let p = evil();
    let mut bad = zstd(&p);
    let n = bad.len();
    bad[n / 2] ^= 0xff;
    bad.truncate(n - 3);
    let mut bad_lzma = lzma(&p);
    bad_lzma[2] = 9; // properties size 9
    for (method, body) in [(93u16, bad), (14, bad_lzma), (98, p.clone())] {
        let r = scan(&torch_zip(method, body, &p));
        assert!(!r.errors.is_empty(), "method {method}: no error");
    }
    // an LZMA member declaring more than the in-memory limit (no EOS flag)
    let mut m = Member::packed("archive/data.pkl", &p, 14, lzma(&p));
    m.flags = 0;
    let mut z = zip(&[m]);
    // patch the uncompressed size in the central directory to 3 GiB
    let cd = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    z[cd + 24..cd + 28].copy_from_slice(&(3u32 << 30).to_le_bytes());
    let r = scan(&z);
    assert!(rules_of(&r).contains(&"zip.bomb"), "{:?}", r.findings);
    assert!(!r.errors.is_empty());
}
