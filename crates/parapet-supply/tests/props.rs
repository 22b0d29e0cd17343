//! Property tests: arbitrary bytes never panic; a damaged pickle never comes out clean.

mod common;
use common::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = scan(&b);
    }

    #[test]
    fn arbitrary_bytes_behind_each_magic_never_panic(
        magic in prop::sample::select(vec![
            b"PK\x03\x04".to_vec(), b"\x93NUMPY\x01\x00".to_vec(), b"GGUF\x03\x00\x00\x00".to_vec(),
            vec![0x80, 4], vec![0x78, 0x9c], vec![0x1f, 0x8b, 8], vec![0x08, 0x08], b"{\"a\":".to_vec(),
            b"\x89HDF\r\n\x1a\n".to_vec(), vec![16, 0, 0, 0, 0, 0, 0, 0, b'{'],
        ]),
        rest in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut b = magic;
        b.extend(rest);
        let _ = scan(&b);
    }

    #[test]
    fn truncated_pickles_are_never_clean(cut in 1usize..40) {
        let p = evil();
        let cut = cut.min(p.len() - 1);
        let r = scan(&p[..cut]);
        prop_assert!(!r.errors.is_empty() || !r.findings.is_empty(), "cut {} clean: {:?}", cut, r);
    }

    #[test]
    fn mutated_torch_zips_never_panic_and_keep_the_payload_visible(pos in 0usize..600, byte in any::<u8>()) {
        let mut members = vec![Member::new("archive/data.pkl", &evil()), Member::new("archive/version", b"3\n")];
        members[1].data.extend([0u8; 16]);
        let mut z = zip(&members);
        let pos = pos % z.len();
        z[pos] = byte;
        let r = scan(&z);
        // Whatever byte changed, the archive is never reported clean without an error.
        prop_assert!(!(r.findings.is_empty() && r.errors.is_empty()), "pos {} byte {}: clean", pos, byte);
    }
}

/// Found by the proptest below: `{` (EMPTY_DICT) as the first byte of `data.pkl` made the member
/// sniff as JSON and the archive clean, although `torch.load` still runs the pickle.
#[test]
fn a_pkl_member_starting_with_a_brace_is_still_scanned_as_a_pickle() {
    let members = vec![
        Member::new("archive/data.pkl", &evil()),
        Member::new("archive/version", b"3\n"),
    ];
    let mut z = zip(&members);
    // the member's data starts right after the 30-byte local header and its 16-byte name
    assert_eq!(z[46], 0x80);
    z[46] = b'{';
    let r = scan(&z);
    assert!(!r.findings.is_empty(), "{r:?}");
}
