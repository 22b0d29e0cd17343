//! Credential and key detection: 100+ provider-specific rules plus a generic high-entropy rule.
//!
//! [`SecretDetector`] runs the rules of `rules/secrets.toml` (data: regex, keywords, entropy
//! minimum, allow-list, severity, entity, OWASP/ATLAS mapping, examples). Speed comes from a
//! gitleaks-style keyword prefilter: one Aho-Corasick pass over the text finds which rules'
//! keywords occur, and only those rules' regexes run. False positives are kept down by value
//! boundaries, Shannon-entropy minimums, allow-lists (placeholders, `${VAR}`, UUIDs) and
//! digest markers right before a value (`sha512-…` integrity strings, `sha256:…` digests).
//!
//! ```
//! use parapet_detect::{Detector, TextView, secrets::SecretDetector};
//!
//! let secrets = SecretDetector::builtin().expect("built-in rules are valid");
//! let text = "export GITHUB_TOKEN=ghp_Zq3xT9vLm2Kp8sWd4Rf7Hj1Nb6Yc0Ue5Ga2B";
//! let found = secrets.scan(&TextView::plain(text));
//! assert_eq!(found[0].entity.as_deref(), Some("GITHUB_TOKEN"));
//! assert_eq!((found[0].span.start, found[0].span.end), (20, 60));
//! ```

mod rules;
#[cfg(test)]
mod tests;

use crate::detector::{Detector, TextView};
use crate::error::RuleError;
use crate::view::View;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use parapet_core::{Finding, Kind, Span};
use rules::{SecretRules, Validator};
use std::collections::HashMap;

/// The built-in rule file, embedded at build time.
pub const BUILTIN_RULES: &str = include_str!("../../../../rules/secrets.toml");

/// Longest value (bytes) a rule may report; longer matches are ignored (PEM keys fit).
const MAX_SECRET_BYTES: usize = 32 * 1024;
/// Bytes before a value searched for digest markers (`sha512-`, `sha256:`).
const BEFORE_WINDOW: usize = 16;

/// Detects credentials and keys. Compiled once; cheap to share across threads.
#[derive(Debug)]
pub struct SecretDetector {
    rules: SecretRules,
    /// Keyword automaton (ASCII case-insensitive).
    keywords: AhoCorasick,
    /// For each keyword pattern, the rules it enables.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules without keywords: always run.
    always: Vec<usize>,
}

/// Public description of one loaded rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRuleInfo<'a> {
    /// Rule id (`github-pat`); findings use detector id `secret.<id>`.
    pub id: &'a str,
    /// Entity name used for redaction placeholders (`GITHUB_TOKEN`).
    pub entity: &'a str,
    /// Who issues the credential.
    pub provider: &'a str,
    /// What the rule matches.
    pub description: &'a str,
    /// Severity from the rule file.
    pub severity: parapet_core::Severity,
    /// Texts the rule must find (fake values, checked by the unit tests).
    pub examples: &'a [String],
    /// Texts the rule must not find.
    pub negatives: &'a [String],
}

#[derive(Debug, Clone)]
struct Candidate {
    rule: usize,
    span: Span,
    score: f32,
}

impl SecretDetector {
    /// Loads the built-in rules (`rules/secrets.toml`).
    ///
    /// # Errors
    /// [`RuleError`] if the embedded file is invalid (a build defect, caught by the tests).
    pub fn builtin() -> Result<SecretDetector, RuleError> {
        Self::from_toml("rules/secrets.toml", BUILTIN_RULES)
    }

