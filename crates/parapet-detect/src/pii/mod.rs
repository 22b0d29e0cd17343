//! PII detection with Presidio entity names.
//!
//! [`PiiDetector`] runs the rules of `rules/pii.toml` (patterns, context words, scores and
//! validator names are data) over every content view of a text: regex candidates → code
//! validators (Luhn, MOD 97-10, ISO 7064, national check digits, Base58Check/Bech32/EIP-55,
//! libphonenumber) → context-word boost → deduplication by (entity, span) → overlap
//! resolution by rule priority. Scores: checksum-confirmed matches get the rule's `score`,
//! format-only matches its `weak_score`, and a context word nearby adds `context_boost`.
//!
//! ```
//! use parapet_detect::{Detector, TextView, pii::PiiDetector};
//!
//! let pii = PiiDetector::builtin().expect("built-in rules are valid");
//! let found = pii.scan(&TextView::plain("Meine Steuer-ID ist 86095742719."));
//! assert_eq!(found[0].entity.as_deref(), Some("DE_TAX_ID"));
//! assert_eq!((found[0].span.start, found[0].span.end), (20, 31));
//! ```

mod checksum;
mod crypto;
mod phone;
mod rules;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_validators;

use crate::detector::{Detector, TextView};
use crate::error::RuleError;
use crate::view::View;
use aho_corasick::AhoCorasick;
use parapet_core::{Finding, Kind, Span};
use regex::RegexSet;
use rules::{Outcome, PiiRules};
use std::collections::HashMap;

/// The built-in rule file, embedded at build time.
pub const BUILTIN_RULES: &str = include_str!("../../../../rules/pii.toml");

/// Longest text (bytes) one view may have for the context window to be searched around a
/// candidate; also bounds each candidate (a PII value is never longer than this).
const MAX_CANDIDATE_BYTES: usize = 256;

/// Detects personal data (Presidio entity names) with validated patterns and context words.
/// Compiled once; cheap to share across threads.
#[derive(Debug)]
pub struct PiiDetector {
    rules: PiiRules,
    /// One pass over the text tells which rules can match at all.
    set: RegexSet,
}

/// Outcomes of costly validators (phone parsing) within one scan, by (rule, value).
type Memo<'a> = HashMap<(usize, &'a str), Outcome>;

/// A candidate before deduplication.
#[derive(Debug, Clone)]
struct Candidate {
    rule: usize,
    span: Span,
    score: f32,
    outcome: Outcome,
    context: bool,
}

impl PiiDetector {
    /// Loads the built-in rules (`rules/pii.toml`).
    ///
    /// # Errors
    /// [`RuleError`] if the embedded file is invalid (a build defect, caught by the tests).
    pub fn builtin() -> Result<PiiDetector, RuleError> {
        Self::from_toml("rules/pii.toml", BUILTIN_RULES)
    }

    /// Loads rules from TOML `source` (same shape as `rules/pii.toml`); `file` names the
    /// source in error messages.
    ///
    /// # Errors
    /// [`RuleError::Parse`] for malformed TOML or unknown fields, [`RuleError::Invalid`] for a
    /// bad regex, unknown validator or region, out-of-range score, duplicate id.
    pub fn from_toml(file: &str, source: &str) -> Result<PiiDetector, RuleError> {
        let rules = rules::load(file, source)?;
        let set = regex::RegexSetBuilder::new(&rules.patterns)
            .size_limit(64 << 20)
            .dfa_size_limit(32 << 20)
            .build()
            .map_err(|e| RuleError::Invalid {
                file: file.into(),
                id: "*".into(),
                message: format!("rule set does not compile: {e}"),
            })?;
        Ok(PiiDetector { rules, set })
    }

    /// Number of rules loaded.
    pub fn rule_count(&self) -> usize {
        self.rules.rules.len()
    }

    /// Entity names this detector can report, sorted and deduplicated.
    pub fn entities(&self) -> Vec<&str> {
        let mut e: Vec<&str> = self.rules.rules.iter().map(|r| r.entity.as_str()).collect();
        e.sort_unstable();
        e.dedup();
        e
    }

