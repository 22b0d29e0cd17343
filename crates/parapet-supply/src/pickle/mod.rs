//! Pickle analysis: a streaming disassembler ([`ops`]) and a symbolic pickle machine
//! ([`vm`]) that decides by the globals policy of `rules/pickle-allowlist.toml`.
//!
//! Reference: CPython `Lib/pickletools.py` (opcode documentation) and `Modules/_pickle.c`
//! (unpickler semantics). No pickle is ever executed.

pub(crate) mod inline;
pub mod ops;
pub(crate) mod resolve;
pub(crate) mod stream;
pub(crate) mod text;
pub mod vm;

pub use inline::{dtype_itemsize, scan_torch_tar_member, storage_element_size, TarMember};
pub use stream::{looks_like_pickle, scan_stream};
pub use vm::StreamSummary;
