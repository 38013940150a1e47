//! Signing test JWTs with the `openssl` CLI.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::util::{path_str, unique, TestResult};

/// An RSA key pair made with the `openssl` CLI, for signing test JWTs.
pub struct JwtSigner {
    dir: PathBuf,
    /// The public key, PEM.
    pub public_pem: String,
}

impl JwtSigner {
    /// Generates a 2048-bit RSA key in a fresh temporary directory.
    pub async fn generate() -> TestResult<JwtSigner> {
        let dir = std::env::temp_dir().join(format!("vault-test-jwt-{:x}", unique()));
        std::fs::create_dir_all(&dir)?;
        let key = dir.join("key.pem");
        run_openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                path_str(&key)?,
            ],
            None,
        )
        .await?;
        let public = run_openssl(&["pkey", "-in", path_str(&key)?, "-pubout"], None).await?;
        Ok(JwtSigner {
            dir,
            public_pem: String::from_utf8(public)?,
        })
    }

    /// An RS256 JWT carrying `claims`.
    pub async fn sign(&self, claims: &Value) -> TestResult<String> {
        let header = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
        let payload = base64url(serde_json::to_string(claims)?.as_bytes());
        let signing_input = format!("{header}.{payload}");
        let key = self.dir.join("key.pem");
        let signature = run_openssl(
            &["dgst", "-sha256", "-sign", path_str(&key)?],
            Some(signing_input.as_bytes()),
        )
        .await?;
        Ok(format!("{signing_input}.{}", base64url(&signature)))
    }

    /// Writes `jwt` to a file in the signer's directory and returns its path.
    pub fn write(&self, name: &str, jwt: &str) -> TestResult<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, jwt)?;
        Ok(path)
    }
}

impl Drop for JwtSigner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn run_openssl(args: &[&str], stdin: Option<&[u8]>) -> TestResult<Vec<u8>> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run openssl ({e}); install it: apt-get install -y openssl"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).await?;
        drop(pipe);
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out.stdout)
}

/// Base64 with the URL alphabet and no padding, as JWTs use.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64url_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
        ] {
            assert_eq!(super::base64url(input.as_bytes()), expected);
        }
        assert_eq!(super::base64url(&[0xfb, 0xff]), "-_8");
    }
}
