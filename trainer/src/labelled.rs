//! A user's own labelled faces, for `eval --images`: a folder per class of photos (faces found
//! and cut by the runtime's detector and crop), of ready face crops (`--faces crops`), a
//! FER2013-style CSV, or a clip manifest. A photo in which no face is found is listed, not
//! fatal; a photo with several faces gives its largest (the subject a label describes).
//!
//! Folder layout: `DIR/<class>/<photo>` or `DIR/<class>/<person>/<photo>`. Class folder names
//! are emotion names (synonyms accepted) or mapped with `--labels name=emotion,…`. Each face
//! belongs to a *person*: its person folder, its file-name prefix (`--split-by prefix`:
//! `anna_03.jpg` → `anna`), or, when neither is known, its own photo — the unit the bootstrap
//! interval resamples and, for fine-tuning, the unit a held-out part is drawn by.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use emoedge_inference::onnx::SessionOptions;
use emoedge_models::labels::canonical_index;
use emoedge_vision::face::{AlignedCrop, DetectorOptions, FaceDetector, aligned_crop};

use crate::data::fer_csv::read_fer_csv;
use crate::data::manifest::read_manifest;
use crate::data::{Example, Split, Target, fit, load_crop};
use crate::run::manifest_videos;

/// How a folder's images hold their faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Faces {
    /// Photos: the face detector finds the face and the runtime's crop cuts it.
    #[default]
    Detect,
    /// Face crops already (FER-style 48×48 greys, other tools' crops): used as they are.
    Crops,
}

/// Where a face's person is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitBy {
    /// `DIR/<class>/<person>/<photo>`.
    Subfolder,
    /// The file name up to its first `_` or `-`: `anna_03.jpg` → `anna`.
    Prefix,
}

/// Class folder names → canonical emotion names, from `--labels glad=happy,calm=neutral`.
#[derive(Debug, Clone, Default)]
pub struct LabelNames(BTreeMap<String, String>);

impl std::str::FromStr for LabelNames {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut names = BTreeMap::new();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (from, to) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not NAME=EMOTION (e.g. --labels glad=happy,calm=neutral)"))?;
            canonical_index(to.trim()).map_err(|e| format!("--labels {pair}: {e}"))?;
            names.insert(from.trim().to_string(), to.trim().to_string());
        }
        Ok(Self(names))
    }
}

impl LabelNames {
    fn class(&self, folder: &str) -> Result<usize, String> {
        let name = self.0.get(folder).map_or(folder, String::as_str);
        canonical_index(name).map_err(|e| {
            format!("{e}; name each class folder after its emotion, or map it with --labels {folder}=EMOTION")
        })
    }
}

/// What `--images` reads, and how.
pub struct LabelledOptions {
    pub faces: Faces,
    pub labels: LabelNames,
    pub split_by: Option<SplitBy>,
    /// The face detector's folder (photos and manifest video lines need it).
    pub detector_dir: Option<PathBuf>,
    /// The model's crop side.
    pub size: u32,
}

/// The faces read from a user's labelled set.
#[derive(Default)]
pub struct LabelledFaces {
    /// One example per face (a still repeated, as the runtime first sees a face), hard labels.
    pub examples: Vec<Example>,
    /// Per example, its person (see the module's documentation).
    pub people: Vec<String>,
    /// Inputs that gave no face, each with why.
    pub not_found: Vec<String>,
    /// Photos with more than one face (their largest was taken).
    pub several_faces: Vec<String>,
}

/// Reads `input` — a folder per class, a `.csv` (FER2013-style) or a clip manifest.
pub fn read_labelled(input: &Path, options: &LabelledOptions) -> anyhow::Result<LabelledFaces> {
    if input.is_dir() {
        return read_folder_faces(input, options);
    }
    anyhow::ensure!(
        input.is_file(),
        "{} does not exist: give a folder per class, a FER2013-style .csv or a clip manifest (.jsonl)",
        input.display()
    );
    let examples = if input.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        read_fer_csv(input, options.size)?
    } else {
        read_manifest(input, options.size, &mut manifest_videos(options.detector_dir.clone()))?
    };
    // A CSV row or a manifest line is all that is known of its person.
    let people = examples.iter().map(|e| e.source.clone()).collect();
    Ok(LabelledFaces { examples, people, ..Default::default() })
}

/// One labelled file of a folder per class.
struct LabelledFile {
    path: PathBuf,
    class: usize,
    person: String,
}

