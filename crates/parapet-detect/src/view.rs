//! Text views with offset maps back to the original text.
//!
//! Every detector sees the same input through several [`View`]s: the original text, a
//! normalized view (invisible characters removed, NFKC, confusables folded), the hidden text
//! carried in Unicode tag characters, and decoded payloads (base64, hex, …). Each view keeps,
//! for every character it holds, the code-point span of the original text it came from, so a
//! finding made on any view is reported with a [`Span`] into the ORIGINAL text.

use parapet_core::Span;

/// Where a view's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewKind {
    /// The input as given (after lossy UTF-8 decoding).
    Original,
    /// Invisible/format characters removed, NFKC applied, combining marks composed or
    /// dropped, mixed-script confusables folded to their UTS #39 skeleton.
    Normalized,
    /// Text smuggled in Unicode tag characters (U+E0020–U+E007E mapped to ASCII).
    Hidden,
    /// A payload decoded from an encoding; `depth` counts nested decodings (1 = decoded once).
    Decoded {
        /// Which decoder produced it.
        encoding: Encoding,
        /// Nesting depth, starting at 1.
        depth: u8,
    },
}

impl ViewKind {
    /// True for views whose text the user could not read directly (hidden or decoded), where
    /// an instruction is a strong signal of smuggling.
    pub fn is_concealed(&self) -> bool {
        matches!(self, ViewKind::Hidden | ViewKind::Decoded { .. })
    }
}

/// Encodings the decoding pass understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// RFC 4648 base64, standard or URL-safe alphabet, padded or not.
    Base64,
    /// Hexadecimal bytes.
    Hex,
    /// RFC 3986 percent-encoding.
    Url,
    /// HTML character references (`&#105;`, `&#x69;`, `&lt;`).
    HtmlEntities,
    /// ROT13 letter rotation.
    Rot13,
    /// Leetspeak digit/symbol substitutions (`1gn0r3` → `ignore`).
    Leet,
}

impl Encoding {
    /// Short lower-case name used in finding messages and detector ids.
    pub fn as_str(&self) -> &'static str {
        match self {
            Encoding::Base64 => "base64",
            Encoding::Hex => "hex",
            Encoding::Url => "url",
            Encoding::HtmlEntities => "html_entities",
            Encoding::Rot13 => "rot13",
            Encoding::Leet => "leetspeak",
        }
    }
}

/// How positions in a view map back to the original text.
#[derive(Debug, Clone)]
enum OffsetMap {
    /// The view is the original text and is pure ASCII: byte offset == code-point offset.
    Ascii,
    /// One entry per character of the view: its byte offset in the view and the original
    /// code-point span it came from. Sorted by byte offset.
    Table {
        byte_starts: Vec<u32>,
        orig: Vec<(u32, u32)>,
    },
    /// Every character of the view comes from this one original span (decoded payloads).
    Whole(Span),
}

/// One way of looking at the input text.
#[derive(Debug, Clone)]
pub struct View {
    /// Where this view came from.
    pub kind: ViewKind,
    /// The view's text.
    pub text: String,
    map: OffsetMap,
}

impl View {
    /// The original text as a view. Pure-ASCII text gets a zero-cost map.
    pub fn original(text: &str) -> View {
        let map = if text.is_ascii() {
            OffsetMap::Ascii
        } else {
            // a character starts at each byte that is not a UTF-8 continuation byte
            // (`0b10xx_xxxx`): the offsets of `char_indices`, written without a branch
            let mut byte_starts = vec![0u32; text.len()];
            let mut n = 0;
            for (i, &b) in text.as_bytes().iter().enumerate() {
                if let Some(slot) = byte_starts.get_mut(n) {
                    *slot = i as u32;
                }
                n += usize::from((b as i8) >= -0x40);
            }
            byte_starts.truncate(n);
            let orig = (0..n as u32).map(|i| (i, i + 1)).collect();
            OffsetMap::Table { byte_starts, orig }
        };
        View {
            kind: ViewKind::Original,
            text: text.to_string(),
            map,
        }
    }

