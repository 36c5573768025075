//! `clip.onnx` in real ONNX Runtime against the reference clip part, on features of random and
//! real faces, batch 1 and 7.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use burn::tensor::{Tensor, TensorData};
use common::{default_model, max_diff, random_faces, real_faces, session, write_model};
use emoedge_exporter::clip::clip_graph;
use emoedge_exporter::graph::Arithmetic;
use emoedge_exporter::weights::Weights;
use emoedge_models::io;
use emoedge_models::reference::cpu;
use ndarray::{Array3, Array4};
use ort::value::TensorRef;

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn clip_onnx_matches_the_reference_forward() {
    let (config, model) = default_model();
    let dir = tempfile::tempdir().unwrap();
    let mut session = session(&write_model(
        dir.path(),
        "clip.onnx",
        &clip_graph(&config, &Weights::of(&model).unwrap(), Arithmetic::Fp32, &[]),
    ));
    let (t, n, e, d) = (config.clip_length, config.expert_tokens(), config.expert_dim, config.token_dim);
    for (name, faces, batch) in
        [("random", random_faces(t, 3), 1), ("random", random_faces(7 * t, 4), 7), ("real", real_faces(7 * t), 7)]
    {
        let frames = model.forward_frame(Tensor::from_data(TensorData::new(faces, [batch * t, 3, 64, 64]), &cpu()));
        let clip = frames.into_clips(t);
        let general = Array4::from_shape_vec((batch, t, n, e), to_vec(clip.general_tokens.clone())).unwrap();
        let emotion = Array4::from_shape_vec((batch, t, n, e), to_vec(clip.emotion_tokens.clone())).unwrap();
        let pooled = Array3::from_shape_vec((batch, t, d), to_vec(clip.pooled.clone())).unwrap();
        let reference = model.forward_clip(clip);
        let outputs = session
            .run(ort::inputs![
                io::GENERAL_TOKENS => TensorRef::from_array_view(&general).unwrap(),
                io::EMOTION_TOKENS => TensorRef::from_array_view(&emotion).unwrap(),
                io::POOLED => TensorRef::from_array_view(&pooled).unwrap(),
            ])
            .unwrap();
        for (output, expected) in [
            (io::EMOTION_LOGITS, to_vec(reference.emotion_logits)),
            (io::EMOTION_PROBS, to_vec(reference.emotion_probs)),
            (io::GATE, to_vec(reference.gate)),
            (io::GENERAL_LOGITS, to_vec(reference.general_logits)),
            (io::FUSED_TOKENS, to_vec(reference.fused_tokens)),
        ] {
            let (_, got) = outputs[output].try_extract_tensor::<f32>().unwrap();
            let diff = max_diff(got, &expected);
            assert!(diff <= 1e-4, "{name} batch {batch}: `{output}` differs by {diff}");
        }
    }
}
