//! Cryptocurrency address checksums: Bitcoin Base58Check (P2PKH/P2SH), Bitcoin Bech32
//! (BIP-173) and Bech32m (BIP-350) segwit addresses, Ethereum EIP-55 mixed-case checksums.

use sha2::{Digest, Sha256};
use sha3::Keccak256;

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BECH32: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Outcome of an address check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrCheck {
    /// Not an address (bad characters, length or checksum).
    Invalid,
    /// Well-formed but carries no checksum (all-lower or all-upper Ethereum address).
    FormatOnly,
    /// Checksum verified.
    Checksum,
}

/// Decodes Base58 (Bitcoin alphabet); `None` on a bad character or input over 64 chars.
pub(crate) fn base58_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() > 64 {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.bytes() {
        let mut carry = BASE58.iter().position(|&a| a == c)? as u32;
        for b in out.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut v = vec![0u8; zeros];
    v.extend(out);
    Some(v)
}

/// Bitcoin legacy address (`1…` P2PKH, version 0x00; `3…` P2SH, version 0x05): 25 bytes
/// whose last 4 are the first 4 of SHA-256(SHA-256(first 21)).
pub(crate) fn btc_base58check(s: &str) -> bool {
    let Some(raw) = base58_decode(s) else {
        return false;
    };
    if raw.len() != 25 || !(raw[0] == 0x00 || raw[0] == 0x05) {
        return false;
    }
    let h = Sha256::digest(Sha256::digest(&raw[..21]));
    h[..4] == raw[21..]
}

fn bech32_polymod(values: &[u8]) -> u32 {
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut chk: u32 = 1;
    for &v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// Bitcoin segwit address (`bc1…`): Bech32 checksum for witness version 0, Bech32m for
/// versions 1–16; single case; 14–74 characters; witness program 2–40 bytes.
pub(crate) fn btc_bech32(s: &str) -> bool {
    if s.len() < 14 || s.len() > 74 {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if s != lower && s != s.to_ascii_uppercase() {
        return false;
    }
    let Some((hrp, data)) = lower.rsplit_once('1') else {
        return false;
    };
    if hrp != "bc" || data.len() < 7 {
        return false;
    }
    let mut values: Vec<u8> = hrp.bytes().map(|c| c >> 5).collect();
    values.push(0);
    values.extend(hrp.bytes().map(|c| c & 31));
    let mut d = Vec::with_capacity(data.len());
    for c in data.bytes() {
        match BECH32.iter().position(|&a| a == c) {
            Some(p) => d.push(p as u8),
            None => return false,
        }
    }
    values.extend_from_slice(&d);
    let witness_version = d[0];
    let constant = if witness_version == 0 { 1 } else { 0x2bc8_30a3 };
    let program_bits = (d.len() - 7) * 5; // data minus version and 6 checksum chars
    let program_len = program_bits / 8;
    witness_version <= 16 && (2..=40).contains(&program_len) && bech32_polymod(&values) == constant
}

/// Ethereum address `0x` + 40 hex: mixed case must satisfy EIP-55 (a letter is upper case
/// iff the matching nibble of Keccak-256 of the lower-case hex is ≥ 8); single-case
/// addresses carry no checksum.
pub(crate) fn eth_eip55(s: &str) -> AddrCheck {
    let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) else {
        return AddrCheck::Invalid;
    };
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return AddrCheck::Invalid;
    }
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    if !(has_upper && has_lower) {
        return AddrCheck::FormatOnly;
    }
    let lower = hex.to_ascii_lowercase();
    let hash = Keccak256::digest(lower.as_bytes());
    for (i, c) in hex.bytes().enumerate() {
        if c.is_ascii_alphabetic() {
            let byte = hash[i / 2];
            let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
            if (nibble >= 8) != c.is_ascii_uppercase() {
                return AddrCheck::Invalid;
            }
        }
    }
    AddrCheck::Checksum
}
