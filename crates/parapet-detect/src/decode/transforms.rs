//! The whole-text transforms of the decoding pass: ROT13 (kept when the rotated text reads as
//! common English and the original does not) and leetspeak (tokens that mix letters with
//! digit/symbol substitutes, `1gn0r3` → `ignore`). Both return views mapped character by
//! character onto the original.

use crate::view::{Encoding, View, ViewBuilder, ViewKind};

/// Common English words: a ROT13 view is kept when it reads as English and the original
/// does not.
const COMMON_WORDS: [&[u8]; 32] = [
    b"the",
    b"and",
    b"you",
    b"your",
    b"to",
    b"of",
    b"is",
    b"are",
    b"ignore",
    b"all",
    b"previous",
    b"instructions",
    b"system",
    b"prompt",
    b"tell",
    b"me",
    b"how",
    b"what",
    b"please",
    b"now",
    b"a",
    b"in",
    b"for",
    b"with",
    b"this",
    b"that",
    b"reveal",
    b"password",
    b"secret",
    b"make",
    b"write",
    b"give",
];

/// A word of at most 16 bytes packed into one integer (no word holds a NUL byte, so the
/// packing is unique).
const fn pack(w: &[u8]) -> u128 {
    let mut h = 0u128;
    let mut i = 0;
    while i < w.len() && i < 16 {
        h = (h << 8) | w[i] as u128;
        i += 1;
    }
    h
}

/// ROT13 of a lower-case ASCII letter.
const fn rot13_lower(l: u8) -> u8 {
    if l >= b'n' {
        l - 13
    } else {
        l + 13
    }
}

/// [`COMMON_WORDS`] (each letter rotated by ROT13 when `rot`) packed with [`pack`], sorted
/// for binary search.
const fn packed_words(rot: bool) -> [u128; 32] {
    let mut out = [0u128; 32];
    let mut i = 0;
    while i < 32 {
        let w = COMMON_WORDS[i];
        let mut buf = [0u8; 16];
        let mut k = 0;
        while k < w.len() && k < 16 {
            buf[k] = if rot { rot13_lower(w[k]) } else { w[k] };
            k += 1;
        }
        out[i] = pack(buf.split_at(k).0);
        i += 1;
    }
    // insertion sort (const context)
    let mut i = 1;
    while i < 32 {
        let mut j = i;
        while j > 0 && out[j - 1] > out[j] {
            let t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
            j -= 1;
        }
        i += 1;
    }
    out
}

/// [`COMMON_WORDS`] packed with [`pack`], sorted for binary search.
const COMMON_PACKED: [u128; 32] = packed_words(false);

/// The ROT13 of each of [`COMMON_WORDS`], packed and sorted: a word's ROT13 is common exactly
/// when the word itself is in this list, so one packing of the word serves both searches.
const ROT_PACKED: [u128; 32] = packed_words(true);

fn is_common(packed: u128) -> bool {
    COMMON_PACKED.binary_search(&packed).is_ok()
}

/// Per word length (1..=12), a bit per first letter (`a` = bit 0) of the [`COMMON_WORDS`]
/// (rotated by ROT13 when `rot`) of that length: a word outside the mask cannot be common,
/// so most words skip the search.
const fn first_masks(rot: bool) -> [u32; 13] {
    let mut out = [0u32; 13];
    let mut i = 0;
    while i < COMMON_WORDS.len() {
        let w = COMMON_WORDS[i];
        let first = if rot { rot13_lower(w[0]) } else { w[0] };
        out[w.len()] |= 1 << (first - b'a');
        i += 1;
    }
    out
}

/// See [`first_masks`].
const COMMON_FIRST: [u32; 13] = first_masks(false);
/// See [`first_masks`].
const ROT_FIRST: [u32; 13] = first_masks(true);

/// (common words, common words after ROT13) in `s`: both counts in one pass over the words
/// (maximal runs of ASCII letters, compared case-insensitively).
#[cfg(test)]
fn common_hits(s: &str) -> (usize, usize) {
    count_hits(s, false)
}

/// True when the ROT13 of `s` reads as English and `s` does not: at least 3 common words
/// after ROT13 and more than twice as many as before (the counts of [`common_hits`]).
fn rot13_reads_better(s: &str) -> bool {
    let (plain, rotated) = count_hits(s, true);
    rotated >= 3 && rotated > plain * 2
}

