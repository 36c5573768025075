//! The people seen so far: a few embeddings per person, the tracks that show them now, and when
//! they were last seen. A new track takes the id of the person it matches (cosine threshold
//! and a margin over the second-best person), or a new id; ids are never given out twice. A
//! person nobody sees for the window is forgotten, embeddings and all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use emoedge_inference::embedder::{Embedding, cosine};
use serde::{Deserialize, Serialize};

/// Embeddings kept per person: views from different moments (expressions, angles).
const KEPT_PER_PERSON: usize = 16;
/// The largest gallery file read (a foreign or runaway file is refused before parsing).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// How the gallery matches and forgets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchSettings {
    /// Smallest cosine of a new track's embedding to a person's for it to be that person.
    pub threshold: f32,
    /// How much better than the second-best person the best must match.
    pub margin: f32,
    /// How long a person nobody sees is remembered.
    pub window: Duration,
}

/// A track in some stream: (the stream's re-identifier, the track id).
pub type TrackKey = (u64, u64);

struct Person {
    embeddings: Vec<Embedding>,
    live: BTreeSet<TrackKey>,
    last_seen: Instant,
}

pub struct Gallery {
    settings: MatchSettings,
    persons: BTreeMap<u64, Person>,
    next_id: u64,
    /// Kept across runs here (opt-in); without it nothing outlives the process.
    file: Option<PathBuf>,
    /// The embedder the embeddings come from (a file from another embedder is refused).
    embedder: String,
}

/// What a gallery file holds. Embeddings are identifying: the file is written 0600.
#[derive(Serialize, Deserialize)]
struct GalleryFile {
    format: String,
    embedder: String,
    next_id: u64,
    persons: Vec<StoredPerson>,
}

#[derive(Serialize, Deserialize)]
struct StoredPerson {
    id: u64,
    embeddings: Vec<Embedding>,
}

const FORMAT: &str = "emoedge-gallery-1";

#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error("cannot read the gallery {path}: {message}; check the path, or delete it with `emoedge forget {path}`")]
    Read { path: String, message: String },
    #[error(
        "{path} is not a usable emoedge gallery: {problem}; point --gallery at a file emoedge wrote, or delete it with `emoedge forget {path}`"
    )]
    Invalid { path: String, problem: String },
    #[error("{path} is not an emoedge gallery ({problem}); nothing was deleted")]
    NotAGallery { path: String, problem: String },
    #[error("cannot write the gallery {path}: {message}; check that its folder exists and is writable")]
    Write { path: String, message: String },
}

impl Gallery {
    /// An empty gallery in memory, for embeddings of `embedder`.
    pub fn new(settings: MatchSettings, embedder: &str) -> Self {
        Self { settings, persons: BTreeMap::new(), next_id: 1, file: None, embedder: embedder.to_string() }
    }

    /// The gallery kept in `file` (created on the first save when it does not exist yet).
    pub fn open(settings: MatchSettings, embedder: &str, file: &Path, size: usize) -> Result<Self, GalleryError> {
        let mut gallery = Self { file: Some(file.to_path_buf()), ..Self::new(settings, embedder) };
        let Some((stored, _)) = read_stored(file)? else { return Ok(gallery) };
        let invalid = |problem: String| GalleryError::Invalid { path: file.display().to_string(), problem };
        if stored.embedder != embedder {
            let from = &stored.embedder;
            return Err(invalid(format!("its embeddings come from {from:?}; this run's embedder is {embedder:?}")));
        }
        let now = Instant::now();
        for person in stored.persons {
            let bad = person.embeddings.iter().any(|e| e.len() != size || e.iter().any(|v| !v.is_finite()));
            if person.id == 0 || person.id >= stored.next_id || bad || person.embeddings.len() > KEPT_PER_PERSON {
                return Err(invalid(format!("person {} is damaged", person.id)));
            }
            let entry = Person { embeddings: person.embeddings, live: BTreeSet::new(), last_seen: now };
            if gallery.persons.insert(person.id, entry).is_some() {
                return Err(invalid(format!("person {} appears twice", person.id)));
            }
        }
        gallery.next_id = stored.next_id;
        Ok(gallery)
    }

    /// Writes the gallery to its file (0600, atomically); nothing without one.
    pub fn save(&self) -> Result<(), GalleryError> {
        let Some(file) = &self.file else { return Ok(()) };
        let persons = self.persons.iter().map(|(&id, p)| StoredPerson { id, embeddings: p.embeddings.clone() });
        let stored = GalleryFile {
            format: FORMAT.into(),
            embedder: self.embedder.clone(),
            next_id: self.next_id,
            persons: persons.collect(),
        };
        let write = |message: String| GalleryError::Write { path: file.display().to_string(), message };
        let text = serde_json::to_vec(&stored).map_err(|e| write(e.to_string()))?;
        let mut out = emoedge_support::AtomicFile::private(file).map_err(|e| write(e.to_string()))?;
        std::io::Write::write_all(out.file(), &text).map_err(|e| write(e.to_string()))?;
        out.commit().map_err(|e| write(e.to_string()))
    }

