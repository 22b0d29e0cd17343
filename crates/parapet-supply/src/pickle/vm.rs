//! Symbolic pickle machine: replays the opcodes of [`super::ops`] on a stack of symbolic
//! values (never executing anything) to learn which globals are imported and what is called
//! with what, following CPython's `_pickle.c` semantics (mark fence, memo, `MEMOIZE`).

use super::ops::{self, Arg, Disassembler, Op, OpError};
use super::resolve;
use crate::finding::Ctx;
use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;

/// Shared symbolic value.
pub type V = Rc<Value>;

/// A symbolic Python value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
    /// Small integer.
    Int(i64),
    /// Big integer (little-endian two's complement or decimal text).
    BigInt(Vec<u8>),
    /// Float.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes` / `bytearray`.
    Bytes(Vec<u8>),
    /// Tuple.
    Tuple(Vec<V>),
    /// List (contents capped at [`MAX_ELEMS`]).
    List(Vec<V>),
    /// Dict as pairs (capped).
    Dict(Vec<(V, V)>),
    /// Set / frozenset (capped).
    Set(Vec<V>),
    /// A global imported by `GLOBAL`/`STACK_GLOBAL`/`INST` or produced by a resolver.
    Global {
        /// Module.
        module: String,
        /// Qualified name.
        name: String,
    },
    /// A module object (from `importlib.import_module` …).
    Module(String),
    /// The result of a call (`REDUCE`, `NEWOBJ`, `OBJ`, `INST`).
    Call {
        /// What was called.
        callee: V,
        /// The arguments (usually a tuple).
        args: V,
        /// Offset of the calling opcode.
        offset: u64,
    },
    /// `operator.attrgetter(path)` object.
    AttrGetter(String),
    /// `operator.methodcaller(name)` object.
    MethodCaller(String),
    /// `functools.partial(f, …)` object.
    Partial(V),
    /// Persistent id reference (torch storages).
    Pers(V),
    /// Extension-registry lookup (`EXT*`).
    Ext(i64),
    /// Out-of-band buffer or anything not modelled.
    Unknown,
}

/// Most elements kept per container (more are counted but not stored).
pub const MAX_ELEMS: usize = 1 << 16;
/// Work budget per pickle (opcodes plus copied elements) before giving up as unscannable.
pub const MAX_WORK: u64 = 100_000_000;
/// Deepest stack accepted (CPython pickles batch containers by 1000; deeper is hostile).
pub const MAX_STACK: usize = 1 << 20;
/// Most memo entries accepted.
pub const MAX_MEMO: usize = 1 << 24;

/// Magic number that starts a legacy (pre-1.6) `torch.save` file.
pub fn torch_legacy_magic() -> Vec<u8> {
    0x1950a86a20f9469cfc6cu128.to_le_bytes()[..10].to_vec()
}

/// Summary of one stream.
#[derive(Debug, Default)]
pub struct StreamSummary {
    /// Complete pickles read.
    pub pickles: usize,
    /// True when the stream is a legacy torch file (magic number first).
    pub torch_legacy: bool,
    /// Opcodes read.
    pub ops: u64,
}

/// Error of a single pickle run, with the offset reached.
#[derive(Debug)]
pub(crate) enum RunError {
    Op(OpError),
    Semantic { offset: u64, why: String },
}

impl RunError {
    pub(crate) fn is_semantic(&self) -> bool {
        match self {
            RunError::Op(e) => e.is_semantic(),
            RunError::Semantic { .. } => true,
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Op(e) => write!(f, "{e}"),
            RunError::Semantic { offset, why } => write!(f, "at offset {offset}: {why}"),
        }
    }
}

impl From<OpError> for RunError {
    fn from(e: OpError) -> Self {
        RunError::Op(e)
    }
}

pub(crate) struct Machine<'c, 'r> {
    pub(crate) ctx: &'c mut Ctx<'r>,
    stack: Vec<V>,
    marks: Vec<usize>,
    memo: HashMap<i64, V>,
    work: u64,
    pub(crate) ops: u64,
    /// Data joblib reads straight from the stream after a `NumpyArrayWrapper` BUILD.
    inline: Option<Inline>,
}

