use vault_config::tls::Identity;
use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Gateway {
    // No common name: which name would the certificate be for?
    #[vault(pki = "pki/issue/web")]
    a: Identity,
    // A certificate is not read from a KV key, nor from env.
    #[vault(pki = "pki/issue/web", common_name = "b.internal", key = "certificate")]
    b: Identity,
    // Certificate parameters without a PKI role.
    #[vault(path = "tls/gateway", key = "*", common_name = "c.internal")]
    c: Identity,
    // Not an issue path: a write to a role's path would change the role.
    #[vault(pki = "pki/roles/web", common_name = "d.internal")]
    d: Identity,
}

fn main() {}
