//! `results.jsonl`, written whole or not at all: lines go to a temp file beside it that becomes
//! `results.jsonl` only when the run commits it; an earlier file stays as it was until then.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use emoedge_publish::ResultLine;
use emoedge_support::AtomicFile;

/// Bytes gathered before they are written out.
const BUFFER: usize = 64 * 1024;

pub struct ResultsFile {
    /// None once committed.
    file: Option<AtomicFile>,
    path: PathBuf,
    buffer: Vec<u8>,
    /// A write failed: the results cannot all be written, so none are.
    failed: bool,
}

impl ResultsFile {
    pub fn create(out: &Path) -> anyhow::Result<Self> {
        let path = out.join("results.jsonl");
        let file = AtomicFile::create(&path).with_context(|| format!("cannot write in {}", out.display()))?;
        Ok(Self { file: Some(file), path, buffer: Vec::with_capacity(BUFFER), failed: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a write failed (the run then ends without committing).
    pub fn failed(&self) -> bool {
        self.failed
    }

    pub fn write(&mut self, line: &ResultLine) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.buffer, line).map_err(std::io::Error::from).map_err(|e| self.error(e))?;
        self.buffer.push(b'\n');
        if self.buffer.len() >= BUFFER { self.flush() } else { Ok(()) }
    }

    pub fn flush(&mut self) -> anyhow::Result<()> {
        let written = match self.file.as_mut() {
            Some(file) => file.file().write_all(&self.buffer),
            None => Err(std::io::Error::other("it was already complete")),
        };
        self.buffer.clear();
        written.map_err(|e| self.error(e))
    }

    /// Writes what is left and moves the file into place; later writes fail.
    pub fn commit(&mut self) -> anyhow::Result<()> {
        self.flush()?;
        let file = self.file.take().context("results.jsonl was already complete")?;
        file.commit().with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn error(&mut self, e: std::io::Error) -> anyhow::Error {
        self.failed = true;
        anyhow::anyhow!(
            "cannot write {}: {e}; free space there or choose another --out (an earlier results.jsonl there is left as it was)",
            self.path.display()
        )
    }
}
