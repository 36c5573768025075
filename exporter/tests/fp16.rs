//! The FP16 variant in ONNX Runtime: frame then clip graph, end to end, against the FP32
//! reference forward on real and random faces.

mod common;

use burn::tensor::{Tensor, TensorData};
use common::{default_model, random_faces, real_faces, session, write_model};
use emoedge_exporter::audit::disallowed_ops;
use emoedge_exporter::clip::clip_graph;
use emoedge_exporter::frame::frame_graph;
use emoedge_exporter::graph::Precision;
use emoedge_exporter::weights::Weights;
use emoedge_models::reference::cpu;
use ndarray::{Array3, Array4};
use ort::value::TensorRef;

#[test]
fn fp16_graphs_agree_with_the_fp32_reference() {
    let (config, model) = default_model();
    let weights = Weights::of(&model).unwrap();
    let (frame, clip) = (frame_graph(&config, &weights, Precision::Fp16, &[]), clip_graph(&config, &weights, Precision::Fp16, &[]));
    assert!(disallowed_ops(&frame).is_empty() && disallowed_ops(&clip).is_empty());
    let dir = tempfile::tempdir().unwrap();
    let mut frame = session(&write_model(dir.path(), "frame.onnx", &frame));
    let mut clip = session(&write_model(dir.path(), "clip.onnx", &clip));
    let (t, n, e, d) = (config.clip_length, config.expert_tokens(), config.expert_dim, config.token_dim);
    let (mut agree, mut total, mut worst) = (0, 0, 0.0f32);
    for faces in [real_faces(7 * t), random_faces(7 * t, 9)] {
        let b = 7;
        let reference = model.forward(Tensor::from_data(TensorData::new(faces.clone(), [b, t, 3, 64, 64]), &cpu()));
        let expected = reference.emotion_probs.into_data().try_to_vec::<f32>().unwrap();
        let input = Array4::from_shape_vec((b * t, 3, 64, 64), faces).unwrap();
        let out = frame.run(ort::inputs![TensorRef::from_array_view(&input).unwrap()]).unwrap();
        let part = |name: &str| out[name].try_extract_tensor::<f32>().unwrap().1.to_vec();
        let general = Array4::from_shape_vec((b, t, n, e), part("general_tokens")).unwrap();
        let emotion = Array4::from_shape_vec((b, t, n, e), part("emotion_tokens")).unwrap();
        let pooled = Array3::from_shape_vec((b, t, d), part("pooled")).unwrap();
        drop(out);
        let out = clip
            .run(ort::inputs![
                "general_tokens" => TensorRef::from_array_view(&general).unwrap(),
                "emotion_tokens" => TensorRef::from_array_view(&emotion).unwrap(),
                "pooled" => TensorRef::from_array_view(&pooled).unwrap(),
            ])
            .unwrap();
        let (_, probs) = out["emotion_probs"].try_extract_tensor::<f32>().unwrap();
        let top = |p: &[f32]| p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        for i in 0..b {
            let (got, want) = (&probs[i * 7..(i + 1) * 7], &expected[i * 7..(i + 1) * 7]);
            agree += usize::from(top(got) == top(want));
            total += 1;
            worst = got.iter().zip(want).map(|(x, y)| (x - y).abs()).fold(worst, f32::max);
        }
    }
    assert!(agree * 100 >= total * 99, "top-1 agreement {agree}/{total}");
    assert!(worst <= 1e-2, "max probability difference {worst}");
    eprintln!("fp16: top-1 {agree}/{total}, max prob diff {worst}");
}
