//! The environment contract: which variables configure a client
//! ([`VaultClient::from_env`](crate::VaultClient::from_env) lists them), how
//! their values parse, [`EnvSource`], where they and the env fallbacks are
//! read from, and [`RESERVED_ENV_NAMES`], the names a default fallback may not be.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

pub use crate::base::EnvSource;
use crate::client::auth::{AuthMethod, SecretId, KUBERNETES_TOKEN_FILE};
use crate::client::builder::VaultClientBuilder;
use crate::client::names::ContractNames;
use crate::error::{Error, Result};

pub use crate::base::env_names::RESERVED_ENV_NAMES;

pub(crate) fn parse_bool(setting: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(
            setting,
            format!("`{value}` is not a boolean; use true or false"),
        )),
    }
}

/// Parses `30`, `30s`, `500ms`, `5m` or `1h` (a bare number is seconds, as the vault CLI reads it).
pub(crate) fn parse_duration(setting: &str, value: &str) -> Result<Duration> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let bad = || {
        Error::config(
            setting,
            format!("`{value}` is not a duration; write seconds (`30`) or use a unit (`500ms`, `30s`, `5m`, `1h`)"),
        )
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    Ok(d)
}

impl VaultClientBuilder {
    /// Settings from the process environment, as [`VaultClient::from_env`](crate::VaultClient::from_env) reads them,
    /// which code may then change before [`build`](Self::build).
    pub fn from_env() -> Result<Self> {
        Self::from_env_source(None, EnvSource::process())
    }

    /// Settings from `<PREFIX>_VAULT_*` variables of the process environment.
    pub fn from_env_prefixed(prefix: &str) -> Result<Self> {
        Self::from_env_source(Some(prefix), EnvSource::process())
    }

    /// Settings from the env contract read through `env`, which is also where
    /// env fallback values are read. `prefix` as in [`from_env_prefixed`](Self::from_env_prefixed).
    pub fn from_env_source(prefix: Option<&str>, env: EnvSource) -> Result<Self> {
        let names = ContractNames::new(prefix);
        let mut b = VaultClientBuilder {
            names: names.clone(),
            env: env.clone(),
            ..VaultClientBuilder::default()
        };
        let read = |suffix: &str| names.read(&env, suffix);
        if let Some((var, v)) = read("ENABLED") {
            b.enabled = parse_bool(&var, &v)?;
        }
        if let Some((var, v)) = read("ADDR") {
            b.transport.address = Some((var, v));
        }
        // The other nodes of a cluster: `VAULT_ADDRS` (comma-separated), which
        // the vault CLI does not read, so `VAULT_ADDR` stays one address.
        if let Some((var, v)) = read("ADDRS") {
            let listed: Vec<(String, String)> = v
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| (var.clone(), a.to_owned()))
                .collect();
            if b.transport.address.is_none() {
                let mut listed = listed.into_iter();
                b.transport.address = listed.next();
                b.transport.addresses = listed.collect();
            } else {
                b.transport.addresses = listed;
            }
        }
        if let Some((var, v)) = read("FAILOVER_TIMEOUT") {
            b.transport.failover_timeout = parse_duration(&var, &v)?;
        }
        if let Some((var, v)) = read("TOKEN") {
            b.token = Some(SecretString::from(v.trim().to_owned()));
            b.token_setting = Some(var);
        } else if let Some(home) = env.get("HOME") {
            let file = Path::new(&home).join(".vault-token");
            match std::fs::read_to_string(&file) {
                Ok(token) if !token.trim().is_empty() => {
                    b.token = Some(SecretString::from(token.trim().to_owned()));
                    b.token_setting = Some(file.display().to_string());
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::config(
                        file.display().to_string(),
                        format!("the token file cannot be read: {e}"),
                    ))
                }
            }
        }
        // Only a token variable competes with a login set up in env: a
        // `~/.vault-token` left by `vault login` never overrides AppRole.
        let token_var = b.token_setting.clone().filter(|s| s.ends_with("TOKEN"));
        match auth_from_env(&names, &env, token_var.is_some())? {
            Some((method, credentials)) => {
                b.auth = Some(method);
                b.credentials = Some(credentials);
            }
            None => {
                b.credentials = b.token_setting.as_ref().map(|s| {
                    let mut text = format!("token from {s}");
                    let role = names
                        .read(&env, "ROLE_ID")
                        .or_else(|| names.read(&env, "APPROLE_ROLE_ID"));
                    if let (Some(_), Some((role_var, _))) = (&token_var, role) {
                        text.push_str(&format!(
                            " ({role_var} is set too: {}=approle logs in with AppRole)",
                            names.vault("AUTH_METHOD")
                        ));
                    }
                    text
                });
            }
        }
        if let Some((_, v)) = read("NAMESPACE") {
            b.namespace = Some(v);
        }
        if let Some((_, v)) = read("KV_MOUNT") {
            b.kv_mount = v.trim_matches('/').to_owned();
        }
        if let Some((var, v)) = read("CACERT") {
            b.transport.ca_cert = Some((var, PathBuf::from(v)));
        }
        if let Some((var, v)) = read("CLIENT_CERT") {
            b.transport.client_cert = Some((var, PathBuf::from(v)));
        }
        if let Some((var, v)) = read("CLIENT_KEY") {
            b.transport.client_key = Some((var, PathBuf::from(v)));
        }
        if let Some((var, v)) = read("SKIP_VERIFY") {
            b.transport.skip_verify = parse_bool(&var, &v)?;
        }
        if let Some((var, v)) = read("CLIENT_TIMEOUT") {
            b.transport.timeout = parse_duration(&var, &v)?;
        }
        if let Some((var, v)) = read("MAX_RETRIES") {
            b.transport.retry.max_retries = v.trim().parse().map_err(|_| {
                Error::config(var, format!("`{v}` is not a whole number of retries"))
            })?;
        }
        if let Some((var, v)) = read("MODE") {
            b.fallback_mode = v
                .parse()
                .map_err(|reason: String| Error::config(var, reason))?;
        }
        if let Some((var, v)) = read("ENV_FALLBACK") {
            b.env_fallback = parse_bool(&var, &v)?;
        }
        if let Some((var, v)) = read("CACHE_TTL") {
            b.cache_ttl = parse_duration(&var, &v)?;
        }
        Ok(b)
    }
}

