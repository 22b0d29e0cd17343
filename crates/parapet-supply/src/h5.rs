//! Keras `.h5` files (HDF5): the root group's attributes are read with the pure-Rust,
//! read-only [`hdf5_reader`] (no C libhdf5), the way `keras.saving.legacy.hdf5_format` /
//! Keras 3 `legacy_h5_format` reads them: `model_config` (the model JSON, walked like a
//! `.keras` `config.json` for `Lambda` layers and custom objects), `training_config` (losses
//! and metrics, which may name custom objects too), `keras_version`, `backend`, and the
//! `model_weights` group's `layer_names` (or the root `layer_names` of a weights-only file).
//!
//! Every read the HDF5 reader makes is bounded ([`MAX_READ`], [`MAX_OBJECT_HEADER`]); a file
//! the reader cannot parse (unsupported version, corrupt header, over a limit, even a panic
//! inside the library) is never silent: it is reported as `h5.unparsed` and the bytes are
//! searched for a Keras model JSON instead (the first version's content search).
//! Source: HDF5 File Format Specification 3.0 (superblock, object header, attribute message);
//! CVE-2024-3660 (Keras Lambda code execution).

use crate::blob::{read_exact_at, read_upto, Blob, SharedBlob};
use crate::finding::Ctx;
use hdf5_reader::error::Error as H5Error;
use hdf5_reader::storage::{Storage, StorageBuffer};
use hdf5_reader::{Hdf5File, OpenOptions};
use serde_json::Value;
use std::sync::Arc;

/// Largest single read the HDF5 reader may make (a global heap, a local heap, a header chunk).
pub const MAX_READ: usize = 64 << 20;
/// Largest object header (all continuation chunks together) the reader parses.
pub const MAX_OBJECT_HEADER: usize = 16 << 20;
/// Largest attribute text kept (`model_config` of a big model is a few MB).
pub const MAX_TEXT: usize = 64 << 20;
/// Most layer names kept from `layer_names`.
pub const MAX_LAYER_NAMES: usize = 100_000;

/// What the root group of a Keras HDF5 file says. Every field is optional: a generic HDF5
/// data file has none of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KerasH5 {
    /// Root attribute `model_config`: the model's JSON (`{"class_name": …, "config": …}`).
    pub model_config: Option<String>,
    /// Root attribute `training_config`: compile arguments as JSON.
    pub training_config: Option<String>,
    /// Root attribute `keras_version` (`2.15.0`, `3.3.3` …).
    pub keras_version: Option<String>,
    /// Root attribute `backend` (`tensorflow`, `jax` …).
    pub backend: Option<String>,
    /// `model_weights` group attribute `layer_names` (or the root's, for weights-only files).
    pub layer_names: Vec<String>,
    /// Attributes present but not readable as text (name and the reader's reason).
    pub unreadable: Vec<(String, String)>,
}

/// [`Storage`] over a shared blob: every read is range-checked against the blob's length and
/// bounded by [`MAX_READ`] before anything is allocated.
struct BlobStorage(SharedBlob);

impl Storage for BlobStorage {
    fn len(&self) -> u64 {
        self.0.len()
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        if len > MAX_READ {
            return Err(H5Error::InvalidData(format!(
                "read of {len} bytes at {offset} is over the {MAX_READ}-byte limit"
            )));
        }
        let end = offset
            .checked_add(len as u64)
            .ok_or(H5Error::OffsetOutOfBounds(offset))?;
        if end > self.0.len() {
            return Err(H5Error::UnexpectedEof {
                offset,
                needed: len as u64,
                available: self.0.len().saturating_sub(offset),
            });
        }
        let mut v = vec![0u8; len];
        read_exact_at(&*self.0, offset, &mut v)?;
        Ok(StorageBuffer::from_vec(v))
    }
}

fn options() -> OpenOptions {
    OpenOptions::default()
        .with_chunk_cache_bytes(0)
        .with_max_read_bytes(MAX_READ)
        .with_max_chunk_bytes(MAX_READ)
        .with_max_object_header_bytes(MAX_OBJECT_HEADER)
}

fn attr_text(a: &hdf5_reader::Attribute) -> Result<String, String> {
    let s = match a.read_string() {
        Ok(s) => s,
        Err(_) => a.read_strings().map_err(|e| e.to_string())?.join(""),
    };
    if s.len() > MAX_TEXT {
        return Err(format!(
            "{} bytes of text, over the {MAX_TEXT}-byte limit",
            s.len()
        ));
    }
    Ok(s)
}

