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

/// [`COMMON_WORDS`] packed with [`pack`].
const COMMON_PACKED: [u128; 32] = {
    let mut out = [0u128; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = pack(COMMON_WORDS[i]);
        i += 1;
    }
    out
};

/// (common words, common words after ROT13) in `s`: both counts in one pass over the words
/// (maximal runs of ASCII letters, compared case-insensitively).
fn common_hits(s: &str) -> (usize, usize) {
    let (mut plain, mut rotated) = (0, 0);
    for w in s
        .as_bytes()
        .split(|b| !b.is_ascii_alphabetic())
        .filter(|w| !w.is_empty() && w.len() <= 12)
    {
        let (mut p, mut r) = (0u128, 0u128);
        for &c in w {
            let l = c.to_ascii_lowercase();
            p = (p << 8) | l as u128;
            r = (r << 8) | rot13(l as char) as u128;
        }
        plain += usize::from(COMMON_PACKED.contains(&p));
        rotated += usize::from(COMMON_PACKED.contains(&r));
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
    let (orig, rot) = common_hits(&view.text);
    if rot < 3 || rot <= orig * 2 {
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

fn leet(c: char) -> Option<char> {
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

/// The number of leet substitutes in `tok` (a whitespace-separated token) when
/// [`leet_view`] rewrites it, else `None`: "l33t" style, letters and substitutes mixed, and
/// not a plain number or price; identifiers such as `DE89` or `A1B2` (no lower-case letter)
/// are not leetspeak.
fn leet_token(tok: &str) -> Option<usize> {
    let tok = tok
        .trim_start_matches(leet_lead)
        .trim_end_matches(leet_trail);
    // every character of a rewritten token is an ASCII letter or substitute, so its length in
    // characters is its length in bytes and any non-ASCII byte rules it out
    if !(3..=24).contains(&tok.len()) {
        return None;
    }
    let (mut letters, mut lower, mut subs) = (0, 0, 0);
    for &b in tok.as_bytes() {
        if b.is_ascii_alphabetic() {
            letters += 1;
            lower += usize::from(b.is_ascii_lowercase());
        } else if b.is_ascii() && leet(b as char).is_some() {
            subs += 1;
        } else {
            return None;
        }
    }
    (lower >= 1 && letters >= 2 && subs >= 1).then_some(subs)
}

/// Exact pre-check for [`leet_view`]: (tokens rewritten, characters substituted), computed on
/// the text without building the view.
fn leet_counts(text: &str) -> (usize, usize) {
    text.split(char::is_whitespace)
        .filter_map(leet_token)
        .fold((0, 0), |(t, c), subs| (t + 1, c + subs))
}

/// Leetspeak view: only tokens that mix letters with digit/symbol substitutes are rewritten
/// (see [`leet_token`]); `None` when fewer than two tokens or three characters change.
pub(super) fn leet_view(view: &View) -> Option<View> {
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
    // each piece is one token and the whitespace character that ends it, if any
    for piece in view.text.split_inclusive(char::is_whitespace) {
        let ws = piece
            .chars()
            .next_back()
            .filter(|c| c.is_whitespace())
            .map_or(0, char::len_utf8);
        let tok = &piece[..piece.len() - ws];
        let lead = tok.len() - tok.trim_start_matches(leet_lead).len();
        let inner = tok
            .trim_start_matches(leet_lead)
            .trim_end_matches(leet_trail);
        let rewrite = leet_token(tok).is_some();
        for (off, c) in piece.char_indices() {
            let Some((_, s)) = spans.next() else {
                break;
            };
            let in_word = rewrite && off >= lead && off < lead + inner.len();
            let out = if in_word { leet(c).unwrap_or(c) } else { c };
            b.push(out, s.start, s.end);
        }
    }
    Some(b.build())
}
