//! `parapet eval`: detection quality on a labelled JSONL dataset.
//!
//! Each row is scored with `max(prompt_injection, jailbreak)` (or the kinds given by
//! `--kinds`). Reported for the combined engine and, side by side, for the rule packs alone
//! and the classifier alone: precision, recall, F1 and false-positive rate at `--threshold`,
//! and recall at 1 % and 5 % false-positive rate (with the thresholds that achieve them),
//! overall and per language. With `--kfold K` the classifier is retrained K times, each time
//! without one fold, and scores only the held-out fold (folds by a stable hash of the text,
//! the same assignment the trainer uses).
//!
//! With the semantic tier (`--tier all`, the default when its model is found) the table also
//! shows the fast tier alone (`fast`: rules + classifier, what `combined` is without the
//! semantic tier), the semantic tier alone (`semantic`, run on every row) and `combined`, the
//! engine's final score under the `--semantic` mode as `parapet scan` and the gateway decide it:
//! the semantic score counts only where the mode runs the tier, and a semantic score nothing
//! independent corroborates is capped (0.84 unless `--semantic-can-block`; see
//! `parapet_detect::CORROBORATION`). The semantic model is never retrained by `--kfold`.

use anyhow::{bail, Context};
use clap::Args;
use parapet_core::Kind;
use parapet_detect::train::{fold_of, train, Sample, TrainConfig};
use parapet_detect::{Engine, InjectionDetector};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;

/// Arguments of `parapet eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Labelled JSONL dataset.
    pub dataset: std::path::PathBuf,
    /// Field holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Field holding the label.
    #[arg(long, default_value = "label")]
    pub label_field: String,
    /// Field holding the language code (rows without it count as `und`).
    #[arg(long, default_value = "lang")]
    pub lang_field: String,
    /// Comma-separated labels that count as positives.
    #[arg(long, default_value = "injection,jailbreak", value_delimiter = ',')]
    pub positive: Vec<String>,
    /// Comma-separated score kinds whose maximum is the row's score.
    #[arg(
        long,
        default_value = "prompt_injection,jailbreak",
        value_delimiter = ','
    )]
    pub kinds: Vec<String>,
    /// Decision threshold for precision/recall/F1/FPR (default: the built-in policy's
    /// prompt-injection block threshold).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Retrain the classifier with K-fold cross-validation (use when evaluating on its own
    /// training data).
    #[arg(long)]
    pub kfold: Option<usize>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Which tiers to report: fast (rules + classifier), semantic, combined, or all side by
    /// side (default: all when the semantic model is found, else fast).
    #[arg(long, value_enum)]
    pub tier: Option<TierSel>,
    /// Semantic tier options.
    #[command(flatten)]
    pub semantic: crate::semantic::SemanticArgs,
}

/// `--tier` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TierSel {
    /// The fast tier: combined engine score (without the semantic tier), rules, classifier.
    Fast,
    /// The semantic tier alone.
    Semantic,
    /// The engine's final score with the semantic tier.
    Combined,
    /// Everything side by side.
    All,
}

/// Score columns per row, in this order.
const COLUMNS: [&str; 5] = ["combined", "rules", "classifier", "fast", "semantic"];

/// Rows scanned per engine batch.
const EVAL_BATCH: usize = 32;

/// Metrics of one scorer on one slice.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metrics {
    /// Rows in the slice.
    pub n: usize,
    /// Positive rows.
    pub positives: usize,
    /// Precision at the threshold (NaN-free: 0 when nothing is predicted positive).
    pub precision: f64,
    /// Recall at the threshold.
    pub recall: f64,
    /// F1 at the threshold.
    pub f1: f64,
    /// False-positive rate at the threshold.
    pub fpr: f64,
    /// Recall at 1 % false-positive rate (`None` with no negatives).
    pub recall_at_1pct_fpr: Option<f64>,
    /// Threshold achieving the 1 % operating point.
    pub threshold_1pct_fpr: Option<f64>,
    /// Recall at 5 % false-positive rate.
    pub recall_at_5pct_fpr: Option<f64>,
    /// Threshold achieving the 5 % operating point.
    pub threshold_5pct_fpr: Option<f64>,
}

