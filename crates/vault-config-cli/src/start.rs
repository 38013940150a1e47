//! How `exec` starts watching: one mapping per value the child gets (a
//! `--secret` target, a `--to-file` one, a `vault://` reference), leased or
//! KV as the mounts' types say, and the library's watcher on them, whose
//! first values must hold every one; retried while Vault is unreachable or
//! sealed (`--start-timeout`), or in the background under `--mode
//! fallback`. Uses the library, `read`, `refs` and `target`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tokio::time::{sleep, timeout, Instant};
use vault_config::{Mapping, VaultClient, VaultProvider, WatchOptions, Watcher};

use crate::cli::{ExecArgs, Mode};
use crate::exit::{Failure, Kind, Result, LOG};
use crate::read;
use crate::refs::Sources;
use crate::target::Target;

/// What the watcher publishes: each `--secret` target's value under
/// `t<index>`, each `--to-file` one's under `f<index>`, each `vault://`
/// reference's (`--env-file`, the environment) under `r<index>`.
pub type Values = BTreeMap<String, Value>;

/// The longest wait between attempts to reach Vault at start (and, under
/// `--mode fallback`, until it answers).
const MAX_START_BACKOFF: Duration = Duration::from_secs(5);

/// One mapping per target, keyed `t<index>` (`--secret`), `f<index>`
/// (`--to-file`) or `r<index>` (a `vault://` reference): a whole secret
/// fills a map. No env fallback: a key Vault lacks is an error, not
/// whatever the shell holds.
pub fn mappings(
    targets: &[Target],
    file_targets: &[Target],
    ref_targets: &[Target],
) -> Result<Vec<Mapping>> {
    let keyed = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("t{i}"), t))
        .chain(
            file_targets
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("f{i}"), t)),
        )
        .chain(
            ref_targets
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("r{i}"), t)),
        );
    keyed
        .map(|(key, t)| {
            let secret_key = t.key.as_deref().unwrap_or("*");
            let m = if t.leased {
                Mapping::dynamic(key, &t.path, secret_key)
            } else {
                Mapping::from_parts(key, &t.path, secret_key)
            };
            m.map(Mapping::no_env).map_err(Failure::from)
        })
        .collect()
}

/// How the watcher is started.
#[derive(Clone)]
pub struct Start {
    pub client: VaultClient,
    /// `--secret` targets.
    pub targets: Vec<Target>,
    /// `--to-file` targets.
    pub file_targets: Vec<Target>,
    /// The references to read (and name in messages).
    pub sources: Sources,
    pub options: WatchOptions,
}

impl Start {
    /// A watcher whose first values hold every target: a secret Vault does
    /// not have fills no map entry, and is an error here as in `env`.
    pub async fn attempt(&self) -> Result<Watcher<Values>> {
        // Leased or KV: the mounts' types say (read::resolve).
        let all: Vec<Target> = self
            .targets
            .iter()
            .chain(&self.file_targets)
            .cloned()
            .chain(self.sources.targets())
            .collect();
        let resolved = read::resolve(&self.client, &all).await?;
        let (targets, rest) = resolved.split_at(self.targets.len());
        let (file_targets, ref_targets) = rest.split_at(self.file_targets.len());
        let mappings = mappings(targets, file_targets, ref_targets)?;
        let watcher: Watcher<Values> = match VaultProvider::builder()
            .mappings(mappings.clone())
            .watch(&self.client, self.options)
            .await
        {
            Ok(watcher) => watcher,
            Err(e) => {
                let failure = read::explain(&self.client, e).await;
                return Err(self.naming_references(failure));
            }
        };
        let current = watcher.current();
        let missing = mappings.iter().find(|m| !current.contains_key(m.key()));
        if let Some(m) = missing {
            let mut message = if m.is_whole_secret() {
                format!("no secret at {}", m.path())
            } else {
                format!("no key `{}` at {}", m.secret_key(), m.path())
            };
            let reference = m
                .key()
                .strip_prefix('r')
                .and_then(|i| i.parse::<usize>().ok());
            if let Some((item, _)) = reference.and_then(|i| self.sources.references().nth(i)) {
                message = format!("{}: cannot be resolved: {message}", item.describe());
            }
            watcher.shutdown().await;
            return Err(Failure::new(Kind::NotFound, message));
        }
        Ok(watcher)
    }

