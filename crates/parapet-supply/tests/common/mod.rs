//! Fixture generators: pickles written opcode by opcode, zip archives written header by
//! header (so tests can lie in exactly one field), and small helpers.
#![allow(dead_code)]

pub mod h5w;

use parapet_supply::{FileReport, Rules};

/// Pickle builder: each method appends one opcode with its argument.
#[derive(Default, Clone)]
pub struct P(pub Vec<u8>);

impl P {
    pub fn new() -> Self {
        P(Vec::new())
    }
    pub fn proto(mut self, n: u8) -> Self {
        self.0.extend([0x80, n]);
        self
    }
    pub fn op(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }
    pub fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    /// GLOBAL (protocol 0 text form).
    pub fn global(mut self, m: &str, n: &str) -> Self {
        self.0.push(b'c');
        self.0.extend(format!("{m}\n{n}\n").bytes());
        self
    }
    /// INST module name (pops a MARK'ed argument list).
    pub fn inst(mut self, m: &str, n: &str) -> Self {
        self.0.push(b'i');
        self.0.extend(format!("{m}\n{n}\n").bytes());
        self
    }
    /// SHORT_BINUNICODE.
    pub fn s(mut self, s: &str) -> Self {
        self.0.push(0x8c);
        self.0.push(s.len() as u8);
        self.0.extend(s.bytes());
        self
    }
    /// BINUNICODE (4-byte length).
    pub fn u(mut self, s: &str) -> Self {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend(s.bytes());
        self
    }
    /// STRING 'text' (protocol 0).
    pub fn string0(mut self, s: &str) -> Self {
        self.0.extend(format!("S'{s}'\n").bytes());
        self
    }
    /// BINBYTES.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.push(b'B');
        self.0.extend((b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub fn int(mut self, i: i32) -> Self {
        self.0.push(b'J');
        self.0.extend(i.to_le_bytes());
        self
    }
    pub fn k(mut self, i: u8) -> Self {
        self.0.extend([b'K', i]);
        self
    }
    pub fn stack_global(self) -> Self {
        self.op(0x93)
    }
    pub fn memoize(self) -> Self {
        self.op(0x94)
    }
    pub fn binput(mut self, i: u8) -> Self {
        self.0.extend([b'q', i]);
        self
    }
    pub fn binget(mut self, i: u8) -> Self {
        self.0.extend([b'h', i]);
        self
    }
    pub fn mark(self) -> Self {
        self.op(b'(')
    }
    pub fn tuple(self) -> Self {
        self.op(b't')
    }
    pub fn tuple1(self) -> Self {
        self.op(0x85)
    }
    pub fn tuple2(self) -> Self {
        self.op(0x86)
    }
    pub fn empty_tuple(self) -> Self {
        self.op(b')')
    }
    pub fn reduce(self) -> Self {
        self.op(b'R')
    }
    pub fn build(self) -> Self {
        self.op(b'b')
    }
    pub fn none(self) -> Self {
        self.op(b'N')
    }
    pub fn empty_dict(self) -> Self {
        self.op(b'}')
    }
    pub fn setitem(self) -> Self {
        self.op(b's')
    }
    pub fn stop(self) -> Self {
        self.op(b'.')
    }
    /// `module.name(arg)` via STACK_GLOBAL + TUPLE1 + REDUCE.
    pub fn call1(self, m: &str, n: &str, arg: &str) -> Self {
        self.s(m).s(n).stack_global().s(arg).tuple1().reduce()
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// The classic payload: `os.system("id")`, protocol 2.
pub fn evil() -> Vec<u8> {
    P::new()
        .proto(2)
        .global("os", "system")
        .s("id")
        .tuple1()
        .reduce()
        .stop()
        .done()
}

/// A benign torch-style state dict pickle: OrderedDict with one tensor rebuilt by
/// `torch._utils._rebuild_tensor_v2` over a persistent storage id.
pub fn torch_state_dict() -> Vec<u8> {
    P::new()
        .proto(2)
        .global("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .binput(0)
        .s("weight")
        .global("torch._utils", "_rebuild_tensor_v2")
        .mark()
        .mark()
        .s("storage")
        .global("torch", "FloatStorage")
        .s("0")
        .s("cpu")
        .k(4)
        .tuple()
        .op(b'Q') // BINPERSID
        .k(0)
        .k(2)
        .k(2)
        .tuple2()
        .k(2)
        .k(1)
        .tuple2()
        .op(0x89) // NEWFALSE
        .global("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .tuple()
        .reduce()
        .setitem()
        .stop()
        .done()
}

/// One zip member as the test wants it written (each field may lie).
#[derive(Clone)]
pub struct Member {
    pub central_name: String,
    pub local_name: String,
    pub data: Vec<u8>,
    pub flags: u16,
    pub crc: Option<u32>,
    pub in_central: bool,
    /// Compression method written in both headers (0 = stored).
    pub method: u16,
    /// Compressed bytes written instead of `data` (which gives the CRC and size).
    pub packed: Option<Vec<u8>>,
}

impl Member {
    pub fn new(name: &str, data: &[u8]) -> Self {
        Member {
            central_name: name.into(),
            local_name: name.into(),
            data: data.to_vec(),
            flags: 0,
            crc: None,
            in_central: true,
            method: 0,
            packed: None,
        }
    }
    /// A member compressed with `method`, `packed` being the compressed form of `data`.
    pub fn packed(name: &str, data: &[u8], method: u16, packed: Vec<u8>) -> Self {
        Member {
            method,
            packed: Some(packed),
            ..Member::new(name, data)
        }
    }
}

/// Writes a zip (stored members unless a member says otherwise).
pub fn zip(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cd = Vec::new();
    let mut count = 0u16;
    for m in members {
        let crc = m.crc.unwrap_or_else(|| crc32fast::hash(&m.data));
        let body = m.packed.as_ref().unwrap_or(&m.data);
        let off = out.len() as u32;
        out.extend(b"PK\x03\x04");
        out.extend(20u16.to_le_bytes());
        out.extend(m.flags.to_le_bytes());
        out.extend(m.method.to_le_bytes());
        out.extend([0u8; 4]); // time, date
        out.extend(crc.to_le_bytes());
        out.extend((body.len() as u32).to_le_bytes());
        out.extend((m.data.len() as u32).to_le_bytes());
        out.extend((m.local_name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(m.local_name.bytes());
        out.extend(body);
        if !m.in_central {
            continue;
        }
        count += 1;
        cd.extend(b"PK\x01\x02");
        cd.extend(20u16.to_le_bytes());
        cd.extend(20u16.to_le_bytes());
        cd.extend(m.flags.to_le_bytes());
        cd.extend(m.method.to_le_bytes());
        cd.extend([0u8; 4]);
        cd.extend(crc.to_le_bytes());
        cd.extend((body.len() as u32).to_le_bytes());
        cd.extend((m.data.len() as u32).to_le_bytes());
        cd.extend((m.central_name.len() as u16).to_le_bytes());
        cd.extend([0u8; 12]); // extra len, comment len, disk, int attr, ext attr (4)
        cd.extend(off.to_le_bytes());
        cd.extend(m.central_name.bytes());
    }
    let cd_off = out.len() as u32;
    out.extend(&cd);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 4]);
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend((cd.len() as u32).to_le_bytes());
    out.extend(cd_off.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

pub fn rules() -> &'static Rules {
    Rules::global().expect("embedded rules load")
}

pub fn scan(bytes: &[u8]) -> FileReport {
    parapet_supply::scan_bytes("test", bytes, rules())
}

pub fn rules_of(r: &FileReport) -> Vec<&str> {
    r.findings.iter().map(|f| f.rule.as_str()).collect()
}

pub fn has(r: &FileReport, rule: &str, evidence: &str) -> bool {
    r.findings
        .iter()
        .any(|f| f.rule == rule && f.evidence.as_deref() == Some(evidence))
}
