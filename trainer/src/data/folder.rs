//! Folder-per-class images: `ROOT/<class>/*.png|jpg`, or with splits
//! `ROOT/{train,val,test}/<class>/*`. For the emotion task the class folder names must be
//! emotion names (synonyms accepted: `anger`, `sadness`, …).

use std::path::Path;
use std::sync::Arc;

use emoedge_models::labels::canonical_index;

use super::{DataError, Example, Split, Target, io_error, load_crop};

/// How class folder names become class indices.
pub enum ClassNames<'a> {
    /// Canonical emotion labels, by name.
    Emotions,
    /// A fixed list (the general task's labels), by exact name.
    Fixed(&'a [String]),
}

pub fn read_folder(root: &Path, size: u32, classes: ClassNames) -> Result<Vec<Example>, DataError> {
    let splits: Vec<(Split, std::path::PathBuf)> = ["train", "val", "test"]
        .iter()
        .filter_map(|name| Some((Split::parse(name)?, root.join(name))))
        .filter(|(_, dir)| dir.is_dir())
        .collect();
    let splits = if splits.is_empty() { vec![(Split::Train, root.to_path_buf())] } else { splits };
    let mut examples = Vec::new();
    for (split, dir) in splits {
        let mut class_dirs: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io_error(&dir))?
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .collect();
        class_dirs.sort_by_key(|e| e.file_name());
        for class_dir in class_dirs {
            let name = class_dir.file_name().to_string_lossy().into_owned();
            let class = match &classes {
                ClassNames::Emotions => canonical_index(&name).map_err(|e| DataError::Layout {
                    path: class_dir.path().display().to_string(),
                    problem: format!("{e}; name each class folder after its emotion"),
                })?,
                ClassNames::Fixed(list) => list.iter().position(|c| c == &name).ok_or_else(|| DataError::Layout {
                    path: class_dir.path().display().to_string(),
                    problem: format!("class `{name}` is not one of {list:?}"),
                })?,
            };
            let mut files: Vec<_> = std::fs::read_dir(class_dir.path())
                .map_err(io_error(&class_dir.path()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for file in files {
                let crop = load_crop(&file, size)?;
                examples.push(Example {
                    frames: vec![Arc::new(crop)],
                    target: Target::Hard(class),
                    split,
                    source: file.display().to_string(),
                });
            }
        }
    }
    if examples.is_empty() {
        return Err(DataError::Layout {
            path: root.display().to_string(),
            problem: "no images found; expected ROOT/<class>/<image> or ROOT/train/<class>/<image>".into(),
        });
    }
    Ok(examples)
}
