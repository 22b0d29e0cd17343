//! One positive and one negative case per validator (values are published test numbers or
//! computed here, never real people's data).

use super::checksum::*;
use super::crypto::*;

#[test]
fn luhn_and_card_prefixes() {
    assert!(credit_card("4111 1111 1111 1111"));
    assert!(credit_card("4111-1111-1111-1111-110")); // 19-digit Visa
    assert!(credit_card("2221 0000 0000 0009")); // Mastercard 2-series, low end
    assert!(credit_card("2720-1234-5678-9010")); // Mastercard 2-series, high end
    assert!(credit_card("3782 822463 10005")); // Amex 4-6-5
    assert!(!credit_card("4111 1111 1111 1112")); // Luhn fails
    assert!(!credit_card("1111 1111 1111 1117")); // Luhn ok, no issuer starts with 1
    assert!(!credit_card("4111 1111 1111")); // 12 digits
}

#[test]
fn iban_mod97() {
    assert!(iban("DE89 3704 0044 0532 0130 00"));
    assert!(iban("GB82WEST12345698765432"));
    assert!(!iban("DE89 3704 0044 0532 0130 01")); // check digits fail
    assert!(!iban("DE89 3704 0044 0532 0130")); // wrong length for DE
}

#[test]
fn us_ssn_rules() {
    assert!(us_ssn("536-90-4399"));
    assert!(!us_ssn("666-12-3456")); // area 666 never issued
    assert!(!us_ssn("123-00-4567")); // group 00
    assert!(!us_ssn("900-12-3456")); // area 9xx (ITIN range)
}

#[test]
fn uk_nhs_mod11() {
    assert!(uk_nhs("943 476 5919"));
    assert!(!uk_nhs("943 476 5918"));
}

#[test]
fn uk_nino_prefixes() {
    assert!(uk_nino("AB 12 34 56 C"));
    assert!(!uk_nino("GB123456A")); // GB prefix not allocated
    assert!(!uk_nino("DA123456A")); // D never used as first letter
    assert!(!uk_nino("AB123456E")); // suffix A-D only
}

#[test]
fn de_tax_id_iso7064_and_repetition() {
    assert_eq!(iso7064_mod11_10(&[8, 6, 0, 9, 5, 7, 4, 2, 7, 1]), 9);
    assert!(de_tax_id("86095742719"));
    assert!(de_tax_id("47 036 892 816"));
    assert!(!de_tax_id("86095742718")); // check digit
    assert!(!de_tax_id("12345678903")); // no repeated digit in the first ten
    assert!(!de_tax_id("06095742719")); // leading zero
    assert!(!de_tax_id("11145678901")); // triple digit adjacent (and check irrelevant)
}

#[test]
fn fr_nir_key() {
    assert!(fr_nir("1 85 05 78 006 048 30"));
    assert!(fr_nir("2 85 07 2A 006 048 53")); // Corsica: 2A counts as 19
    assert!(!fr_nir("1 85 05 78 006 048 31"));
    assert!(!fr_nir("1 85 13 78 006 048 30")); // month 13 invalid (key irrelevant)
}

#[test]
fn es_nif_nie_letters() {
    assert!(es_nif("12345678Z"));
    assert!(es_nif("12345678-z"));
    assert!(!es_nif("12345678A"));
    assert!(es_nie("X1234567L"));
    assert!(!es_nie("X1234567T"));
    assert!(!es_nie("A1234567L"));
}

#[test]
fn it_fiscal_code_control_char() {
    assert!(it_fiscal_code("RSSMRA85T10A562S"));
    assert!(!it_fiscal_code("RSSMRA85T10A562T"));
    assert!(!it_fiscal_code("RSSMRA85Z10A562S")); // Z is not a month letter
}

#[test]
fn nl_bsn_eleven_proof() {
    assert!(nl_bsn("111222333"));
    assert!(nl_bsn("1234.56.782"));
    assert!(!nl_bsn("123456789"));
    assert!(!nl_bsn("000000000"));
}

#[test]
fn at_svnr_check_digit() {
    assert!(at_svnr("1237 010180"));
    assert!(!at_svnr("1238 010180")); // check digit
    assert!(!at_svnr("1237 013280")); // day 01, month 32 -> invalid date (check irrelevant)
}

#[test]
fn ch_ahv_ean13() {
    assert!(ch_ahv("756.1234.5678.97"));
    assert!(ch_ahv("756.9217.0769.85"));
    assert!(!ch_ahv("756.1234.5678.98"));
    assert!(!ch_ahv("757.1234.5678.97")); // not the Swiss prefix
}

#[test]
fn dates() {
    assert!(date("2024-02-29"));
    assert!(date("31.12.1999"));
    assert!(date("12 March 2024"));
    assert!(!date("2024-13-01"));
    assert!(!date("2024-02-30"));
    assert!(!date("45.45.2020"));
}

