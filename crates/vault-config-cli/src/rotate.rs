//! `vault-config rotate`: a new value for one key of a KV secret, the other
//! keys kept, written check-and-set on KV v2, then read back and verified.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;
use vault_config::kv::KvVersion;
use vault_config::{Error, ExposeSecret, VaultClient};
use zeroize::{Zeroize, Zeroizing};

use crate::cli::{Charset, RotateArgs};
use crate::exec::LOG;
use crate::exit::{Failure, Kind, Result};
use crate::read;

/// The longest input `--value-stdin` takes.
const MAX_STDIN: u64 = 1 << 20;

/// Runs the rotation; returns the exit code.
pub async fn run(args: RotateArgs) -> Result<u8> {
    if args.value.is_some() {
        return Err(Failure::new(
            Kind::Invalid,
            "a value on the command line ends up in shell history and in `ps`; pipe it instead: \
             printf '%s' \"$NEW_VALUE\" | vault-config rotate PATH KEY --value-stdin (or --generate)",
        ));
    }
    if !args.value_stdin && !args.generate {
        return Err(Failure::new(
            Kind::Invalid,
            "say where the new value comes from: --generate (random) or --value-stdin (piped in)",
        ));
    }
    let path = args.path.trim_matches('/').to_owned();
    if path.is_empty() || path.contains('#') || args.key.is_empty() {
        return Err(Failure::new(
            Kind::Invalid,
            format!(
                "rotate takes a path and a key apart: vault-config rotate app-prod MACHINE_SECRET_TOKEN (got `{}` `{}`)",
                args.path, args.key
            ),
        ));
    }
    let client = read::client(args.mount.mount.as_deref())?;
    let mount = client.kv_mount().to_owned();
    // Vault, the login and the mount first: a value is asked for only once
    // it can be written.
    let kv = match client.kv_version(&mount).await {
        Ok(kv) => kv,
        Err(e) => return Err(read::explain(&client, e).await),
    };
    let value = if args.value_stdin {
        from_stdin().await?
    } else {
        generate(usize::from(args.length), args.charset)?
    };
    let shown = format!("{path}#{}", args.key);
    let (old, new) = match kv {
        KvVersion::V2 => write_cas(&client, &mount, &path, &args, &value).await?,
        KvVersion::V1 => {
            tracing::warn!(
                target: LOG,
                "{mount} is KV version 1, which has no check-and-set: a write to {path} made at the same time by someone else may be lost"
            );
            write_v1(&client, &mount, &path, &args.key, &value).await?
        }
    };
    verify(&client, &mount, &path, &args.key, &value, new).await?;
    let versions = match (old, new) {
        (Some(old), Some(new)) => format!("version {old} -> {new}"),
        _ => "KV v1, unversioned".to_owned(),
    };
    let report = format!("rotated {shown}: {versions}, verified");
    if args.print {
        eprintln!("{report}");
        println!("{}", value.as_str());
    } else {
        println!("{report}");
    }
    Ok(0)
}

/// The secret's keys as a JSON object to write back.
fn data_of(secret: &vault_config::kv::KvSecret) -> Result<Map<String, Value>> {
    match serde_json::to_value(secret.data().expose_secret()) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Failure::new(Kind::Other, "the secret is not a map of keys")),
    }
}

/// Zeroes the strings of `data`.
fn wipe(mut data: Map<String, Value>) {
    for v in data.values_mut() {
        if let Value::String(s) = v {
            s.zeroize();
        }
    }
}

/// Reads `path`, for a rotation: a secret that is not there is an error
/// saying why and what to do.
async fn current(
    client: &VaultClient,
    mount: &str,
    path: &str,
    key: &str,
) -> Result<vault_config::kv::KvSecret> {
    match client.read(mount, path).await {
        Ok(secret) => Ok(secret),
        Err(Error::NotFound { .. }) => Err(missing(client, mount, path, key).await),
        Err(e) => Err(read::explain(client, e).await),
    }
}

