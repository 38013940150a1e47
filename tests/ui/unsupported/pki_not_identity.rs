use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Gateway {
    // A PKI answer is a certificate chain and a key: only an Identity holds it.
    #[vault(pki = "pki/issue/web", common_name = "gateway.internal")]
    certificate: std::collections::HashMap<String, String>,
}

fn main() {}
