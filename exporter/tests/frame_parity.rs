//! `frame.onnx` in real ONNX Runtime against the reference forward, on random and real faces.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use burn::tensor::{Tensor, TensorData};
use common::{default_model, max_diff, random_faces, real_faces, session, write_model};
use emoedge_exporter::frame::frame_graph;
use emoedge_exporter::graph::Arithmetic;
use emoedge_exporter::weights::Weights;
use emoedge_models::io;
use emoedge_models::reference::cpu;
use ndarray::Array4;
use ort::value::TensorRef;

#[test]
fn frame_onnx_matches_the_reference_forward() {
    let (config, model) = default_model();
    let graph = frame_graph(&config, &Weights::of(&model).unwrap(), Arithmetic::Fp32, &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut session = session(&write_model(dir.path(), "frame.onnx", &graph));

    for (name, faces, batch) in
        [("random", random_faces(1, 1), 1), ("random", random_faces(7, 2), 7), ("real", real_faces(7), 7)]
    {
        let reference =
            model.forward_frame(Tensor::from_data(TensorData::new(faces.clone(), [batch, 3, 64, 64]), &cpu()));
        let input = Array4::from_shape_vec((batch, 3, 64, 64), faces).unwrap();
        let outputs = session.run(ort::inputs![TensorRef::from_array_view(&input).unwrap()]).unwrap();
        for (output, expected) in [
            (io::GENERAL_TOKENS, reference.general_tokens.into_data()),
            (io::EMOTION_TOKENS, reference.emotion_tokens.into_data()),
            (io::POOLED, reference.pooled.into_data()),
        ] {
            let (shape, got) = outputs[output].try_extract_tensor::<f32>().unwrap();
            assert_eq!(shape[0], batch as i64);
            let diff = max_diff(got, &expected.try_to_vec::<f32>().unwrap());
            assert!(diff <= 1e-4, "{name} batch {batch}: `{output}` differs by {diff}");
        }
    }
}
