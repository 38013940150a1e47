//! Files replaced whole: written and synced under a temporary name in the
//! same folder, then renamed over the old one, so that a reader sees the
//! old file or the new one, never part of one. Used by `exec --to-file` and
//! `import --rewrite`. And dotenv files read as text ([`read_text`], for
//! `import` and `--env-file`). Uses std and the command line's error type.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Replaces `dest` with a file holding `bytes`, of exactly `mode` (the
/// umask aside) and, with `owner`, that user and group: the new file has
/// them before it takes `dest`'s name.
pub fn replace(
    dest: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut nonce = [0u8; 6];
    getrandom::getrandom(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let temp = dir.join(format!(".{name}.vault-config-{nonce}.tmp"));
    let written = (|| {
        // Readable by the owner only until it has its final mode.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        if let Some((uid, gid)) = owner {
            let meta = file.metadata()?;
            use std::os::unix::fs::MetadataExt;
            if (meta.uid(), meta.gid()) != (uid, gid) {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
            }
        }
        // Exactly `mode`, whatever the umask.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, dest)?;
        // The rename itself, on disk (best effort: not every file system
        // lets a folder be synced).
        if let Ok(folder) = File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// The largest dotenv file read.
const MAX_FILE: u64 = 16 << 20;

/// `file`'s text, as UTF-8; an error names the file (and the line that is
/// not UTF-8), never its content.
pub fn read_text(file: &Path) -> crate::exit::Result<zeroize::Zeroizing<String>> {
    use crate::exit::{Failure, Kind};
    let shown = file.display();
    let io = |e: std::io::Error| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => Kind::NotFound,
            _ => Kind::Other,
        };
        Failure::new(kind, format!("cannot read {shown}: {e}"))
    };
    let size = std::fs::metadata(file).map_err(io)?.len();
    if size > MAX_FILE {
        return Err(Failure::new(
            Kind::Invalid,
            format!("{shown} is larger than {MAX_FILE} bytes; not a dotenv file"),
        ));
    }
    let bytes = zeroize::Zeroizing::new(std::fs::read(file).map_err(io)?);
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(zeroize::Zeroizing::new(text.to_owned())),
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            Err(Failure::new(
                Kind::Invalid,
                format!("{shown}: line {line} is not UTF-8 text"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_replaced_whole_with_their_mode() {
        let dir = std::env::temp_dir().join(format!("vault-config-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("secret.txt");
        std::fs::write(&dest, "old").unwrap();
        std::fs::set_permissions(&dest, Permissions::from_mode(0o644)).unwrap();
        replace(&dest, b"new\nvalue", 0o600, None).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new\nvalue");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        replace(&dest, b"again", 0o640, None).unwrap();
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret.txt"], "no temporary file is left");
        // A folder that does not exist: an error, nothing left behind.
        assert!(replace(&dir.join("nope/secret.txt"), b"x", 0o600, None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
