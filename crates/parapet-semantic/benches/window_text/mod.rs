//! The benchmark text, shared by the `semantic` bench and the `score_profile` example: business
//! prose cut or padded to an exact token count, so one window is full.

use parapet_semantic::SemanticModel;

/// The prose the text is made of.
pub const SENTENCE: &str = "Please read the attached quarterly report and summarise the main risks for the board, \
    including supply chain delays, currency exposure and the status of the new product launch in Europe.";

/// A text of exactly `n` tokens (without [CLS]/[SEP]) for `model`: the longest prefix of
/// repeated [`SENTENCE`] words that fits, padded with " the".
pub fn text_of(model: &SemanticModel, n: usize) -> String {
    let mut t = String::new();
    for w in SENTENCE.split_whitespace().cycle().take(10_000) {
        let cand = if t.is_empty() {
            w.to_string()
        } else {
            format!("{t} {w}")
        };
        if model.token_count(&cand).unwrap_or(usize::MAX) > n {
            break;
        }
        t = cand;
    }
    while model.token_count(&t).unwrap_or(usize::MAX) < n {
        t.push_str(" the");
    }
    t
}