/// Computes [`Metrics`] for scores and labels at `threshold`.
pub fn metrics(scores: &[f32], labels: &[bool], threshold: f32) -> Metrics {
    let n = scores.len();
    let positives = labels.iter().filter(|&&l| l).count();
    let (mut tp, mut fp) = (0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        if s >= threshold {
            if l {
                tp += 1
            } else {
                fp += 1
            }
        }
    }
    let negatives = n - positives;
    let div = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = div(tp, tp + fp);
    let recall = div(tp, positives);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    let mut neg: Vec<f32> = scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| !l)
        .map(|(&s, _)| s)
        .collect();
    neg.sort_by(|a, b| b.total_cmp(a));
    // the smallest threshold t such that #{neg >= t} <= rate * negatives: everything strictly
    // above the k-th highest negative score, where k = floor(rate * negatives)
    let at = |rate: f64| -> Option<(f64, f64)> {
        if negatives == 0 || positives == 0 {
            return None;
        }
        let k = (rate * negatives as f64).floor() as usize;
        let t = neg.get(k).copied().unwrap_or(f32::NEG_INFINITY);
        let hit = scores
            .iter()
            .zip(labels)
            .filter(|(&s, &l)| l && s > t)
            .count();
        Some((div(hit, positives), t as f64))
    };
    let (r1, t1) = at(0.01).unzip();
    let (r5, t5) = at(0.05).unzip();
    Metrics {
        n,
        positives,
        precision,
        recall,
        f1,
        fpr: div(fp, negatives),
        recall_at_1pct_fpr: r1,
        threshold_1pct_fpr: t1,
        recall_at_5pct_fpr: r5,
        threshold_5pct_fpr: t5,
    }
}

struct Row {
    text: String,
    label: String,
    lang: String,
}

fn read_rows(args: &EvalArgs) -> anyhow::Result<Vec<Row>> {
    let f = std::fs::File::open(&args.dataset)
        .with_context(|| format!("cannot open {}", args.dataset.display()))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(f).split(b'\n').enumerate() {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: invalid JSON", args.dataset.display(), i + 1))?;
        let get = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(text), Some(label)) = (get(&args.text_field), get(&args.label_field)) else {
            bail!(
                "{}:{}: missing string field `{}` or `{}`",
                args.dataset.display(),
                i + 1,
                args.text_field,
                args.label_field
            );
        };
        rows.push(Row {
            text,
            label,
            lang: get(&args.lang_field).unwrap_or_else(|| "und".into()),
        });
    }
    if rows.is_empty() {
        bail!("{}: no rows", args.dataset.display());
    }
    Ok(rows)
}

/// Scores per row, in [`COLUMNS`] order. `combine` is the mode under which the semantic score
/// enters `combined` (`None`: it never does).
fn score_rows(
    engine: &Engine,
    rows: &[&Row],
    kinds: &[Kind],
    combine: Option<parapet_detect::TierMode>,
) -> Vec<[f32; 5]> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(EVAL_BATCH) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        for (r, report) in chunk.iter().zip(engine.scan_many(&texts)) {
            let tier =
                |name: &str, k: Kind| report.tiers.get(name).and_then(|m| m.get(&k)).copied();
            let fast_of = |k: Kind| tier("fast", k).unwrap_or_else(|| report.score(k));
            let fast = kinds.iter().map(|&k| fast_of(k)).fold(0f32, f32::max);
            let sem = kinds
                .iter()
                .map(|&k| tier("semantic", k).unwrap_or(0.0))
                .fold(0f32, f32::max);
            // where the mode runs the tier, the engine's final score: the semantic score as
            // deployed (capped when nothing independent corroborated it), or the fast score
            let gate = fast_of(Kind::PromptInjection).max(fast_of(Kind::Jailbreak));
            let combined = match combine {
                Some(m) if report.tiers.contains_key("semantic") && m.wants(gate) => {
                    kinds.iter().map(|&k| report.score(k)).fold(0f32, f32::max)
                }
                _ => fast,
            };
            let (tv, _) = engine.views(&r.text);
            let a = engine.injection().assess(&tv);
            let rules = a
                .findings
                .iter()
                .filter(|f| {
                    !parapet_detect::injection::CLASSIFIER_DETECTORS.contains(&f.detector.as_str())
                        && kinds.contains(&f.kind)
                })
                .map(|f| f.score)
                .fold(0f32, f32::max);
            let clf = a.classifier[0].max(a.classifier[1]);
            out.push([combined, rules, clf, fast, sem]);
        }
    }
    out
}

