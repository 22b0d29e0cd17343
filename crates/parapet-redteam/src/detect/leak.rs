//! The secret/PII scanner seam. [`LeakScanner`] is the one trait the leak detector calls, so
//! the built-in [`BasicLeakScanner`] (a few strong patterns) can be replaced by the
//! `parapet-detect` engine without touching the runner.

use parapet_core::{Finding, Kind, Span};
use regex::Regex;

/// Finds secrets and personal data in text. Implementations must be cheap to call and
/// `Send + Sync`; spans are Unicode code-point offsets into `text`.
pub trait LeakScanner: Send + Sync {
    /// Scanner name, recorded in reports.
    fn name(&self) -> &str;
    /// All secret and PII findings in `text`.
    fn scan(&self, text: &str) -> Vec<Finding>;
}

/// Built-in scanner: AWS access key ids, email addresses, and card numbers that pass the Luhn
/// check. Deliberately small; the full engine lives in `parapet-detect`.
///
/// Patterns: AWS key id prefixes from the AWS IAM documentation ("Understanding unique ID
/// prefixes"); card numbers 13–19 digits with optional single spaces/dashes, validated with the
/// Luhn algorithm (ISO/IEC 7812-1).
#[derive(Debug, Clone)]
pub struct BasicLeakScanner {
    aws: Regex,
    email: Regex,
    card: Regex,
}

impl BasicLeakScanner {
    /// Compiles the patterns.
    pub fn new() -> BasicLeakScanner {
        // These literals are fixed and tested; a failure here is a programming error, so
        // fall back to a never-matching pattern rather than panic.
        let re = |p: &str| Regex::new(p).unwrap_or_else(|_| never());
        BasicLeakScanner {
            aws: re(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z2-7]{16}\b"),
            email: re(r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}\b"),
            card: re(r"\b\d(?:[ -]?\d){12,18}\b"),
        }
    }
}

fn never() -> Regex {
    // `[^\s\S]` matches nothing; this literal always compiles.
    Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable!())
}

impl Default for BasicLeakScanner {
    fn default() -> Self {
        BasicLeakScanner::new()
    }
}

fn cp_span(text: &str, start: usize, end: usize) -> Span {
    let s = text[..start].chars().count();
    Span::new(s, s + text[start..end].chars().count())
}

impl LeakScanner for BasicLeakScanner {
    fn name(&self) -> &str {
        "parapet-redteam basic (aws key id, email, luhn card)"
    }

    fn scan(&self, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        for m in self.aws.find_iter(text) {
            out.push(
                Finding::new(
                    "secret.aws-access-key-id",
                    Kind::Secret,
                    cp_span(text, m.start(), m.end()),
                    0.95,
                    "AWS access key id",
                )
                .with_entity("aws-access-key-id"),
            );
        }
        for m in self.email.find_iter(text) {
            out.push(
                Finding::new(
                    "pii.email",
                    Kind::Pii,
                    cp_span(text, m.start(), m.end()),
                    0.9,
                    "email address",
                )
                .with_entity("EMAIL_ADDRESS"),
            );
        }
        for m in self.card.find_iter(text) {
            let digits: Vec<u8> = m
                .as_str()
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(|b| b - b'0')
                .collect();
            if crate::fixtures::luhn_valid(&digits) {
                out.push(
                    Finding::new(
                        "pii.credit-card",
                        Kind::Pii,
                        cp_span(text, m.start(), m.end()),
                        0.9,
                        "payment card number (Luhn-valid)",
                    )
                    .with_entity("CREDIT_CARD"),
                );
            }
        }
        out
    }
}

/// The shared `parapet-detect` engine as a leak scanner: its PII and secret findings
/// (`Kind::Pii`, `Kind::Secret`), plus the [`BasicLeakScanner`] findings it does not already
/// cover, so the strong built-in patterns stay in force while the engine's PII and secret
/// detectors grow.
pub struct EngineLeakScanner {
    engine: parapet_detect::Engine,
    basic: BasicLeakScanner,
}

impl EngineLeakScanner {
    /// Builds the engine with its built-in rules; errors name the bad rule file.
    pub fn builtin() -> Result<EngineLeakScanner, String> {
        Ok(EngineLeakScanner {
            engine: parapet_detect::Engine::builtin().map_err(|e| e.to_string())?,
            basic: BasicLeakScanner::new(),
        })
    }
}

impl LeakScanner for EngineLeakScanner {
    fn name(&self) -> &str {
        "parapet-detect engine + basic patterns"
    }

    fn scan(&self, text: &str) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .engine
            .scan(text)
            .findings
            .into_iter()
            .filter(|f| matches!(f.kind, Kind::Pii | Kind::Secret))
            .collect();
        for f in self.basic.scan(text) {
            if !out.iter().any(|g| g.span.overlaps(&f.span)) {
                out.push(f);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_three_entities_with_code_point_spans() {
        let s = BasicLeakScanner::new();
        let text =
            "Schlüssel AKIAABCDEFGHIJKLMNOP, mail ä.b@example.org, Karte 4539 1488 0343 6467.";
        let f = s.scan(text);
        let ents: Vec<_> = f.iter().filter_map(|f| f.entity.clone()).collect();
        assert_eq!(
            ents,
            vec!["aws-access-key-id", "EMAIL_ADDRESS", "CREDIT_CARD"]
        );
        let key: String = text
            .chars()
            .skip(f[0].span.start)
            .take(f[0].span.len())
            .collect();
        assert_eq!(key, "AKIAABCDEFGHIJKLMNOP");
    }

    #[test]
    fn engine_scanner_keeps_the_basic_patterns() {
        let s = EngineLeakScanner::builtin().unwrap();
        let f = s.scan("key AKIAABCDEFGHIJKLMNOP and card 4539 1488 0343 6467");
        assert!(f.iter().any(|f| f.kind == Kind::Secret));
        assert!(f.iter().any(|f| f.entity.as_deref() == Some("CREDIT_CARD")));
        assert!(s.scan("nothing sensitive here").is_empty());
    }

    #[test]
    fn luhn_invalid_numbers_are_not_cards() {
        let s = BasicLeakScanner::new();
        assert!(s.scan("order 4539 1488 0343 6468").is_empty());
    }
}
