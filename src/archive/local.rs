//! A local directory in the archive's layout, listed as S3 would list it (keys are paths
//! relative to the directory, with `/`).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::plan::{Lister, Listing, Object};

pub struct Local {
    pub root: PathBuf,
}

impl Local {
    /// A store for the directory `dir` and the prefix to plan from: when `dir` is at or
    /// inside the layout (`…/AWSLogs/`, `…/AWSLogs/o-…/`, an account folder), the store is
    /// rooted above `AWSLogs/` and the prefix names the level, so the planner recognises it
    /// as it does an S3 prefix; otherwise the store is `dir` and the prefix is empty.
    pub fn at(dir: &Path) -> (Local, String) {
        let parts: Vec<_> = dir.components().collect();
        let at = parts.iter().rposition(|c| c.as_os_str() == "AWSLogs");
        match at {
            Some(i) => {
                let root: PathBuf = parts[..i].iter().collect();
                let prefix: Vec<String> = parts[i..]
                    .iter()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let root = if root.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    root
                };
                (Local { root }, format!("{}/", prefix.join("/")))
            }
            None => (
                Local {
                    root: dir.to_path_buf(),
                },
                String::new(),
            ),
        }
    }

    /// The file behind a key.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn walk(
        &self,
        dir: &Path,
        key: &str,
        start: &str,
        out: &mut Listing,
        delimited: bool,
    ) -> std::io::Result<()> {
        let rd = std::fs::read_dir(dir)?;
        let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') || !name.starts_with(start) {
                continue;
            }
            let child = format!("{key}{name}");
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            match (is_dir, delimited) {
                (true, true) => out.prefixes.push(format!("{child}/")),
                (true, false) => {
                    let sub = e.path();
                    // A folder inside that cannot be read is an error, whatever the cause.
                    self.walk(&sub, &format!("{child}/"), "", out, false)
                        .map_err(|e| std::io::Error::other(format!("{}: {e}", sub.display())))?
                }
                (false, _) => out.objects.push(Object {
                    key: child,
                    size: e.metadata().map(|m| m.len()).unwrap_or(0),
                }),
            }
        }
        Ok(())
    }
}

impl Lister for Local {
    async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, String> {
        let mut out = Listing::default();
        // A folder (`…/`, or the root ""), or a folder and the start of names in it (an
        // hour of a day folder: `…/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHH`).
        let (folder, start) = match prefix.rfind('/') {
            Some(i) => prefix.split_at(i + 1),
            None => ("", prefix),
        };
        let dir = self.root.join(folder.trim_end_matches('/'));
        match self.walk(&dir, folder, start, &mut out, delimited) {
            // Nothing under this prefix, as S3 would say.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                Ok(Listing::default())
            }
            Err(e) => Err(format!("{}: {e}", dir.display())),
            Ok(()) => Ok(out),
        }
    }
}
