//! `vault-config rotate`: a new value for one key of a KV secret, the other
//! keys kept, written check-and-set on KV v2, then read back and verified
//! (`merge`).

use serde_json::Value;
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use crate::cli::{Charset, RotateArgs};
use crate::exit::{Failure, Kind, Result};
use crate::{merge, read};

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
    let target = merge::Target {
        client: &client,
        mount: &mount,
        path: &path,
        kv,
        cas_retries: args.cas_retries,
        absent: merge::Absent::Refuse,
        verb: "rotate",
        hint_key: &args.key,
    };
    let changed = merge::change(&target, |data| {
        data.insert(args.key.clone(), Value::String(value.to_string()));
        Ok(true)
    })
    .await?;
    merge::verify(&target, &[(args.key.as_str(), value.as_str())], changed.new).await?;
    let versions = changed.versions();
    let report = format!("rotated {shown}: {versions}, verified");
    if args.print {
        eprintln!("{report}");
        println!("{}", value.as_str());
    } else {
        println!("{report}");
    }
    Ok(0)
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
}
