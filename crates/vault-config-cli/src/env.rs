//! `vault-config env`: the keys of KV paths, and the variables of
//! `--env-file` files with their `vault://` references resolved (`refs`),
//! printed for a shell, a dotenv file, `docker run --env-file` or a tool,
//! all or nothing; names that run code (`naming::REFUSED`) only with
//! `--allow-name`.

use std::io::Write;

use crate::cli::EnvArgs;
use crate::exit::{Failure, Kind, Result};
use crate::format::render;
use crate::naming::variables;
use crate::read;
use crate::refs::{self, Sources};
use crate::target::Target;

/// Reads every target and reference, then prints; returns the exit code.
pub async fn run(args: EnvArgs) -> Result<u8> {
    let targets = Target::parse_all(&args.targets)?;
    let sources = Sources::load(&args.env_files, false, &args.naming)?;
    let vars = if targets.is_empty() && sources.references().next().is_none() {
        // Nothing to read: FILE's literals, without asking Vault.
        sources.vars(&[])?
    } else {
        let client = read::client(args.mount.mount.as_deref())?;
        let (values, from_files) = refs::read_with(&client, &targets, &sources).await?;
        let vars = if targets.is_empty() {
            Vec::new()
        } else {
            variables(&targets, &values, &args.naming)?
        };
        drop(values);
        refs::layer(from_files, vars)
    };
    let text = zeroize::Zeroizing::new(render(&vars, args.format)?);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(Kind::Other, format!("cannot write to standard output: {e}")))?;
    Ok(0)
}
