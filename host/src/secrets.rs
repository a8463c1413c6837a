//! Secrets at rest: connection secrets are sealed with XChaCha20-Poly1305 under a 256-bit key
//! kept in a file of its own (mode 0600), outside the database.
//!
//! Sealed format: `version (1 byte) || nonce (24 bytes) || ciphertext+tag`. The associated
//! data binds a ciphertext to its connection id, so a sealed blob copied onto another row
//! does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use pylon_core::SecretString;
use rand::RngCore;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read or create the secret key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the secret key file {path} is not a 32-byte key (64 hex digits)")]
    BadKey { path: String },
    #[error("stored secrets cannot be decrypted: wrong secret key file, or the data was altered")]
    Decrypt,
    #[error("stored secrets are in an unknown format")]
    Format,
}

/// Seals and opens connection secrets.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(********)")
    }
}

impl SecretBox {
    /// Loads the key from `path`, generating it (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretsError> {
        let key_file_error = |source| SecretsError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        if !path.exists() {
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            rand::rng().fill_bytes(key.as_mut());
            let encoded = Zeroizing::new(hex::encode(key.as_ref()));
            write_private_file(path, encoded.as_bytes()).map_err(key_file_error)?;
            tracing::info!(path = %path.display(), "generated a new secret key file");
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(key_file_error)?);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text.trim(), key.as_mut()).map_err(|_| SecretsError::BadKey {
            path: path.display().to_string(),
        })?;
        Ok(Self::from_key(&key))
    }

    pub fn from_key(key: &[u8; KEY_LEN]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Encrypts `secrets` for the connection `owner_id`.
    pub fn seal(
        &self,
        owner_id: &str,
        secrets: &BTreeMap<String, SecretString>,
    ) -> Result<Vec<u8>, SecretsError> {
        let plain: BTreeMap<&str, &str> = secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        let plaintext =
            Zeroizing::new(serde_json::to_vec(&plain).map_err(|_| SecretsError::Format)?);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: owner_id.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Format)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts what [`SecretBox::seal`] produced for the same `owner_id`.
    pub fn open(
        &self,
        owner_id: &str,
        sealed: &[u8],
    ) -> Result<BTreeMap<String, SecretString>, SecretsError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != FORMAT_VERSION {
            return Err(SecretsError::Format);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        let plaintext = Zeroizing::new(
            self.cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: owner_id.as_bytes(),
                    },
                )
                .map_err(|_| SecretsError::Decrypt)?,
        );
        let map: BTreeMap<String, String> =
            serde_json::from_slice(&plaintext).map_err(|_| SecretsError::Format)?;
        Ok(map
            .into_iter()
            .map(|(k, v)| (k, SecretString::new(v)))
            .collect())
    }
}

/// Writes a file readable only by its owner, creating parent directories.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> BTreeMap<String, SecretString> {
        BTreeMap::from([("password".to_owned(), SecretString::new("hunter2"))])
    }

    #[test]
    fn round_trips_and_binds_to_owner() {
        let sealed_box = SecretBox::from_key(&[7; 32]);
        let sealed = sealed_box.seal("conn-1", &secrets()).unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        let opened = sealed_box.open("conn-1", &sealed).unwrap();
        assert_eq!(opened["password"].expose(), "hunter2");
        assert!(matches!(
            sealed_box.open("conn-2", &sealed),
            Err(SecretsError::Decrypt)
        ));
        assert!(matches!(
            SecretBox::from_key(&[8; 32]).open("conn-1", &sealed),
            Err(SecretsError::Decrypt)
        ));
    }

    #[test]
    fn key_file_is_generated_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/secret.key");
        let first = SecretBox::load_or_create(&path).unwrap();
        let sealed = first.seal("c", &secrets()).unwrap();
        let second = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(
            second.open("c", &sealed).unwrap()["password"].expose(),
            "hunter2"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
