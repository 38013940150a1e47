//! [`KvVersion`]: which KV engine a mount runs, and the API path it reads at.

/// The version of a KV secrets engine mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvVersion {
    /// KV version 1: secrets at `<mount>/<path>`, no history.
    V1,
    /// KV version 2: secrets at `<mount>/data/<path>`, versioned, with metadata.
    V2,
}

impl KvVersion {
    /// The API path (below `/v1/`) that reads `path` on `mount`.
    pub fn data_path(self, mount: &str, path: &str) -> String {
        match self {
            KvVersion::V1 => format!("{mount}/{path}"),
            KvVersion::V2 => format!("{mount}/data/{path}"),
        }
    }
}
