//! `vault-config policy`: the least-privilege Vault policy (HCL) for the
//! paths `env` and `exec` are given, as the derive renders one for a struct:
//! `read` on a KV secret's data (and metadata, on KV v2: `exec` watches it),
//! `read` on a leased path plus renewing and revoking its own leases. The
//! paths come from the command line and the `vault://` references of
//! `--env-file` files (`refs`).

use std::collections::BTreeMap;

use vault_config::kv::KvVersion;
use vault_config::policy::render_policy_for_mappings;
use vault_config::Mapping;

use crate::cli::PolicyArgs;
use crate::exit::{Failure, Kind, Result};
use crate::read;
use crate::refs::Sources;
use crate::target::Target;

/// Prints the policy; returns the exit code.
pub async fn run(args: PolicyArgs) -> Result<u8> {
    let mut targets = Target::parse_all(&args.targets)?;
    targets.extend(Sources::read(&args.env_files, false, false)?.targets());
    if targets.is_empty() {
        return Err(Failure::new(
            Kind::Invalid,
            "no path to grant: the --env-file files hold no vault:// reference",
        ));
    }
    let client = read::client(args.mount.mount.as_deref())?;
    // Leased or KV, and the KV version: as Vault's mount table says.
    let targets = read::resolve(&client, &targets).await?;
    let mut versions = BTreeMap::new();
    if targets.iter().any(|t| !t.leased) {
        let mount = client.kv_mount().to_owned();
        let version = match client.kv_version(&mount).await {
            Ok(version) => version,
            Err(e) => return Err(read::explain(&client, e).await),
        };
        versions.insert(mount, version);
    }
    let mappings = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            // A policy grants a path, never one key of it.
            let m = if t.leased {
                Mapping::dynamic(format!("t{i}"), &t.path, "*")
            } else {
                Mapping::from_parts(format!("t{i}"), &t.path, "*")
            };
            m.map_err(Failure::from)
        })
        .collect::<Result<Vec<_>>>()?;
    // What was decided, for the person granting it (the policy goes to stdout).
    let mut told: Vec<&str> = Vec::new();
    for t in &targets {
        if told.contains(&t.path.as_str()) {
            continue;
        }
        told.push(&t.path);
        let how = if t.leased {
            "leased credentials: read, and renew/revoke of its own leases".to_owned()
        } else {
            let version = versions.get(client.kv_mount()).copied();
            format!(
                "a KV secret on {}{}: read{}",
                client.kv_mount(),
                match version {
                    Some(KvVersion::V1) => " (KV v1)",
                    _ => " (KV v2)",
                },
                match version {
                    Some(KvVersion::V1) => "",
                    _ => " of its data and metadata",
                }
            )
        };
        eprintln!("vault-config policy: {}: {how}", t.path);
    }
    let mut paths: Vec<&str> = Vec::new();
    for t in &targets {
        if !paths.contains(&t.path.as_str()) {
            paths.push(&t.path);
        }
    }
    let title = format!("the paths {}", paths.join(", "));
    print!(
        "{}",
        render_policy_for_mappings(&title, &mappings, client.kv_mount(), &|mount| {
            versions.get(mount).copied().unwrap_or(KvVersion::V2)
        })
    );
    Ok(0)
}
