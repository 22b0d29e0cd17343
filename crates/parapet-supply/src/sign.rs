//! ed25519 signatures over model manifests, stored beside the model as a DSSE envelope
//! (`secure-systems-lab/dsse` v1: `payloadType`, base64 `payload`, `signatures[{keyid, sig}]`,
//! signed over the PAE encoding) whose payload is an in-toto Statement v1 in the spirit of the
//! OpenSSF model-signing format: the subject is the model with the SHA-256 of its manifest,
//! the predicate lists every file's digest.

use crate::hash::{hex, manifest, manifest_digest, Manifest};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;

/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Predicate type (OpenSSF model-signing v1.0).
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";

/// Key file contents (JSON): `{"kty": "ed25519", "public_key": b64, "private_key"?: b64}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// Always `ed25519`.
    pub kty: String,
    /// 32-byte public key, base64.
    pub public_key: String,
    /// 32-byte private seed, base64 (absent in public key files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
}

/// DSSE envelope.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Payload type.
    pub payload_type: String,
    /// Base64 payload.
    pub payload: String,
    /// Signatures.
    pub signatures: Vec<EnvSig>,
}

/// One DSSE signature.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnvSig {
    /// First 16 hex digits of SHA-256 of the public key.
    pub keyid: String,
    /// Base64 signature.
    pub sig: String,
}

/// DSSE pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// Key id of a public key.
pub fn keyid(vk: &VerifyingKey) -> String {
    hex(&Sha256::digest(vk.to_bytes()))[..16].to_string()
}

/// Generates a key pair from OS randomness: (private key file, public key file).
///
/// # Errors
/// When the OS random source fails.
pub fn keygen() -> Result<(KeyFile, KeyFile), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("OS randomness unavailable: {e}"))?;
    let sk = SigningKey::from_bytes(&seed);
    let public_key = B64.encode(sk.verifying_key().to_bytes());
    Ok((
        KeyFile {
            kty: "ed25519".into(),
            public_key: public_key.clone(),
            private_key: Some(B64.encode(seed)),
        },
        KeyFile {
            kty: "ed25519".into(),
            public_key,
            private_key: None,
        },
    ))
}

fn b32(s: &str, what: &str) -> Result<[u8; 32], String> {
    let v = B64
        .decode(s.trim())
        .map_err(|e| format!("{what}: not base64: {e}"))?;
    <[u8; 32]>::try_from(v.as_slice())
        .map_err(|_| format!("{what}: expected 32 bytes, got {}", v.len()))
}

/// Reads a key file (JSON as written by [`keygen`]).
///
/// # Errors
/// Unreadable file, bad JSON, wrong key type or length.
pub fn read_key(p: &Path) -> Result<KeyFile, String> {
    let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let k: KeyFile = serde_json::from_str(&t).map_err(|e| format!("{}: {e}", p.display()))?;
    if k.kty != "ed25519" {
        return Err(format!(
            "{}: key type {:?} is not ed25519",
            p.display(),
            k.kty
        ));
    }
    Ok(k)
}

/// The in-toto statement for a manifest.
pub fn statement(name: &str, m: &Manifest) -> Value {
    let resources: Vec<Value> = m
        .iter()
        .map(|(p, d)| json!({"name": p, "algorithm": "sha256", "digest": d}))
        .collect();
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": manifest_digest(m)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": true},
            "resources": resources,
        }
    })
}

/// Hashes `model` and signs the manifest; returns the envelope.
///
/// # Errors
/// Hashing failures or a key file without a private key.
pub fn sign(model: &Path, key: &KeyFile) -> Result<Envelope, String> {
    let seed = b32(
        key.private_key
            .as_deref()
            .ok_or("key file has no private_key")?,
        "private_key",
    )?;
    let sk = SigningKey::from_bytes(&seed);
    let m = manifest(model, 0)?;
    let name = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let body = serde_json::to_vec(&statement(&name, &m)).map_err(|e| e.to_string())?;
    let sig: Signature = sk.sign(&pae(PAYLOAD_TYPE, &body));
    Ok(Envelope {
        payload_type: PAYLOAD_TYPE.into(),
        payload: B64.encode(&body),
        signatures: vec![EnvSig {
            keyid: keyid(&sk.verifying_key()),
            sig: B64.encode(sig.to_bytes()),
        }],
    })
}

/// Outcome of [`verify`].
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// The signature verified under the given public key.
    pub signature_ok: bool,
    /// Files whose digest changed.
    pub modified: Vec<String>,
    /// Files present now but not in the signed manifest.
    pub added: Vec<String>,
    /// Files in the signed manifest that are gone.
    pub removed: Vec<String>,
    /// Problems with the envelope or statement.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when the signature is good and nothing changed.
    pub fn ok(&self) -> bool {
        self.signature_ok
            && self.modified.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.problems.is_empty()
    }
}

/// Verifies `env` over the model folder `model` with the public key.
///
/// # Errors
/// Only when the model cannot be hashed; every other problem is in the report.
pub fn verify(model: &Path, env: &Envelope, key: &KeyFile) -> Result<VerifyReport, String> {
    let mut r = VerifyReport::default();
    let body = match B64.decode(&env.payload) {
        Ok(b) => b,
        Err(e) => {
            r.problems.push(format!("payload is not base64: {e}"));
            return Ok(r);
        }
    };
    match (
        b32(&key.public_key, "public_key")
            .and_then(|b| VerifyingKey::from_bytes(&b).map_err(|e| e.to_string())),
        env.signatures.first(),
    ) {
        (Ok(vk), Some(s)) => {
            let sig = B64
                .decode(&s.sig)
                .ok()
                .and_then(|b| Signature::from_slice(&b).ok());
            r.signature_ok = env.payload_type == PAYLOAD_TYPE
                && sig.is_some_and(|sig| vk.verify(&pae(&env.payload_type, &body), &sig).is_ok());
            if !r.signature_ok {
                r.problems
                    .push("bad signature (or signed by another key)".into());
            }
        }
        (Err(e), _) => r.problems.push(e),
        (_, None) => r.problems.push("envelope has no signature".into()),
    }
    let st: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let signed: Manifest = st["predicate"]["resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    Some((
                        x["name"].as_str()?.to_string(),
                        x["digest"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if st["subject"][0]["digest"]["sha256"].as_str() != Some(manifest_digest(&signed).as_str()) {
        r.problems
            .push("subject digest does not match the listed resources".into());
    }
    let now = manifest(model, 0)?;
    for (p, d) in &now {
        match signed.get(p) {
            None => r.added.push(p.clone()),
            Some(s) if s != d => r.modified.push(p.clone()),
            _ => {}
        }
    }
    r.removed = signed
        .keys()
        .filter(|p| !now.contains_key(*p))
        .cloned()
        .collect();
    Ok(r)
}
