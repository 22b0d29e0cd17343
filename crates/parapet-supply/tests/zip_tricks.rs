//! Zip tricks: each is a finding, none crashes the scan or makes it say "clean", and the
//! pickle inside is still found.

mod common;
use common::*;
use parapet_core::Severity;
use parapet_supply::report::exit_code;
use parapet_supply::Format;

fn torch_zip(pkl: &[u8]) -> Vec<Member> {
    vec![
        Member::new("archive/data.pkl", pkl),
        Member::new("archive/byteorder", b"little"),
        Member::new("archive/data/0", &[0x80, 0x02, 0xff, 0xff, 0, 0, 0, 0]),
        Member::new("archive/version", b"3\n"),
    ]
}

#[test]
fn benign_torch_zip_is_clean() {
    let r = scan(&zip(&torch_zip(&torch_state_dict())));
    assert_eq!(r.format, Format::TorchZip);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn pickle_in_any_member_name_is_found() {
    let mut m = torch_zip(&torch_state_dict());
    m.push(Member::new("archive/data/1", &evil()));
    let r = scan(&zip(&m));
    let f = r
        .findings
        .iter()
        .find(|f| f.evidence.as_deref() == Some("os.system"))
        .unwrap();
    assert_eq!(f.location, "archive/data/1");
}

#[test]
fn local_central_name_mismatch() {
    let mut m = torch_zip(&evil());
    m[0].local_name = "archive/data.pk_".into();
    let r = scan(&zip(&m));
    assert!(rules_of(&r).contains(&"zip.name-mismatch"));
    assert!(has(&r, "pickle.dangerous-global", "os.system"));
}

#[test]
fn duplicate_names_scan_both_members() {
    let mut m = torch_zip(&torch_state_dict());
    m.push(Member::new("archive/data.pkl", &evil()));
    let r = scan(&zip(&m));
    assert!(rules_of(&r).contains(&"zip.duplicate-name"));
    assert!(has(&r, "pickle.dangerous-global", "os.system"));
}

#[test]
fn crc_mismatch_is_a_finding_and_content_still_scanned() {
    let mut m = torch_zip(&evil());
    m[0].crc = Some(0xdeadbeef);
    let r = scan(&zip(&m));
    assert!(rules_of(&r).contains(&"zip.crc-mismatch"));
    assert!(has(&r, "pickle.dangerous-global", "os.system"));
}

#[test]
fn encrypted_flag_is_unscannable_never_clean() {
    let mut m = torch_zip(&torch_state_dict());
    m[0].flags = 1;
    let reps = vec![scan(&zip(&m))];
    assert!(rules_of(&reps[0]).contains(&"zip.flags"));
    assert_eq!(exit_code(&reps, Severity::Critical), 2);
    let mut m = torch_zip(&torch_state_dict());
    m[0].flags = 0x2000; // "masked headers": unusual
    assert!(rules_of(&scan(&zip(&m))).contains(&"zip.flags"));
}

#[test]
fn members_outside_the_checkpoint_folder() {
    let mut m = torch_zip(&torch_state_dict());
    m.push(Member::new("other/payload.bin", b"x"));
    m.push(Member::new("../../escape.pkl", &evil()));
    let r = scan(&zip(&m));
    let outside: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "zip.outside-folder")
        .collect();
    assert!(outside
        .iter()
        .any(|f| f.evidence.as_deref() == Some("other/payload.bin")));
    assert!(outside
        .iter()
        .any(|f| f.evidence.as_deref() == Some("../../escape.pkl")));
    assert!(has(&r, "pickle.dangerous-global", "os.system"));
}

#[test]
fn entries_hidden_from_the_central_directory() {
    let mut m = torch_zip(&torch_state_dict());
    let mut hidden = Member::new("archive/extra.pkl", &evil());
    hidden.in_central = false;
    m.insert(1, hidden);
    let r = scan(&zip(&m));
    assert!(
        rules_of(&r).contains(&"zip.hidden-entry"),
        "{:?}",
        r.findings
    );
    assert!(r
        .findings
        .iter()
        .any(|f| f.evidence.as_deref() == Some("os.system") && f.location.starts_with("hidden:")));
}

