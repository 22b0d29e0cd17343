//! A tiny HDF5 writer for fixtures (HDF5 File Format Specification 3.0): superblock
//! version 0, version-1 object headers, attribute messages (version 1) holding fixed-length
//! strings (scalar or 1-D), and hard-link messages for child groups. Enough to write what
//! Keras' legacy `.h5` saver puts at the root: `model_config`, `keras_version`, `backend`,
//! and a `model_weights` group with `layer_names`.
#![allow(dead_code)]

/// One attribute: a fixed-length string (scalar) or an array of fixed-length strings.
pub enum Attr {
    Str(&'static str, String),
    Strs(&'static str, Vec<String>),
}

/// A group: attributes and child groups.
pub struct Group {
    pub attrs: Vec<Attr>,
    pub children: Vec<(String, Group)>,
}

fn pad8(v: &mut Vec<u8>) {
    while v.len() % 8 != 0 {
        v.push(0);
    }
}

fn str_type(size: usize) -> Vec<u8> {
    // class 3 (string), version 1; null-padded (1), ASCII; element size
    let mut t = vec![0x13, 0x01, 0, 0];
    t.extend((size as u32).to_le_bytes());
    t
}

fn attr_msg(a: &Attr) -> Vec<u8> {
    let (name, elem, dims, data): (&str, usize, Option<u64>, Vec<u8>) = match a {
        Attr::Str(n, s) => (n, s.len().max(1), None, s.as_bytes().to_vec()),
        Attr::Strs(n, v) => {
            let w = v.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
            let mut d = Vec::new();
            for s in v {
                d.extend(s.as_bytes());
                d.extend(std::iter::repeat_n(0u8, w - s.len()));
            }
            (n, w, Some(v.len() as u64), d)
        }
    };
    let dt = str_type(elem);
    let mut ds = vec![1u8, u8::from(dims.is_some()), 0, 0, 0, 0, 0, 0];
    if let Some(n) = dims {
        ds.extend(n.to_le_bytes());
    }
    let mut m = vec![1u8, 0];
    m.extend(((name.len() + 1) as u16).to_le_bytes());
    m.extend((dt.len() as u16).to_le_bytes());
    m.extend((ds.len() as u16).to_le_bytes());
    m.extend(name.as_bytes());
    m.push(0);
    pad8(&mut m);
    m.extend(&dt);
    pad8(&mut m);
    m.extend(&ds);
    pad8(&mut m);
    m.extend(data);
    pad8(&mut m);
    m
}

fn link_msg(name: &str, addr: u64) -> Vec<u8> {
    // version 1, flags 0 (1-byte name length, hard link), name, object header address
    let mut m = vec![1u8, 0, name.len() as u8];
    m.extend(name.as_bytes());
    m.extend(addr.to_le_bytes());
    pad8(&mut m);
    m
}

fn header(msgs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (ty, data) in msgs {
        body.extend(ty.to_le_bytes());
        body.extend((data.len() as u16).to_le_bytes());
        body.extend([0u8; 4]);
        body.extend(data);
    }
    let mut h = vec![1u8, 0];
    h.extend((msgs.len() as u16).to_le_bytes());
    h.extend(1u32.to_le_bytes());
    h.extend((body.len() as u32).to_le_bytes());
    h.extend([0u8; 4]);
    h.extend(body);
    h
}

/// Appends `g` (children first) to `out` and returns the address of its object header.
fn write_group(g: &Group, out: &mut Vec<u8>) -> u64 {
    let mut msgs: Vec<(u16, Vec<u8>)> = Vec::new();
    for (name, child) in &g.children {
        let addr = write_group(child, out);
        msgs.push((6, link_msg(name, addr)));
    }
    for a in &g.attrs {
        msgs.push((12, attr_msg(a)));
    }
    pad8(out);
    let addr = out.len() as u64;
    out.extend(header(&msgs));
    addr
}

/// The bytes of an HDF5 file whose root group is `root`.
pub fn file(root: &Group) -> Vec<u8> {
    let mut out = vec![0u8; 96];
    let root_addr = write_group(root, &mut out);
    let eof = out.len() as u64;
    let mut sb = b"\x89HDF\r\n\x1a\n".to_vec();
    sb.extend([0, 0, 0, 0, 0, 8, 8, 0]);
    sb.extend(4u16.to_le_bytes());
    sb.extend(16u16.to_le_bytes());
    sb.extend(0u32.to_le_bytes());
    sb.extend(0u64.to_le_bytes()); // base address
    sb.extend(u64::MAX.to_le_bytes()); // free-space info: undefined
    sb.extend(eof.to_le_bytes());
    sb.extend(u64::MAX.to_le_bytes()); // driver info: undefined
                                       // root symbol table entry: link name offset, object header address, cache type 0
    sb.extend(0u64.to_le_bytes());
    sb.extend(root_addr.to_le_bytes());
    sb.extend([0u8; 24]);
    out[..96].copy_from_slice(&sb);
    out
}

/// A Keras legacy `.h5` file: root `model_config` (the JSON given), `keras_version`,
/// `backend`, and `model_weights/@layer_names`.
pub fn keras(model_config: &str, layers: &[&str]) -> Vec<u8> {
    file(&Group {
        attrs: vec![
            Attr::Str("keras_version", "2.15.0".into()),
            Attr::Str("backend", "tensorflow".into()),
            Attr::Str("model_config", model_config.into()),
        ],
        children: vec![(
            "model_weights".into(),
            Group {
                attrs: vec![Attr::Strs(
                    "layer_names",
                    layers.iter().map(|s| s.to_string()).collect(),
                )],
                children: vec![],
            },
        )],
    })
}