fn read_folder_faces(root: &Path, options: &LabelledOptions) -> anyhow::Result<LabelledFaces> {
    let files = list_files(root, &options.labels, options.split_by)?;
    anyhow::ensure!(
        !files.is_empty(),
        "{}: no images found; expected DIR/<emotion>/<photo> or DIR/<emotion>/<person>/<photo>",
        root.display()
    );
    let mut detector = match options.faces {
        Faces::Crops => None,
        Faces::Detect => {
            let dir = options.detector_dir.as_deref().ok_or_else(|| {
                anyhow::anyhow!(
                    "finding faces in photos needs the face detector: run scripts/setup, or pass --assets DIR"
                )
            })?;
            Some(FaceDetector::load(dir, &SessionOptions::offline(), DetectorOptions::default())?)
        }
    };
    let mut faces = LabelledFaces::default();
    let bar = crate::progress::bar(files.len() as u64, "photos");
    for file in files {
        bar.inc(1);
        let shown = file.path.display().to_string();
        let crop = match &mut detector {
            None => load_crop(&file.path, options.size).map_err(|e| e.to_string()),
            Some(detector) => largest_face(detector, &file.path, options.size, &mut faces.several_faces),
        };
        match crop {
            Ok(crop) => {
                faces.examples.push(Example {
                    frames: vec![Arc::new(crop)],
                    target: Target::Hard(file.class),
                    split: Split::Test,
                    source: shown,
                });
                faces.people.push(file.person);
            }
            Err(why) => faces.not_found.push(format!("{shown}: {why}")),
        }
    }
    bar.finish_and_clear();
    Ok(faces)
}

/// The largest face of the photo at `path`, cut as the runtime cuts faces.
fn largest_face(
    detector: &mut FaceDetector,
    path: &Path,
    size: u32,
    several: &mut Vec<String>,
) -> Result<image::RgbImage, String> {
    let image = read_photo(path)?;
    let found = detector.detect(&image).map_err(|e| format!("the face detector failed: {e}"))?;
    if found.len() > 1 {
        several.push(path.display().to_string());
    }
    let face = found
        .into_iter()
        .max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))
        .ok_or_else(|| "no face found".to_string())?;
    Ok(fit(aligned_crop(&image, &face, AlignedCrop::new(size)), size))
}

/// A photo upright as its viewer sees it (EXIF orientation applied, as phones save them).
fn read_photo(path: &Path) -> Result<image::RgbImage, String> {
    let unreadable = |e: image::ImageError| format!("not a readable image ({e}); use PNG or JPEG files");
    let reader = image::ImageReader::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut decoder =
        reader.with_guessed_format().map_err(|e| format!("cannot read: {e}"))?.into_decoder().map_err(unreadable)?;
    let orientation = image::ImageDecoder::orientation(&mut decoder).map_err(unreadable)?;
    let mut photo = image::DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    photo.apply_orientation(orientation);
    Ok(photo.to_rgb8())
}

/// Every file under the class folders of `root`, sorted, with its class and person.
fn list_files(root: &Path, labels: &LabelNames, split_by: Option<SplitBy>) -> anyhow::Result<Vec<LabelledFile>> {
    let mut files = Vec::new();
    for class_dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
        let folder = class_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let class = labels.class(&folder).map_err(|e| anyhow::anyhow!("{}: {e}", class_dir.display()))?;
        for entry in sorted_entries(&class_dir)? {
            let (photos, subfolder) = if entry.is_dir() {
                let name = entry.file_name().map(|n| n.to_string_lossy().into_owned());
                (sorted_entries(&entry)?.into_iter().filter(|p| p.is_file()).collect(), name)
            } else {
                (vec![entry], None)
            };
            for path in photos {
                let person = person_of(&path, subfolder.as_deref(), split_by)?;
                files.push(LabelledFile { path, class, person });
            }
        }
    }
    Ok(files)
}

/// `path`'s person as `split_by` reads it (its own photo when nothing says).
fn person_of(path: &Path, subfolder: Option<&str>, split_by: Option<SplitBy>) -> anyhow::Result<String> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(match (split_by, subfolder) {
        (Some(SplitBy::Subfolder) | None, Some(person)) => person.to_string(),
        (Some(SplitBy::Subfolder), None) => anyhow::bail!(
            "{}: --split-by subfolder needs every photo in a person folder (DIR/<emotion>/<person>/<photo>)",
            path.display()
        ),
        (Some(SplitBy::Prefix), _) => stem.split(['_', '-']).next().unwrap_or_default().to_string(),
        (None, None) => path.display().to_string(),
    })
}

fn sorted_entries(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    entries.sort();
    Ok(entries)
}