    /// A view of `kind` with text `text`, which must hold characters of the same UTF-8
    /// lengths as this view's text at the same byte offsets (e.g. ASCII letters rewritten to
    /// ASCII letters): each character keeps the original span of the one it replaces. The
    /// same view as pushing `text`'s characters, with [`View::chars_with_spans`]' spans, into
    /// a [`ViewBuilder`], without the per-character work where this view has a table.
    pub(crate) fn same_layout(&self, kind: ViewKind, text: String) -> View {
        debug_assert_eq!(self.text.len(), text.len());
        let map = match &self.map {
            OffsetMap::Table { byte_starts, orig } if byte_starts.len() == orig.len() => {
                OffsetMap::Table {
                    byte_starts: byte_starts.clone(),
                    // as `Span::new` orders them
                    orig: orig.iter().map(|&(a, z)| (a.min(z), a.max(z))).collect(),
                }
            }
            _ => {
                let mut b = ViewBuilder::new(kind, text.len());
                for ((_, s), c) in self.chars_with_spans().zip(text.chars()) {
                    b.push(c, s.start, s.end);
                }
                return b.build();
            }
        };
        View { kind, text, map }
    }

    /// A view whose every character maps to one original span (used for decoded payloads
    /// and hidden text that cannot be mapped more precisely).
    pub fn whole(kind: ViewKind, text: String, span: Span) -> View {
        View {
            kind,
            text,
            map: OffsetMap::Whole(span),
        }
    }

    /// Each character of the view with the original code-point span it came from.
    pub fn chars_with_spans(&self) -> impl Iterator<Item = (char, Span)> + '_ {
        self.text
            .char_indices()
            .enumerate()
            .map(move |(i, (b, c))| {
                let span = match &self.map {
                    OffsetMap::Ascii => Span::new(b, b + 1),
                    OffsetMap::Whole(s) => *s,
                    OffsetMap::Table { orig, .. } => orig
                        .get(i)
                        .map(|&(a, z)| Span::new(a as usize, z as usize))
                        .unwrap_or_default(),
                };
                (c, span)
            })
    }

    /// True when this view's text maps character-for-character onto the original's
    /// code points, i.e. it is the original (normalized views map through a table).
    pub fn is_identity(&self) -> bool {
        matches!(self.kind, ViewKind::Original)
    }

    /// Maps a byte range `[start, end)` of [`View::text`] to a code-point span of the original
    /// text. Offsets beyond the text are clamped; a range that does not fall on character
    /// boundaries is widened to the characters it touches.
    pub fn span(&self, start: usize, end: usize) -> Span {
        let (start, end) = if end < start {
            (end, start)
        } else {
            (start, end)
        };
        match &self.map {
            OffsetMap::Ascii => {
                let n = self.text.len();
                Span::new(start.min(n), end.min(n))
            }
            OffsetMap::Whole(s) => *s,
            OffsetMap::Table { byte_starts, orig } => {
                if orig.is_empty() {
                    return Span::new(0, 0);
                }
                // index of the character containing byte `start`
                let first = char_index(byte_starts, start);
                if end <= start {
                    let s = orig[first.min(orig.len() - 1)].0 as usize;
                    return Span::new(s, s);
                }
                let last = char_index(byte_starts, end - 1);
                let a = orig[first.min(orig.len() - 1)];
                let b = orig[last.min(orig.len() - 1)];
                Span::new(a.0.min(b.0) as usize, a.1.max(b.1) as usize)
            }
        }
    }
}

/// Index of the character whose byte range contains `byte`.
fn char_index(byte_starts: &[u32], byte: usize) -> usize {
    match byte_starts.binary_search(&(byte as u32)) {
        Ok(i) => i,
        Err(i) => i.saturating_sub(1),
    }
}