/// Runs `parapet eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<i32> {
    let rows = read_rows(&args)?;
    let kinds: Vec<Kind> = args
        .kinds
        .iter()
        .map(|k| Kind::parse(k).with_context(|| format!("unknown kind `{k}`")))
        .collect::<anyhow::Result<_>>()?;
    let policy = parapet_policy::Policy::builtin();
    let threshold = args.threshold.unwrap_or_else(|| {
        policy
            .kinds
            .get("prompt_injection")
            .and_then(|t| t.block)
            .unwrap_or(0.85)
    });
    use crate::semantic::Mode;
    let want_semantic = args.tier != Some(TierSel::Fast);
    let tier = if want_semantic {
        crate::semantic::load(&args.semantic, "eval", None)?
    } else {
        None
    };
    if tier.is_none() && matches!(args.tier, Some(TierSel::Semantic | TierSel::Combined)) {
        bail!("--tier semantic/combined needs the semantic model (see --semantic-model)");
    }
    let sel = args.tier.unwrap_or(if tier.is_some() {
        TierSel::All
    } else {
        TierSel::Fast
    });
    let combine = args
        .semantic
        .tier_mode(args.semantic.semantic.unwrap_or(Mode::Always));
    if let Some(t) = &tier {
        eprintln!(
            "parapet eval: semantic model {} (version {}), combined under {:?}",
            t.dir.display(),
            t.version,
            combine
        );
    }
    // the semantic tier runs on every row; `combine` decides where it counts
    let with_tier = |e: Engine| match &tier {
        Some(t) => e.with_tier_config(
            Box::new(crate::semantic::Shared(t.scorer.clone())),
            parapet_detect::TierConfig {
                mode: parapet_detect::TierMode::Always,
                report_floor: t.fpr_5,
                fail_closed: false,
                solo_cap: args.semantic.solo_cap(),
                classifier_corroborates: false,
            },
        ),
        None => e,
    };
    let engine = with_tier(Engine::builtin()?);
    let names: &[&str] = match sel {
        TierSel::Fast => &["combined", "rules", "classifier"],
        TierSel::Semantic => &["semantic"],
        TierSel::Combined => &["combined"],
        TierSel::All => &["fast", "rules", "classifier", "semantic", "combined"],
    };
    let scorers: Vec<(&str, usize)> = names
        .iter()
        .filter_map(|n| COLUMNS.iter().position(|c| c == n).map(|i| (*n, i)))
        .collect();
    let mut scores = vec![[0f32; 5]; rows.len()];
    match args.kfold {
        Some(k) if k >= 2 => {
            let samples: Vec<Sample> = rows
                .iter()
                .map(|r| Sample {
                    text: r.text.clone(),
                    label: r.label.clone(),
                })
                .collect();
            let cfg = TrainConfig::default();
            for f in 0..k {
                let train_set: Vec<Sample> = samples
                    .iter()
                    .filter(|s| fold_of(&s.text, k) != f)
                    .cloned()
                    .collect();
                let clf = train(&train_set, &cfg, &format!("fold-{f}"));
                let det = InjectionDetector::new(engine.injection().rules().clone(), clf);
                let fold_engine = with_tier(Engine::builtin()?.with_injection(det));
                let idx: Vec<usize> = (0..rows.len())
                    .filter(|&i| fold_of(&rows[i].text, k) == f)
                    .collect();
                let held: Vec<&Row> = idx.iter().map(|&i| &rows[i]).collect();
                for (i, s) in idx
                    .iter()
                    .zip(score_rows(&fold_engine, &held, &kinds, combine))
                {
                    scores[*i] = s;
                }
                eprintln!("parapet eval: fold {}/{k} done", f + 1);
            }
        }
        Some(_) => bail!("--kfold needs at least 2 folds"),
        None => {
            let all: Vec<&Row> = rows.iter().collect();
            scores = score_rows(&engine, &all, &kinds, combine);
        }
    }
    let labels: Vec<bool> = rows
        .iter()
        .map(|r| args.positive.contains(&r.label))
        .collect();
    let mut slices: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    slices.insert("all".into(), (0..rows.len()).collect());
    for (i, r) in rows.iter().enumerate() {
        slices
            .entry(format!("lang={}", r.lang))
            .or_default()
            .push(i);
        slices
            .entry(format!("label={}", r.label))
            .or_default()
            .push(i);
    }
    let mut report: BTreeMap<String, BTreeMap<&str, Metrics>> = BTreeMap::new();
    for (name, idx) in &slices {
        let l: Vec<bool> = idx.iter().map(|&i| labels[i]).collect();
        let mut m = BTreeMap::new();
        for &(s, j) in &scorers {
            let sc: Vec<f32> = idx.iter().map(|&i| scores[i][j]).collect();
            m.insert(s, metrics(&sc, &l, threshold));
        }
        report.insert(name.clone(), m);
    }
    if args.json {
        let doc = serde_json::json!({
            "dataset": args.dataset.display().to_string(),
            "threshold": threshold,
            "kfold": args.kfold,
            "positive": args.positive,
            "kinds": args.kinds,
            "slices": report,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    println!(
        "dataset {} · {} rows · positives: {} · threshold {threshold} · {}",
        args.dataset.display(),
        rows.len(),
        args.positive.join(","),
        match args.kfold {
            Some(k) => format!("{k}-fold cross-validated classifier"),
            None => "shipped classifier".into(),
        }
    );
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "slice", "scorer", "n", "pos", "P", "R", "F1", "FPR", "R@1%FPR", "R@5%FPR",
    ]);
    let f = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into());
    for (name, m) in &report {
        if name.starts_with("lang=") && m.values().next().is_some_and(|x| x.n < 10) {
            continue;
        }
        for &(s, _) in &scorers {
            let Some(x) = m.get(s) else { continue };
            t.add_row([
                name.clone(),
                s.to_string(),
                x.n.to_string(),
                x.positives.to_string(),
                format!("{:.3}", x.precision),
                format!("{:.3}", x.recall),
                format!("{:.3}", x.f1),
                format!("{:.3}", x.fpr),
                f(x.recall_at_1pct_fpr),
                f(x.recall_at_5pct_fpr),
            ]);
        }
    }
    println!("{t}");
    let last = scorers.last().map_or("combined", |s| s.0);
    let Some(all) = report.get("all").and_then(|m| m.get(last)) else {
        return Ok(0);
    };
    println!(
        "operating points ({last}): 1% FPR at score > {} · 5% FPR at score > {}",
        f(all.threshold_1pct_fpr),
        f(all.threshold_5pct_fpr)
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_values() {
        let s = [0.9, 0.8, 0.3, 0.7, 0.1, 0.2];
        let l = [true, true, true, false, false, false];
        let m = metrics(&s, &l, 0.5);
        assert_eq!((m.n, m.positives), (6, 3));
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-9);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-9);
        assert!((m.fpr - 1.0 / 3.0).abs() < 1e-9);
        // 1% of 3 negatives = 0 allowed: threshold is the top negative (0.7)
        assert_eq!(m.threshold_1pct_fpr, Some(0.7f32 as f64));
        assert!((m.recall_at_1pct_fpr.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    }
}