    /// `failure`, naming the references whose path it names (a path that
    /// cannot be read): where each was written.
    pub fn naming_references(&self, mut failure: Failure) -> Failure {
        let named: Vec<String> = self
            .sources
            .references()
            .filter(|(_, t)| failure.message.contains(&t.path))
            .map(|(item, _)| item.describe())
            .collect();
        if !named.is_empty() {
            failure.message = format!("{} (referenced by {})", failure.message, named.join(", "));
        }
        failure
    }

    /// The first watcher: retried with backoff while Vault is unreachable or
    /// sealed, for `--start-timeout` (`required`), or not at all (`fallback`:
    /// `None`, the command starts without secrets).
    pub async fn first(&self, args: &ExecArgs) -> Result<Option<Watcher<Values>>> {
        let deadline = Instant::now() + args.start_timeout;
        let mut wait = Duration::from_millis(200);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = match timeout(left.max(Duration::from_millis(1)), self.attempt()).await {
                Ok(outcome) => outcome,
                Err(_) if args.mode == Mode::Fallback => {
                    tracing::warn!(target: LOG, "vault-config exec: Vault did not answer; starting the command on the parent's environment (--mode fallback) and retrying in the background");
                    return Ok(None);
                }
                Err(_) => {
                    return Err(Failure::new(
                        Kind::Connection,
                        format!(
                            "Vault did not answer within --start-timeout {}",
                            humantime::format_duration(args.start_timeout)
                        ),
                    ))
                }
            };
            let e = match outcome {
                Ok(watcher) => return Ok(Some(watcher)),
                Err(e) => e,
            };
            if !matches!(e.kind, Kind::Connection | Kind::Sealed) {
                return Err(e);
            }
            if args.mode == Mode::Fallback {
                tracing::warn!(target: LOG, error = %e, "vault-config exec: Vault is not available; starting the command on the parent's environment (--mode fallback) and retrying in the background");
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::new(
                    e.kind,
                    format!(
                        "{} (gave up after --start-timeout {})",
                        e.message,
                        humantime::format_duration(args.start_timeout)
                    ),
                ));
            }
            tracing::warn!(target: LOG, error = %e, retry_in = ?wait.min(left), "vault-config exec: Vault is not available yet; retrying");
            sleep(wait.min(left)).await;
            wait = (wait * 2).min(MAX_START_BACKOFF);
        }
    }

    /// A watcher once Vault answers with the secrets (`--mode fallback`),
    /// however long it takes: a Vault that returns may still be being
    /// seeded or granted, so every failure is tried again, with backoff.
    pub async fn until_up(&self) -> Option<Watcher<Values>> {
        let mut wait = Duration::from_millis(500);
        loop {
            match self.attempt().await {
                Ok(watcher) => return Some(watcher),
                Err(e) => {
                    if !matches!(e.kind, Kind::Connection | Kind::Sealed) {
                        tracing::warn!(target: LOG, error = %e, retry_in = ?wait, "vault-config exec: Vault answered, but the secrets cannot be read yet; the command keeps the parent's environment");
                    }
                }
            }
            sleep(wait).await;
            // The command runs without its secrets meanwhile: keep looking often.
            wait = (wait * 2).min(MAX_START_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_no_env_fallback() {
        // `port` would fall back to PORT, a name the library refuses by default.
        let targets =
            Target::parse_all(&["database#port".into(), "database/creds/app#username".into()])
                .unwrap();
        let files =
            crate::to_file::ToFile::parse_all(&["app#TLS_KEY=/run/tls.key".into()]).unwrap();
        let refs = Target::parse_all(&["app#K".into()]).unwrap();
        let mappings = mappings(&targets, &[files[0].target.clone()], &refs).unwrap();
        assert_eq!(mappings.len(), 4);
        assert_eq!(mappings[3].key(), "r0");
        assert_eq!(mappings[2].key(), "f0");
        assert!(
            mappings.iter().all(|m| m.env_var(None).is_empty()),
            "{mappings:?}"
        );
    }
}
