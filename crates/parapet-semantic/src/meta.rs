//! `parapet.json`: the classifier's labels, windowing, temperature, calibration and thresholds.

use crate::error::SemanticError;
use serde::Deserialize;
use std::path::Path;

/// The only `format` this crate reads.
pub const FORMAT: u32 = 1;

/// Thresholds on the calibrated attack score that give 1 % and 5 % false-positive rates on
/// the trainer's held-out benign data.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Thresholds {
    /// Score at 1 % false-positive rate (by construction about 0.85).
    pub fpr_1: f32,
    /// Score at 5 % false-positive rate (by construction about 0.5).
    pub fpr_5: f32,
}

/// The contents of `parapet.json` (unknown keys are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelMeta {
    /// File format version; must be [`FORMAT`].
    pub format: u32,
    /// Model version string (for reports).
    pub version: String,
    /// Output labels in logit order; must include `benign`, `injection`, `jailbreak`
    /// (`harmful` is optional).
    pub labels: Vec<String>,
    /// Pooling of the encoder output; only `"mean"` (over the attention mask) is supported.
    pub pooling: String,
    /// Tokens per window, including `[CLS]` and `[SEP]`.
    pub max_tokens: usize,
    /// Tokens shared by consecutive windows.
    pub stride: usize,
    /// Logits are divided by this before the softmax (temperature scaling, Guo et al. 2017).
    pub temperature: f32,
    /// Monotone piecewise-linear map `[[raw, score], …]` applied to the attack probability.
    pub calibration: Vec<[f32; 2]>,
    /// Default thresholds.
    pub thresholds: Thresholds,
}

fn invalid(path: &Path, key: &str, message: impl Into<String>) -> SemanticError {
    SemanticError::Invalid {
        path: path.to_path_buf(),
        key: key.to_string(),
        message: message.into(),
    }
}

fn unit(x: f32) -> bool {
    x.is_finite() && (0.0..=1.0).contains(&x)
}