    /// Loads rules from TOML `source` (same shape as `rules/secrets.toml`); `file` names the
    /// source in error messages.
    ///
    /// # Errors
    /// [`RuleError::Parse`] for malformed TOML or unknown fields; [`RuleError::Invalid`] for a
    /// bad regex, unknown severity/validator/OWASP id, malformed ATLAS id, duplicate id, or a
    /// rule without examples.
    pub fn from_toml(file: &str, source: &str) -> Result<SecretDetector, RuleError> {
        let rules = rules::load(file, source)?;
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut patterns: Vec<&str> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        for (i, r) in rules.rules.iter().enumerate() {
            if r.keywords.is_empty() {
                always.push(i);
            }
            for k in &r.keywords {
                let slot = *index.entry(k.as_str()).or_insert_with(|| {
                    patterns.push(k.as_str());
                    keyword_rules.push(Vec::new());
                    patterns.len() - 1
                });
                if let Some(v) = keyword_rules.get_mut(slot) {
                    v.push(i);
                }
            }
        }
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| RuleError::Invalid {
                file: file.into(),
                id: "keywords".into(),
                message: format!("keyword automaton does not build: {e}"),
            })?;
        Ok(SecretDetector {
            rules,
            keywords,
            keyword_rules,
            always,
        })
    }

    /// Number of rules loaded.
    pub fn rule_count(&self) -> usize {
        self.rules.rules.len()
    }

    /// The loaded rules, in file order.
    pub fn rules(&self) -> impl Iterator<Item = SecretRuleInfo<'_>> {
        self.rules.rules.iter().map(|r| SecretRuleInfo {
            id: &r.id,
            entity: &r.entity,
            provider: &r.provider,
            description: &r.description,
            severity: r.severity,
            examples: &r.examples,
            negatives: &r.negatives,
        })
    }

    fn scan_view(&self, view: &View, out: &mut Vec<Candidate>) {
        let text = view.text.as_str();
        let mut active = vec![false; self.rules.rules.len()];
        let mut any = false;
        for &i in &self.always {
            if let Some(a) = active.get_mut(i) {
                *a = true;
                any = true;
            }
        }
        for m in self.keywords.find_overlapping_iter(text) {
            for &i in self
                .keyword_rules
                .get(m.pattern().as_usize())
                .into_iter()
                .flatten()
            {
                if let Some(a) = active.get_mut(i) {
                    *a = true;
                    any = true;
                }
            }
        }
        if !any {
            return;
        }
        for (idx, rule) in self.rules.rules.iter().enumerate() {
            if !active.get(idx).copied().unwrap_or(false) {
                continue;
            }
            let mut push = |s: usize, e: usize| {
                if let Some(score) = self.accept(idx, text, s, e) {
                    out.push(Candidate {
                        rule: idx,
                        span: view.span(s, e),
                        score,
                    });
                }
            };
            match rule.secret_group {
                None => rule
                    .regex
                    .find_iter(text)
                    .for_each(|m| push(m.start(), m.end())),
                Some(g) => rule.regex.captures_iter(text).for_each(|c| {
                    if let Some(m) = c.get(g) {
                        push(m.start(), m.end())
                    }
                }),
            }
        }
    }

    /// Post-regex checks on the value `text[s..e]`; the score if it is reported.
    fn accept(&self, idx: usize, text: &str, s: usize, e: usize) -> Option<f32> {
        let rule = self.rules.rules.get(idx)?;
        if e <= s || e - s > MAX_SECRET_BYTES {
            return None;
        }
        let value = text.get(s..e)?;
        let bytes = text.as_bytes();
        let alnum = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
        // A value that starts/ends with a letter or digit must not be glued to another one.
        if rule.boundary {
            if alnum(value.as_bytes().first()) && s > 0 && alnum(bytes.get(s - 1)) {
                return None;
            }
            if alnum(value.as_bytes().last()) && alnum(bytes.get(e)) {
                return None;
            }
        }
        if self.rules.allow_values.iter().any(|r| r.is_match(value))
            || rule.allow.iter().any(|r| r.is_match(value))
        {
            return None;
        }
        let mut from = s.saturating_sub(BEFORE_WINDOW);
        while from > 0 && !text.is_char_boundary(from) {
            from -= 1;
        }
        if let Some(before) = text.get(from..s) {
            let before = before.to_ascii_lowercase();
            if self
                .rules
                .allow_before
                .iter()
                .any(|m| before.contains(m.as_str()))
            {
                return None;
            }
        }
        if let Some(min) = rule.entropy {
            if shannon_entropy(value) < min {
                return None;
            }
        }
        match rule.validator {
            Some(Validator::Jwt) if !jwt_header_ok(value) => None,
            _ => Some(rule.score),
        }
    }

    fn finish(&self, cands: Vec<Candidate>) -> Vec<Finding> {
        let mut best: HashMap<(&str, Span), Candidate> = HashMap::new();
        for c in cands {
            let Some(rule) = self.rules.rules.get(c.rule) else {
                continue;
            };
            let key = (rule.entity.as_str(), c.span);
            match best.get(&key) {
                Some(old) if old.score >= c.score => {}
                _ => {
                    best.insert(key, c);
                }
            }
        }
        let mut kept: Vec<Candidate> = best.into_values().collect();
        kept.sort_by(|a, b| {
            (a.span.start, a.span.end, a.rule).cmp(&(b.span.start, b.span.end, b.rule))
        });
        let prio = |c: &Candidate| self.rules.rules.get(c.rule).map_or(0, |r| r.priority);
        kept.iter()
            .filter(|c| {
                !kept
                    .iter()
                    .any(|o| o.span.overlaps(&c.span) && prio(o) > prio(c))
            })
            .filter_map(|c| {
                let r = self.rules.rules.get(c.rule)?;
                let msg = format!(
                    "{}: {} (provider {}, severity {})",
                    r.entity, r.description, r.provider, r.severity
                );
                Some(
                    Finding::new(r.detector_id.clone(), Kind::Secret, c.span, c.score, msg)
                        .with_entity(r.entity.clone())
                        .with_mapping(Some(r.owasp), Some(r.atlas.clone())),
                )
            })
            .collect()
    }
}

impl Detector for SecretDetector {
    fn id(&self) -> &str {
        "secret"
    }

    fn scan(&self, text: &TextView) -> Vec<Finding> {
        let mut cands = Vec::new();
        for view in text.data_views() {
            self.scan_view(view, &mut cands);
        }
        self.finish(cands)
    }
}

/// Shannon entropy of `s` in bits per byte (0 for an empty string); a random base64 string
/// of 40 characters scores about 4.8, English words about 2.5–3.5, hex at most 4.
pub fn shannon_entropy(s: &str) -> f32 {
    let n = s.len();
    if n == 0 {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = n as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

/// Decodes unpadded or padded base64url (RFC 4648 §5); `None` on a bad character or input
/// over 4 KiB.
fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    if s.len() > 4096 {
        return None;
    }
    crate::decode::base64_decode(s)
}

/// RFC 7519/7515: the JOSE header (first segment) is base64url of a JSON object whose `alg`
/// member is a string.
fn jwt_header_ok(token: &str) -> bool {
    let Some(header) = token.split('.').next() else {
        return false;
    };
    let Some(raw) = base64url_decode(header) else {
        return false;
    };
    matches!(
        serde_json::from_slice::<serde_json::Value>(&raw),
        Ok(serde_json::Value::Object(m)) if m.get("alg").is_some_and(serde_json::Value::is_string)
    )
}
