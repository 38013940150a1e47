//! What happens when Vault is off, unreachable, or lacks a key.

/// What a load does when Vault cannot be reached (connection refused, timeout, sealed).
///
/// The default is [`FallbackMode::Required`]: a production service that silently starts
/// on environment values while Vault is down hides an outage and may run with
/// stale or development credentials. Development setups either turn Vault off
/// (`VAULT_ENABLED=false`) or opt in to `VAULT_MODE=fallback`.
///
/// A key that Vault lacks reads its env var in both modes (unless
/// [`VaultClientBuilder::env_fallback`](crate::VaultClientBuilder::env_fallback)
/// or `#[vault(no_env)]` says not to); a permission error is an error in
/// both modes (it is a policy to fix, not an outage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum FallbackMode {
    /// Fail the load with the error (`VAULT_MODE=required`).
    #[default]
    Required,
    /// Read every mapping from its env var and log one warning naming them
    /// (`VAULT_MODE=fallback`).
    Fallback,
}

/// Parses the env form of [`FallbackMode`].
impl std::str::FromStr for FallbackMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "required" | "require" | "strict" => Ok(FallbackMode::Required),
            "fallback" | "env" => Ok(FallbackMode::Fallback),
            other => Err(format!(
                "`{other}` is not a mode; use `required` or `fallback`"
            )),
        }
    }
}
