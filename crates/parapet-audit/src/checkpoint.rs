//! Signed checkpoints: an Ed25519 signature (RFC 8032, `ed25519-dalek`) over a record's
//! sequence number, its chain hash and the time, stored beside the log.
//!
//! The hash chain alone cannot show that the newest records were deleted, or that the whole
//! chain was recomputed. A checkpoint can: [`verify_checkpoints`] reports a checkpoint that
//! refers to a sequence number past the end of the log (**truncated tail**), or to a record
//! whose hash differs from the signed one (**rewritten**), or whose signature does not verify
//! under the operator's public key (forged or edited). Records after the last checkpoint are
//! reported as not yet covered. Deleting the checkpoints too hides a truncation, so keep
//! copies elsewhere: `parapet audit checkpoint` prints each one as a JSON line, and
//! `parapet audit verify --checkpoints FILE` checks such copies as well.
//!
//! Signed message (UTF-8): `parapet-audit-checkpoint-v1\n{seq}\n{hash}\n{time_ms}\n`.
//!
//! Keys are the JSON key files of `parapet model keygen`
//! (`{"kty": "ed25519", "public_key": b64, "private_key": b64}`); the private key is read
//! from a file named in the configuration or the environment, never written inline.

use crate::{AuditError, AuditSink, VerifyReport};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Sequence number of the record signed (the head when the checkpoint was made).
    pub seq: u64,
    /// That record's chain hash.
    pub hash: String,
    /// When the checkpoint was made, Unix milliseconds.
    pub time_ms: u64,
    /// First 16 hex digits of SHA-256 of the public key.
    pub key_id: String,
    /// Ed25519 signature of [`message`], base64.
    pub signature: String,
}

/// The signed bytes (see the module doc).
pub fn message(seq: u64, hash: &str, time_ms: u64) -> Vec<u8> {
    format!("parapet-audit-checkpoint-v1\n{seq}\n{hash}\n{time_ms}\n").into_bytes()
}

/// Key id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(vk: &VerifyingKey) -> String {
    Sha256::digest(vk.to_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Deserialize)]
struct KeyFile {
    kty: String,
    public_key: String,
    #[serde(default)]
    private_key: Option<String>,
}

fn key_err(path: &Path, m: impl std::fmt::Display) -> AuditError {
    AuditError::Key(format!("{}: {m}", path.display()))
}

fn read_key_file(path: &Path) -> Result<KeyFile, AuditError> {
    let meta = std::fs::metadata(path).map_err(|e| key_err(path, e))?;
    if meta.len() > 64 << 10 {
        return Err(key_err(path, "too large for a key file"));
    }
    let t = std::fs::read_to_string(path).map_err(|e| key_err(path, e))?;
    let k: KeyFile = serde_json::from_str(&t).map_err(|e| {
        key_err(
            path,
            format!("not a key file from `parapet model keygen` ({e})"),
        )
    })?;
    if k.kty != "ed25519" {
        return Err(key_err(path, "key type is not ed25519"));
    }
    Ok(k)
}

fn b32(path: &Path, s: &str, what: &str) -> Result<[u8; 32], AuditError> {
    let v = B64
        .decode(s.trim())
        .map_err(|_| key_err(path, format!("{what} is not base64")))?;
    <[u8; 32]>::try_from(v.as_slice())
        .map_err(|_| key_err(path, format!("{what}: expected 32 bytes, got {}", v.len())))
}

/// Reads the public key from a public or private key file.
///
/// # Errors
/// [`AuditError::Key`] naming the file and what is wrong.
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, AuditError> {
    let k = read_key_file(path)?;
    let b = b32(path, &k.public_key, "public_key")?;
    VerifyingKey::from_bytes(&b).map_err(|_| key_err(path, "public_key is not a valid point"))
}

/// Signs checkpoints with a private key.
pub struct CheckpointSigner {
    sk: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// Reads a private key file; its public key must match the private seed.
    ///
    /// # Errors
    /// [`AuditError::Key`] for an unreadable file, a public key file, or a mismatch.
    pub fn from_key_file(path: &Path) -> Result<CheckpointSigner, AuditError> {
        let k = read_key_file(path)?;
        let seed = k
            .private_key
            .as_deref()
            .ok_or_else(|| key_err(path, "has no private_key (a public key file?)"))?;
        let sk = SigningKey::from_bytes(&b32(path, seed, "private_key")?);
        if B64.encode(sk.verifying_key().to_bytes()) != k.public_key.trim() {
            return Err(key_err(path, "public_key does not match private_key"));
        }
        let key_id = key_id(&sk.verifying_key());
        Ok(CheckpointSigner { sk, key_id })
    }