/// [`common_hits`]; with `bail`, counting stops once the rotated count can no longer exceed
/// twice the plain count: each word still to come is a letter run followed by a non-letter,
/// so at most `(rest + 1) / 2` of them fit in the `rest` bytes left, and the plain count
/// only grows. The counts returned then still fail [`rot13_reads_better`]'s test.
fn count_hits(s: &str, bail: bool) -> (usize, usize) {
    let (mut plain, mut rotated) = (0, 0);
    let b = s.as_bytes();
    let mut i = 0;
    // the words of `b.split(|b| !b.is_ascii_alphabetic())`, found without an iterator
    while i < b.len() {
        if !b[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            i += 1;
        }
        let w = &b[start..i];
        if w.len() > 12 {
            continue;
        }
        let bit = 1u32 << (w[0].to_ascii_lowercase() - b'a');
        let (maybe_plain, maybe_rot) = (COMMON_FIRST[w.len()] & bit, ROT_FIRST[w.len()] & bit);
        if maybe_plain | maybe_rot == 0 {
            continue;
        }
        let p = w
            .iter()
            .fold(0u128, |h, &c| (h << 8) | c.to_ascii_lowercase() as u128);
        let hit = maybe_plain != 0 && is_common(p);
        plain += usize::from(hit);
        if maybe_rot != 0 {
            rotated += usize::from(ROT_PACKED.binary_search(&p).is_ok());
        }
        if hit && bail && rotated + (b.len() - i).div_ceil(2) <= plain * 2 {
            break;
        }
    }
    (plain, rotated)
}

fn rot13(c: char) -> char {
    match c {
        'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
        'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
        _ => c,
    }
}

pub(super) fn rot13_view(view: &View) -> Option<View> {
    if view.text.len() < 12 || view.text.len() > 64 * 1024 {
        return None;
    }
    if !rot13_reads_better(&view.text) {
        return None;
    }
    let mut b = ViewBuilder::new(
        ViewKind::Decoded {
            encoding: Encoding::Rot13,
            depth: 1,
        },
        view.text.len(),
    );
    for (c, s) in view.chars_with_spans() {
        b.push(rot13(c), s.start, s.end);
    }
    Some(b.build())
}

const fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        '8' => 'b',
        '9' => 'g',
        _ => return None,
    })
}

/// Surrounding punctuation that is not part of a leet word ("Hi!", "(this)").
fn leet_lead(c: char) -> bool {
    matches!(c, '(' | '"' | '\'' | '[')
}

/// See [`leet_lead`].
fn leet_trail(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | ')' | '"' | '\'' | ']'
    )
}

/// A leet word inside `tok` (a whitespace-separated token, as bytes): `(lead, len, subs)`
/// where `tok[lead..lead + len]` is the token without surrounding punctuation and `subs` the
/// number of leet substitutes in it when [`leet_view`] rewrites it, else `None`: "l33t" style,
/// letters and substitutes mixed, and not a plain number or price; identifiers such as `DE89`
/// or `A1B2` (no lower-case letter) are not leetspeak. Trimming bytes is trimming characters
/// here: the punctuation is ASCII and no byte of a multi-byte character is ASCII.
fn leet_word(tok: &[u8]) -> (usize, usize, Option<usize>) {
    let lead = tok
        .iter()
        .position(|&b| !leet_lead(b as char))
        .unwrap_or(tok.len());
    let rest = &tok[lead..];
    let len = rest
        .iter()
        .rposition(|&b| !leet_trail(b as char))
        .map_or(0, |i| i + 1);
    let word = &rest[..len];
    // every character of a rewritten token is an ASCII letter or substitute, so its length in
    // characters is its length in bytes and any non-ASCII byte rules it out
    if !(3..=24).contains(&word.len()) {
        return (lead, len, None);
    }
    let (mut letters, mut lower, mut subs) = (0, 0, 0);
    for &b in word {
        if b.is_ascii_alphabetic() {
            letters += 1;
            lower += usize::from(b.is_ascii_lowercase());
        } else if b.is_ascii() && leet(b as char).is_some() {
            subs += 1;
        } else {
            return (lead, len, None);
        }
    }
    let rewrite = lower >= 1 && letters >= 2 && subs >= 1;
    (lead, len, rewrite.then_some(subs))
}