    fn scan_view<'a>(&self, view: &'a View, memo: &mut Memo<'a>, out: &mut Vec<Candidate>) {
        let text = view.text.as_str();
        let hits = self.set.matches(text);
        if !hits.matched_any() {
            return;
        }
        // Spans (bytes of this view) inside which listed entities are never reported.
        let mut windows: Option<Vec<(usize, usize)>> = None;
        let whole = [(0, text.len())];
        let mut excluded: Vec<(usize, usize, Option<&[String]>)> = Vec::new();
        for x in &self.rules.excludes {
            let ranges: &[(usize, usize)] = if x.near_digits {
                windows.get_or_insert_with(|| digit_windows(text, DIGIT_WINDOW_MARGIN))
            } else {
                &whole
            };
            for &(a, b) in ranges {
                for m in text
                    .get(a..b)
                    .into_iter()
                    .flat_map(|t| x.regex.find_iter(t))
                {
                    excluded.push((a + m.start(), a + m.end(), x.entities.as_deref()));
                }
            }
        }
        // Cheap validators first; expensive ones (phone parsing) run afterwards and skip
        // candidates already covered by a higher-priority finding of another entity.
        let first = out.len();
        let (cheap, costly): (Vec<usize>, Vec<usize>) = hits.iter().partition(|&i| {
            self.rules
                .rules
                .get(i)
                .is_some_and(|r| !r.validator.is_costly())
        });
        let mut lower: Option<String> = None;
        for idx in cheap.into_iter().chain(costly) {
            let Some(rule) = self.rules.rules.get(idx) else {
                continue;
            };
            if rule.require_context {
                // Skip the whole rule when none of its context words occurs in the view.
                let found = if text.is_ascii() {
                    rule.context_words.is_match(text)
                } else {
                    let l = lower.get_or_insert_with(|| text.to_lowercase());
                    rule.context_words.is_match(l.as_str())
                };
                if !found {
                    continue;
                }
            }
            let mut push = |s: usize, e: usize| {
                if e <= s || e - s > MAX_CANDIDATE_BYTES || !on_boundary(text, s, e) {
                    return;
                }
                let hidden = excluded.iter().any(|&(xs, xe, ents)| {
                    s < xe && xs < e && ents.is_none_or(|l| l.contains(&rule.entity))
                });
                if hidden {
                    return;
                }
                let Some(value) = text.get(s..e) else {
                    return;
                };
                if rule.validator.is_costly() {
                    let span = view.span(s, e);
                    let covered = out.get(first..).unwrap_or_default().iter().any(|c| {
                        self.rules.rules.get(c.rule).is_some_and(|o| {
                            o.priority > rule.priority
                                && o.entity != rule.entity
                                && c.span.overlaps(&span)
                        })
                    });
                    if covered {
                        return;
                    }
                }
                let outcome = if rule.validator.is_costly() {
                    // the same value often recurs (a signature, views of one text)
                    *memo
                        .entry((idx, value))
                        .or_insert_with(|| rule.validator.check(value))
                } else {
                    rule.validator.check(value)
                };
                let base = match outcome {
                    Outcome::Reject => return,
                    Outcome::Weak => rule.weak_score,
                    Outcome::Strong => rule.score,
                };
                let context = !rule.context.is_empty()
                    && has_context(
                        text,
                        s,
                        e,
                        self.rules.context_before,
                        self.rules.context_after,
                        &rule.context_words,
                    );
                if rule.require_context && !context {
                    return;
                }
                let score = if context {
                    (base + rule.context_boost).min(1.0)
                } else {
                    base
                };
                out.push(Candidate {
                    rule: idx,
                    span: view.span(s, e),
                    score,
                    outcome,
                    context,
                });
            };
            let ranges: &[(usize, usize)] = if rule.near_digits {
                windows.get_or_insert_with(|| digit_windows(text, DIGIT_WINDOW_MARGIN))
            } else {
                &whole
            };
            for &(a, b) in ranges {
                let Some(slice) = text.get(a..b) else {
                    continue;
                };
                match rule.value_group {
                    None => rule
                        .regex
                        .find_iter(slice)
                        .for_each(|m| push(a + m.start(), a + m.end())),
                    Some(g) => rule.regex.captures_iter(slice).for_each(|c| {
                        if let Some(m) = c.get(g) {
                            push(a + m.start(), a + m.end())
                        }
                    }),
                }
            }
        }
    }

    fn finish(&self, cands: Vec<Candidate>) -> Vec<Finding> {
        // Deduplicate by (entity, span), keeping the highest score (the first candidate with
        // it). A stable sort groups equal keys in candidate order, which costs less than
        // hashing each key and picks the same candidate.
        let mut keyed: Vec<(&str, Candidate)> = cands
            .into_iter()
            .filter_map(|c| Some((self.rules.rules.get(c.rule)?.entity.as_str(), c)))
            .collect();
        keyed.sort_by(|(ea, a), (eb, b)| {
            (*ea, a.span.start, a.span.end).cmp(&(*eb, b.span.start, b.span.end))
        });
        let mut kept: Vec<Candidate> = Vec::with_capacity(keyed.len());
        let mut last: Option<(&str, Span)> = None;
        for (entity, c) in keyed {
            let key = (entity, c.span);
            match kept.last_mut() {
                Some(old) if last == Some(key) => {
                    // as `!(old.score >= c.score)`: a NaN is replaced
                    if !matches!(
                        old.score.partial_cmp(&c.score),
                        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                    ) {
                        *old = c;
                    }
                }
                _ => {
                    kept.push(c);
                    last = Some(key);
                }
            }
        }
        kept.sort_by(|a, b| {
            (a.span.start, a.span.end, a.rule).cmp(&(b.span.start, b.span.end, b.rule))
        });
        // Drop a finding overlapped by a finding of another entity with a higher priority
        // (a validated card or tax id wins over the phone number hidden in its digits).
        let prio = |c: &Candidate| self.rules.rules.get(c.rule).map_or(0, |r| r.priority);
        let entity = |c: &Candidate| self.rules.rules.get(c.rule).map(|r| r.entity.as_str());
        let survivors: Vec<&Candidate> = kept
            .iter()
            .filter(|c| {
                !kept.iter().any(|o| {
                    o.span.overlaps(&c.span) && prio(o) > prio(c) && entity(o) != entity(c)
                })
            })
            .collect();
        survivors
            .into_iter()
            .filter_map(|c| {
                let rule = self.rules.rules.get(c.rule)?;
                let how = match (c.outcome, &rule.validator) {
                    (_, rules::Validator::None) => rules::How::Pattern,
                    (Outcome::Strong, _) => rules::How::Validated,
                    _ => rules::How::Format,
                };
                let msg = rule.message(how, c.context).to_string();
                Some(
                    Finding::new(rule.detector_id.clone(), Kind::Pii, c.span, c.score, msg)
                        .with_entity(rule.entity.clone()),
                )
            })
            .collect()
    }
}

