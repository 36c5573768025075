//! `emoedge-train predict`: a finished run's emotion for each face of some images — the same
//! face capture as inference, one still crop repeated over the clip, the gated route.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use emoedge_models::EMOTIONS;
use emoedge_models::reference::Routing;
use emoedge_vision::capture::FaceCapture;
use emoedge_vision::video::VideoSource;

use crate::data::{Example, Split, Target};
use crate::run::load_model;
use crate::train::{Item, Task, evaluate};

pub struct Prediction {
    pub image: PathBuf,
    pub face: usize,
    pub label: &'static str,
}

pub fn predict(run: &Path, images: &[PathBuf], capture: &mut FaceCapture) -> anyhow::Result<Vec<Prediction>> {
    let (config, model) = load_model(Some(run), None, 0)?;
    let mut examples = Vec::new();
    let mut origin = Vec::new();
    for image in images {
        let mut source = VideoSource::open(&image.display().to_string())?;
        let frame = source.next_frame()?.ok_or_else(|| anyhow::anyhow!("{} has no frame", image.display()))?;
        for (face, captured) in capture.process(&frame)?.into_iter().enumerate() {
            examples.push(Example {
                frames: vec![Arc::new(captured.crop)],
                target: Target::Hard(0),
                split: Split::Test,
                source: image.display().to_string(),
            });
            origin.push((image.clone(), face));
        }
    }
    let items: Vec<Item> = examples.iter().map(|example| Item { task: Task::Emotion, example }).collect();
    let report = evaluate(&model, &config, &items, Routing::Gated, config.general_classes);
    Ok(origin
        .into_iter()
        .zip(report.predicted)
        .map(|((image, face), class)| Prediction { image, face, label: EMOTIONS[class] })
        .collect())
}
