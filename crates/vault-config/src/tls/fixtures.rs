//! The test certificates and keys, made once by `testdata/generate.sh`: a
//! root CA, an intermediate it signs, and leaves the intermediate signs.

pub(crate) const ROOT: &str = include_str!("testdata/root.pem");
pub(crate) const INTERMEDIATE: &str = include_str!("testdata/intermediate.pem");
/// RSA 2048 leaf, CN gateway.internal, key PKCS#1.
pub(crate) const RSA: &str = include_str!("testdata/rsa.pem");
pub(crate) const RSA_KEY: &str = include_str!("testdata/rsa.key");
/// P-256 leaf, CN gateway.internal, key SEC1.
pub(crate) const EC: &str = include_str!("testdata/ec.pem");
pub(crate) const EC_KEY: &str = include_str!("testdata/ec.key");
/// Ed25519 leaf, CN ed25519.internal, key PKCS#8.
pub(crate) const ED25519: &str = include_str!("testdata/ed25519.pem");
pub(crate) const ED25519_KEY: &str = include_str!("testdata/ed25519.key");
/// Another P-256 leaf (CN other.internal): its key matches no other leaf.
pub(crate) const OTHER: &str = include_str!("testdata/other.pem");
pub(crate) const OTHER_KEY: &str = include_str!("testdata/other.key");
/// A P-521 key, which ring cannot sign with.
pub(crate) const P521_KEY: &str = include_str!("testdata/p521.key");

/// Every fixture.
pub(crate) const ALL: [&str; 10] = [
    ROOT,
    INTERMEDIATE,
    RSA,
    RSA_KEY,
    EC,
    EC_KEY,
    ED25519,
    ED25519_KEY,
    OTHER,
    OTHER_KEY,
];

/// Fails when `text` holds any line of any fixture (a certificate's or a
/// key's base64, or its BEGIN/END lines).
pub(crate) fn assert_quotes_no_pem(text: &str) {
    for line in ALL.iter().chain([&P521_KEY]).flat_map(|f| f.lines()) {
        assert!(
            line.trim().is_empty() || !text.contains(line.trim()),
            "quotes `{line}`: {text}"
        );
    }
}
