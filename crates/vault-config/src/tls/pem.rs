//! PEM in and out: the certificates and the private key of an identity's
//! fields, read with errors that name the field and never quote it, and
//! DER written back as PEM.

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

/// Every `CERTIFICATE` section of `text` (other sections are skipped), in
/// order. `field` names where the text came from, for the error.
pub(crate) fn certificates(
    text: &str,
    field: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "{field} is not valid PEM ({}); write the certificates as issued, each a PEM `CERTIFICATE` section",
                malformed(&e)
            )
        })
}

/// The first private key of `text`: PKCS#1 `RSA PRIVATE KEY`, SEC1 `EC
/// PRIVATE KEY` or PKCS#8 `PRIVATE KEY` (what Vault PKI issues), wiped
/// when dropped.
pub(crate) fn private_key(text: &str) -> Result<Zeroizing<PrivateKeyDer<'static>>, String> {
    const FIX: &str = "write the key as issued, a PEM `RSA PRIVATE KEY`, `EC PRIVATE KEY` or `PRIVATE KEY` section";
    let e = match PrivateKeyDer::from_pem_slice(text.as_bytes()) {
        Ok(key) => return Ok(Zeroizing::new(key)),
        Err(e) => e,
    };
    // PKCS#8 encrypted, or OpenSSL's traditional encryption headers.
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err("`private_key` is encrypted; write it decrypted (`openssl pkey -in key.pem -out plain.pem`): the service has no passphrase to give".to_owned());
    }
    Err(match e {
        pem::Error::NoItemsFound if text.contains("-----BEGIN CERTIFICATE-----") => format!(
            "`private_key` holds a certificate, not a private key: were `certificate` and `private_key` swapped? {FIX}"
        ),
        pem::Error::NoItemsFound => format!("`private_key` holds no PEM private key; {FIX}"),
        e => format!("`private_key` is not valid PEM ({}); {FIX}", malformed(&e)),
    })
}

/// What is wrong with a PEM text, without quoting it (the error's own
/// fields hold lines of the input).
fn malformed(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a BEGIN line has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section's base64 does not decode",
        pem::Error::SectionTooLarge => "a section is larger than 256 MB",
        _ => "it cannot be read",
    }
}

/// The PEM label of a private key's format.
pub(crate) fn key_label(key: &PrivateKeyDer<'_>) -> &'static str {
    match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    }
}

/// Appends `der` as a PEM section labelled `label` (64 base64 characters
/// a line, as OpenSSL and Vault write it).
pub(crate) fn encode(label: &str, der: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32, shift: u32| char::from(ALPHABET[(n >> shift & 0x3f) as usize]);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // 48 bytes make one 64-character line.
    for line in der.chunks(48) {
        for group in line.chunks(3) {
            let b = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
            let n = b(0) << 16 | b(1) << 8 | b(2);
            out.push(sextet(n, 18));
            out.push(sextet(n, 12));
            out.push(if group.len() > 1 { sextet(n, 6) } else { '=' });
            out.push(if group.len() > 2 { sextet(n, 0) } else { '=' });
        }
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

/// The length of the PEM text [`encode`] writes.
fn encoded_len(label: &str, der_len: usize) -> usize {
    let armour = "-----BEGIN -----\n-----END -----\n".len() + 2 * label.len();
    armour + der_len.div_ceil(3) * 4 + der_len.div_ceil(48)
}

/// The PEM text of a private key, in a buffer wiped when dropped.
pub(crate) fn encode_key(label: &str, der: &[u8]) -> Zeroizing<String> {
    // Sized up front: growing would leave copies of the key behind.
    let mut text = Zeroizing::new(String::with_capacity(encoded_len(label, der.len())));
    encode(label, der, &mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_through_the_parser() {
        for len in [0, 1, 2, 3, 47, 48, 49, 95, 96, 97, 700] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut text = String::new();
            encode("CERTIFICATE", &der, &mut text);
            assert!(text.lines().all(|l| l.len() <= 64), "{text}");
            let back = certificates(&text, "`certificate`").map(|c| c.first().map(|c| c.to_vec()));
            assert_eq!(back, Ok(Some(der)), "length {len}");
        }
    }

    #[test]
    fn a_key_is_written_in_a_buffer_that_never_grew() {
        for len in [0, 1, 2, 3, 121, 1190, 1191, 1192, 1193] {
            let der = vec![0x5a; len];
            let text = encode_key("EC PRIVATE KEY", &der);
            assert_eq!(
                text.len(),
                encoded_len("EC PRIVATE KEY", len),
                "length {len}"
            );
        }
    }

    #[test]
    fn key_errors_say_what_is_there_without_quoting_it() {
        let e = private_key(crate::tls::fixtures::EC)
            .map(|_| ())
            .unwrap_err();
        assert!(e.contains("swapped"), "{e}");
        for encrypted in [
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        ] {
            let e = private_key(encrypted).map(|_| ()).unwrap_err();
            assert!(e.starts_with("`private_key` is encrypted;"), "{e}");
        }
        let e = private_key("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw\n")
            .map(|_| ())
            .unwrap_err();
        assert!(
            e.starts_with("`private_key` is not valid PEM (a BEGIN line has no END line)"),
            "{e}"
        );
        assert!(!e.contains("c2VjcmV0"), "{e}");
        let e = private_key("hunter2").map(|_| ()).unwrap_err();
        assert!(
            e.starts_with("`private_key` holds no PEM private key;"),
            "{e}"
        );
    }
}
