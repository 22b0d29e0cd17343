//! Chat-template (Jinja) check on the parsed template: the template is parsed with
//! minijinja's parser (`machinery::parse`, the same grammar as Jinja2) and its AST is walked
//! with constant folding, so a name is checked the way the template engine will see it,
//! however it is spelled:
//!
//! * attribute and item access (`x.__class__`, `x["__class__"]`), the `attr` filter
//!   (`x|attr("__cl" ~ "ass__")`) and `attribute=` arguments (`map`, `selectattr` …) to
//!   Python internals (`__class__`, `__mro__`, `__subclasses__`, `__globals__`,
//!   `__builtins__`, `__init__`, `__import__` … and any other dunder) → critical;
//! * access to process/import machinery by name (`.os`, `["subprocess"]`, `.popen(…)`,
//!   `.system(…)`, `.eval(…)`, `.import_module(…)`) and `{% import %}` /
//!   `{% from … import %}` → critical;
//! * names folded from pieces (`"__cla" + "ss__"`, `~`, `|join`, `|reverse`, `|replace`,
//!   `|lower`/`|upper`, `[::-1]`, `|format`, `%`, `{% set %}` variables) → resolved first;
//! * SSTI entry points (`lipsum`, `cycler`, `joiner`, `self`, `request`, `config` …), the
//!   `attr` filter with a name that cannot be resolved, `_private` attributes,
//!   `{% include %}` / `{% extends %}`, character-assembling format strings, dunder fragments
//!   → medium;
//! * a template the parser rejects → medium (`gguf.template-unparsed`, never clean), and the
//!   token-level check of [`crate::template_tokens`] runs on it instead.
//!
//! Sources: Jinja sandbox (`is_safe_attribute`, `_` prefix rule); the llama-cpp-python GGUF
//! template advisory (CVE-2024-34359, GHSA-56xg-wfcc-g829); PayloadsAllTheThings "Server
//! Side Template Injection / Jinja2".

use crate::finding::Ctx;
use crate::template_tokens::{CRITICAL_WORDS, GADGETS};
use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use minijinja::machinery::parse;

/// Longest template parsed (longer ones are a finding and checked by tokens only).
pub const MAX_TEMPLATE: usize = 1 << 20;
/// Most alternatives kept for a folded string (`{% set %}` in branches, `a if c else b`).
const MAX_ALTS: usize = 16;
/// Longest folded string kept.
const MAX_FOLD: usize = 4096;

/// Attribute/item names of process and import machinery: critical when accessed.
const PROCESS_NAMES: &[&str] = &[
    "os",
    "subprocess",
    "popen",
    "eval",
    "exec",
    "import_module",
    "builtins",
    "sys",
    "modules",
    "check_output",
    "spawnv",
    "execv",
    "posix",
    "pty",
    "importlib",
];

/// Method names that run commands or code when called (`x.system("id")`).
const EXEC_CALLS: &[&str] = &["system", "popen", "eval", "exec", "spawn", "check_output"];

/// Filters whose `attribute=` argument (or first positional for `map`) is a getattr.
const ATTRIBUTE_FILTERS: &[&str] = &[
    "map",
    "selectattr",
    "rejectattr",
    "groupby",
    "sort",
    "sum",
    "unique",
    "min",
    "max",
    "dictsort",
];

/// A statically known value: every string the expression may evaluate to (empty: unknown).
#[derive(Clone, Debug, Default)]
struct Sv(Vec<String>);

impl Sv {
    fn one(s: impl Into<String>) -> Sv {
        let s: String = s.into();
        Sv(vec![s.chars().take(MAX_FOLD).collect()])
    }
    fn unknown() -> Sv {
        Sv(Vec::new())
    }
    fn known(&self) -> bool {
        !self.0.is_empty()
    }
    fn map(&self, f: impl Fn(&str) -> String) -> Sv {
        Sv(self
            .0
            .iter()
            .map(|s| f(s).chars().take(MAX_FOLD).collect())
            .collect())
    }
    fn concat(&self, other: &Sv) -> Sv {
        if !self.known() || !other.known() {
            return Sv::unknown();
        }
        let mut out = Vec::new();
        'a: for a in &self.0 {
            for b in &other.0 {
                if out.len() >= MAX_ALTS {
                    break 'a;
                }
                out.push(format!("{a}{b}").chars().take(MAX_FOLD).collect());
            }
        }
        Sv(out)
    }
    fn union(mut self, other: Sv) -> Sv {
        for s in other.0 {
            if self.0.len() < MAX_ALTS && !self.0.contains(&s) {
                self.0.push(s);
            }
        }
        self
    }
}