/// Raw data that follows an opcode in the stream (joblib `NumpyArrayWrapper.read_array`).
#[derive(Debug)]
pub(crate) enum Inline {
    /// `count * itemsize` bytes, preceded by a padding-length byte when `aligned`.
    Raw { bytes: u64, aligned: bool },
    /// An object array: a complete nested pickle.
    Pickle,
}

pub(crate) fn sem(offset: u64, why: &str) -> RunError {
    RunError::Semantic {
        offset,
        why: why.to_string(),
    }
}

impl<'c, 'r> Machine<'c, 'r> {
    pub(crate) fn new(ctx: &'c mut Ctx<'r>) -> Self {
        Machine {
            ctx,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            work: 0,
            ops: 0,
            inline: None,
        }
    }

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, at: u64) -> Result<V, RunError> {
        if self.stack.len() <= self.fence() {
            return Err(sem(at, "unpickling stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| sem(at, "unpickling stack underflow"))
    }

    fn top(&mut self, at: u64) -> Result<&mut V, RunError> {
        if self.stack.len() <= self.fence() {
            return Err(sem(at, "unpickling stack underflow"));
        }
        self.stack
            .last_mut()
            .ok_or_else(|| sem(at, "unpickling stack underflow"))
    }

    fn pop_mark(&mut self, at: u64) -> Result<Vec<V>, RunError> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| sem(at, "could not find MARK"))?;
        let items = self.stack.split_off(m.min(self.stack.len()));
        self.charge(items.len() as u64, at)?;
        Ok(items)
    }

    fn charge(&mut self, n: u64, at: u64) -> Result<(), RunError> {
        self.work = self.work.saturating_add(n);
        if self.work > MAX_WORK {
            return Err(RunError::Op(OpError::Limit {
                offset: at,
                why: format!("work budget of {MAX_WORK} exceeded"),
            }));
        }
        Ok(())
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Rc::new(v));
    }

    /// Runs one pickle to its STOP; returns the value left on the stack.
    pub(crate) fn run<R: Read>(&mut self, d: &mut Disassembler<R>) -> Result<V, RunError> {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        loop {
            let Some(op) = d.next_op()? else {
                return Err(RunError::Op(OpError::Truncated {
                    offset: d.position(),
                    code: b'.',
                }));
            };
            self.ops += 1;
            self.charge(1, op.offset)?;
            if self.stack.len() > MAX_STACK || self.memo.len() > MAX_MEMO {
                return Err(RunError::Op(OpError::Limit {
                    offset: op.offset,
                    why: format!("stack deeper than {MAX_STACK} or memo larger than {MAX_MEMO}"),
                }));
            }
            if op.code == b'.' {
                return self.pop(op.offset);
            }
            self.step(op)?;
            match self.inline.take() {
                None => {}
                Some(Inline::Raw { bytes, aligned }) => {
                    let pad = if aligned {
                        d.skip(1)?.first().copied().unwrap_or(0)
                    } else {
                        0
                    };
                    d.skip(pad as u64)?;
                    d.skip(bytes)?;
                }
                Some(Inline::Pickle) => {
                    let saved = (
                        std::mem::take(&mut self.stack),
                        std::mem::take(&mut self.marks),
                        std::mem::take(&mut self.memo),
                    );
                    self.run(d)?;
                    (self.stack, self.marks, self.memo) = saved;
                }
            }
        }
    }

    fn step(&mut self, op: Op) -> Result<(), RunError> {
        let at = op.offset;
        match (op.code, op.arg) {
            (b'(', _) => self.marks.push(self.stack.len()),
            (b'0', _) => {
                if self.stack.len() > self.fence() {
                    self.stack.pop();
                } else {
                    self.pop_mark(at)?;
                }
            }
            (b'1', _) => {
                self.pop_mark(at)?;
            }
            (b'2', _) => {
                let v = self.top(at)?.clone();
                self.stack.push(v);
            }
            (0x80, Arg::Int(p)) => {
                if !(0..=5).contains(&p) {
                    return Err(sem(at, &format!("unsupported pickle protocol: {p}")));
                }
            }
            (0x95, _) => {}
            (b'N', _) => self.push(Value::None),
            (0x88, _) => self.push(Value::Bool(true)),
            (0x89, _) => self.push(Value::Bool(false)),
            (_, Arg::Int(i))
                if matches!(op.code, b'I' | b'J' | b'K' | b'M' | b'L' | 0x8a | 0x8b) =>
            {
                self.push(Value::Int(i))
            }
            (_, Arg::BigInt(b)) => self.push(Value::BigInt(b)),
            (_, Arg::Float(f)) => self.push(Value::Float(f)),
            (b'P', Arg::Str { s, .. }) => self.push(Value::Pers(Rc::new(Value::Str(s)))),
            (b'Q', _) => {
                let pid = self.pop(at)?;
                self.push(Value::Pers(pid));
            }
            (_, Arg::Str { s, .. }) => self.push(Value::Str(s)),
            (b'S' | b'T' | b'U', Arg::Bytes { data, .. }) => {
                // Python 2 str: decoded as ASCII by default; keep text when it is text.
                match String::from_utf8(data) {
                    Ok(s) => self.push(Value::Str(s)),
                    Err(e) => self.push(Value::Bytes(e.into_bytes())),
                }
            }
            (_, Arg::Bytes { data, .. }) => self.push(Value::Bytes(data)),
            (b'}', _) => self.push(Value::Dict(Vec::new())),
            (b']', _) => self.push(Value::List(Vec::new())),
            (b')', _) => self.push(Value::Tuple(Vec::new())),
            (0x8f, _) => self.push(Value::Set(Vec::new())),
            (b'd', _) => {
                let items = self.pop_mark(at)?;
                let mut pairs = Vec::new();
                for kv in items.chunks(2) {
                    if let [k, v] = kv {
                        if pairs.len() < MAX_ELEMS {
                            pairs.push((k.clone(), v.clone()));
                        }
                    }
                }
                self.push(Value::Dict(pairs));
            }
            (b'l', _) => {
                let mut items = self.pop_mark(at)?;
                items.truncate(MAX_ELEMS);
                self.push(Value::List(items));
            }
            (b't', _) => {
                let items = self.pop_mark(at)?;
                self.push(Value::Tuple(items));
            }
            (0x91, _) => {
                let mut items = self.pop_mark(at)?;
                items.truncate(MAX_ELEMS);
                self.push(Value::Set(items));
            }
            (0x85..=0x87, _) => {
                let n = (op.code - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop(at)?);
                }
                items.reverse();
                self.push(Value::Tuple(items));
            }
            (b'a', _) => {
                let v = self.pop(at)?;
                self.extend(at, vec![v])?;
            }
            (b'e', _) => {
                let items = self.pop_mark(at)?;
                self.extend(at, items)?;
            }
            (0x90, _) => {
                let items = self.pop_mark(at)?;
                self.extend(at, items)?;
            }
            (b's', _) => {
                let v = self.pop(at)?;
                let k = self.pop(at)?;
                self.set_items(at, vec![k, v])?;
            }
            (b'u', _) => {
                let items = self.pop_mark(at)?;
                if items.len() % 2 != 0 {
                    return Err(sem(at, "odd number of items for SETITEMS"));
                }
                self.set_items(at, items)?;
            }
            (b'g' | b'h' | b'j', Arg::Int(i)) => {
                let v = self
                    .memo
                    .get(&i)
                    .cloned()
                    .ok_or_else(|| sem(at, &format!("memo value not found at index {i}")))?;
                self.stack.push(v);
            }
            (b'p' | b'q' | b'r', Arg::Int(i)) => {
                if i < 0 {
                    return Err(sem(at, "negative PUT argument"));
                }
                let v = self.top(at)?.clone();
                self.memo.insert(i, v);
            }
            (0x94, _) => {
                let v = self.top(at)?.clone();
                let i = self.memo.len() as i64;
                self.memo.insert(i, v);
            }
            (b'c', Arg::Pair(m, n)) => {
                let g = self.global(m, n, at);
                self.stack.push(g);
            }
            (0x93, _) => {
                let name = self.pop(at)?;
                let module = self.pop(at)?;
                match (&*module, &*name) {
                    (Value::Str(m), Value::Str(n)) => {
                        let g = self.global(m.clone(), n.clone(), at);
                        self.stack.push(g);
                    }
                    _ => return Err(sem(at, "STACK_GLOBAL requires str")),
                }
            }
            (b'i', Arg::Pair(m, n)) => {
                let args = self.pop_mark(at)?;
                let g = self.global(m, n, at);
                let r = self.call(g, Rc::new(Value::Tuple(args)), at)?;
                self.stack.push(r);
            }
            (b'o', _) => {
                let mut items = self.pop_mark(at)?;
                if items.is_empty() {
                    return Err(sem(at, "OBJ without a class"));
                }
                let cls = items.remove(0);
                let r = self.call(cls, Rc::new(Value::Tuple(items)), at)?;
                self.stack.push(r);
            }
            (b'R' | 0x81, _) => {
                let args = self.pop(at)?;
                let f = self.pop(at)?;
                let r = self.call(f, args, at)?;
                self.stack.push(r);
            }
            (0x92, _) => {
                let _kwargs = self.pop(at)?;
                let args = self.pop(at)?;
                let cls = self.pop(at)?;
                let r = self.call(cls, args, at)?;
                self.stack.push(r);
            }
            (b'b', _) => {
                let state = self.pop(at)?;
                let obj = self.top(at)?.clone();
                self.inline = super::inline::joblib_inline(&obj, &state);
                if let Value::Global { module, name } = &*obj {
                    self.ctx.report(
                        "pickle.build-on-global",
                        Some(at),
                        format!("BUILD sets attributes on the global {module}.{name} itself"),
                        Some(format!("{module}.{name}")),
                    );
                } else if let Value::Module(m) = &*obj {
                    self.ctx.report(
                        "pickle.build-on-global",
                        Some(at),
                        format!("BUILD sets attributes on the module {m}"),
                        Some(m.clone()),
                    );
                }
            }
            (0x82..=0x84, Arg::Int(code)) => {
                self.ctx.report(
                    "pickle.ext-code",
                    Some(at),
                    format!(
                        "{} looks up extension code {code} in the copyreg registry",
                        ops::name(op.code).unwrap_or("EXT")
                    ),
                    Some(format!("ext:{code}")),
                );
                self.push(Value::Ext(code));
            }
            (0x97 | 0x98, _) => {
                if op.code == 0x98 {
                    self.pop(at)?;
                }
                self.push(Value::Unknown);
            }
            (code, arg) => {
                return Err(sem(
                    at,
                    &format!("opcode 0x{code:02x} with unexpected argument {arg:?}"),
                ))
            }
        }
        Ok(())
    }

    fn extend(&mut self, at: u64, items: Vec<V>) -> Result<(), RunError> {
        let n = items.len() as u64;
        let top = self.top(at)?;
        let copied = if Rc::strong_count(top) > 1 {
            container_len(top)
        } else {
            0
        };
        match Rc::make_mut(top) {
            Value::List(l) | Value::Set(l) => {
                let room = MAX_ELEMS.saturating_sub(l.len());
                l.extend(items.into_iter().take(room));
            }
            _ => {} // obj.append / obj.extend / obj.add on another object: not modelled.
        }
        self.charge(n + copied, at)
    }

    fn set_items(&mut self, at: u64, items: Vec<V>) -> Result<(), RunError> {
        let n = items.len() as u64;
        let top = self.top(at)?;
        let copied = if Rc::strong_count(top) > 1 {
            container_len(top)
        } else {
            0
        };
        if let Value::Dict(d) = Rc::make_mut(top) {
            for kv in items.chunks(2) {
                if let [k, v] = kv {
                    if d.len() < MAX_ELEMS {
                        d.push((k.clone(), v.clone()));
                    }
                }
            }
        }
        self.charge(n + copied, at)
    }

    /// Imports a global: checks it against the policy and returns its symbolic value.
    fn global(&mut self, module: String, name: String, at: u64) -> V {
        resolve::check_global(self.ctx, &module, &name, at, None);
        Rc::new(Value::Global { module, name })
    }

    pub(crate) fn call(&mut self, f: V, args: V, at: u64) -> Result<V, RunError> {
        resolve::call(self, f, args, at, 0)
    }
}

fn container_len(v: &Value) -> u64 {
    match v {
        Value::List(l) | Value::Set(l) | Value::Tuple(l) => l.len() as u64,
        Value::Dict(d) => d.len() as u64,
        _ => 0,
    }
}
