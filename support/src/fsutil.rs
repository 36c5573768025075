//! Writing files and folders so that readers see either the old content or the whole new one:
//! everything is written under a unique temp name beside its target (`tempfile`), then renamed
//! into place. The one way emoedge publishes a file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder a new `path` goes into (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `path`'s folder, created if missing; an error naming it if something else is in the way.
fn folder_for(path: &Path) -> std::io::Result<&Path> {
    let parent = parent_of(path);
    if parent.exists() && !parent.is_dir() {
        return Err(std::io::Error::other(format!("{} is not a folder", parent.display())));
    }
    std::fs::create_dir_all(parent)?;
    Ok(parent)
}

/// `mode` as creation permissions: what the results become is readable as any file the user
/// writes (the umask applies), not owner-only as temp files are by default.
fn everyone(mode: u32) -> std::fs::Permissions {
    std::os::unix::fs::PermissionsExt::from_mode(mode)
}

/// A file being written: a unique temp file beside `target` that becomes `target` only on
/// [`commit`](Self::commit). Dropped uncommitted, it is removed and `target` is untouched.
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    /// Starts writing `target`. The temp name keeps `target`'s extension, for writers that pick
    /// a format by it (plotters, GStreamer sinks).
    pub fn create(target: &Path) -> std::io::Result<Self> {
        Self::with_mode(target, 0o666)
    }

    /// Starts writing `target` readable by its owner only (0600 whatever the umask): files that
    /// hold what identifies people.
    pub fn private(target: &Path) -> std::io::Result<Self> {
        Self::with_mode(target, 0o600)
    }

    fn with_mode(target: &Path, mode: u32) -> std::io::Result<Self> {
        let stem = target.file_stem().map_or("file".into(), |s| s.to_string_lossy().into_owned());
        let suffix = target.extension().map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{stem}."))
            .suffix(&format!(".partial{suffix}"))
            .permissions(everyone(mode))
            .tempfile_in(folder_for(target)?)?;
        Ok(Self { temp, target: target.to_path_buf() })
    }

    /// Where the content goes until it is committed (for writers that open paths themselves).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Syncs the content to disk and renames it over the target.
    pub fn commit(self) -> std::io::Result<()> {
        self.temp.as_file().sync_all()?;
        self.temp.persist(&self.target).map(drop).map_err(|e| e.error)
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.file().write_all(bytes)?;
    file.commit()
}

/// A folder being written: a unique temp folder beside `target` that replaces `target` as a
/// whole on [`commit`](Self::commit); dropped uncommitted, it is removed.
pub struct AtomicDir {
    temp: tempfile::TempDir,
    target: PathBuf,
}

impl AtomicDir {
    pub fn create(target: &Path) -> std::io::Result<Self> {
        let parent = folder_for(target)?;
        let name = target.file_name().map_or("dir".into(), |s| s.to_string_lossy().into_owned());
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial"))
            .permissions(everyone(0o777))
            .tempdir_in(parent)?;
        Ok(Self { temp, target: target.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Moves the old target aside, the new folder into place, then deletes the old one. A
    /// crash in between leaves the new folder complete under its temp name, never a mix.
    pub fn commit(self) -> std::io::Result<()> {
        let staged = self.temp.keep();
        let aside = self.target.exists().then(|| staged.with_extension("old"));
        if let Some(aside) = &aside {
            std::fs::rename(&self.target, aside)?;
        }
        std::fs::rename(&staged, &self.target)?;
        if let Some(aside) = aside {
            let _ = std::fs::remove_dir_all(aside);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_folder_is_refused_when_another_user_owns_it() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        // As root, the folder is handed to `nobody`; otherwise "/" is root's, not ours.
        let theirs = if effective_uid() == 0 {
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            theirs
        } else {
            PathBuf::from("/")
        };
        let e = private_dir(&theirs).unwrap_err().to_string();
        assert!(e.contains("not a folder of this user's") && e.contains("choose a folder of your own"), "{e}");
        let mine = dir.path().join("a/b");
        private_dir(&mine).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&mine).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn an_uncommitted_file_leaves_the_target_untouched_and_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.json");
        std::fs::write(&target, "old").unwrap();
        let mut file = AtomicFile::create(&target).unwrap();
        file.file().write_all(b"new").unwrap();
        assert!(file.temp_path().to_string_lossy().ends_with(".json"));
        drop(file);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
    }

    /// The process's umask (Linux reports it in /proc).
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).unwrap()
    }

    #[test]
    fn committed_files_and_folders_get_the_users_usual_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("results.jsonl");
        write_atomic(&file, b"{}").unwrap();
        let folder = dir.path().join("bundle");
        AtomicDir::create(&folder).unwrap().commit().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // Temp files are owner-only by default (0600): results would be unreadable to others.
        assert_eq!(mode(&file), 0o666 & !umask());
        assert_eq!(mode(&folder), 0o777 & !umask());
    }

