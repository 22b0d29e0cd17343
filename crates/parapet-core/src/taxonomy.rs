//! OWASP Top 10 for LLM Applications (2025) and MITRE ATLAS identifiers.
//!
//! Sources: OWASP GenAI Security Project, "OWASP Top 10 for LLM Applications 2025"
//! (genai.owasp.org, November 2024); MITRE ATLAS technique matrix (atlas.mitre.org).

use serde::{Deserialize, Serialize};
use std::fmt;

/// OWASP Top 10 for LLM Applications, 2025 edition. Serialized as `LLM01` … `LLM10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Owasp {
    /// LLM01:2025 Prompt Injection.
    LLM01,
    /// LLM02:2025 Sensitive Information Disclosure.
    LLM02,
    /// LLM03:2025 Supply Chain.
    LLM03,
    /// LLM04:2025 Data and Model Poisoning.
    LLM04,
    /// LLM05:2025 Improper Output Handling.
    LLM05,
    /// LLM06:2025 Excessive Agency.
    LLM06,
    /// LLM07:2025 System Prompt Leakage.
    LLM07,
    /// LLM08:2025 Vector and Embedding Weaknesses.
    LLM08,
    /// LLM09:2025 Misinformation.
    LLM09,
    /// LLM10:2025 Unbounded Consumption.
    LLM10,
}

impl Owasp {
    /// All ten categories in order.
    pub const ALL: [Owasp; 10] = [
        Owasp::LLM01,
        Owasp::LLM02,
        Owasp::LLM03,
        Owasp::LLM04,
        Owasp::LLM05,
        Owasp::LLM06,
        Owasp::LLM07,
        Owasp::LLM08,
        Owasp::LLM09,
        Owasp::LLM10,
    ];

    /// The id, `LLM01` … `LLM10`.
    pub fn id(&self) -> &'static str {
        match self {
            Owasp::LLM01 => "LLM01",
            Owasp::LLM02 => "LLM02",
            Owasp::LLM03 => "LLM03",
            Owasp::LLM04 => "LLM04",
            Owasp::LLM05 => "LLM05",
            Owasp::LLM06 => "LLM06",
            Owasp::LLM07 => "LLM07",
            Owasp::LLM08 => "LLM08",
            Owasp::LLM09 => "LLM09",
            Owasp::LLM10 => "LLM10",
        }
    }

    /// The category's title in the 2025 list.
    pub fn title(&self) -> &'static str {
        match self {
            Owasp::LLM01 => "Prompt Injection",
            Owasp::LLM02 => "Sensitive Information Disclosure",
            Owasp::LLM03 => "Supply Chain",
            Owasp::LLM04 => "Data and Model Poisoning",
            Owasp::LLM05 => "Improper Output Handling",
            Owasp::LLM06 => "Excessive Agency",
            Owasp::LLM07 => "System Prompt Leakage",
            Owasp::LLM08 => "Vector and Embedding Weaknesses",
            Owasp::LLM09 => "Misinformation",
            Owasp::LLM10 => "Unbounded Consumption",
        }
    }

    /// Parses `LLM01` … `LLM10` (case-insensitive); `None` otherwise.
    pub fn parse(s: &str) -> Option<Owasp> {
        Owasp::ALL
            .into_iter()
            .find(|o| o.id().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Owasp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// MITRE ATLAS technique ids used by Parapet, as string constants, plus a validator for ids
/// read from data files.
pub struct Atlas;

impl Atlas {
    /// AML.T0051 LLM Prompt Injection (sub-techniques .000 direct, .001 indirect).
    pub const LLM_PROMPT_INJECTION: &'static str = "AML.T0051";
    /// AML.T0051.000 LLM Prompt Injection: Direct.
    pub const LLM_PROMPT_INJECTION_DIRECT: &'static str = "AML.T0051.000";
    /// AML.T0051.001 LLM Prompt Injection: Indirect.
    pub const LLM_PROMPT_INJECTION_INDIRECT: &'static str = "AML.T0051.001";
    /// AML.T0054 LLM Jailbreak.
    pub const LLM_JAILBREAK: &'static str = "AML.T0054";
    /// AML.T0056 Extract LLM System Prompt (formerly "LLM Meta Prompt Extraction").
    pub const LLM_META_PROMPT_EXTRACTION: &'static str = "AML.T0056";
    /// AML.T0057 LLM Data Leakage.
    pub const LLM_DATA_LEAKAGE: &'static str = "AML.T0057";
    /// AML.T0068 LLM Prompt Obfuscation.
    pub const LLM_PROMPT_OBFUSCATION: &'static str = "AML.T0068";
    /// AML.T0010 ML Supply Chain Compromise.
    pub const ML_SUPPLY_CHAIN_COMPROMISE: &'static str = "AML.T0010";
    /// AML.T0053 LLM Plugin Compromise (tool abuse).
    pub const LLM_PLUGIN_COMPROMISE: &'static str = "AML.T0053";

    /// True when `id` has the shape of an ATLAS technique id: `AML.T` + 4 digits, optionally
    /// `.` + 3 digits (`AML.T0051`, `AML.T0051.001`).
    pub fn is_valid_id(id: &str) -> bool {
        let Some(rest) = id.strip_prefix("AML.T") else {
            return false;
        };
        let (main, sub) = match rest.split_once('.') {
            Some((m, s)) => (m, Some(s)),
            None => (rest, None),
        };
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        digits(main, 4) && sub.is_none_or(|s| digits(s, 3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owasp_round_trip() {
        for o in Owasp::ALL {
            assert_eq!(Owasp::parse(o.id()), Some(o));
        }
        assert_eq!(Owasp::parse("llm07"), Some(Owasp::LLM07));
        assert_eq!(Owasp::parse("LLM11"), None);
        assert_eq!(serde_json::to_string(&Owasp::LLM05).unwrap(), "\"LLM05\"");
    }

    #[test]
    fn atlas_ids() {
        assert!(Atlas::is_valid_id("AML.T0051"));
        assert!(Atlas::is_valid_id("AML.T0051.001"));
        assert!(!Atlas::is_valid_id("AML.T051"));
        assert!(!Atlas::is_valid_id("T0051"));
        assert!(!Atlas::is_valid_id("AML.T0051.1"));
    }
}
