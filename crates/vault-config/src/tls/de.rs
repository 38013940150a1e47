//! `Deserialize` for [`Identity`]: the shape of Vault PKI's `issue` answer
//! and of a KV secret written by hand, through any serde deserializer
//! (serde_json, figment, this crate's own lossy one).

use std::cell::RefCell;
use std::fmt;
use std::time::SystemTime;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::identity::Identity;

/// The keys an identity reads; every other key is ignored (`serial_number`,
/// `expiration`, `private_key_type` of an `issue` answer).
#[derive(Deserialize)]
#[serde(rename = "Identity")]
struct Fields {
    certificate: String,
    private_key: SecretString,
    #[serde(default)]
    ca_chain: CaChain,
    #[serde(default)]
    issuing_ca: Option<String>,
}

/// `ca_chain`: a list of PEM strings (Vault's answer), or one string (a
/// `ca.pem` written with `kv put ca_chain=@ca.pem`); null is none.
#[derive(Default)]
struct CaChain(Vec<String>);

impl<'de> Deserialize<'de> for CaChain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CaChainVisitor)
    }
}

struct CaChainVisitor;

impl<'de> Visitor<'de> for CaChainVisitor {
    type Value = CaChain;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PEM string or a list of PEM strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<CaChain, E> {
        Ok(CaChain(vec![v.to_owned()]))
    }