    #[test]
    fn a_committed_folder_replaces_the_old_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("bundle");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("stale.onnx"), "x").unwrap();
        let staged = AtomicDir::create(&target).unwrap();
        std::fs::write(staged.path().join("manifest.json"), "{}").unwrap();
        staged.commit().unwrap();
        let names: Vec<_> = std::fs::read_dir(&target).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec!["manifest.json"]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing left beside it");
    }

    #[test]
    fn a_lock_removes_what_killed_runs_left_half_written_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        // What AtomicFile and AtomicDir leave when their process is killed, next to results.
        let orphan_file = AtomicFile::create(&dir.path().join("results.jsonl")).unwrap().temp_path().to_path_buf();
        let orphan_dir = dir.path().join(".crops.partialXYZ");
        std::fs::write(&orphan_file, "half").unwrap();
        std::fs::create_dir(&orphan_dir).unwrap();
        std::fs::write(orphan_dir.join("0.png"), "x").unwrap();
        for kept in ["results.jsonl", ".hidden-notes", "a.partial.txt"] {
            std::fs::write(dir.path().join(kept), "kept").unwrap();
        }
        let _lock = FolderLock::acquire(dir.path()).unwrap();
        let mut names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, [FolderLock::FILE, ".hidden-notes", "a.partial.txt", "results.jsonl"]);
    }
}

/// The user this process acts as.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates `folder` (and missing parents) as private to this user (0700), or checks an existing
/// one: it must be a real folder (not a link) owned by this user, and loses any group or other
/// permissions. What it holds (spooled results) is nobody else's to read or plant.
pub fn private_dir(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(folder)?;
    let meta = std::fs::symlink_metadata(folder)?;
    let me = effective_uid();
    if !meta.is_dir() || meta.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a folder of this user's (owner uid {}, this user {me}{}); choose a folder of your own",
                folder.display(),
                meta.uid(),
                if meta.is_dir() { "" } else { ", and not a plain folder" }
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// An exclusive advisory lock on an output folder for as long as it lives: two runs writing the
/// same folder would interleave their results. The lock file stays (an empty marker); the lock
/// itself is the kernel's and ends with the process, so a killed run never leaves it held.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

/// Removes the `.<name>.….partial…` temp entries in `folder`.
fn remove_orphans(folder: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(folder)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with('.') && name.contains(".partial")) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

impl FolderLock {
    /// The name of the lock file inside a locked folder.
    pub const FILE: &'static str = ".emoedge.lock";

    /// Creates `folder` if needed and locks it; an error naming the folder and the fix when
    /// another process holds it. Holding the lock, it removes what a killed run left
    /// half-written there ([`AtomicFile`] and [`AtomicDir`] temp entries: only a lock holder
    /// writes them, so none belongs to a live run).
    pub fn acquire(folder: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(folder)?;
        let path = folder.join(Self::FILE);
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        match file.try_lock() {
            Ok(()) => {
                remove_orphans(folder)?;
                Ok(Self { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::other(format!(
                "another emoedge run is writing to {} (it holds {}); wait for it or choose another output folder",
                folder.display(),
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
