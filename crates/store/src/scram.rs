//! SCRAM-SHA-256 credentials (RFC 5802 §3, RFC 7677): what the server keeps so a
//! client can prove it knows the password without sending it, and without the server
//! storing anything a thief could log in with directly.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// PBKDF2 rounds; RFC 7677 §4 asks for at least 4096.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// The per-account SCRAM-SHA-256 secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    /// H(ClientKey)
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key")
    pub server_key: Vec<u8>,
}

/// HMAC-SHA-256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

impl ScramCredentials {
    /// Derives the credentials from a password with a fresh random salt.
    pub fn derive(password: &str) -> ScramCredentials {
        let salt: [u8; 16] = rand::random();
        Self::derive_with(password, &salt, SCRAM_ITERATIONS)
    }

    /// Derives the credentials for a given salt and iteration count.
    pub fn derive_with(password: &str, salt: &[u8], iterations: u32) -> ScramCredentials {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key).to_vec();
        let server_key = hmac_sha256(&salted, b"Server Key");
        ScramCredentials {
            salt: salt.to_vec(),
            iterations,
            stored_key,
            server_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3's example: user "user", password "pencil".
    #[test]
    fn rfc7677_example_keys() {
        let salt = [
            91, 109, 153, 104, 157, 18, 53, 142, 236, 160, 75, 20, 18, 54, 250, 129,
        ]; // "W22ZaJ0SNY7soEsUEjb6gQ=="
        let c = ScramCredentials::derive_with("pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = hmac_sha256(&c.server_key, auth_message.as_bytes());
        // v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=
        assert_eq!(
            server_signature,
            [
                0xea, 0xba, 0xe2, 0x4d, 0x10, 0x62, 0xdb, 0x75, 0xa9, 0x45, 0x1f, 0xf0, 0xb6, 0xea,
                0x7e, 0x98, 0xc8, 0x54, 0x65, 0x49, 0xff, 0x74, 0x1e, 0x67, 0x2d, 0x32, 0x51, 0xb2,
                0x39, 0x7d, 0xe4, 0x6e
            ]
        );
    }
}