    /// The person `embedding` shows, for the new track `track`: the best-matching person not
    /// in `busy` (people on screen beside it), or a new id.
    pub fn identify(&mut self, embedding: Embedding, track: TrackKey, busy: &[u64], now: Instant) -> u64 {
        let mut scores: Vec<(f32, u64)> = self
            .persons
            .iter()
            .filter(|(id, _)| !busy.contains(id))
            .map(|(&id, p)| (p.embeddings.iter().map(|e| cosine(e, &embedding)).fold(f32::MIN, f32::max), id))
            .collect();
        scores.sort_by(|a, b| b.0.total_cmp(&a.0));
        let second = scores.get(1).map_or(f32::MIN, |s| s.0);
        let id = match scores.first() {
            Some(&(best, id)) if best >= self.settings.threshold && best - second >= self.settings.margin => id,
            _ => {
                let id = self.next_id;
                self.next_id += 1;
                self.persons.insert(id, Person { embeddings: Vec::new(), live: BTreeSet::new(), last_seen: now });
                id
            }
        };
        self.learn(id, embedding);
        if let Some(person) = self.persons.get_mut(&id) {
            person.live.insert(track);
            person.last_seen = now;
        }
        id
    }

    /// Keeps `embedding` as another view of `person`; when full, it replaces the stored view
    /// most like it, so the views stay different.
    pub fn learn(&mut self, person: u64, embedding: Embedding) {
        let Some(p) = self.persons.get_mut(&person) else { return };
        if p.embeddings.len() < KEPT_PER_PERSON {
            p.embeddings.push(embedding);
        } else if let Some(closest) = (0..p.embeddings.len())
            .max_by(|&a, &b| cosine(&p.embeddings[a], &embedding).total_cmp(&cosine(&p.embeddings[b], &embedding)))
        {
            p.embeddings[closest] = embedding;
        }
    }

    /// `person` is on screen at `now`.
    pub fn seen(&mut self, person: u64, now: Instant) {
        if let Some(p) = self.persons.get_mut(&person) {
            p.last_seen = now;
        }
    }

    /// `track` ended; its person may now match a new track again.
    pub fn end_track(&mut self, person: u64, track: TrackKey, now: Instant) {
        if let Some(p) = self.persons.get_mut(&person) {
            p.live.remove(&track);
            p.last_seen = now;
        }
    }

    /// Forgets the people nobody has seen for the window (a gallery kept in a file keeps them).
    pub fn expire(&mut self, now: Instant) {
        if self.file.is_none() {
            let window = self.settings.window;
            self.persons.retain(|_, p| !p.live.is_empty() || now.saturating_duration_since(p.last_seen) < window);
        }
    }

    /// Deletes the gallery file `file` after checking that it is one and overwriting its
    /// bytes; returns how many people it held.
    pub fn forget(file: &Path) -> Result<usize, GalleryError> {
        use std::io::Write;
        let shown = file.display().to_string();
        let untouched = |e: GalleryError| match e {
            GalleryError::Invalid { path, problem } => GalleryError::NotAGallery { path, problem },
            other => other,
        };
        let (stored, bytes) = read_stored(file)
            .map_err(untouched)?
            .ok_or_else(|| GalleryError::Read { path: shown.clone(), message: "it does not exist".into() })?;
        let write = |e: std::io::Error| GalleryError::Write { path: shown.clone(), message: e.to_string() };
        let mut out = std::fs::OpenOptions::new().write(true).open(file).map_err(write)?;
        out.write_all(&vec![0; bytes]).and_then(|()| out.sync_all()).map_err(write)?;
        std::fs::remove_file(file).map_err(write)?;
        Ok(stored.persons.len())
    }

    /// The ids remembered now.
    pub fn persons(&self) -> Vec<u64> {
        self.persons.keys().copied().collect()
    }
}

/// The gallery file `file` and its size, checked to be one — a regular file (not a link) of at
/// most `MAX_FILE_BYTES` in the gallery format — before it is trusted or deleted; `None` when it
/// does not exist.
fn read_stored(file: &Path) -> Result<Option<(GalleryFile, usize)>, GalleryError> {
    let shown = file.display().to_string();
    let read = |message: String| GalleryError::Read { path: shown.clone(), message };
    let invalid = |problem: String| GalleryError::Invalid { path: shown.clone(), problem };
    let meta = match std::fs::symlink_metadata(file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read(e.to_string())),
    };
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return Err(invalid(format!("not a regular file of at most {MAX_FILE_BYTES} bytes")));
    }
    let bytes = std::fs::read(file).map_err(|e| read(e.to_string()))?;
    let stored: GalleryFile = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if stored.format != FORMAT {
        return Err(invalid(format!("format {:?}, not {FORMAT}", stored.format)));
    }
    Ok(Some((stored, bytes.len())))
}