/// Builds a [`View`] character by character, recording for each pushed character the original
/// span it came from.
#[derive(Debug)]
pub struct ViewBuilder {
    kind: ViewKind,
    text: String,
    byte_starts: Vec<u32>,
    orig: Vec<(u32, u32)>,
}

impl ViewBuilder {
    /// Starts an empty view of the given kind; `capacity` is a byte-size hint.
    pub fn new(kind: ViewKind, capacity: usize) -> Self {
        ViewBuilder {
            kind,
            text: String::with_capacity(capacity),
            byte_starts: Vec::with_capacity(capacity),
            orig: Vec::with_capacity(capacity),
        }
    }
    /// Appends `c`, which came from original code points `[start, end)`.
    pub fn push(&mut self, c: char, start: usize, end: usize) {
        self.byte_starts.push(self.text.len() as u32);
        self.orig.push((start as u32, end as u32));
        self.text.push(c);
    }
    /// The last character pushed, if any.
    pub fn last(&self) -> Option<char> {
        self.text.chars().next_back()
    }
    /// Replaces the last character with `c`, widening its original span to end at `end`.
    pub fn replace_last(&mut self, c: char, end: usize) {
        if let (Some(_), Some(pos), Some(o)) = (
            self.text.pop(),
            self.byte_starts.last().copied(),
            self.orig.last_mut(),
        ) {
            debug_assert_eq!(pos as usize, self.text.len());
            o.1 = o.1.max(end as u32);
            self.text.push(c);
        }
    }
    /// Finishes the view.
    pub fn build(self) -> View {
        View {
            kind: self.kind,
            text: self.text,
            map: OffsetMap::Table {
                byte_starts: self.byte_starts,
                orig: self.orig,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_original_maps_bytes_to_code_points() {
        let v = View::original("hello world");
        assert_eq!(v.span(6, 11), Span::new(6, 11));
        assert_eq!(v.span(6, 100), Span::new(6, 11));
    }

    #[test]
    fn non_ascii_original_maps_to_code_points() {
        let v = View::original("héllo wörld");
        // "wörld" starts at byte 8 (h, é=2 bytes, llo, space, w) and ends at byte 13
        let b = v.text.find("wörld").unwrap();
        assert_eq!(v.span(b, b + "wörld".len()), Span::new(6, 11));
    }

    #[test]
    fn non_ascii_original_table_is_one_entry_per_char() {
        for text in [
            "héllo wörld",
            "ｆｕｌｌ\u{E0049}\u{200B}аll 🦀x",
            "\u{10FFFF}a\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}",
            "é",
        ] {
            let v = View::original(text);
            let OffsetMap::Table { byte_starts, orig } = &v.map else {
                panic!("{text:?} has no table");
            };
            let want: Vec<u32> = text.char_indices().map(|(b, _)| b as u32).collect();
            assert_eq!(byte_starts, &want, "{text:?}");
            let spans: Vec<(u32, u32)> = (0..want.len() as u32).map(|i| (i, i + 1)).collect();
            assert_eq!(orig, &spans, "{text:?}");
        }
    }

    #[test]
    fn builder_keeps_original_positions() {
        let mut b = ViewBuilder::new(ViewKind::Normalized, 8);
        b.push('a', 0, 1);
        b.push('b', 3, 4); // code points 1..3 were dropped
        b.push('c', 4, 6);
        let v = b.build();
        assert_eq!(v.text, "abc");
        assert_eq!(v.span(1, 3), Span::new(3, 6));
        assert_eq!(v.span(0, 1), Span::new(0, 1));
    }

    #[test]
    fn whole_view_maps_everything_to_its_span() {
        let v = View::whole(
            ViewKind::Decoded {
                encoding: Encoding::Base64,
                depth: 1,
            },
            "ignore".into(),
            Span::new(10, 18),
        );
        assert_eq!(v.span(2, 4), Span::new(10, 18));
    }
}