impl Detector for PiiDetector {
    fn id(&self) -> &str {
        "pii"
    }

    fn scan(&self, text: &TextView) -> Vec<Finding> {
        let mut cands = Vec::new();
        let mut memo = Memo::new();
        for view in text.data_views() {
            self.scan_view(view, &mut memo, &mut cands);
        }
        self.finish(cands)
    }
}

/// Bytes searched on each side of a digit run for `near_digits` rules; longer than any
/// stretch without digits inside a matching value (month names, IBAN bank codes, the six
/// letters of an Italian fiscal code, the hex of an Ethereum address).
const DIGIT_WINDOW_MARGIN: usize = 40;

/// Merged byte windows `[run start - margin, run end + margin)` around the ASCII digits of
/// `text`, widened to char boundaries. Rules whose matches always contain a digit search only
/// these windows instead of the whole text.
fn digit_windows(text: &str, margin: usize) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while let Some(start) = crate::bytescan::next_digit(bytes, i) {
        let mut end = start;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        let a = floor_boundary(text, start.saturating_sub(margin));
        let mut b = end.saturating_add(margin).min(text.len());
        while b < text.len() && !text.is_char_boundary(b) {
            b += 1;
        }
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
        i = end;
    }
    out
}

/// True when the byte range `[s, e)` is not glued to a letter or digit on either side.
fn on_boundary(text: &str, s: usize, e: usize) -> bool {
    let before = text.get(..s).and_then(|t| t.chars().next_back());
    let after = text.get(e..).and_then(|t| t.chars().next());
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

/// Largest char boundary `<= i`.
fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// True when one of `words` (an automaton of lower-case words, ASCII case-insensitive)
/// occurs in the lower-cased window `[s - before, s)` or `[e, e + after)`.
fn has_context(
    text: &str,
    s: usize,
    e: usize,
    before: usize,
    after: usize,
    words: &AhoCorasick,
) -> bool {
    let a = floor_boundary(text, s.saturating_sub(before));
    let b = floor_boundary(text, e.saturating_add(after));
    let (Some(left), Some(right)) = (text.get(a..s), text.get(e..b)) else {
        return false;
    };
    contains_word(words, left) || contains_word(words, right)
}

/// True when one of `words` occurs in `part.to_lowercase()`. ASCII text is searched as it
/// is: there `to_lowercase` only folds `A-Z`, which the automaton already ignores (its
/// words are lower-case, so none has an ASCII capital).
fn contains_word(words: &AhoCorasick, part: &str) -> bool {
    if part.is_ascii() {
        words.is_match(part)
    } else {
        words.is_match(part.to_lowercase().as_str())
    }
}
