//! The pretrained emotion teachers (facex, fer; see `shared/DATA.md`) as an ensemble. They are
//! TFLite models: `tract-tflite` 0.23.9 cannot translate either ("Translating proto model to
//! model"), so they run in a small pinned Python step (`trainer/python/teachers.py` with
//! `ai-edge-litert`, installed by `scripts/setup` into `assets/teachers/venv`). Their outputs
//! are mapped onto the canonical labels by name and averaged.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use emoedge_models::Teacher;

/// The crop the teachers see: the runtime's aligned crop with more context than the student's
/// (the teachers were trained on looser face images; on the four labelled faces a 0.5 margin
/// did best of 0.25–1.0 for fer and the ensemble).
pub const TEACHER_CROP: emoedge_runtime::face::AlignedCrop = emoedge_runtime::face::AlignedCrop { size: 200, margin: 0.5 };

/// Each teacher's probabilities in canonical order, and their mean.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TeacherLabels {
    pub facex: [f32; 7],
    pub fer: [f32; 7],
    pub ensemble: [f32; 7],
}

pub struct Teachers {
    python: PathBuf,
    script: PathBuf,
    models: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TeacherError {
    #[error("the teachers are not set up ({0} is missing); run scripts/setup")]
    Missing(String),
    #[error("the teacher step failed: {0}")]
    Failed(String),
}

impl Teachers {
    /// The teachers that `scripts/setup` installed under `assets/`.
    pub fn from_assets(assets: &Path) -> Result<Self, TeacherError> {
        let teachers = Self {
            python: assets.join("teachers/venv/bin/python"),
            script: Path::new(env!("CARGO_MANIFEST_DIR")).join("python/teachers.py"),
            models: assets.join("teachers"),
        };
        for path in [&teachers.python, &teachers.script, &teachers.models.join("facex.tflite"), &teachers.models.join("fer.tflite")] {
            if !path.exists() {
                return Err(TeacherError::Missing(path.display().to_string()));
            }
        }
        Ok(teachers)
    }

    /// Labels each crop (any size; teachers resize as their packages do).
    pub fn label(&self, crops: &[PathBuf]) -> Result<Vec<TeacherLabels>, TeacherError> {
        let failed = |e: &dyn std::fmt::Display| TeacherError::Failed(e.to_string());
        let mut child = Command::new(&self.python)
            .arg(&self.script)
            .arg(&self.models)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(&e))?;
        let mut stdin = child.stdin.take().expect("piped");
        let input: String = crops.iter().map(|c| serde_json::json!({ "crop": c }).to_string() + "\n").collect();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let (facex, fer) = (Teacher::FaceX.mapping(), Teacher::Fer.mapping());
        let mut labels = Vec::with_capacity(crops.len());
        for line in stdout.lines() {
            let line = line.map_err(|e| failed(&e))?;
            let value: serde_json::Value = serde_json::from_str(&line).map_err(|e| failed(&e))?;
            let probs = |name: &str| -> Result<[f32; 7], TeacherError> {
                let v: Vec<f32> = serde_json::from_value(value[name].clone()).map_err(|e| failed(&e))?;
                v.try_into().map_err(|_| TeacherError::Failed(format!("{name} did not give 7 probabilities")))
            };
            let (a, b) = (facex.to_canonical_order(&probs("facex")?), fer.to_canonical_order(&probs("fer")?));
            let ensemble = std::array::from_fn(|i| (a[i] + b[i]) / 2.0);
            labels.push(TeacherLabels { facex: a, fer: b, ensemble });
        }
        let _ = writer.join();
        let output = child.wait_with_output().map_err(|e| failed(&e))?;
        if !output.status.success() || labels.len() != crops.len() {
            return Err(TeacherError::Failed(format!(
                "{} of {} crops labelled; {}",
                labels.len(),
                crops.len(),
                String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("no message")
            )));
        }
        Ok(labels)
    }
}