#[test]
fn bitcoin_base58check() {
    assert!(btc_base58check("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"));
    assert!(btc_base58check("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
    assert!(!btc_base58check("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"));
    assert!(!btc_base58check("1A1zP1eP5QGefi2DMPTfTL5SLmv7Divf0a")); // 0 not in alphabet
}

#[test]
fn bitcoin_bech32_and_bech32m() {
    assert!(btc_bech32("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"));
    assert!(btc_bech32("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"));
    assert!(btc_bech32(
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
    ));
    assert!(!btc_bech32("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5")); // checksum
    assert!(!btc_bech32("bc1Qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")); // mixed case
                                                                        // a v1 program with a Bech32 (not Bech32m) checksum is invalid (BIP-350)
    assert!(!btc_bech32(
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj1"
    ));
}

#[test]
fn ethereum_eip55() {
    // EIP-55 test vectors
    for a in [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ] {
        assert_eq!(eth_eip55(a), AddrCheck::Checksum, "{a}");
    }
    assert_eq!(
        eth_eip55("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
        AddrCheck::FormatOnly
    );
    assert_eq!(
        eth_eip55("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        AddrCheck::Invalid
    );
    assert_eq!(
        eth_eip55("0x5aAeb6053F3E94C9b9A09f3366"),
        AddrCheck::Invalid
    );
}

#[test]
fn email_ipv6_and_phone_validators() {
    use super::rules::{phone, valid_email, valid_ipv6, Outcome};
    use phonenumber::country::Id;
    assert!(valid_email("jean.dupont@example.fr"));
    assert!(!valid_email("jean..dupont@example.fr"));
    assert!(!valid_email("a@example.c0m"));
    assert!(valid_ipv6("2001:db8::8a2e:370:7334"));
    assert!(!valid_ipv6("d::")); // one group: code like `std::`, not an address
    assert!(!valid_ipv6("12:30:45"));
    let regions = [Id::US, Id::GB, Id::DE];
    assert_eq!(phone("+44 20 7946 0958", &regions), Outcome::Strong);
    assert_eq!(phone("0044 20 7946 0958", &regions), Outcome::Strong);
    assert_eq!(phone("030 12345678", &regions), Outcome::Weak); // valid in DE
    assert_eq!(phone("+44 20 7946", &regions), Outcome::Reject); // too short for GB
    assert_eq!(phone("12345", &regions), Outcome::Reject);
}

/// The per-region pre-filter must never reject a number that libphonenumber accepts for that
/// region (it only saves parse calls), and it must reject shapes that cannot be national
/// numbers of a region.
#[test]
fn phone_region_prefilter_is_a_necessary_condition() {
    use super::rules::could_be_national;
    use phonenumber::country::Id;
    let regions = [
        Id::US,
        Id::GB,
        Id::DE,
        Id::FR,
        Id::ES,
        Id::IT,
        Id::NL,
        Id::AT,
        Id::CH,
    ];
    // National-form numbers valid in their region (libphonenumber example numbers).
    let valid = [
        (Id::US, "2015550123"),
        (Id::US, "12015550123"),
        (Id::GB, "02079460958"),
        (Id::GB, "07400123456"),
        (Id::DE, "03012345678"),
        (Id::DE, "015123456789"),
        (Id::FR, "0123456789"),
        (Id::FR, "0612345678"),
        (Id::ES, "612345678"),
        (Id::ES, "810123456"),
        (Id::IT, "0212345678"),
        (Id::IT, "3123456789"),
        (Id::NL, "0101234567"),
        (Id::NL, "0612345678"),
        (Id::AT, "0664123456"),
        (Id::AT, "01234567890"),
        (Id::CH, "0212345678"),
        (Id::CH, "0781234567"),
    ];
    for (r, n) in valid {
        let parsed = phonenumber::parse(Some(r), n).map(|p| p.is_valid());
        assert_eq!(
            parsed.ok(),
            Some(true),
            "fixture {n} must be valid in {r:?}"
        );
        assert!(could_be_national(n, r), "{n} rejected for {r:?}");
    }
    // Exhaustive cross-check on numbers built from every region's shapes: whenever parsing
    // in a region gives a valid number, the pre-filter keeps that region.
    for (_, n) in valid {
        for r in regions {
            let ok = phonenumber::parse(Some(r), n).is_ok_and(|p| p.is_valid());
            if ok {
                assert!(
                    could_be_national(n, r),
                    "{n} valid in {r:?} but pre-filtered"
                );
            }
        }
    }
    // Shapes that cannot be national numbers: wrong length for FR/CH, US area code 0/1,
    // a Spanish number cannot start with 0.
    assert!(!could_be_national("01234567", Id::FR));
    assert!(!could_be_national("0123456", Id::CH));
    assert!(!could_be_national("0125550123", Id::US));
    assert!(!could_be_national("0532013000", Id::ES));
}