/// The auth method the env contract chooses: `VAULT_AUTH_METHOD`, else AppRole
/// when a role ID is set and no token variable is, else the token (`None`);
/// with where its credentials come from.
fn auth_from_env(
    names: &ContractNames,
    env: &EnvSource,
    have_token: bool,
) -> Result<Option<(AuthMethod, String)>> {
    // The unprefixed and `APPROLE_`-style names (`VAULT_ROLE_ID`, `AION_VAULT_APPROLE_ROLE_ID`).
    let read = |suffixes: &[&str]| suffixes.iter().find_map(|s| names.read(env, s));
    let method_var = names.read(env, "AUTH_METHOD");
    let role_id = read(&["APPROLE_ROLE_ID", "ROLE_ID"]);
    let method = match &method_var {
        Some((_, m)) => m.trim().to_ascii_lowercase(),
        None if !have_token && role_id.is_some() => "approle".to_owned(),
        None => return Ok(None),
    };
    let setting = names.vault("AUTH_METHOD");
    let mount = names.read(env, "AUTH_MOUNT").map(|(_, m)| m);
    let role = || {
        names.read(env, "AUTH_ROLE").map(|(_, r)| r).ok_or_else(|| {
            Error::config(
                names.vault("AUTH_ROLE"),
                format!("`{method}` login needs the Vault role: set it"),
            )
        })
    };
    let source: String;
    let chosen = match method.as_str() {
        "token" => return Ok(None),
        "approle" => {
            let (_, role_id) = role_id.ok_or_else(|| {
                Error::config(
                    names.describe("ROLE_ID"),
                    format!(
                        "AppRole login needs the role ID: set it (or {})",
                        names.vault("APPROLE_ROLE_ID")
                    ),
                )
            })?;
            let secret_id = if let Some((var, v)) =
                read(&["APPROLE_WRAPPED_SECRET_ID", "WRAPPED_SECRET_ID"])
            {
                source = format!("approle (wrapped secret ID from {var})");
                SecretId::Wrapped(SecretString::from(v))
            } else if let Some((var, v)) = read(&["APPROLE_SECRET_ID_FILE", "SECRET_ID_FILE"]) {
                source = format!("approle (secret ID from the file {v}, named by {var})");
                SecretId::File(PathBuf::from(v))
            } else if let Some((var, v)) = read(&["APPROLE_SECRET_ID", "SECRET_ID"]) {
                source = format!("approle (secret ID from {var})");
                SecretId::Plain(SecretString::from(v))
            } else {
                return Err(Error::config(
                    names.describe("SECRET_ID"),
                    format!(
                        "AppRole login needs a secret ID: set it, {} (a file) or {} (a response-wrapping token)",
                        names.vault("SECRET_ID_FILE"),
                        names.vault("WRAPPED_SECRET_ID")
                    ),
                ));
            };
            AuthMethod::approle(role_id, secret_id)
        }
        "jwt" => {
            let file = names.read(env, "JWT_FILE").map(|(_, f)| f).ok_or_else(|| {
                Error::config(
                    names.vault("JWT_FILE"),
                    "JWT login needs the file holding the JWT: set it",
                )
            })?;
            source = format!("jwt (the JWT file {file})");
            AuthMethod::jwt(role()?, file)
        }
        "kubernetes" | "k8s" => {
            let file = names
                .read(env, "KUBERNETES_TOKEN_FILE")
                .map_or_else(|| KUBERNETES_TOKEN_FILE.to_owned(), |(_, f)| f);
            source = format!("kubernetes (the service-account token file {file})");
            AuthMethod::Kubernetes {
                mount: "kubernetes".to_owned(),
                role: role()?,
                token_file: PathBuf::from(file),
            }
        }
        other => {
            return Err(Error::config(
                setting,
                format!("`{other}` is not an auth method; use token, approle, jwt or kubernetes"),
            ))
        }
    };
    let chosen = match mount {
        Some(m) => chosen.at_mount(m),
        None => chosen,
    };
    Ok(Some((chosen, source)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_and_durations() {
        assert!(!parse_bool("X", "False").unwrap());
        assert!(parse_bool("X", "1").unwrap());
        assert!(parse_bool("X", "maybe")
            .unwrap_err()
            .to_string()
            .contains("`X`"));
        assert_eq!(parse_duration("T", "30").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("T", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("T", "5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("T", "5 parsecs").is_err());
        assert!(parse_duration("T", "").is_err());
    }
}

#[cfg(test)]
mod contract_tests {
    use std::collections::HashMap;

    use super::*;
    use crate::client::fallback::FallbackMode;
    use crate::client::VaultClient;

    fn env(vars: &[(&str, &str)]) -> EnvSource {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvSource::from_fn(move |n| map.get(n).cloned())
    }

    fn build(vars: &[(&str, &str)]) -> Result<VaultClient> {
        VaultClientBuilder::from_env_source(None, env(vars))?.build()
    }

    #[test]
    fn missing_address_names_the_variables() {
        let e = build(&[("VAULT_TOKEN", "t")]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("VAULT_ADDR (or BAO_ADDR)"), "{text}");
        assert!(text.contains("VAULT_ENABLED=false"), "{text}");
    }

    #[test]
    fn unparsable_address_is_rejected() {
        let e = build(&[("VAULT_ADDR", "vault:8200:x"), ("VAULT_TOKEN", "t")]).unwrap_err();
        assert!(
            matches!(&e, Error::Config { setting, .. } if setting == "VAULT_ADDR"),
            "{e}"
        );
        let e = build(&[("VAULT_ADDR", "ftp://vault"), ("VAULT_TOKEN", "t")]).unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
    }

    #[test]
    fn unreadable_ca_file_is_rejected() {
        let e = build(&[
            ("VAULT_ADDR", "https://vault:8200"),
            ("VAULT_TOKEN", "t"),
            ("VAULT_CACERT", "/nonexistent/ca.pem"),
        ])
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("VAULT_CACERT") && text.contains("/nonexistent/ca.pem"),
            "{text}"
        );
    }

    #[test]
    fn bao_names_and_prefixed_names() {
        let c = build(&[
            ("BAO_ADDR", "http://127.0.0.1:8200"),
            ("BAO_TOKEN", "t"),
            ("BAO_NAMESPACE", "ns1"),
        ])
        .unwrap();
        assert_eq!(c.address(), Some("http://127.0.0.1:8200/"));
        assert_eq!(c.namespace(), Some("ns1"));
        let c = VaultClientBuilder::from_env_source(
            Some("AION"),
            env(&[
                ("AION_VAULT_ADDR", "http://vault:8200"),
                ("AION_VAULT_TOKEN", "t"),
                ("AION_VAULT_KV_MOUNT", "kv/"),
                ("VAULT_ADDR", "http://wrong:1"),
            ]),
        )
        .and_then(VaultClientBuilder::build)
        .unwrap();
        assert_eq!(c.address(), Some("http://vault:8200/"));
        assert_eq!(c.kv_mount(), "kv");
    }

    #[test]
    fn disabled_needs_no_address_and_sends_nothing() {
        let c = build(&[("VAULT_ENABLED", "false")]).unwrap();
        assert!(!c.is_enabled());
        let prefixed =
            VaultClientBuilder::from_env_source(Some("AION"), env(&[("AION_VAULT_ENABLED", "0")]))
                .and_then(VaultClientBuilder::build)
                .unwrap();
        assert!(!prefixed.is_enabled());
    }

    #[test]
    fn token_file_is_read_when_no_token_var() {
        let home = std::env::temp_dir().join(format!("vault-config-home-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".vault-token"), "s.file-token\n").unwrap();
        let c = build(&[
            ("VAULT_ADDR", "http://v:1"),
            ("HOME", home.to_str().unwrap()),
        ]);
        std::fs::remove_dir_all(&home).unwrap();
        assert!(c.is_ok());
        let e = build(&[("VAULT_ADDR", "http://v:1"), ("HOME", "/nonexistent")]).unwrap_err();
        assert!(e.to_string().contains("VAULT_TOKEN (or BAO_TOKEN)"), "{e}");
    }

    #[test]
    fn mode_and_numbers_parse_or_fail_clearly() {
        let base = [("VAULT_ADDR", "http://v:1"), ("VAULT_TOKEN", "t")];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = base.to_vec();
            v.push(extra);
            build(&v)
        };
        assert_eq!(
            with(("VAULT_MODE", "fallback")).unwrap().fallback_mode(),
            FallbackMode::Fallback
        );
        assert!(with(("VAULT_MODE", "sometimes"))
            .unwrap_err()
            .to_string()
            .contains("VAULT_MODE"));
        assert!(with(("VAULT_MAX_RETRIES", "many"))
            .unwrap_err()
            .to_string()
            .contains("VAULT_MAX_RETRIES"));
        assert!(with(("VAULT_CACHE_TTL", "soon"))
            .unwrap_err()
            .to_string()
            .contains("VAULT_CACHE_TTL"));
    }

    #[test]
    fn a_token_file_never_overrides_an_approle_set_in_env() {
        let home =
            std::env::temp_dir().join(format!("vault-config-approle-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".vault-token"), "s.developer-token\n").unwrap();
        let c = build(&[
            ("VAULT_ADDR", "http://v:1"),
            ("HOME", home.to_str().unwrap()),
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID", "s3cret-id"),
        ])
        .unwrap();
        let status = c.auth_status().unwrap();
        assert_eq!(status.method, "approle");
        assert!(status.credentials.contains("VAULT_SECRET_ID"), "{status:?}");
        assert!(!format!("{status:?}{c:?}").contains("s3cret-id"));

        // A token variable is explicit: it wins, and the status says how to choose AppRole.
        let c = build(&[
            ("VAULT_ADDR", "http://v:1"),
            ("VAULT_TOKEN", "t"),
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID", "s3cret-id"),
        ])
        .unwrap();
        let status = c.auth_status().unwrap();
        assert_eq!(status.method, "token");
        assert!(
            status.credentials.contains("VAULT_AUTH_METHOD=approle"),
            "{status:?}"
        );
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[tokio::test]
    async fn errors_name_the_clients_own_variables() {
        let env = EnvSource::from_fn(|n| (n == "AION_VAULT_ENABLED").then(|| "false".into()));
        let client = VaultClientBuilder::from_env_source(Some("AION"), env)
            .and_then(VaultClientBuilder::build)
            .unwrap();
        let e = client.read("secret", "database").await.unwrap_err();
        assert!(e.to_string().contains("(AION_VAULT_ENABLED=false)"), "{e}");
    }
}