struct Walker<'c, 'r> {
    ctx: &'c mut Ctx<'r>,
    vars: std::collections::HashMap<String, Sv>,
    crit: Vec<String>,
    susp: Vec<String>,
}

fn is_dunder(s: &str) -> bool {
    s.len() > 4 && s.starts_with("__") && s.ends_with("__")
}

/// Why a name (attribute, item key, `attr` argument) is critical, if it is.
fn critical_name(name: &str) -> Option<String> {
    if is_dunder(name) || CRITICAL_WORDS.contains(&name) {
        Some(name.to_string())
    } else if PROCESS_NAMES.contains(&name) {
        Some(format!("{name} (process/import access)"))
    } else {
        None
    }
}

impl Walker<'_, '_> {
    fn name_access(&mut self, how: &str, names: &Sv) {
        for n in &names.0 {
            if let Some(why) = critical_name(n) {
                self.crit.push(format!("{how} {why}"));
            } else if n.starts_with('_') {
                self.susp.push(format!("{how} private attribute {n}"));
            } else if n.contains("__") {
                self.susp
                    .push(format!("{how} {n:?} with a dunder fragment"));
            }
        }
    }

    fn literal(&mut self, s: &str) {
        if let Some(w) = CRITICAL_WORDS
            .iter()
            .find(|w| w.starts_with('_') && s.contains(*w))
        {
            self.crit.push(format!("string containing {w}"));
        } else if s.contains("__") {
            self.susp.push(format!(
                "string {:?} with a dunder fragment",
                s.chars().take(40).collect::<String>()
            ));
        } else if s.contains("%c") {
            self.susp.push("character-assembling format string".into());
        }
    }

