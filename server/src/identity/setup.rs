//! The one-time link that lets whoever runs the server create the first admin.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a setup link works.
pub const SETUP_TTL_SECS: i64 = 24 * 3600;

/// A fresh random token (256 bits) for the setup link.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Only a hash of the token is stored, so a database dump cannot create admins.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