#[test]
fn truncated_archives_are_errors() {
    let z = zip(&torch_zip(&evil()));
    for cut in [z.len() - 10, z.len() / 2, 40] {
        let r = scan(&z[..cut]);
        let clean = r.findings.is_empty() && r.errors.is_empty();
        assert!(!clean, "cut at {cut} came out clean");
    }
}

#[test]
fn pickle_with_a_zip_appended_is_a_polyglot() {
    let mut b = evil();
    b.extend(zip(&[Member::new(
        "x/data.pkl",
        &P::new().proto(2).global("subprocess", "run").stop().done(),
    )]));
    let r = scan(&b);
    assert!(rules_of(&r).contains(&"format.polyglot"));
    assert!(has(&r, "pickle.dangerous-global", "os.system"));
    assert!(has(&r, "pickle.dangerous-global", "subprocess.run"));
}

#[test]
fn deflated_members_are_inflated() {
    use std::io::Write;
    // Build a one-member zip with method 8 by hand.
    let data = evil();
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&data).unwrap();
    let comp = enc.finish().unwrap();
    let name = b"m/data.pkl";
    let crc = crc32fast::hash(&data);
    let mut z = Vec::new();
    z.extend(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00");
    z.extend(crc.to_le_bytes());
    z.extend((comp.len() as u32).to_le_bytes());
    z.extend((data.len() as u32).to_le_bytes());
    z.extend((name.len() as u16).to_le_bytes());
    z.extend(0u16.to_le_bytes());
    z.extend(name);
    z.extend(&comp);
    let cd_off = z.len() as u32;
    let mut cd = b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00".to_vec();
    cd.extend(crc.to_le_bytes());
    cd.extend((comp.len() as u32).to_le_bytes());
    cd.extend((data.len() as u32).to_le_bytes());
    cd.extend((name.len() as u16).to_le_bytes());
    cd.extend([0u8; 12]);
    cd.extend(0u32.to_le_bytes());
    cd.extend(name);
    z.extend(&cd);
    z.extend(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    z.extend((cd.len() as u32).to_le_bytes());
    z.extend(cd_off.to_le_bytes());
    z.extend(0u16.to_le_bytes());
    let r = scan(&z);
    assert!(
        has(&r, "pickle.dangerous-global", "os.system"),
        "{:?} {:?}",
        r.findings,
        r.errors
    );
    assert!(!rules_of(&r).contains(&"zip.crc-mismatch"));
}

/// Fuzzer find (supply_scan_any, timeout): local headers with no central directory, each a
/// stored member flagged "size in data descriptor", so its data runs to the end of the file
/// and starts with the next header. Every member sniffed as a zip and was scanned in place,
/// re-walking all later headers one level down, six levels deep: C(n, 6) member scans
/// (a 7 KB input ran for minutes). Each header must now be scanned a bounded number of times.
#[test]
fn overlapping_hidden_members_are_not_rescanned_at_every_depth() {
    // 16 headers: before the fix about 26 000 nested scans and as many findings; 40 hung.
    let n = 16u8;
    let mut b = Vec::new();
    for i in 0..n {
        b.extend(b"PK\x03\x04");
        b.extend(20u16.to_le_bytes()); // version
        b.extend(8u16.to_le_bytes()); // flags: sizes in a data descriptor
        b.extend(0u16.to_le_bytes()); // stored
        b.extend([0u8; 4 + 4 + 4 + 4]); // time, date, crc, csize, usize
        b.extend(1u16.to_le_bytes()); // name length
        b.extend(0u16.to_le_bytes()); // extra length
        b.push(b'a' + i); // name: one letter, so each header is its own finding
    }
    assert_eq!(b.len(), 31 * usize::from(n));
    let r = scan(&b);
    assert_eq!(r.format, Format::Zip);
    let hidden: Vec<(&str, &str)> = r
        .findings
        .iter()
        .filter(|f| f.rule == "zip.hidden-entry")
        .map(|f| (f.location.as_str(), f.evidence.as_deref().unwrap_or("")))
        .collect();
    // Each header once at the top level, and once more as the only header of the previous
    // member's data (clipped at that header).
    assert_eq!(hidden.len(), 2 * usize::from(n) - 1, "{hidden:?}");
    assert!(hidden.contains(&("", "p")), "{hidden:?}");
    assert!(hidden.contains(&("hidden:a", "b")), "{hidden:?}");
    assert!(hidden.contains(&("hidden:o", "p")), "{hidden:?}");
}
