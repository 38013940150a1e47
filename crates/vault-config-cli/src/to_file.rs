//! `exec --to-file PATH#KEY=DEST`: the arguments, and the files, written
//! whole (`files::replace`, mode 0600) before the child starts and before
//! each signal or restart, removed at exit unless `--keep-files`. Errors
//! name the file and its key, never the value.

use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::exit::{Failure, Kind, Result, LOG};
use crate::files;
use crate::target::Target;

/// One `--to-file PATH#KEY=DEST`.
#[derive(Debug, Clone)]
pub struct ToFile {
    pub target: Target,
    /// Absolute: written again and removed from wherever vault-config is.
    pub dest: PathBuf,
}

impl ToFile {
    /// Parses `PATH#KEY=DEST` (the first `=` after the `#` ends the key).
    pub fn parse(arg: &str) -> Result<ToFile> {
        let bad = |why: &str| {
            Failure::new(
                Kind::Invalid,
                format!("--to-file `{arg}`: {why}; write PATH#KEY=DEST (app#TLS_KEY=/run/secrets/tls.key)"),
            )
        };
        let hash = arg.find('#').ok_or_else(|| bad("no `#KEY`"))?;
        let eq = arg[hash..]
            .find('=')
            .map(|i| hash + i)
            .ok_or_else(|| bad("no `=DEST`"))?;
        let target = Target::parse(&arg[..eq])?;
        let dest = &arg[eq + 1..];
        if dest.is_empty() || dest.ends_with('/') {
            return Err(bad("DEST is not a file name"));
        }
        let dest = std::path::absolute(dest)
            .map_err(|e| bad(&format!("DEST cannot be made absolute ({e})")))?;
        if dest.file_name().is_none() {
            return Err(bad("DEST is not a file name"));
        }
        Ok(ToFile { target, dest })
    }

    /// Parses every argument; two for one DEST are refused.
    pub fn parse_all(args: &[String]) -> Result<Vec<ToFile>> {
        let files: Vec<ToFile> = args
            .iter()
            .map(|a| ToFile::parse(a))
            .collect::<Result<_>>()?;
        for (i, file) in files.iter().enumerate() {
            if files[..i].iter().any(|f| f.dest == file.dest) {
                return Err(Failure::new(
                    Kind::Invalid,
                    format!("--to-file names {} twice", file.dest.display()),
                ));
            }
        }
        Ok(files)
    }
}

/// The `--to-file` files: written whole, removed at exit unless kept.
pub struct Files {
    list: Vec<ToFile>,
    keep: bool,
    /// Written at least once (so removed at exit).
    written: Vec<bool>,
}

impl Files {
    pub fn new(list: Vec<ToFile>, keep: bool) -> Files {
        let written = vec![false; list.len()];
        Files {
            list,
            keep,
            written,
        }
    }

    /// Writes each file's content (in `--to-file` order); the first failure
    /// stops, naming the file and its key (never the value).
    pub async fn write(&mut self, contents: &[Zeroizing<String>]) -> Result<()> {
        for (i, (file, content)) in self.list.iter().zip(contents).enumerate() {
            let dest = file.dest.clone();
            let content = content.clone();
            let written = tokio::task::spawn_blocking(move || {
                files::replace(&dest, content.as_bytes(), 0o600, None)
            })
            .await
            .map_err(|e| {
                Failure::new(Kind::Other, format!("writing {}: {e}", file.dest.display()))
            })?;
            written.map_err(|e| {
                Failure::new(
                    Kind::Other,
                    format!(
                        "cannot write {} (--to-file {}): {e}",
                        file.dest.display(),
                        file.target
                    ),
                )
            })?;
            self.written[i] = true;
        }
        Ok(())
    }

    /// Removes the files written, unless `--keep-files`.
    pub async fn remove(&self) {
        if self.keep {
            return;
        }
        for (file, _) in self.list.iter().zip(&self.written).filter(|(_, w)| **w) {
            let dest = file.dest.clone();
            let removed = tokio::task::spawn_blocking(move || std::fs::remove_file(dest)).await;
            if let Ok(Err(e)) = removed {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(target: LOG, file = %file.dest.display(), error = %e, "vault-config exec: cannot remove the --to-file file");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_file_arguments() {
        let f = ToFile::parse("app/tls#key.pem=/run/a=b/key.pem").unwrap();
        assert_eq!(f.target.to_string(), "app/tls#key.pem");
        assert_eq!(f.dest, std::path::Path::new("/run/a=b/key.pem"));
        let relative = ToFile::parse("app#K=out/k").unwrap();
        assert!(relative.dest.is_absolute() && relative.dest.ends_with("out/k"));
        for bad in ["app=/x", "app#K", "app#K=", "app#K=/run/", "#K=/x"] {
            assert_eq!(ToFile::parse(bad).unwrap_err().kind, Kind::Invalid, "{bad}");
        }
        let twice = ToFile::parse_all(&["a#K=/x".into(), "b#L=/x".into()]).unwrap_err();
        assert!(twice.message.contains("twice"), "{}", twice.message);
    }
}