/// Why `path` has nothing to rotate: its current version is deleted or
/// destroyed (what brings its keys back: `undelete`, `rollback`), or it
/// never existed (then `kv put` creates it, with no other keys to lose).
async fn missing(client: &VaultClient, mount: &str, path: &str, key: &str) -> Failure {
    let meta = match client.kv_version(mount).await {
        Ok(KvVersion::V2) => client.read_metadata(mount, path).await.ok(),
        _ => None,
    };
    let Some(meta) = meta.filter(|m| m.current_deleted) else {
        return Failure::new(
            Kind::NotFound,
            format!(
                "no secret at {mount}/{path} to rotate a key of; create it first (bao kv put -mount={mount} {path} {key}=...)"
            ),
        );
    };
    let n = meta.current_version;
    let what = if meta.current_destroyed {
        format!(
            "version {n} of {mount}/{path}, its current version, was destroyed (its keys are gone)"
        )
    } else {
        format!("version {n} of {mount}/{path}, its current version, is deleted")
    };
    let mut fixes = Vec::new();
    if !meta.current_destroyed {
        fixes.push(format!(
            "bring it back with `bao kv undelete -mount={mount} -versions={n} {path}`"
        ));
    }
    if let Some(r) = meta.newest_readable_version.filter(|r| *r != n) {
        fixes.push(format!(
            "make version {r} current again with `bao kv rollback -mount={mount} -version={r} {path}`"
        ));
    }
    let todo = if fixes.is_empty() {
        format!(
            "no version of it is readable: write every key it needs anew (bao kv put -mount={mount} {path} {key}=... OTHER=...)"
        )
    } else {
        format!(
            "{}; then rotate again: like `bao kv patch -mount={mount} {path} {key}=...`, it keeps the other keys (`bao kv put` would drop them)",
            fixes.join(", or ")
        )
    };
    Failure::new(Kind::NotFound, format!("nothing rotated: {what}; {todo}"))
}