/// Reads the Keras attributes of an HDF5 file.
///
/// # Errors
/// A message naming what the HDF5 reader could not parse (bad signature, unsupported
/// superblock/object-header version, truncated structure, a read over the limits), or
/// that the reader panicked (caught; the library is third-party code).
pub fn read_keras(blob: SharedBlob) -> Result<KerasH5, String> {
    let run = move || -> Result<KerasH5, String> {
        let f = Hdf5File::from_storage_with_options(Arc::new(BlobStorage(blob)), options())
            .map_err(|e| format!("HDF5 open: {e}"))?;
        let root = f
            .root_group()
            .map_err(|e| format!("HDF5 root group: {e}"))?;
        let attrs = root
            .attributes()
            .map_err(|e| format!("HDF5 root attributes: {e}"))?;
        let mut out = KerasH5::default();
        for a in &attrs {
            let slot = match a.name.as_str() {
                "model_config" => &mut out.model_config,
                "training_config" => &mut out.training_config,
                "keras_version" => &mut out.keras_version,
                "backend" => &mut out.backend,
                "layer_names" => {
                    match a.read_strings() {
                        Ok(v) => out.layer_names = v.into_iter().take(MAX_LAYER_NAMES).collect(),
                        Err(e) => out.unreadable.push((a.name.clone(), e.to_string())),
                    }
                    continue;
                }
                _ => continue,
            };
            match attr_text(a) {
                Ok(s) => *slot = Some(s),
                Err(e) => out.unreadable.push((a.name.clone(), e)),
            }
        }
        if out.layer_names.is_empty() {
            if let Ok(g) = root.group("model_weights") {
                if let Ok(a) = g.attribute("layer_names") {
                    match a.read_strings() {
                        Ok(v) => out.layer_names = v.into_iter().take(MAX_LAYER_NAMES).collect(),
                        Err(e) => out
                            .unreadable
                            .push(("model_weights/layer_names".into(), e.to_string())),
                    }
                }
            }
        }
        Ok(out)
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .unwrap_or_else(|_| Err("the HDF5 reader panicked on this file".into()))
}

/// An owned handle on the blob's bytes: a duplicated file handle, or a copy of in-memory
/// bytes up to [`crate::scan::MAX_BUFFER`].
fn shared(b: &dyn Blob) -> Result<SharedBlob, String> {
    if let Some(s) = b.share() {
        return Ok(s);
    }
    if b.len() > crate::scan::MAX_BUFFER {
        return Err(format!(
            "in-memory HDF5 payload of {} bytes is over the {}-byte limit",
            b.len(),
            crate::scan::MAX_BUFFER
        ));
    }
    let v = read_upto(b, 0, b.len() as usize).map_err(|e| format!("read error: {e}"))?;
    Ok(Arc::new(v))
}

/// Scans an HDF5 file as a Keras `.h5` model (see the module docs).
pub fn scan_h5(b: &dyn Blob, ctx: &mut Ctx<'_>) {
    let parsed = shared(b).and_then(read_keras);
    let k = match parsed {
        Ok(k) => k,
        Err(why) => {
            ctx.report(
                "h5.unparsed",
                Some(0),
                format!(
                    "HDF5 structure not readable ({why}): model_config searched by content instead"
                ),
                Some(why),
            );
            search_by_content(b, ctx);
            return;
        }
    };
    if k.keras_version.is_some() || k.backend.is_some() {
        ctx.facts.framework = Some(format!(
            "keras {} ({})",
            k.keras_version.as_deref().unwrap_or("?"),
            k.backend.as_deref().unwrap_or("?")
        ));
    }
    if !k.layer_names.is_empty() && ctx.facts.tensors.is_none() {
        ctx.facts.layers = Some(k.layer_names.len() as u64);
    }
    let mut unreadable_config = false;
    for (name, why) in &k.unreadable {
        if matches!(name.as_str(), "model_config" | "training_config") {
            unreadable_config = true;
            ctx.report(
                "h5.unparsed",
                Some(0),
                format!("root attribute {name} is not readable as text ({why}); searched by content instead"),
                Some(name.clone()),
            );
        }
    }
    if unreadable_config {
        search_by_content(b, ctx);
    }
    for (name, text) in [
        ("model_config", &k.model_config),
        ("training_config", &k.training_config),
    ] {
        let Some(text) = text else { continue };
        match serde_json::from_str::<Value>(text) {
            Ok(v) => ctx.within(format!("hdf5:/@{name}"), |c| {
                crate::keras::scan_value(&v, c)
            }),
            Err(e) => ctx.report(
                "h5.unparsed",
                Some(0),
                format!("root attribute {name} is not valid JSON ({e})"),
                Some(name.to_string()),
            ),
        }
    }
}

/// The fallback: the Keras model JSON located by content (attribute values are stored
/// unfiltered, so the text is in the file as is) and walked like a `.keras` config.
pub fn search_by_content(b: &dyn Blob, ctx: &mut Ctx<'_>) {
    const NEEDLE: &[u8] = b"{\"class_name\"";
    let chunk = 1usize << 20;
    let mut pos = 0u64;
    let mut found = 0;
    while pos < b.len() && found < 16 {
        let Ok(buf) = read_upto(b, pos, chunk + NEEDLE.len()) else {
            ctx.error("read error in HDF5 file");
            return;
        };
        let mut i = 0;
        while let Some(k) = buf
            .get(i..)
            .and_then(|s| s.windows(NEEDLE.len()).position(|w| w == NEEDLE))
        {
            let at = pos + (i + k) as u64;
            let text = read_upto(b, at, MAX_TEXT).unwrap_or_default();
            let mut de = serde_json::Deserializer::from_slice(&text).into_iter::<Value>();
            if let Some(Ok(v)) = de.next() {
                found += 1;
                ctx.within(format!("hdf5-json@{at}"), |c| {
                    crate::keras::scan_value(&v, c)
                });
                let used = de.byte_offset().max(1);
                i += k + used;
                if i >= chunk {
                    break;
                }
            } else {
                i += k + 1;
            }
        }
        pos += chunk as u64;
    }
}