/// `char::is_whitespace` for an ASCII byte.
const fn ascii_ws(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

/// Calls `f(offset, token)` for each piece of `text.split(char::is_whitespace)` (its byte
/// offset and bytes), without decoding every character of non-ASCII text: a non-ASCII
/// whitespace character starts with one of the lead bytes C2 (U+0085, U+00A0), E1 (U+1680),
/// E2 (U+2000–U+205F) or E3 (U+3000).
///
/// Only tokens holding at least one leetspeak substitute byte (see [`leet`]) are passed to
/// `f`: [`leet_word`] rewrites no other token, and both callers act only on rewritten ones.
fn for_each_token(text: &str, mut f: impl FnMut(usize, &[u8])) {
    let b = text.as_bytes();
    let (mut start, mut i, mut sub) = (0, 0, false);
    while i < b.len() {
        let ws = match b[i] {
            x if x.is_ascii() => {
                let class = ASCII_CLASS[usize::from(x)];
                sub |= class & SUB != 0;
                usize::from(class & WS)
            }
            0xC2 | 0xE1 | 0xE2 | 0xE3 => text
                .get(i..)
                .and_then(|r| r.chars().next())
                .filter(|c| c.is_whitespace())
                .map_or(0, char::len_utf8),
            _ => 0,
        };
        if ws > 0 {
            if sub {
                f(start, &b[start..i]);
            }
            i += ws;
            start = i;
            sub = false;
        } else {
            i += 1;
        }
    }
    if sub {
        f(start, &b[start..]);
    }
}

/// [`ASCII_CLASS`] bit of the bytes [`ascii_ws`] accepts (the value 1, so it doubles as the
/// byte length of the whitespace character).
const WS: u8 = 1;
/// [`ASCII_CLASS`] bit of the bytes [`leet`] substitutes.
const SUB: u8 = 2;

/// [`WS`] and [`SUB`] of each ASCII byte.
const ASCII_CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        if ascii_ws(b) {
            t[i] |= WS;
        }
        if leet(b as char).is_some() {
            t[i] |= SUB;
        }
        i += 1;
    }
    t
};

/// Exact pre-check for [`leet_view`]: (tokens rewritten, characters substituted), computed on
/// the text without building the view.
fn leet_counts(text: &str) -> (usize, usize) {
    let mut acc = (0, 0);
    for_each_token(text, |_, tok| {
        if let Some(subs) = leet_word(tok).2 {
            acc = (acc.0 + 1, acc.1 + subs);
        }
    });
    acc
}

/// Leetspeak view: only tokens that mix letters with digit/symbol substitutes are rewritten
/// (see [`leet_word`]); `None` when fewer than two tokens or three characters change. Every
/// rewritten character is ASCII and becomes an ASCII letter, so the view keeps the layout
/// of `view` (see [`View::same_layout`]).
pub(super) fn leet_view(view: &View) -> Option<View> {
    if view.text.len() > 64 * 1024 {
        return None;
    }
    let (tokens, changed) = leet_counts(&view.text);
    if changed < 3 || tokens < 2 {
        return None;
    }
    let mut bytes = view.text.as_bytes().to_vec();
    for_each_token(&view.text, |at, tok| {
        if let (lead, len, Some(_)) = leet_word(tok) {
            let word = bytes
                .get_mut(at + lead..at + lead + len)
                .unwrap_or_default();
            for b in word {
                if let Some(l) = leet(*b as char) {
                    *b = l as u8;
                }
            }
        }
    });
    let text = String::from_utf8(bytes).ok()?;
    let kind = ViewKind::Decoded {
        encoding: Encoding::Leet,
        depth: 1,
    };
    Some(view.same_layout(kind, text))
}

/// [`leet_view`] as first written (a builder fed character by character), for tests.
#[cfg(test)]
fn leet_view_reference(view: &View) -> Option<View> {
    if view.text.len() > 64 * 1024 {
        return None;
    }
    let (tokens, changed) = leet_counts(&view.text);
    if changed < 3 || tokens < 2 {
        return None;
    }
    let mut b = ViewBuilder::new(
        ViewKind::Decoded {
            encoding: Encoding::Leet,
            depth: 1,
        },
        view.text.len(),
    );
    let mut spans = view.chars_with_spans();
    for piece in view.text.split_inclusive(char::is_whitespace) {
        let ws = piece
            .chars()
            .next_back()
            .filter(|c| c.is_whitespace())
            .map_or(0, char::len_utf8);
        let (lead, len, subs) = leet_word(&piece.as_bytes()[..piece.len() - ws]);
        let rewrite = subs.is_some();
        for (off, c) in piece.char_indices() {
            let Some((_, s)) = spans.next() else {
                break;
            };
            let in_word = rewrite && off >= lead && off < lead + len;
            let out = if in_word { leet(c).unwrap_or(c) } else { c };
            b.push(out, s.start, s.end);
        }
    }
    Some(b.build())
}

#[cfg(test)]
mod tests;