    fn visit_unit<E: de::Error>(self) -> Result<CaChain, E> {
        Ok(CaChain::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<CaChain, E> {
        Ok(CaChain::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<CaChain, D::Error> {
        CaChain::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CaChain, A::Error> {
        let mut all = Vec::new();
        while let Some(pem) = seq.next_element::<String>()? {
            all.push(pem);
        }
        Ok(CaChain(all))
    }
}

thread_local! {
    /// The `certificate` texts of the identities in the config a watcher
    /// has in force, while it makes the next one (see [`keeping`]).
    static IN_FORCE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Runs `make` (a config's extraction, synchronous) with the identities
/// whose certificate text is one of `certificates` exempt from the time
/// check: an identity already in force that has expired since does not
/// keep a watcher from publishing other values (new credentials, say). A
/// new certificate is checked as always.
pub(crate) fn keeping<R>(certificates: Vec<String>, make: impl FnOnce() -> R) -> R {
    struct Restore(Vec<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = std::mem::take(&mut self.0);
            IN_FORCE.with(|c| *c.borrow_mut() = before);
        }
    }
    let _restore = Restore(IN_FORCE.with(|c| c.replace(certificates)));
    make()
}

fn in_force(certificate: &str) -> bool {
    IN_FORCE.with(|c| c.borrow().iter().any(|held| held == certificate))
}

/// From a map with `certificate`, `private_key`, and optionally `ca_chain`
/// and `issuing_ca` (see [`Identity`]). A missing key is serde's "missing
/// field `certificate`"; a failed check is a custom error with the same
/// reason [`Identity::from_pem`] gives, which never quotes PEM.
impl<'de> Deserialize<'de> for Identity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = Fields::deserialize(d)?;
        let chain: Vec<&str> = fields
            .ca_chain
            .0
            .iter()
            .map(String::as_str)
            .filter(|pem| !pem.trim().is_empty())
            .collect();
        let (ca, ca_field) = match (chain.is_empty(), fields.issuing_ca.as_deref()) {
            (true, Some(issuing)) if !issuing.trim().is_empty() => (vec![issuing], "issuing_ca"),
            _ => (chain, "ca_chain"),
        };
        let key = fields.private_key.expose_secret();
        // The certificate of the config in force is not checked for time
        // again: a watcher that must publish new database credentials after
        // it expired keeps serving it rather than nothing.
        let now = (!in_force(&fields.certificate)).then(SystemTime::now);
        Identity::build(&fields.certificate, key, &ca, ca_field, now).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Origin, Resolved};
    use crate::tls::fixtures::*;
    use crate::{Error, VaultProvider};
    use serde_json::{json, Value};

    /// What `bao write pki/issue/web common_name=gateway.internal` answers
    /// (its `data`), with this crate's fixtures.
    fn issue_answer() -> Value {
        json!({
            "certificate": EC,
            "expiration": 4_318_962_564u64,
            "issuing_ca": INTERMEDIATE,
            "ca_chain": [INTERMEDIATE, ROOT],
            "private_key": EC_KEY,
            "private_key_type": "ec",
            "serial_number": "3a:0f:bc:11:d2:e4:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:a1:b2:c3",
        })
    }

    fn expected() -> Identity {
        Identity::from_pem(EC, EC_KEY, &[INTERMEDIATE, ROOT]).unwrap()
    }

    #[derive(Debug, Deserialize)]
    struct Config {
        tls: Identity,
    }

    /// Extracts `{tls: value}` as a load does (the crate's lossy
    /// deserializer, errors rewritten without values), `value` being a
    /// whole KV secret read from `secret/data/tls/gateway`.
    fn load(value: Value) -> crate::Result<Identity> {
        let resolved = Resolved {
            key: "tls".into(),
            origin: Origin::Vault {
                namespace: None,
                api_path: "secret/data/tls/gateway".into(),
                key: "*".into(),
                version: Some(2),
                path_env: None,
            },
        };
        let provider = VaultProvider::from_values(vec![(resolved, Some(value))]);
        provider.extract::<Config>().map(|c| c.tls)
    }

    fn json(value: Value) -> Result<Identity, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn the_issue_answer_and_a_hand_written_secret_deserialize() {
        assert_eq!(json(issue_answer()), Ok(expected()));
        assert_eq!(load(issue_answer()), Ok(expected()));

        // `kv put ... ca_chain=@ca.pem`: one string holding both.
        let mut kv = issue_answer();
        kv["ca_chain"] = json!(format!("{INTERMEDIATE}{ROOT}"));
        kv.as_object_mut().unwrap().remove("issuing_ca");
        assert_eq!(json(kv.clone()), Ok(expected()));
        assert_eq!(load(kv), Ok(expected()));

        // `issuing_ca` alone, or with `ca_chain` empty or null.
        let issuing_only = Identity::from_pem(EC, EC_KEY, &[INTERMEDIATE]).unwrap();
        for chain in [None, Some(json!([])), Some(json!("")), Some(Value::Null)] {
            let mut answer = issue_answer();
            match chain {
                Some(c) => answer["ca_chain"] = c,
                None => drop(answer.as_object_mut().unwrap().remove("ca_chain")),
            }
            assert_eq!(json(answer.clone()).as_ref(), Ok(&issuing_only));
            assert_eq!(load(answer).as_ref(), Ok(&issuing_only));
        }

        // Neither: the leaf alone.
        let bare = json!({"certificate": EC, "private_key": EC_KEY});
        assert_eq!(json(bare).map(|id| id.chain_der().count()), Ok(1));
    }

    #[test]
    fn a_missing_key_is_serdes_missing_field_and_a_failed_check_its_reason() {
        let mut answer = issue_answer();
        answer.as_object_mut().unwrap().remove("certificate");
        assert_eq!(
            json(answer.clone()),
            Err("missing field `certificate`".into())
        );
        assert!(
            matches!(load(answer), Err(Error::Missing { field, .. }) if field == "tls.certificate")
        );

        let mut answer = issue_answer();
        answer["private_key"] = json!(OTHER_KEY);
        let e = json(answer).unwrap_err();
        assert!(
            e.starts_with("the private key does not match the certificate (serial 3a:0f:"),
            "{e}"
        );
        assert_quotes_no_pem(&e);

        let mut answer = issue_answer();
        answer["ca_chain"] = json!(5);
        let e = json(answer).unwrap_err();
        assert!(
            e.contains("expected a PEM string or a list of PEM strings"),
            "{e}"
        );
    }

    #[test]
    fn through_a_load_a_refused_identity_is_an_invalid_field() {
        let mut answer = issue_answer();
        answer["private_key"] = json!(OTHER_KEY);
        let e = load(answer).unwrap_err();
        let Error::Invalid {
            field,
            reason,
            origin,
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(field, "tls");
        // The load redacts every string it holds, but an identity's serial
        // (`serial_number`) and key type: they name it.
        assert_eq!(reason, "the private key does not match the certificate (serial 3a:0f:bc:11:d2:e4:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:a1:b2:c3, CN gateway.internal): write the key issued with this certificate");
        assert_eq!(origin.as_deref(), Some("vault secret/data/tls/gateway#*"));
        assert_quotes_no_pem(&e.to_string());
    }

    #[cfg(feature = "figment")]
    #[test]
    fn through_figment() {
        use figment::providers::Serialized;
        let figment = |tls| figment::Figment::from(Serialized::defaults(json!({ "tls": tls })));
        let config: Config = figment(issue_answer()).extract().unwrap();
        assert_eq!(config.tls, expected());

        let mut answer = issue_answer();
        answer["private_key"] = json!("hunter2");
        let e = figment(answer).extract::<Config>().unwrap_err().to_string();
        assert!(e.contains("`private_key` holds no PEM private key"), "{e}");
        assert_quotes_no_pem(&e);
    }
}
