//! Phone-number validity from libphonenumber metadata (the `phonenumber` crate), with the
//! metadata's patterns compiled once and kept.
//!
//! `phonenumber` looks every pattern up in one mutex-guarded LRU cache of 100 regexes keyed
//! by the pattern text, so each check hashes a pattern of up to several hundred bytes and
//! takes a global lock; a validation touches ~10 patterns, ~3 times over. Measured with
//! callgrind, that was ~2k instructions of hashing per pattern lookup, ~170k per phone number
//! and 40 % of an engine scan of a 1 KB prompt with three phone numbers. [`is_valid`] and
//! [`general_match`] are the same checks as `PhoneNumber::is_valid`
//! (`validator::is_valid_with`, `source_for`, `number_type`) and `Descriptor::is_match`, over
//! patterns compiled here on first use and kept (at most one per distinct metadata pattern);
//! the test `fast_validity_agrees_with_phonenumber` compares them with the crate on many
//! numbers. `phonenumber::parse` still goes through the crate's cache.

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use phonenumber::PhoneNumber;
use regex::{Regex, RegexBuilder};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// Compiled patterns by the address of their source text (the metadata database is a
/// static, so its strings never move); `None` where a pattern failed to compile.
type Compiled = HashMap<usize, Option<Arc<Regex>>>;

fn compiled() -> &'static RwLock<Compiled> {
    static C: OnceLock<RwLock<Compiled>> = OnceLock::new();
    C.get_or_init(|| RwLock::new(HashMap::new()))
}

/// True when `value` matches `source` (a metadata pattern, compiled in the crate's
/// `ignore_whitespace` mode) starting at its first byte, like `CachedRegex::find` with
/// `start() == 0`. `None` if the pattern does not compile here.
fn prefix_match(source: &'static str, value: &str) -> Option<bool> {
    let key = source.as_ptr() as usize;
    let hit = compiled().read().ok().and_then(|m| m.get(&key).cloned());
    let re = match hit {
        Some(re) => re,
        None => {
            // the closing parenthesis on its own line: an `x`-mode comment cannot swallow it
            let re = RegexBuilder::new(&format!("^(?:{source}\n)"))
                .ignore_whitespace(true)
                .build()
                .ok()
                .map(Arc::new);
            if let Ok(mut m) = compiled().write() {
                m.insert(key, re.clone());
            }
            re
        }
    };
    re.map(|r| r.is_match(value))
}

/// `Descriptor::is_match`: a possible length (when the descriptor lists any) and the
/// national-number pattern matching from the start.
fn desc_match(d: &'static Descriptor, value: &str) -> bool {
    let lengths = d.possible_length();
    if !lengths.is_empty() && !lengths.contains(&(value.len() as u16)) {
        return false;
    }
    match prefix_match(d.national_number().as_str(), value) {
        Some(m) => m,
        None => d.is_match(value),
    }
}

/// `Descriptor::is_match` of the region's general descriptor.
pub(crate) fn general_match(meta: &'static Metadata, value: &str) -> bool {
    desc_match(meta.descriptors().general(), value)
}

/// `number_type(meta, value) != Type::Unknown`: the general pattern matches and so does one
/// of the typed descriptors.
fn has_type(meta: &'static Metadata, value: &str) -> bool {
    let d = meta.descriptors();
    if !desc_match(d.general(), value) {
        return false;
    }
    [
        d.premium_rate(),
        d.toll_free(),
        d.shared_cost(),
        d.voip(),
        d.personal_number(),
        d.pager(),
        d.uan(),
        d.voicemail(),
        d.fixed_line(),
        d.mobile(),
    ]
    .into_iter()
    .flatten()
    .any(|x| desc_match(x, value))
}

/// The metadata that decides validity for `code` and `national` (`validator::source_for`).
fn source_for(code: u16, national: &str) -> Option<&'static Metadata> {
    let regions = DATABASE.region(&code)?;
    if let [only] = regions.as_slice() {
        return if *only == "001" {
            DATABASE.by_code(&code)?.into_iter().next()
        } else {
            DATABASE.by_id(*only)
        };
    }
    for region in regions {
        let meta = DATABASE.by_id(region)?;
        let hit = match meta.leading_digits() {
            Some(p) => match prefix_match(p.as_str(), national) {
                Some(m) => m,
                None => p.find(national).is_some_and(|m| m.start() == 0),
            },
            None => has_type(meta, national),
        };
        if hit {
            return Some(meta);
        }
    }
    None
}

/// `phonenumber::parse(None, v)` for a number in international form (`+` and the country
/// code), without the crate's region lookup.
///
/// Without a region, the crate finds the region of a shared country code (`+1` has ~25) with
/// `validator::source_for`, which runs each candidate region's patterns through its global
/// pattern cache: ~50k instructions per `+1` number (callgrind), most of the PII detector's
/// cost on a 1 KB prompt. Here the region is found by [`source_for`] over the patterns kept
/// in this module, and the crate parses with that region given, which takes the same steps
/// from then on. Given a region, the crate would also strip the region's international
/// (IDD) prefix after the `+`, so a number whose digits start with it, a non-geographic
/// code (`001`) and any character outside the PII rule's phone alphabet
/// (`+`, digits, ` -./()`) go through `phonenumber::parse(None, v)` unchanged. The test
/// `international_parse_agrees_with_phonenumber` compares both on several hundred numbers.
///
/// # Errors
/// The crate's parse error.
pub(crate) fn parse_international(v: &str) -> Result<PhoneNumber, phonenumber::ParseError> {
    match region_of_international(v) {
        Some(region) => phonenumber::parse(Some(region), v),
        None => phonenumber::parse(None, v),
    }
}

