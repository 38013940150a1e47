//! STUB (replaced by the real module on merge).
#![allow(missing_docs, dead_code)]
pub use crate::engines::pki::CertificateRequest;
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Identity {
    certificate: String,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityInfo {
    pub serial: String,
    pub common_name: Option<String>,
    pub not_before: u64,
    pub not_after: u64,
    pub renew_at: u64,
}
pub(crate) fn leaf_info(_pem: &str) -> Option<IdentityInfo> {
    None
}