    /// A signer over a raw 32-byte seed (tests, embedding).
    pub fn from_seed(seed: &[u8; 32]) -> CheckpointSigner {
        let sk = SigningKey::from_bytes(seed);
        let key_id = key_id(&sk.verifying_key());
        CheckpointSigner { sk, key_id }
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.sk.verifying_key()
    }

    /// Signs record `seq` with chain hash `hash` at `time_ms`.
    pub fn sign(&self, seq: u64, hash: &str, time_ms: u64) -> Checkpoint {
        let sig = self.sk.sign(&message(seq, hash, time_ms));
        Checkpoint {
            seq,
            hash: hash.to_string(),
            time_ms,
            key_id: self.key_id.clone(),
            signature: B64.encode(sig.to_bytes()),
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Signs the sink's current head and stores the checkpoint; `None` when the log is empty.
///
/// # Errors
/// [`AuditError`] from the sink.
pub fn checkpoint(
    sink: &mut dyn AuditSink,
    signer: &CheckpointSigner,
) -> Result<Option<Checkpoint>, AuditError> {
    let Some((seq, hash)) = sink.head()? else {
        return Ok(None);
    };
    let cp = signer.sign(seq, &hash, now_ms());
    sink.write_checkpoint(&cp)?;
    Ok(Some(cp))
}

/// What [`verify_checkpoints`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Checkpoints verified.
    pub checkpoints: usize,
    /// The newest checkpointed sequence number.
    pub last_seq: Option<u64>,
    /// Records after the newest checkpoint (not covered by a signature yet).
    pub uncovered: u64,
}

/// Checks every checkpoint (the sink's and `extra`, e.g. copies kept elsewhere) against
/// `vk` and the verified chain `chain`.
///
/// # Errors
/// [`AuditError::Checkpoint`] naming the first bad checkpoint: a signature that does not
/// verify, a signed record missing from the log (truncated tail), or a signed hash that
/// differs from the record's (rewritten).
pub fn verify_checkpoints(
    sink: &dyn AuditSink,
    chain: &VerifyReport,
    vk: &VerifyingKey,
    extra: &[Checkpoint],
) -> Result<CheckpointReport, AuditError> {
    let mut all = sink.checkpoints()?;
    all.extend_from_slice(extra);
    let mut last: Option<u64> = None;
    for cp in &all {
        let bad = |reason: String| AuditError::Checkpoint {
            seq: cp.seq,
            reason,
        };
        let sig = B64
            .decode(cp.signature.trim())
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or_else(|| bad("signature is not a base64 Ed25519 signature".into()))?;
        if vk
            .verify(&message(cp.seq, &cp.hash, cp.time_ms), &sig)
            .is_err()
        {
            return Err(bad(if cp.key_id != key_id(vk) {
                format!("signed by another key ({}), or forged", cp.key_id)
            } else {
                "signature does not verify (checkpoint forged or edited)".into()
            }));
        }
        if cp.seq > chain.records {
            return Err(bad(format!(
                "log truncated: a checkpoint signed record {} but the log ends at record {}",
                cp.seq, chain.records
            )));
        }
        let stored = sink.read_raw(cp.seq, 1)?;
        match stored.first() {
            Some((s, _, h)) if *s == cp.seq && *h == cp.hash => {}
            Some((s, _, _)) if *s == cp.seq => {
                return Err(bad(format!(
                    "record {} differs from the signed checkpoint (log rewritten)",
                    cp.seq
                )))
            }
            _ => return Err(bad(format!("record {} is missing", cp.seq))),
        }
        last = Some(last.map_or(cp.seq, |l| l.max(cp.seq)));
    }
    Ok(CheckpointReport {
        checkpoints: all.len(),
        last_seq: last,
        uncovered: chain.records - last.unwrap_or(0),
    })
}