impl ModelMeta {
    /// Parses and validates `parapet.json` text; `path` is only used in errors.
    /// `max_positions` is the encoder's `max_position_embeddings`.
    ///
    /// # Errors
    /// [`SemanticError::Json`] for bad JSON or a missing key, [`SemanticError::Invalid`] for a
    /// value out of range (naming the key).
    pub fn parse(
        text: &str,
        path: &Path,
        max_positions: usize,
    ) -> Result<ModelMeta, SemanticError> {
        let m: ModelMeta = serde_json::from_str(text).map_err(|e| SemanticError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        m.validate(path, max_positions)?;
        Ok(m)
    }

    fn validate(&self, path: &Path, max_positions: usize) -> Result<(), SemanticError> {
        if self.format != FORMAT {
            return Err(invalid(
                path,
                "format",
                format!("unsupported format {} (expected {FORMAT})", self.format),
            ));
        }
        for l in ["benign", "injection", "jailbreak"] {
            if !self.labels.iter().any(|x| x == l) {
                return Err(invalid(path, "labels", format!("label `{l}` is missing")));
            }
        }
        for (i, l) in self.labels.iter().enumerate() {
            if self.labels[..i].contains(l) {
                return Err(invalid(
                    path,
                    "labels",
                    format!("label `{l}` appears twice"),
                ));
            }
        }
        if self.pooling != "mean" {
            return Err(invalid(
                path,
                "pooling",
                format!("unsupported pooling `{}` (only `mean`)", self.pooling),
            ));
        }
        if self.max_tokens < 3 || self.max_tokens > max_positions {
            return Err(invalid(
                path,
                "max_tokens",
                format!(
                    "{} is outside [3, max_position_embeddings = {max_positions}]",
                    self.max_tokens
                ),
            ));
        }
        if self.stride >= self.max_tokens - 2 {
            return Err(invalid(
                path,
                "stride",
                format!(
                    "{} must be smaller than max_tokens - 2 = {}",
                    self.stride,
                    self.max_tokens - 2
                ),
            ));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(invalid(
                path,
                "temperature",
                format!("{} is not a positive number", self.temperature),
            ));
        }
        let c = &self.calibration;
        if c.len() < 2 {
            return Err(invalid(path, "calibration", "needs at least two points"));
        }
        for (i, p) in c.iter().enumerate() {
            if !unit(p[0]) || !unit(p[1]) {
                return Err(invalid(
                    path,
                    &format!("calibration[{i}]"),
                    format!("{p:?} is outside [0, 1]"),
                ));
            }
            if i > 0 && (p[0] <= c[i - 1][0] || p[1] < c[i - 1][1]) {
                return Err(invalid(
                    path,
                    &format!("calibration[{i}]"),
                    format!(
                        "{p:?} after {:?}: raw must increase strictly and score must not decrease",
                        c[i - 1]
                    ),
                ));
            }
        }
        if c[0][0] != 0.0 || c[c.len() - 1][0] != 1.0 {
            return Err(invalid(
                path,
                "calibration",
                "the first point must have raw 0 and the last raw 1",
            ));
        }
        for (k, v) in [
            ("thresholds.fpr_1", self.thresholds.fpr_1),
            ("thresholds.fpr_5", self.thresholds.fpr_5),
        ] {
            if !unit(v) {
                return Err(invalid(path, k, format!("{v} is outside [0, 1]")));
            }
        }
        Ok(())
    }

    /// The calibrated score of raw probability `raw` (clamped into [0, 1]; NaN gives 0):
    /// linear interpolation between the calibration points.
    pub fn calibrate(&self, raw: f32) -> f32 {
        let x = if raw.is_nan() {
            0.0
        } else {
            raw.clamp(0.0, 1.0)
        };
        let c = &self.calibration;
        let i = c.partition_point(|p| p[0] < x);
        if i == 0 {
            return c.first().map_or(x, |p| p[1]);
        }
        let Some(&[x1, y1]) = c.get(i) else {
            return c.last().map_or(x, |p| p[1]);
        };
        let [x0, y0] = c[i - 1];
        if x1 <= x0 {
            return y1;
        }
        y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    }

    /// Index of `label` in the logits.
    pub fn label_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(cal: &str) -> Result<ModelMeta, SemanticError> {
        let t = format!(
            r#"{{"format":1,"version":"t","labels":["benign","injection","jailbreak","harmful"],"pooling":"mean",
            "max_tokens":16,"stride":4,"temperature":1.5,"calibration":{cal},"thresholds":{{"fpr_1":0.85,"fpr_5":0.5}},"extra":[1,2]}}"#
        );
        ModelMeta::parse(&t, Path::new("parapet.json"), 64)
    }

    #[test]
    fn calibration_interpolates() {
        let m = meta("[[0,0],[0.5,0.2],[1,1]]").unwrap();
        assert!((m.calibrate(0.25) - 0.1).abs() < 1e-6);
        assert!((m.calibrate(0.75) - 0.6).abs() < 1e-6);
        assert_eq!(m.calibrate(0.0), 0.0);
        assert_eq!(m.calibrate(1.0), 1.0);
        assert_eq!(m.calibrate(f32::NAN), 0.0);
        assert_eq!(m.calibrate(7.0), 1.0);
        assert_eq!(m.label_index("jailbreak"), Some(2));
    }

    #[test]
    fn non_monotone_calibration_is_rejected() {
        let e = meta("[[0,0],[0.5,0.6],[0.7,0.4],[1,1]]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("parapet.json") && e.contains("calibration[2]"),
            "{e}"
        );
        let e = meta("[[0,0],[0.5,0.2],[0.5,0.3],[1,1]]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("calibration[2]"), "{e}");
        let e = meta("[[0.1,0],[1,1]]").unwrap_err().to_string();
        assert!(e.contains("first point"), "{e}");
        let e = meta("[[0,0],[1,1.5]]").unwrap_err().to_string();
        assert!(e.contains("calibration[1]") && e.contains("outside"), "{e}");
    }

    #[test]
    fn missing_key_and_bad_values_are_named() {
        let e = ModelMeta::parse(r#"{"format":1}"#, Path::new("m/parapet.json"), 64)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m/parapet.json") && e.contains("missing field"),
            "{e}"
        );
        let t = r#"{"format":1,"version":"t","labels":["benign","injection"],"pooling":"mean","max_tokens":16,"stride":4,
            "temperature":1,"calibration":[[0,0],[1,1]],"thresholds":{"fpr_1":0.85,"fpr_5":0.5}}"#;
        let e = ModelMeta::parse(t, Path::new("parapet.json"), 64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`labels`") && e.contains("jailbreak"), "{e}");
        let t = t
            .replace(r#""injection"]"#, r#""injection","jailbreak"]"#)
            .replace("16", "100");
        let e = ModelMeta::parse(&t, Path::new("parapet.json"), 64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`max_tokens`"), "{e}");
    }
}
