//! Check-digit algorithms for PII formats: payment cards, national ids, tax ids.
//!
//! Every function takes the candidate text as matched (separators included), returns `true`
//! only when the format AND its check digit hold, and never panics on any input.

/// Decimal digits of `s` in order, skipping everything else.
pub(crate) fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// Luhn (mod 10) check over `d` (ISO/IEC 7812-1 Annex B).
pub(crate) fn luhn(d: &[u8]) -> bool {
    if d.len() < 2 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum % 10 == 0
}

/// Payment card number: 13–19 digits, a known issuer prefix (ISO/IEC 7812 IIN ranges of
/// Visa, Mastercard 51–55 and 2221–2720, American Express, Discover, JCB, Diners Club,
/// UnionPay, Maestro, Mir) and a valid Luhn check digit.
pub(crate) fn credit_card(s: &str) -> bool {
    let d = digits(s);
    if !(13..=19).contains(&d.len()) || !luhn(&d) {
        return false;
    }
    let prefix = |n: usize| -> u32 { d.iter().take(n).fold(0, |a, &x| a * 10 + u32::from(x)) };
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    p1 == 4 // Visa
        || (51..=55).contains(&p2) // Mastercard
        || (2221..=2720).contains(&p4) // Mastercard 2-series
        || p2 == 34 || p2 == 37 // American Express
        || p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) // Discover
        || (3528..=3589).contains(&p4) // JCB
        || p2 == 36 || p2 == 38 || (300..=305).contains(&p3) // Diners Club
        || p2 == 62 // UnionPay
        || p2 == 50 || (56..=69).contains(&p2) // Maestro
        || (2200..=2204).contains(&p4) // Mir
}

/// IBAN: ISO 13616 structure for the country (length and BBAN format) and the ISO 7064
/// MOD 97-10 check digits, via the `iban_validate` crate.
pub(crate) fn iban(s: &str) -> bool {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    compact.len() <= 34 && compact.parse::<iban::Iban>().is_ok()
}

/// US Social Security Number: area not 000, 666 or 900–999; group not 00; serial not 0000
/// (SSA numbering rules); all-same-digit numbers rejected.
pub(crate) fn us_ssn(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 9 || d.iter().all(|&x| x == d[0]) {
        return false;
    }
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = d[3] * 10 + d[4];
    let serial = d[5..].iter().all(|&x| x == 0);
    area != 0 && area != 666 && area < 900 && group != 0 && !serial
}

/// UK NHS number: 10 digits, weights 10..2 over the first nine, check = 11 − (sum mod 11),
/// 11 → 0, 10 → invalid (NHS Data Dictionary).
pub(crate) fn uk_nhs(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 10 {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, &x)| u32::from(x) * (10 - i as u32))
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    check == u32::from(d[9])
}

/// UK National Insurance number: two prefix letters (not D, F, I, Q, U, V; second not O;
/// not the prefixes BG, GB, KN, NK, NT, TN, ZZ), six digits, suffix A–D (HMRC NIM39110).
pub(crate) fn uk_nino(s: &str) -> bool {
    let c: Vec<char> = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if c.len() != 9 {
        return false;
    }
    let (a, b) = (c[0], c[1]);
    let bad = |x: char| "DFIQUV".contains(x);
    let prefix: String = [a, b].iter().collect();
    a.is_ascii_uppercase()
        && b.is_ascii_uppercase()
        && !bad(a)
        && !bad(b)
        && b != 'O'
        && !["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&prefix.as_str())
        && c[2..8].iter().all(char::is_ascii_digit)
        && ('A'..='D').contains(&c[8])
}

/// German tax identification number (Steuer-ID, § 139b AO): 11 digits, first not 0; in the
/// first ten digits exactly one digit occurs two or three times (a triple never adjacent
/// three times in a row) and every other digit at most once; the last digit is the ISO/IEC
/// 7064 MOD 11,10 check digit over the first ten.
pub(crate) fn de_tax_id(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[usize::from(x)] += 1;
    }
    let multi: Vec<u8> = counts.iter().copied().filter(|&n| n > 1).collect();
    if multi.len() != 1 || multi[0] > 3 {
        return false;
    }
    if multi[0] == 3 && d[..10].windows(3).any(|w| w[0] == w[1] && w[1] == w[2]) {
        return false;
    }
    iso7064_mod11_10(&d[..10]) == d[10]
}

