//! A local directory in the archive's layout, listed as S3 would list it (keys are paths
//! relative to the directory, with `/`).
//!
//! A folder is opened relative to the directory's descriptor and read with raw
//! `getdents64` (no `fstat` an open, no path walk from the working directory), and a batch of
//! folders is split between [`Local::threads`] threads: the first window of a sparse archive
//! is thousands of small folders, read before its first object can be placed in order.

use std::io::{self, ErrorKind};
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{openat, statat, AtFlags, FileType, Mode, OFlags, RawDir, CWD};

use super::plan::{Lister, Listing, Object};

/// Folders in one batch below which it is read on the calling thread alone.
const SPLIT_FROM: usize = 64;

/// Bytes of directory entries read a call.
const DIRENT_BUFFER: usize = 32 * 1024;

pub struct Local {
    pub root: PathBuf,
    /// Threads a batch of folders is read on (`backtest --jobs`).
    pub threads: usize,
    root_fd: OnceLock<OwnedFd>,
}

impl Local {
    /// A store for the directory `dir` and the prefix to plan from: when `dir` is at or
    /// inside the layout (`…/AWSLogs/`, `…/AWSLogs/o-…/`, an account folder), the store is
    /// rooted above `AWSLogs/` and the prefix names the level, so the planner recognises it
    /// as it does an S3 prefix; otherwise the store is `dir` and the prefix is empty.
    pub fn at(dir: &Path) -> (Local, String) {
        let parts: Vec<_> = dir.components().collect();
        let at = parts.iter().rposition(|c| c.as_os_str() == "AWSLogs");
        let (root, prefix) = match at {
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
                (root, format!("{}/", prefix.join("/")))
            }
            None => (dir.to_path_buf(), String::new()),
        };
        let store = Local {
            root,
            threads: 1,
            root_fd: OnceLock::new(),
        };
        (store, prefix)
    }

    /// The file behind a key.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The store's directory, opened once.
    fn root_fd(&self) -> io::Result<BorrowedFd<'_>> {
        if let Some(fd) = self.root_fd.get() {
            return Ok(fd.as_fd());
        }
        let fd = open_dir(CWD, &self.root)?;
        Ok(self.root_fd.get_or_init(|| fd).as_fd())
    }

    /// One prefix, as [`Lister::list`] answers it.
    fn list_one(
        &self,
        prefix: &str,
        delimited: bool,
        buf: &mut [MaybeUninit<u8>],
    ) -> Result<Listing, String> {
        let mut out = Listing::default();
        // A folder (`…/`, or the root ""), or a folder and the start of names in it (an
        // hour of a day folder: `…/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHH`).
        let (folder, start) = match prefix.rfind('/') {
            Some(i) => prefix.split_at(i + 1),
            None => ("", prefix),
        };
        let rel = folder.trim_end_matches('/');
        let read = self.root_fd().and_then(|root| {
            let dir = open_dir(root, if rel.is_empty() { "." } else { rel })?;
            self.walk(dir.as_fd(), folder, start, &mut out, delimited, buf)
        });
        match read {
            // Nothing under this prefix, as S3 would say.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                Ok(Listing::default())
            }
            Err(e) => Err(format!("{}: {e}", self.root.join(rel).display())),
            Ok(()) => Ok(out),
        }
    }

    fn walk(
        &self,
        dir: BorrowedFd<'_>,
        key: &str,
        start: &str,
        out: &mut Listing,
        delimited: bool,
        buf: &mut [MaybeUninit<u8>],
    ) -> io::Result<()> {
        for (name, kind) in entries(dir, buf)? {
            if name.starts_with('.') || !name.starts_with(start) {
                continue;
            }
            let child = format!("{key}{name}");
            match (kind == FileType::Directory, delimited) {
                (true, true) => out.prefixes.push(format!("{child}/")),
                (true, false) => {
                    // A folder inside that cannot be read is an error, whatever the cause.
                    let inside = |e: io::Error| {
                        io::Error::other(format!("{}: {e}", self.root.join(&child).display()))
                    };
                    let sub = open_dir(dir, name.as_str()).map_err(inside)?;
                    self.walk(sub.as_fd(), &format!("{child}/"), "", out, false, buf)
                        .map_err(inside)?
                }
                (false, _) => out.objects.push(Object {
                    size: statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map(|s| u64::try_from(s.st_size).unwrap_or(0))
                        .unwrap_or(0),
                    key: child,
                }),
            }
        }
        Ok(())
    }
}

fn open_dir(at: impl AsFd, path: impl rustix::path::Arg) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(openat(at, path, flags, Mode::empty())?)
}

/// A folder's entries by name, each with its type. A name that is not UTF-8 (S3 keys are) is
/// kept with U+FFFD in place of what cannot be read, so it is reported as any key outside the
/// layout is, or fails to be read, rather than left out unsaid.
fn entries(
    dir: BorrowedFd<'_>,
    buf: &mut [MaybeUninit<u8>],
) -> io::Result<Vec<(String, FileType)>> {
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    let mut it = RawDir::new(dir, buf);
    while let Some(e) = it.next() {
        let e = e?;
        let name = e.file_name().to_string_lossy();
        if name == "." || name == ".." {
            continue;
        }
        if e.file_type() == FileType::Unknown {
            unknown.push(found.len());
        }
        found.push((name.into_owned(), e.file_type()));
    }
    // File systems that do not fill in the type in the entry.
    for i in unknown {
        if let Ok(s) = statat(dir, found[i].0.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            found[i].1 = FileType::from_raw_mode(s.st_mode);
        }
    }
    found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

impl Lister for Local {
    async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, String> {
        self.list_one(prefix, delimited, &mut dirent_buffer())
    }

    async fn list_all(&self, prefixes: &[String], delimited: bool) -> Vec<Result<Listing, String>> {
        let threads = self
            .threads
            .clamp(1, prefixes.len().div_ceil(SPLIT_FROM).max(1));
        let part = |chunk: &[String]| {
            let mut buf = dirent_buffer();
            chunk
                .iter()
                .map(|p| self.list_one(p, delimited, &mut buf))
                .collect::<Vec<_>>()
        };
        let builder = || std::thread::Builder::new().name("trailwatch-list".into());
        in_parts(prefixes, threads, &builder, part, |p| {
            Err(format!("{p}: the listing thread panicked"))
        })
    }
}

/// `items` in `threads` contiguous parts, each answered by `part` on a thread from
/// `builder`, the answers joined in the order of `items`. A part whose thread cannot be
/// started is answered on the calling thread (the same answers, later); a part whose thread
/// panicked answers `panicked(item)` for each of its items.
pub(super) fn in_parts<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    builder: &dyn Fn() -> std::thread::Builder,
    part: impl Fn(&[T]) -> Vec<R> + Sync,
    panicked: impl Fn(&T) -> R,
) -> Vec<R> {
    if threads <= 1 || items.len() <= 1 {
        return part(items);
    }
    let size = items.len().div_ceil(threads);
    let part = &part;
    std::thread::scope(|s| {
        let running: Vec<_> = items
            .chunks(size)
            .map(|chunk| (chunk, builder().spawn_scoped(s, move || part(chunk))))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for (chunk, thread) in running {
            match thread.map(|t| t.join()) {
                Ok(Ok(got)) => out.extend(got),
                Ok(Err(_)) => out.extend(chunk.iter().map(&panicked)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a listing thread; listing on the calling thread");
                    out.extend(part(chunk))
                }
            }
        }
        out
    })
}

fn dirent_buffer() -> Vec<MaybeUninit<u8>> {
    vec![MaybeUninit::uninit(); DIRENT_BUFFER]
}
