//! People, not tracks (issue 24): each track gets an identity embedding from its good frames
//! ([`quality`]), at most one per track per `interval` of stream time, and a person id from the
//! [`gallery`] that the streams of a process share by name. Embeddings stay in memory: they are
//! in no result, message, log or file unless the user names a gallery file.

pub mod gallery;
pub mod quality;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use emoedge_inference::bundle::BundleError;
use emoedge_inference::embedder::FaceEmbedder;
use emoedge_inference::model::Precision;
use emoedge_inference::onnx::{OnnxError, PlacementProfile, SessionOptions};
use emoedge_support::sync::{WeakRegistry, lock};

use crate::capture::CapturedFace;
use crate::face::identity_crop;
use crate::video::Frame;
pub use gallery::{Gallery, GalleryError, MatchSettings};
use quality::{FaceQuality, QualityGate};

/// The default cosine threshold, from the pair measurements in the README (`reid_pairs`).
pub const DEFAULT_THRESHOLD: f32 = 0.925;
/// The default margin over the second-best person.
pub const DEFAULT_MARGIN: f32 = 0.01;
/// The default window (`reid-window`, `--reid-window`): 10 minutes.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);
/// Stream time between two embeddings of one identified track.
const INTERVAL_NS: u64 = 1_000_000_000;
/// Frame duration assumed for streams without timestamps.
const FALLBACK_FRAME_NS: u64 = 40_000_000;

/// Re-identification as the element's properties and `emoedge run`'s flags set it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReidSettings {
    /// Off by default: opening the embedder and its calls made the default run of the sample
    /// video 17–20% slower (README, speed table) — over the 10% a default may cost.
    pub enabled: bool,
    pub matching: MatchSettings,
    /// Keep the gallery in this file across runs (opt-in, 0600).
    pub gallery_file: Option<PathBuf>,
}