/// ISO/IEC 7064 MOD 11,10 check digit of `d`.
pub(crate) fn iso7064_mod11_10(d: &[u8]) -> u8 {
    let mut product: u32 = 10;
    for &x in d {
        let mut sum = (u32::from(x) + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = 11 - product;
    if check == 10 {
        0
    } else {
        check as u8
    }
}

/// French social security number (NIR, INSEE): 13 characters (sex, year, month, département
/// with Corsica `2A`/`2B`, commune, order) plus a 2-digit key = 97 − (number mod 97), where
/// `2A` counts as 19 and `2B` as 18.
pub(crate) fn fr_nir(s: &str) -> bool {
    let c: Vec<char> = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if c.len() != 15 || !matches!(c[0], '1' | '2' | '3' | '7' | '8') {
        return false;
    }
    let body: String = c[..13].iter().collect();
    let body = match (c[5], c[6]) {
        ('2', 'A') => format!("{}19{}", &body[..5], &body[7..]),
        ('2', 'B') => format!("{}18{}", &body[..5], &body[7..]),
        _ => body,
    };
    if !body.bytes().all(|b| b.is_ascii_digit()) || !c[13..].iter().all(char::is_ascii_digit) {
        return false;
    }
    let month = (c[3] as u32 - '0' as u32) * 10 + (c[4] as u32 - '0' as u32);
    if !(1..=12).contains(&month) && !(20..=42).contains(&month) && month != 99 {
        return false;
    }
    let Ok(n) = body.parse::<u64>() else {
        return false;
    };
    let key = (c[13] as u64 - '0' as u64) * 10 + (c[14] as u64 - '0' as u64);
    97 - n % 97 == key
}

/// Spanish DNI/NIF: 8 digits and the control letter `TRWAGMYFPDXBNJZSQVHLCKE`[n mod 23].
pub(crate) fn es_nif(s: &str) -> bool {
    let c: Vec<char> = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if c.len() != 9 || !c[..8].iter().all(char::is_ascii_digit) {
        return false;
    }
    let n: String = c[..8].iter().collect();
    es_letter(&n) == Some(c[8])
}

/// Spanish NIE: X, Y or Z (read as 0, 1, 2), 7 digits and the same control letter as the NIF.
pub(crate) fn es_nie(s: &str) -> bool {
    let c: Vec<char> = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if c.len() != 9 || !c[1..8].iter().all(char::is_ascii_digit) {
        return false;
    }
    let lead = match c[0] {
        'X' => '0',
        'Y' => '1',
        'Z' => '2',
        _ => return false,
    };
    let n: String = std::iter::once(lead)
        .chain(c[1..8].iter().copied())
        .collect();
    es_letter(&n) == Some(c[8])
}

fn es_letter(n: &str) -> Option<char> {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let v: u64 = n.parse().ok()?;
    Some(char::from(LETTERS[(v % 23) as usize]))
}

/// Italian fiscal code (codice fiscale, DM 23/12/1976): 16 characters, control character
/// from the odd/even position tables; omocodia letters (`LMNPQRSTUV`) accepted in digit
/// positions.
pub(crate) fn it_fiscal_code(s: &str) -> bool {
    const ODD: [u32; 36] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, // 0-9
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23, // A-Z
    ];
    let c: Vec<char> = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if c.len() != 16 {
        return false;
    }
    let letter = |i: usize| c[i].is_ascii_uppercase();
    let digitish = |i: usize| c[i].is_ascii_digit() || "LMNPQRSTUV".contains(c[i]);
    let shape = (0..6).all(letter)
        && digitish(6)
        && digitish(7)
        && letter(8)
        && digitish(9)
        && digitish(10)
        && letter(11)
        && (12..15).all(digitish)
        && letter(15);
    if !shape || !"ABCDEHLMPRST".contains(c[8]) {
        return false;
    }
    let idx = |ch: char| -> usize {
        if ch.is_ascii_digit() {
            ch as usize - '0' as usize
        } else {
            ch as usize - 'A' as usize + 10
        }
    };
    let mut sum = 0u32;
    for (i, &ch) in c[..15].iter().enumerate() {
        let k = idx(ch);
        sum += if i % 2 == 0 {
            ODD[k]
        } else if ch.is_ascii_digit() {
            k as u32
        } else {
            (k - 10) as u32
        };
    }
    char::from(b'A' + (sum % 26) as u8) == c[15]
}

/// Dutch citizen service number (BSN): 9 digits passing the "11-proof"
/// 9·d1 + 8·d2 + … + 2·d8 − 1·d9 ≡ 0 (mod 11), not all zero.
pub(crate) fn nl_bsn(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 9 || d.iter().all(|&x| x == 0) {
        return false;
    }
    let mut sum: i32 = d[..8]
        .iter()
        .enumerate()
        .map(|(i, &x)| i32::from(x) * (9 - i as i32))
        .sum();
    sum -= i32::from(d[8]);
    sum % 11 == 0
}

/// Austrian social insurance number (Sozialversicherungsnummer): 10 digits, serial (3),
/// check digit (1), birth date DDMMYY (6); check = Σ digit·(3,7,9,·,5,8,4,2,1,6) mod 11,
/// 10 invalid; the serial does not start with 0.
pub(crate) fn at_svnr(s: &str) -> bool {
    const W: [u32; 10] = [3, 7, 9, 0, 5, 8, 4, 2, 1, 6];
    let d = digits(s);
    if d.len() != 10 || d[0] == 0 {
        return false;
    }
    let sum: u32 = d.iter().zip(W).map(|(&x, w)| u32::from(x) * w).sum();
    let check = sum % 11;
    let day = d[4] * 10 + d[5];
    let month = d[6] * 10 + d[7];
    // Austria uses months 13–15 and day 00 for unknown birth dates.
    check != 10 && check == u32::from(d[3]) && day <= 31 && (1..=15).contains(&month)
}

/// Swiss AHV/AVS number (AHVN13): 13 digits starting with 756 (the ISO 3166 code of
/// Switzerland) with an EAN-13 (GS1 mod 10) check digit.
pub(crate) fn ch_ahv(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 13 || d[..3] != [7, 5, 6] {
        return false;
    }
    let sum: u32 = d[..12]
        .iter()
        .enumerate()
        .map(|(i, &x)| u32::from(x) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    (10 - sum % 10) % 10 == u32::from(d[12])
}

/// Calendar date sanity: month 1–12, day 1–31 (1–29 in February), year 1000–2999, read from
/// the digit groups of a DATE_TIME candidate in ISO (`y-m-d`) or day-first/month-first order.
pub(crate) fn date(s: &str) -> bool {
    let groups: Vec<u32> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .filter_map(|g| if g.len() <= 4 { g.parse().ok() } else { None })
        .collect();
    let ok = |d: u32, m: u32| (1..=12).contains(&m) && (1..=31).contains(&d) && !(m == 2 && d > 29);
    let year = |y: u32| (1000..=2999).contains(&y) || y < 100;
    match groups.as_slice() {
        [y, m, d, ..] if *y >= 1000 => year(*y) && ok(*d, *m),
        [a, b, y, ..] => year(*y) && (ok(*a, *b) || ok(*b, *a)),
        // textual month (`12 March 2024`): only the day and the year are digits
        [d, y] => (1..=31).contains(d) && year(*y),
        [y] => (1000..=2999).contains(y),
        _ => false,
    }
}
