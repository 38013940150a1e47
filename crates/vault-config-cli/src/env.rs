//! `vault-config env`: the keys of KV paths, printed for a shell, a dotenv
//! file, `docker run --env-file` or a tool, all or nothing; names that run
//! code (`naming::REFUSED`) only with `--allow-name`.

use std::io::Write;

use crate::cli::EnvArgs;
use crate::exit::{Failure, Kind, Result};
use crate::format::render;
use crate::naming::variables;
use crate::read;
use crate::target::Target;

/// Reads every target, then prints; returns the exit code.
pub async fn run(args: EnvArgs) -> Result<u8> {
    let targets = Target::parse_all(&args.targets)?;
    let client = read::client(args.mount.mount.as_deref())?;
    let values = read::read_all(&client, &targets).await?;
    let vars = variables(&targets, &values, &args.naming)?;
    drop(values);
    let text = zeroize::Zeroizing::new(render(&vars, args.format)?);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(Kind::Other, format!("cannot write to standard output: {e}")))?;
    Ok(0)
}
