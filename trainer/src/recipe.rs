//! A data recipe: the sources a model is trained on and the named evaluation sets it is scored
//! on, split by person and footage. `trainer/recipes/default.json` is the default model's; the
//! data step, the evaluation and the leakage test all read it, so they cannot disagree.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(default)]
    pub about: String,
    /// Training sources (videos, stills, `lfw_subset.npy`), relative to the assets folder.
    pub train: Vec<PathBuf>,
    /// Validation sources: people disjoint from `train`, watched while training.
    #[serde(default)]
    pub val: Vec<PathBuf>,
    pub eval: Vec<EvalSet>,
}

/// A labelled evaluation set of people never trained on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSet {
    pub name: String,
    pub about: String,
    /// Distinct people in the set.
    pub people: usize,
    /// Stills and their true emotion.
    #[serde(default)]
    pub images: Vec<(PathBuf, String)>,
    /// A video whose `segments` (start s, end s or open, emotion) are labelled.
    pub video: Option<PathBuf>,
    #[serde(default)]
    pub segments: Vec<(f64, Option<f64>, String)>,
}

impl EvalSet {
    /// The label of a video frame at `seconds`, if a segment covers it.
    pub fn label_at(&self, seconds: f64) -> Option<&str> {
        self.segments
            .iter()
            .find(|(start, end, _)| seconds >= *start && end.is_none_or(|end| seconds < end))
            .map(|(_, _, label)| label.as_str())
    }
}

impl Recipe {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read recipe {}: {e}", path.display()))?;
        let recipe: Self =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("recipe {} is not valid: {e}", path.display()))?;
        for set in &recipe.eval {
            for label in set.images.iter().map(|(_, l)| l).chain(set.segments.iter().map(|(_, _, l)| l)) {
                emoedge_models::labels::canonical_index(label)
                    .map_err(|e| anyhow::anyhow!("recipe {}: set `{}`: {e}", path.display(), set.name))?;
            }
            anyhow::ensure!(
                set.video.is_some() != set.segments.is_empty(),
                "recipe {}: set `{}` needs `segments` exactly when it has a `video`",
                path.display(),
                set.name
            );
        }
        Ok(recipe)
    }

    /// The default model's recipe, committed with the trainer.
    pub fn default_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/default.json")
    }
}
