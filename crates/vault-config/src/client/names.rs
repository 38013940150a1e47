//! The names of the env contract's variables: `VAULT_<X>`, OpenBao's
//! `BAO_<X>`, or `<PREFIX>_VAULT_<X>` for a prefixed client.
//!
//! A leaf of the client: the builder, the transport (whose errors name the
//! setting to fix) and the env contract use it; it uses only `base`.

use crate::base::EnvSource;

/// Names the variables of the contract: `VAULT_<X>`, or `<PREFIX>_VAULT_<X>`.
#[derive(Debug, Clone)]
pub(crate) struct ContractNames {
    prefix: Option<String>,
}

impl ContractNames {
    pub(crate) fn new(prefix: Option<&str>) -> Self {
        let prefix = prefix
            .map(|p| p.trim_end_matches('_').to_owned())
            .filter(|p| !p.is_empty());
        ContractNames { prefix }
    }

    /// `VAULT_ADDR` or `AION_VAULT_ADDR`.
    pub(crate) fn vault(&self, suffix: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}_VAULT_{suffix}"),
            None => format!("VAULT_{suffix}"),
        }
    }

    /// OpenBao's name (`BAO_ADDR`), read when the `VAULT_` one is unset; none when prefixed.
    pub(crate) fn bao(&self, suffix: &str) -> Option<String> {
        match &self.prefix {
            Some(_) => None,
            None => Some(format!("BAO_{suffix}")),
        }
    }

    /// Reads `suffix`, returning the value and the variable it came from.
    pub(crate) fn read(&self, env: &EnvSource, suffix: &str) -> Option<(String, String)> {
        let primary = self.vault(suffix);
        if let Some(v) = env.get(&primary) {
            return Some((primary, v));
        }
        let bao = self.bao(suffix)?;
        env.get(&bao).map(|v| (bao, v))
    }

    /// How to refer to a setting in an error: `VAULT_ADDR (or BAO_ADDR)`.
    pub(crate) fn describe(&self, suffix: &str) -> String {
        match self.bao(suffix) {
            Some(bao) => format!("{} (or {bao})", self.vault(suffix)),
            None => self.vault(suffix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_prefix() {
        let plain = ContractNames::new(None);
        assert_eq!(plain.vault("ADDR"), "VAULT_ADDR");
        assert_eq!(plain.describe("TOKEN"), "VAULT_TOKEN (or BAO_TOKEN)");
        let aion = ContractNames::new(Some("AION_"));
        assert_eq!(aion.vault("KV_MOUNT"), "AION_VAULT_KV_MOUNT");
        assert_eq!(aion.bao("ADDR"), None);
    }

    #[test]
    fn vault_names_win_over_bao_names() {
        let env = EnvSource::from_fn(|n| match n {
            "VAULT_ADDR" => Some("http://v".into()),
            "BAO_ADDR" | "BAO_TOKEN" => Some("bao".into()),
            "VAULT_TOKEN" => Some(String::new()),
            _ => None,
        });
        let names = ContractNames::new(None);
        assert_eq!(
            names.read(&env, "ADDR").unwrap(),
            ("VAULT_ADDR".into(), "http://v".into())
        );
        // An empty VAULT_TOKEN counts as unset.
        assert_eq!(names.read(&env, "TOKEN").unwrap().0, "BAO_TOKEN");
    }
}
