//! Pickle analysis: a streaming disassembler ([`ops`]) and a symbolic pickle machine
//! ([`vm`]) that decides by the globals policy of `rules/pickle-allowlist.toml`.
//!
//! Reference: CPython `Lib/pickletools.py` (opcode documentation) and `Modules/_pickle.c`
//! (unpickler semantics). No pickle is ever executed.

pub mod ops;
pub(crate) mod resolve;
pub mod vm;

pub use vm::{looks_like_pickle, scan_stream, scan_torch_tar_member, StreamSummary, TarMember};
