//! Gateway API-key identity: keys are stored as keyed hashes, never in clear, and checked in
//! constant time.
//!
//! A key hash is `hmac-sha256:<hex>` = HMAC-SHA256(pepper, key) (RFC 2104), with the pepper
//! from an environment variable, or `sha256:<hex>` = SHA-256(key) when no pepper is used.
//! A fast keyed hash (about a microsecond) fits the request path, unlike a password hash such
//! as Argon2 (about 50 ms); API keys are long random strings, so a slow hash adds nothing.
//! The digest of the presented key is compared with every stored digest using
//! `subtle::ConstantTimeEq`, without an early exit, so timing does not reveal which key or
//! how many bytes matched.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How a stored key digest was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// HMAC-SHA256 under the pepper.
    HmacSha256,
    /// Plain SHA-256.
    Sha256,
}

/// Parses `hmac-sha256:<64 hex>` or `sha256:<64 hex>`.
///
/// # Errors
/// A message saying what is wrong with the string (never echoing it).
pub fn parse_hash(s: &str) -> Result<(HashAlg, [u8; 32]), String> {
    let (alg, hex) = if let Some(h) = s.strip_prefix("hmac-sha256:") {
        (HashAlg::HmacSha256, h)
    } else if let Some(h) = s.strip_prefix("sha256:") {
        (HashAlg::Sha256, h)
    } else {
        return Err("expected `hmac-sha256:<64 hex digits>` or `sha256:<64 hex digits>`".into());
    };
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return Err(format!("expected 64 hex digits, found {}", bytes.len()));
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = hex_val(pair[0]).ok_or("not a hex digit")?;
        let lo = hex_val(pair[1]).ok_or("not a hex digit")?;
        out[i] = (hi << 4) | lo;
    }
    Ok((alg, out))
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn digest(alg: HashAlg, pepper: &[u8], key: &str) -> [u8; 32] {
    match alg {
        HashAlg::Sha256 => Sha256::digest(key.as_bytes()).into(),
        HashAlg::HmacSha256 => {
            // HMAC accepts keys of any length; new_from_slice cannot fail for HMAC.
            let mut mac = match Hmac::<Sha256>::new_from_slice(pepper) {
                Ok(m) => m,
                Err(_) => return [0u8; 32],
            };
            mac.update(key.as_bytes());
            mac.finalize().into_bytes().into()
        }
    }
}

/// The hash line to put in the configuration for `key`: `hmac-sha256:` with a pepper,
/// `sha256:` without.
pub fn hash_key(pepper: Option<&[u8]>, key: &str) -> String {
    let (prefix, d) = match pepper {
        Some(p) => ("hmac-sha256", digest(HashAlg::HmacSha256, p, key)),
        None => ("sha256", digest(HashAlg::Sha256, &[], key)),
    };
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}:{hex}")
}

struct Entry {
    id: String,
    alg: HashAlg,
    digest: [u8; 32],
}

/// The configured keys.
pub struct KeyStore {
    pepper: Vec<u8>,
    entries: Vec<Entry>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("keys", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Builds the store from `(id, hash)` pairs (validated by the config loader) and the
    /// pepper.
    ///
    /// # Errors
    /// A message naming the key id whose hash does not parse.
    pub fn new<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
        pepper: Option<Vec<u8>>,
    ) -> Result<KeyStore, String> {
        let mut entries = Vec::new();
        for (id, h) in keys {
            let (alg, digest) = parse_hash(h).map_err(|m| format!("key `{id}`: {m}"))?;
            entries.push(Entry {
                id: id.to_string(),
                alg,
                digest,
            });
        }
        Ok(KeyStore {
            pepper: pepper.unwrap_or_default(),
            entries,
        })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The id of the key `presented` matches, if any. Every entry is compared in constant
    /// time; the loop never exits early.
    pub fn verify(&self, presented: &str) -> Option<&str> {
        let hmac = digest(HashAlg::HmacSha256, &self.pepper, presented);
        let sha = digest(HashAlg::Sha256, &[], presented);
        let mut found: Option<&str> = None;
        for e in &self.entries {
            let d = match e.alg {
                HashAlg::HmacSha256 => &hmac,
                HashAlg::Sha256 => &sha,
            };
            let eq: bool = e.digest[..].ct_eq(&d[..]).into();
            if eq && found.is_none() {
                found = Some(e.id.as_str());
            }
        }
        found
    }
}

/// The key a client presented: `Authorization: Bearer <key>` (OpenAI) or `x-api-key: <key>`
/// (Anthropic). `None` when neither header is present or readable.
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, rest) = v.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            let k = rest.trim();
            return (!k.is_empty()).then_some(k);
        }
        return None;
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_and_sha_keys_verify() {
        let pepper = b"pepper-from-env".to_vec();
        let h1 = hash_key(Some(&pepper), "sk-team-a");
        let h2 = hash_key(None, "sk-team-b");
        assert!(h1.starts_with("hmac-sha256:") && h1.len() == 12 + 64);
        // RFC 4231-independent check: SHA-256("abc")
        assert_eq!(
            hash_key(None, "abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let ks = KeyStore::new([("a", h1.as_str()), ("b", h2.as_str())], Some(pepper)).unwrap();
        assert_eq!(ks.verify("sk-team-a"), Some("a"));
        assert_eq!(ks.verify("sk-team-b"), Some("b"));
        assert_eq!(ks.verify("sk-team-c"), None);
        assert_eq!(ks.verify(""), None);
        // a different pepper does not verify
        let ks2 = KeyStore::new([("a", h1.as_str())], Some(b"other".to_vec())).unwrap();
        assert_eq!(ks2.verify("sk-team-a"), None);
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
        let h = hash_key(Some(b"Jefe"), "what do ya want for nothing?");
        assert_eq!(
            h,
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bad_hashes_are_rejected() {
        assert!(parse_hash("md5:00").is_err());
        assert!(parse_hash("sha256:00").is_err());
        assert!(parse_hash(&format!("sha256:{}", "zz".repeat(32))).is_err());
    }

    #[test]
    fn presented_key_from_headers() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", "k1".parse().unwrap());
        assert_eq!(presented_key(&h), Some("k1"));
        h.insert("authorization", "Bearer k2".parse().unwrap());
        assert_eq!(presented_key(&h), Some("k2"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(presented_key(&h), None);
    }
}
