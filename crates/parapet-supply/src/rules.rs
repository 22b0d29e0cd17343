//! Detection data: the finding catalogue (`rules/supply-rules.toml`) and the pickle globals
//! policy (`rules/pickle-allowlist.toml`), embedded at build time and validated at load.

use parapet_core::{Atlas, Owasp, Severity};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const CATALOG_TOML: &str = include_str!("../../../rules/supply-rules.toml");
const GLOBALS_TOML: &str = include_str!("../../../rules/pickle-allowlist.toml");

/// Error loading a rules file: names the file and what was wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {why}")]
pub struct RulesError {
    /// Which file.
    pub file: &'static str,
    /// What was wrong.
    pub why: String,
}

/// One entry of the finding catalogue.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    /// Rule id, dotted (`pickle.dangerous-global`).
    pub id: String,
    /// Default severity.
    pub severity: Severity,
    /// OWASP LLM Top 10 (2025) category.
    pub owasp: Owasp,
    /// MITRE ATLAS technique id.
    pub atlas: String,
    /// One-sentence description.
    pub description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: u32,
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    severity: String,
    owasp: String,
    atlas: String,
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobalsFile {
    version: u32,
    allow: Vec<AllowEntry>,
    deny: Vec<DenyEntry>,
    known: Vec<KnownEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowEntry {
    module: String,
    names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyEntry {
    id: String,
    severity: String,
    description: String,
    module: Option<String>,
    modules: Option<Vec<String>>,
    names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownEntry {
    modules: Vec<String>,
}

/// How the globals policy classifies a `module.name` pair.
#[derive(Debug, Clone, PartialEq)]
pub enum GlobalClass {
    /// On the allowlist: nothing to report.
    Allowed,
    /// On the denylist: deny-entry id, severity and description.
    Denied {
        /// Deny entry id (`os-process`, `code-execution` …).
        id: String,
        /// Severity from the entry.
        severity: Severity,
        /// Why it is dangerous.
        description: String,
    },
    /// A dotted name with a dunder component (`__globals__` …).
    Dunder,
    /// A CapWords class from a known ML library.
    KnownClass,
    /// Anything else.
    Unknown,
}

struct DenyPrefix {
    prefix: String,
    id: String,
    severity: Severity,
    description: String,
}

/// The loaded, validated rules.
pub struct Rules {
    catalog: BTreeMap<String, RuleMeta>,
    allow: std::collections::HashSet<String>,
    deny: Vec<DenyPrefix>,
    known: Vec<String>,
}

fn sev(file: &'static str, s: &str) -> Result<Severity, RulesError> {
    Severity::parse(s).ok_or_else(|| RulesError {
        file,
        why: format!("unknown severity {s:?}"),
    })
}

/// Python 2 module names that CPython's `fix_imports` maps to Python 3 ones
/// (`Lib/_compat_pickle.py`), applied before policy lookup.
pub fn normalize_module(m: &str) -> &str {
    match m {
        "__builtin__" | "exceptions" => "builtins",
        "copy_reg" => "copyreg",
        "cPickle" => "pickle",
        "commands" => "subprocess",
        "urllib2" => "urllib.request",
        "httplib" => "http.client",
        "thread" => "_thread",
        "Queue" => "queue",
        "SocketServer" => "socketserver",
        other => other,
    }
}

fn prefix_match(full: &str, p: &str) -> bool {
    full == p || (full.starts_with(p) && full.as_bytes().get(p.len()) == Some(&b'.'))
}

impl Rules {
    /// Parses and validates the two embedded files.
    ///
    /// # Errors
    /// A [`RulesError`] naming the file and the bad key (unknown severity, bad OWASP or ATLAS
    /// id, duplicate rule id, empty list, unsupported version).
    pub fn load() -> Result<Rules, RulesError> {
        Self::from_strs(CATALOG_TOML, GLOBALS_TOML)
    }

    /// Same as [`Rules::load`] on caller-supplied text (used by tests and custom rule files).
    ///
    /// # Errors
    /// See [`Rules::load`].
    pub fn from_strs(catalog: &str, globals: &str) -> Result<Rules, RulesError> {
        const CF: &str = "supply-rules.toml";
        const GF: &str = "pickle-allowlist.toml";
        let c: CatalogFile = toml::from_str(catalog).map_err(|e| RulesError {
            file: CF,
            why: e.to_string(),
        })?;
        if c.version != 1 {
            return Err(RulesError {
                file: CF,
                why: format!("unsupported version {}", c.version),
            });
        }
        let mut cat = BTreeMap::new();
        for r in c.rule {
            let owasp = Owasp::parse(&r.owasp).ok_or_else(|| RulesError {
                file: CF,
                why: format!("rule {}: bad OWASP id {:?}", r.id, r.owasp),
            })?;
            if !Atlas::is_valid_id(&r.atlas) {
                return Err(RulesError {
                    file: CF,
                    why: format!("rule {}: bad ATLAS id {:?}", r.id, r.atlas),
                });
            }
            let meta = RuleMeta {
                severity: sev(CF, &r.severity)?,
                id: r.id.clone(),
                owasp,
                atlas: r.atlas,
                description: r.description,
            };
            if cat.insert(r.id.clone(), meta).is_some() {
                return Err(RulesError {
                    file: CF,
                    why: format!("duplicate rule id {}", r.id),
                });
            }
        }
        let g: GlobalsFile = toml::from_str(globals).map_err(|e| RulesError {
            file: GF,
            why: e.to_string(),
        })?;
        if g.version != 1 {
            return Err(RulesError {
                file: GF,
                why: format!("unsupported version {}", g.version),
            });
        }
        let mut allow = std::collections::HashSet::new();
        for a in g.allow {
            if a.names.is_empty() {
                return Err(RulesError {
                    file: GF,
                    why: format!("allow entry for {} has no names", a.module),
                });
            }
            for n in a.names {
                allow.insert(format!("{}.{}", a.module, n));
            }
        }
        let mut deny = Vec::new();
        for d in g.deny {
            let severity = sev(GF, &d.severity)?;
            let mut mods: Vec<String> = d.modules.unwrap_or_default();
            mods.extend(d.module);
            if mods.is_empty() || d.names.is_empty() {
                return Err(RulesError {
                    file: GF,
                    why: format!("deny entry {} needs module(s) and names", d.id),
                });
            }
            for m in &mods {
                for n in &d.names {
                    let prefix = if n == "*" {
                        m.clone()
                    } else {
                        format!("{m}.{n}")
                    };
                    deny.push(DenyPrefix {
                        prefix,
                        id: d.id.clone(),
                        severity,
                        description: d.description.clone(),
                    });
                }
            }
        }
        let known = g.known.into_iter().flat_map(|k| k.modules).collect();
        Ok(Rules {
            catalog: cat,
            allow,
            deny,
            known,
        })
    }

    /// The process-wide rules, loaded once.
    ///
    /// # Errors
    /// See [`Rules::load`]; the embedded files are also checked by this crate's tests.
    pub fn global() -> Result<&'static Rules, &'static RulesError> {
        static R: OnceLock<Result<Rules, RulesError>> = OnceLock::new();
        R.get_or_init(Rules::load).as_ref()
    }

    /// Catalogue entry for a rule id.
    pub fn meta(&self, id: &str) -> Option<&RuleMeta> {
        self.catalog.get(id)
    }

    /// All catalogue entries, sorted by id.
    pub fn all(&self) -> impl Iterator<Item = &RuleMeta> {
        self.catalog.values()
    }

    /// Classifies a global by the policy described in `pickle-allowlist.toml`.
    pub fn classify(&self, module: &str, name: &str) -> GlobalClass {
        let module = normalize_module(module.trim_end_matches(['\r']));
        let full = format!("{module}.{name}");
        if name
            .split('.')
            .any(|c| c.len() > 4 && c.starts_with("__") && c.ends_with("__"))
            && !self.allow.contains(&full)
        {
            return GlobalClass::Dunder;
        }
        // An exact allow entry is an explicit decision and wins over a module-wide deny entry
        // (e.g. joblib.numpy_pickle.NumpyArrayWrapper inside the denied `joblib` module).
        if self.allow.contains(&full) {
            return GlobalClass::Allowed;
        }
        if let Some(d) = self.deny.iter().find(|d| prefix_match(&full, &d.prefix)) {
            return GlobalClass::Denied {
                id: d.id.clone(),
                severity: d.severity,
                description: d.description.clone(),
            };
        }
        let last = name.rsplit('.').next().unwrap_or(name);
        if last.starts_with(|c: char| c.is_ascii_uppercase())
            && self.known.iter().any(|k| prefix_match(module, k))
        {
            return GlobalClass::KnownClass;
        }
        GlobalClass::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_rules_load_and_classify() {
        let r = Rules::load().unwrap();
        assert_eq!(
            r.classify("torch._utils", "_rebuild_tensor_v2"),
            GlobalClass::Allowed
        );
        assert_eq!(
            r.classify("torch", "_utils._rebuild_tensor_v2"),
            GlobalClass::Allowed
        );
        assert!(matches!(
            r.classify("posix", "system"),
            GlobalClass::Denied {
                severity: Severity::Critical,
                ..
            }
        ));
        assert!(matches!(
            r.classify("__builtin__", "eval"),
            GlobalClass::Denied { .. }
        ));
        assert!(matches!(
            r.classify("os.path", "join"),
            GlobalClass::Denied { .. }
        ));
        assert_eq!(r.classify("osx", "thing"), GlobalClass::Unknown);
        assert_eq!(
            r.classify("collections", "OrderedDict.__init__.__globals__"),
            GlobalClass::Dunder
        );
        assert_eq!(
            r.classify("sklearn.linear_model._logistic", "LogisticRegression"),
            GlobalClass::KnownClass
        );
        assert_eq!(
            r.classify("sklearn.utils", "load_thing"),
            GlobalClass::Unknown
        );
        assert!(matches!(
            r.classify("numpy", "load"),
            GlobalClass::Denied { .. }
        ));
        assert_eq!(r.classify("numpy", "loadsomething"), GlobalClass::Unknown);
    }

    #[test]
    fn bad_files_give_clear_errors() {
        let bad = "version = 1\n[[rule]]\nid='x'\nseverity='urgent'\nowasp='LLM03'\natlas='AML.T0010'\ndescription='d'\n";
        let e = Rules::from_strs(bad, GLOBALS_TOML).err().unwrap();
        assert!(e.to_string().contains("unknown severity"), "{e}");
        let bad_atlas = bad.replace("urgent", "high").replace("AML.T0010", "T10");
        let e = Rules::from_strs(&bad_atlas, GLOBALS_TOML).err().unwrap();
        assert!(e.to_string().contains("bad ATLAS id"), "{e}");
    }
}