impl Default for ReidSettings {
    fn default() -> Self {
        let matching = MatchSettings { threshold: DEFAULT_THRESHOLD, margin: DEFAULT_MARGIN, window: DEFAULT_WINDOW };
        Self { enabled: false, matching, gallery_file: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReidError {
    #[error(transparent)]
    Embedder(#[from] BundleError),
    #[error(transparent)]
    Gallery(#[from] GalleryError),
}

type Shared<T> = Arc<Mutex<T>>;

/// The embedders and galleries of this process, by folder and by gallery (file or window): the
/// streams of one `emoedge run` share both, so a person keeps the id from camera to camera.
static EMBEDDERS: WeakRegistry<(PathBuf, SessionOptions), Mutex<FaceEmbedder>> = WeakRegistry::new();
static GALLERIES: WeakRegistry<String, Mutex<Gallery>> = WeakRegistry::new();
static STREAMS: AtomicU64 = AtomicU64::new(1);

fn shared_embedder(dir: &Path, session: &SessionOptions) -> Result<Shared<FaceEmbedder>, ReidError> {
    EMBEDDERS.get_or_open((dir.to_path_buf(), session.clone()), || {
        Ok(Mutex::new(FaceEmbedder::open(dir, Precision::Auto, session)?))
    })
}

fn shared_gallery(settings: &ReidSettings, embedder: &str, size: usize) -> Result<Shared<Gallery>, ReidError> {
    let m = settings.matching;
    let key = match &settings.gallery_file {
        Some(file) => format!("file:{}", file.display()),
        None => format!("memory:{}:{}:{:?}:{embedder}", m.threshold, m.margin, m.window),
    };
    GALLERIES.get_or_open(key, || match &settings.gallery_file {
        Some(file) => Ok(Mutex::new(Gallery::open(m, embedder, file, size)?)),
        None => Ok(Mutex::new(Gallery::new(m, embedder))),
    })
}

/// Per-track identity state.
#[derive(Default)]
struct TrackIdentity {
    person: Option<u64>,
    /// Stream time of its last embedding.
    embedded_ns: Option<u64>,
}

/// One stream's re-identification.
pub struct Reidentifier {
    embedder: Shared<FaceEmbedder>,
    gallery: Shared<Gallery>,
    stream: u64,
    tracks: HashMap<u64, TrackIdentity>,
    gate: QualityGate,
    /// The embedder's crop: side in pixels and landmark template.
    side: u32,
    template: [[f32; 2]; 5],
    embeddings: u64,
    busy: Duration,
}

impl Reidentifier {
    /// Opens (or joins) the embedder in `embedder_dir` and the gallery `settings` name.
    pub fn open(embedder_dir: &Path, settings: &ReidSettings, session: &SessionOptions) -> Result<Self, ReidError> {
        let dir = embedder_dir.canonicalize().unwrap_or_else(|_| embedder_dir.to_path_buf());
        let session = SessionOptions { placement_profile: PlacementProfile::Never, ..session.clone() };
        let embedder = shared_embedder(&dir, &session)?;
        let (source, size, side, template) = {
            let e = lock(&embedder);
            (e.manifest.source.clone(), e.manifest.size, e.side() as u32, e.template())
        };
        let gallery = shared_gallery(settings, &source, size)?;
        Ok(Self {
            embedder,
            gallery,
            stream: STREAMS.fetch_add(1, Ordering::Relaxed),
            tracks: HashMap::new(),
            gate: QualityGate::default(),
            side,
            template,
            embeddings: 0,
            busy: Duration::ZERO,
        })
    }

    /// Embeddings computed so far and the time spent in the embedder.
    pub fn cost(&self) -> (u64, Duration) {
        (self.embeddings, self.busy)
    }

    /// The person of each face of `frame` (`None` until its track had a good frame); `live`
    /// are the tracks the tracker still follows (the others ended).
    pub fn observe(
        &mut self,
        frame: &Frame,
        faces: &[CapturedFace],
        live: &[u64],
    ) -> Result<Vec<Option<u64>>, OnnxError> {
        let now = Instant::now();
        let time_ns = frame.pts_ns.unwrap_or(frame.index * FALLBACK_FRAME_NS);
        let (pixels, wanted) = self.wanted(frame, faces, time_ns);
        let embeddings = if wanted.is_empty() {
            Vec::new()
        } else {
            let start = Instant::now();
            let mut embedder = lock(&self.embedder);
            let out = embedder.embed(&pixels, wanted.len())?;
            self.busy += start.elapsed();
            self.embeddings += wanted.len() as u64;
            out
        };
        let mut gallery = lock(&self.gallery);
        for (i, embedding) in wanted.into_iter().zip(embeddings) {
            let track = faces[i].track;
            let busy: Vec<u64> =
                faces.iter().filter(|f| f.track != track).filter_map(|f| self.tracks.get(&f.track)?.person).collect();
            let state = self.tracks.entry(track).or_default();
            state.embedded_ns = Some(time_ns);
            match state.person {
                Some(person) => gallery.learn(person, embedding),
                None => state.person = Some(gallery.identify(embedding, (self.stream, track), &busy, now)),
            }
        }
        let persons: Vec<Option<u64>> =
            faces.iter().map(|f| self.tracks.get(&f.track).and_then(|t| t.person)).collect();
        persons.iter().flatten().for_each(|&p| gallery.seen(p, now));
        let ended: Vec<u64> = self.tracks.keys().copied().filter(|t| !live.contains(t)).collect();
        for track in ended {
            if let Some(person) = self.tracks.remove(&track).and_then(|t| t.person) {
                gallery.end_track(person, (self.stream, track), now);
            }
        }
        gallery.expire(now);
        Ok(persons)
    }

    /// The identity crops (interleaved pixels) of the faces that need an embedding now, and
    /// their indices: good faces of tracks without a person, or whose last embedding is older
    /// than the interval.
    fn wanted(&self, frame: &Frame, faces: &[CapturedFace], time_ns: u64) -> (Vec<f32>, Vec<usize>) {
        let (mut pixels, mut wanted) = (Vec::new(), Vec::new());
        for (i, face) in faces.iter().enumerate() {
            let due = self.tracks.get(&face.track).is_none_or(|t| {
                t.person.is_none() || t.embedded_ns.is_none_or(|at| time_ns.saturating_sub(at) >= INTERVAL_NS)
            });
            if !due || !self.gate.frames(&face.face) {
                continue;
            }
            let crop = identity_crop(&frame.image, &face.face, &self.template, self.side);
            if FaceQuality::of(&face.face, &crop).passes(&self.gate) {
                pixels.extend(crop.as_raw().iter().map(|&p| p as f32));
                wanted.push(i);
            }
        }
        (pixels, wanted)
    }

    /// Ends this stream's tracks and saves a gallery kept in a file.
    pub fn finish(&mut self) -> Result<(), GalleryError> {
        let now = Instant::now();
        let mut gallery = lock(&self.gallery);
        for (track, state) in self.tracks.drain() {
            if let Some(person) = state.person {
                gallery.end_track(person, (self.stream, track), now);
            }
        }
        gallery.save()
    }
}