/// KV v2: read, change one key, write check-and-set against the version
/// read; on a conflict (another writer in between) read again and retry.
async fn write_cas(
    client: &VaultClient,
    mount: &str,
    path: &str,
    args: &RotateArgs,
    value: &str,
) -> Result<(Option<u64>, Option<u64>)> {
    let mut wait = Duration::from_millis(20);
    for attempt in 0..=args.cas_retries {
        let secret = current(client, mount, path, &args.key).await?;
        let version = secret.version();
        let mut data = data_of(&secret)?;
        drop(secret);
        data.insert(args.key.clone(), Value::String(value.to_owned()));
        let written = client
            .write(mount, path, &data, Some(version.unwrap_or(0)))
            .await;
        wipe(data);
        match written {
            Ok(new) => return Ok((version, new)),
            Err(e) if is_cas_conflict(&e) && attempt < args.cas_retries => {
                tracing::info!(
                    target: LOG,
                    attempt = attempt + 1,
                    "vault-config rotate: {mount}/{path} changed since it was read; reading it again"
                );
                tokio::time::sleep(wait + jitter(wait)).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            Err(e) if is_cas_conflict(&e) => {
                return Err(Failure::new(
                    Kind::Other,
                    format!(
                        "{mount}/{path} kept changing under {} attempts (check-and-set conflicts); try again, or raise --cas-retries",
                        args.cas_retries + 1
                    ),
                ))
            }
            Err(e) => return Err(read::explain(client, e).await),
        }
    }
    Err(Failure::new(Kind::Other, "no attempt was made"))
}

/// KV v1: read, change one key, write.
async fn write_v1(
    client: &VaultClient,
    mount: &str,
    path: &str,
    key: &str,
    value: &str,
) -> Result<(Option<u64>, Option<u64>)> {
    let secret = current(client, mount, path, key).await?;
    let mut data = data_of(&secret)?;
    drop(secret);
    data.insert(key.to_owned(), Value::String(value.to_owned()));
    let written = client.write(mount, path, &data, None).await;
    wipe(data);
    match written {
        Ok(_) => Ok((None, None)),
        Err(e) => Err(read::explain(client, e).await),
    }
}

/// Reads the written version back: the key must hold the new value.
async fn verify(
    client: &VaultClient,
    mount: &str,
    path: &str,
    key: &str,
    value: &str,
    version: Option<u64>,
) -> Result<()> {
    let read = match version {
        Some(v) => client.read_version(mount, path, v).await,
        None => client.read(mount, path).await,
    };
    let secret = match read {
        Ok(secret) => secret,
        Err(e) => return Err(read::explain(client, e).await),
    };
    if secret.get(key).and_then(Value::as_str) == Some(value) {
        Ok(())
    } else {
        Err(Failure::new(
            Kind::Other,
            format!(
                "verification failed: {mount}/{path}#{key} does not hold the value just written{}; check who else writes it",
                version.map(|v| format!(" at version {v}")).unwrap_or_default()
            ),
        ))
    }
}

/// Whether `e` is KV v2 refusing a check-and-set write.
fn is_cas_conflict(e: &Error) -> bool {
    matches!(e, Error::Vault { status: 400, errors, .. }
        if errors.iter().any(|m| m.contains("check-and-set")))
}

/// Up to `max` more, at random: writers that collided do not collide again in step.
fn jitter(max: Duration) -> Duration {
    let mut byte = [0u8; 1];
    if getrandom::getrandom(&mut byte).is_err() {
        return Duration::ZERO;
    }
    max.mul_f64(f64::from(byte[0]) / 255.0)
}

/// Standard input, without one trailing newline.
async fn from_stdin() -> Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    tokio::io::stdin()
        .take(MAX_STDIN + 1)
        .read_to_string(&mut text)
        .await
        .map_err(|e| {
            Failure::new(
                Kind::Invalid,
                format!("cannot read the value from standard input: {e} (it must be UTF-8 text)"),
            )
        })?;
    if text.len() as u64 > MAX_STDIN {
        return Err(Failure::new(
            Kind::Invalid,
            format!("the value on standard input is larger than {MAX_STDIN} bytes"),
        ));
    }
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(Failure::new(
            Kind::Invalid,
            "standard input was empty; pipe the new value in, or use --generate",
        ));
    }
    Ok(text)
}

/// `length` characters from `charset`, from the operating system's CSPRNG,
/// without modulo bias.
pub fn generate(length: usize, charset: Charset) -> Result<Zeroizing<String>> {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const HEX: &[u8] = b"0123456789abcdef";
    const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let alphabet = match charset {
        Charset::Alnum => ALNUM,
        Charset::Hex => HEX,
        Charset::Base64url => BASE64URL,
    };
    // Bytes at or above the largest multiple of the alphabet's size are
    // drawn again, so every character is equally likely.
    let limit = 256 - 256 % alphabet.len();
    let mut out = Zeroizing::new(String::with_capacity(length));
    let mut pool = Zeroizing::new([0u8; 64]);
    while out.len() < length {
        getrandom::getrandom(pool.as_mut()).map_err(|e| {
            Failure::new(
                Kind::Other,
                format!("the operating system's random source failed: {e}"),
            )
        })?;
        for &b in pool.iter() {
            if out.len() == length {
                break;
            }
            if usize::from(b) < limit {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_use_their_charset() {
        let v = generate(40, Charset::Hex).unwrap();
        assert_eq!(v.len(), 40);
        assert!(v
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let v = generate(64, Charset::Base64url).unwrap();
        assert!(v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        let a = generate(32, Charset::Alnum).unwrap();
        let b = generate(32, Charset::Alnum).unwrap();
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(*a, *b);
    }

    #[test]
    fn a_cas_conflict_is_recognised() {
        let e = Error::Vault {
            status: 400,
            path: "secret/data/app".into(),
            errors: vec!["check-and-set parameter did not match the current version".into()],
        };
        assert!(is_cas_conflict(&e));
    }
}