    fn args(&mut self, args: &[CallArg<'_>]) -> Vec<(Option<String>, Sv)> {
        args.iter()
            .map(|a| match a {
                CallArg::Pos(e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
                    (None, self.expr(e))
                }
                CallArg::Kwarg(k, e) => (Some(k.to_string()), self.expr(e)),
            })
            .collect()
    }

    fn expr(&mut self, e: &Expr<'_>) -> Sv {
        let v = match e {
            Expr::Var(v) => {
                if is_dunder(v.id) || CRITICAL_WORDS.contains(&v.id) {
                    self.crit.push(format!("variable {}", v.id));
                } else if GADGETS.contains(&v.id) && !self.vars.contains_key(v.id) {
                    self.susp.push(format!("global {}", v.id));
                }
                self.vars.get(v.id).cloned().unwrap_or_default()
            }
            Expr::Const(c) => match c.value.as_str() {
                Some(s) => Sv::one(s),
                None => match c.value.as_i64() {
                    Some(i) => Sv::one(i.to_string()),
                    None => Sv::unknown(),
                },
            },
            Expr::Slice(s) => {
                let base = self.expr(&s.expr);
                for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(x);
                }
                let rev = s
                    .step
                    .as_ref()
                    .and_then(|x| x.as_const())
                    .and_then(|c| c.as_i64())
                    == Some(-1);
                if rev && s.start.is_none() && s.stop.is_none() {
                    base.map(|x| x.chars().rev().collect())
                } else {
                    Sv::unknown()
                }
            }
            Expr::UnaryOp(u) => {
                self.expr(&u.expr);
                Sv::unknown()
            }
            Expr::BinOp(b) => {
                let l = self.expr(&b.left);
                let r = self.expr(&b.right);
                match b.op {
                    ast::BinOpKind::Add | ast::BinOpKind::Concat => l.concat(&r),
                    ast::BinOpKind::Rem => {
                        if l.0.iter().any(|s| s.contains("%c")) {
                            self.susp.push("character-assembling % format".into());
                        }
                        Sv::unknown()
                    }
                    ast::BinOpKind::Mul => Sv::unknown(),
                    ast::BinOpKind::ScAnd | ast::BinOpKind::ScOr => l.union(r),
                    _ => Sv::unknown(),
                }
            }
            Expr::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
                Sv::unknown()
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                let t = self.expr(&i.true_expr);
                let f = i.false_expr.as_ref().map(|x| self.expr(x));
                t.union(f.unwrap_or_default())
            }
            Expr::Filter(f) => self.filter(f.name, f.expr.as_ref(), &f.args),
            Expr::Test(t) => {
                self.expr(&t.expr);
                self.args(&t.args);
                Sv::unknown()
            }
            Expr::GetAttr(g) => {
                self.expr(&g.expr);
                self.name_access("attribute", &Sv::one(g.name));
                Sv::unknown()
            }
            Expr::GetItem(g) => {
                self.expr(&g.expr);
                let k = self.expr(&g.subscript_expr);
                self.name_access("item", &k);
                Sv::unknown()
            }
            Expr::Call(c) => {
                if let Expr::GetAttr(g) = &c.expr {
                    if EXEC_CALLS.contains(&g.name) {
                        self.crit.push(format!("call of .{}()", g.name));
                    }
                }
                if let Expr::Var(v) = &c.expr {
                    if matches!(v.id, "__import__" | "eval" | "exec" | "getattr" | "open") {
                        self.crit.push(format!("call of {}()", v.id));
                    }
                }
                self.expr(&c.expr);
                self.args(&c.args);
                Sv::unknown()
            }
            Expr::List(l) => {
                let parts: Vec<Sv> = l.items.iter().map(|x| self.expr(x)).collect();
                list_value(&parts)
            }
            Expr::Tuple(t) => {
                let parts: Vec<Sv> = t.items.iter().map(|x| self.expr(x)).collect();
                list_value(&parts)
            }
            Expr::Map(m) => {
                for (k, v) in m.keys.iter().zip(m.values.iter()) {
                    self.expr(k);
                    self.expr(v);
                }
                Sv::unknown()
            }
        };
        for s in &v.0 {
            self.literal(s);
        }
        v
    }

    fn filter(&mut self, name: &str, base: Option<&Expr<'_>>, args: &[CallArg<'_>]) -> Sv {
        let b = base.map(|x| self.expr(x)).unwrap_or_default();
        let a = self.args(args);
        let first = a.first().map(|x| x.1.clone()).unwrap_or_default();
        match name {
            "attr" => {
                if first.known() {
                    self.name_access("attr filter", &first);
                } else {
                    self.susp.push("attr filter with a computed name".into());
                }
                Sv::unknown()
            }
            "join" => {
                // A list literal's alternatives are its concatenation already.
                let sep = first.0.first().cloned().unwrap_or_default();
                if sep.is_empty() {
                    b
                } else {
                    Sv::unknown()
                }
            }
            "reverse" => b.map(|s| s.chars().rev().collect()),
            "lower" => b.map(str::to_lowercase),
            "upper" => b.map(str::to_uppercase),
            "trim" | "string" | "safe" | "e" | "escape" => b,
            "replace" => {
                let from = a.first().and_then(|x| x.1 .0.first().cloned());
                let to = a.get(1).and_then(|x| x.1 .0.first().cloned());
                match (from, to) {
                    (Some(f), Some(t)) if !f.is_empty() => b.map(|s| s.replace(&f, &t)),
                    _ => Sv::unknown(),
                }
            }
            "format" => {
                if b.0.iter().any(|s| s.contains("%c")) {
                    self.susp.push("character-assembling format filter".into());
                }
                Sv::unknown()
            }
            _ => {
                if ATTRIBUTE_FILTERS.contains(&name) {
                    for (k, v) in &a {
                        if k.as_deref() == Some("attribute") || (name == "map" && k.is_none()) {
                            self.name_access(&format!("{name}(attribute=)"), v);
                        }
                    }
                }
                Sv::unknown()
            }
        }
    }

    fn assign(&mut self, target: &Expr<'_>, v: Sv) {
        if let Expr::Var(t) = target {
            let old = self.vars.remove(t.id).unwrap_or_default();
            self.vars.insert(t.id.to_string(), old.union(v));
        } else {
            self.expr(target);
        }
    }

    /// Binds loop targets (`for a, b in …`): names become template variables (unknown values).
    fn bind(&mut self, target: &Expr<'_>, _v: Sv) {
        match target {
            Expr::Var(t) => {
                self.vars.entry(t.id.to_string()).or_default();
            }
            Expr::Tuple(t) => {
                for x in &t.items {
                    self.bind(x, Sv::unknown());
                }
            }
            other => {
                self.expr(other);
            }
        }
    }

    fn stmts(&mut self, body: &[Stmt<'_>]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt<'_>) {
        match s {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => {
                self.expr(&e.expr);
            }
            Stmt::EmitRaw(_) | Stmt::Continue(_) | Stmt::Break(_) => {}
            Stmt::ForLoop(f) => {
                let it = self.expr(&f.iter);
                self.bind(&f.target, it);
                if let Some(x) = &f.filter_expr {
                    self.expr(x);
                }
                self.stmts(&f.body);
                self.stmts(&f.else_body);
            }
            Stmt::IfCond(i) => {
                self.expr(&i.expr);
                self.stmts(&i.true_body);
                self.stmts(&i.false_body);
            }
            Stmt::WithBlock(w) => {
                for (t, e) in &w.assignments {
                    let v = self.expr(e);
                    self.assign(t, v);
                }
                self.stmts(&w.body);
            }
            Stmt::Set(x) => {
                let v = self.expr(&x.expr);
                self.assign(&x.target, v);
            }
            Stmt::SetBlock(x) => {
                if let Some(f) = &x.filter {
                    self.expr(f);
                }
                self.stmts(&x.body);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.stmts(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.stmts(&f.body);
            }
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Import(i) => {
                self.expr(&i.expr);
                self.crit.push("{% import %} statement".into());
            }
            Stmt::FromImport(i) => {
                self.expr(&i.expr);
                for (n, _) in &i.names {
                    self.expr(n);
                }
                self.crit.push("{% from … import %} statement".into());
            }
            Stmt::Extends(x) => {
                self.expr(&x.name);
                self.susp
                    .push("{% extends %} loads another template".into());
            }
            Stmt::Include(x) => {
                self.expr(&x.name);
                self.susp
                    .push("{% include %} loads another template".into());
            }
            Stmt::Macro(m) => {
                for x in &m.args {
                    self.bind(x, Sv::unknown());
                }
                for x in &m.defaults {
                    self.expr(x);
                }
                self.stmts(&m.body);
            }
            Stmt::CallBlock(c) => {
                self.expr(&c.call.expr);
                self.args(&c.call.args);
                self.stmts(&c.macro_decl.body);
            }
            Stmt::Do(d) => {
                self.expr(&d.call.expr);
                self.args(&d.call.args);
            }
        }
    }
}

/// A list/tuple of strings: known only when every item is (the alternatives of its `|join`).
fn list_value(parts: &[Sv]) -> Sv {
    parts
        .iter()
        .try_fold(Sv::one(""), |acc, p| p.known().then(|| acc.concat(p)))
        .unwrap_or_default()
}

/// Checks one chat template; findings are reported at `offset` (where the template sits).
pub fn check(template: &str, ctx: &mut Ctx<'_>, offset: u64) {
    if template.len() > MAX_TEMPLATE {
        ctx.report(
            "gguf.template-unparsed",
            Some(offset),
            format!(
                "chat template of {} bytes is over the {MAX_TEMPLATE}-byte parse limit",
                template.len()
            ),
            None,
        );
        crate::template_tokens::check_tokens(template, ctx, offset);
        return;
    }
    let ast = match parse(template, "chat_template", Default::default()) {
        Ok(a) => a,
        Err(e) => {
            ctx.report(
                "gguf.template-unparsed",
                Some(offset),
                format!("chat template is not valid Jinja ({e}); checked token by token instead"),
                Some(e.to_string().chars().take(120).collect()),
            );
            crate::template_tokens::check_tokens(template, ctx, offset);
            return;
        }
    };
    let mut w = Walker {
        ctx,
        vars: Default::default(),
        crit: Vec::new(),
        susp: Vec::new(),
    };
    // Two passes: the second sees `{% set %}` values assigned after their first use
    // (macros, loops).
    w.stmt(&ast);
    w.crit.clear();
    w.susp.clear();
    w.stmt(&ast);
    let (mut crit, mut susp) = (std::mem::take(&mut w.crit), std::mem::take(&mut w.susp));
    dedup(&mut crit);
    dedup(&mut susp);
    if !crit.is_empty() {
        w.ctx.report(
            "gguf.template-injection",
            Some(offset),
            format!(
                "chat template reaches for Python internals: {}",
                crit.join(", ")
            ),
            crit.first().cloned(),
        );
    }
    if !susp.is_empty() {
        w.ctx.report(
            "gguf.template-suspicious",
            Some(offset),
            format!(
                "chat template uses constructs benign templates do not: {}",
                susp.join(", ")
            ),
            susp.first().cloned(),
        );
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
}