/// The region `phonenumber::parse(None, v)` would settle on for `v`, when giving it to the
/// crate is known to change nothing else (see [`parse_international`]); `None` otherwise.
fn region_of_international(v: &str) -> Option<phonenumber::country::Id> {
    let rest = v.strip_prefix('+')?;
    if !rest
        .bytes()
        .all(|b| b.is_ascii_digit() || b" -./()".contains(&b))
    {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if digits.starts_with('0') || digits.len() <= 3 {
        return None;
    }
    // the crate's country code: the shortest prefix (1–3 digits) the database knows
    let (code, national) = (1..=3).find_map(|len| {
        let code: u16 = digits.get(..len)?.parse().ok()?;
        DATABASE
            .by_code(&code)
            .map(|_| (code, digits.get(len..).unwrap_or_default()))
    })?;
    let meta = source_for(code, national.trim_start_matches('0'))?;
    if meta.id() == "001" {
        return None;
    }
    if let Some(idd) = meta.international_prefix() {
        if prefix_match(idd.as_str(), &digits) != Some(false) {
            return None;
        }
    }
    meta.id().parse().ok()
}

/// `PhoneNumber::is_valid`, with the patterns compiled here.
pub(crate) fn is_valid(p: &PhoneNumber) -> bool {
    let national = p.national().to_string();
    source_for(p.country().code(), &national).is_some_and(|meta| has_type(meta, &national))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers in international form across regions with one and several regions per code.
    fn international_numbers() -> Vec<String> {
        let mut numbers: Vec<String> = [
            "+44 20 7946 0958",
            "+44 7912 345678",
            "+1 650 253 0000",
            "+1 2530000",
            "+49 30 12345678",
            "+33 6 12 34 56 78",
            "+39 02 3661 8300",
            "+7 912 345 67 89",
            "+800 1234 5678",
            "+979 123456789",
            "+64 21 387 835",
            "+44 1481 123456",
            "+44 1624 123456",
            "+1 441 123 4567",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // a deterministic spread of country codes and subscriber digits
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let cc = [
                1, 7, 20, 31, 33, 34, 39, 41, 43, 44, 49, 61, 81, 86, 91, 262, 590, 599,
            ][(x % 18) as usize];
            let len = 6 + (x >> 8) % 7;
            let digits: String = (0..len)
                .map(|i| char::from(b'0' + ((x >> (16 + 3 * i)) % 10) as u8))
                .collect();
            numbers.push(format!("+{cc} {digits}"));
        }
        numbers
    }

    #[test]
    fn fast_validity_agrees_with_phonenumber() {
        let numbers = international_numbers();
        let (mut valid, mut checked) = (0, 0);
        for n in &numbers {
            if let Ok(p) = phonenumber::parse(None, n) {
                checked += 1;
                let want = p.is_valid();
                valid += usize::from(want);
                assert_eq!(is_valid(&p), want, "{n}");
            }
        }
        assert!(
            checked > 300 && valid >= 10,
            "checked {checked}, valid {valid}"
        );
    }

    #[test]
    fn international_parse_agrees_with_phonenumber() {
        let mut numbers = international_numbers();
        // the separators the PII rule lets through, a trunk `(0)`, IDD-looking digits after
        // the plus, non-geographic codes, and shapes the fast path must hand to the crate
        let shaped: Vec<String> = numbers
            .iter()
            .take(120)
            .flat_map(|n| {
                let d: String = n.chars().filter(char::is_ascii_digit).collect();
                let (a, b) = d.split_at(d.len() / 2);
                [
                    format!("+{d}"),
                    format!("+{a}-{b}"),
                    format!("+{a}.{b}"),
                    format!("+{a}/{b}"),
                    format!("+({a}) {b}"),
                ]
            })
            .collect();
        numbers.extend(shaped);
        numbers.extend(
            [
                "+44 (0) 20 7946 0958",
                "+44 (0)7912 345678",
                "+49 (0)30 12345678",
                "+1 (650) 253-0000",
                "+1 011 44 20 7946 0958",
                "+7 810 44 20 7946 0958",
                "+7 8 912 345 67 89",
                "+49 00 44 20 7946 0958",
                "+800 1234 5678",
                "+882 1234 5678",
                "+0 123 456 789",
                "+1 650 253 0000 ext. 12",
                "+1 650 CALL NOW",
                "+12",
                "+",
                "+1 2",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        let mut fast = 0;
        for n in &numbers {
            let want = phonenumber::parse(None, n).ok();
            assert_eq!(parse_international(n).ok(), want, "{n}");
            fast += usize::from(region_of_international(n).is_some());
        }
        // most numbers take the fast path; the others (IDD digits, `001`, letters) do not
        assert!(
            fast > 600,
            "fast path taken {fast} times of {}",
            numbers.len()
        );
        assert!(region_of_international("+1 650 CALL NOW").is_none());
        assert!(region_of_international("+800 1234 5678").is_none());
        assert!(region_of_international("+1 011 44 20 7946 0958").is_none());
        assert_eq!(
            region_of_international("+1 416 555 0123"),
            Some(phonenumber::country::Id::CA)
        );
    }

    #[test]
    fn general_match_agrees_with_descriptor() {
        for id in ["US", "GB", "DE", "FR", "ES", "IT", "NL", "AT", "CH"] {
            let meta = DATABASE.by_id(id).expect("region in metadata");
            for v in [
                "2079460958",
                "6502530000",
                "3012345678",
                "612345678",
                "12",
                "0800123",
            ] {
                assert_eq!(
                    general_match(meta, v),
                    meta.descriptors().general().is_match(v),
                    "{id} {v}"
                );
            }
        }
    }
}
