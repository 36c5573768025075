//! MTCNN's networks as `emoedge-export mtcnn` writes them compute what the package's own files
//! compute, bit for bit, on real faces — P-Net over a pyramid level, R-Net and O-Net over a
//! batch of crops — and hold no PRelu any more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_exporter::audit::op_types;
use emoedge_exporter::mtcnn::{NETS, write_mtcnn};
use emoedge_inference::onnx::{self, Provider, SessionOptions, open_session};
use emoedge_tests::{assets, media};
use emoedge_vision::video::VideoSource;
use image::RgbImage;
use onnx_protobuf::ModelProto;
use ort::value::TensorRef;
use protobuf::Message;

/// `image` laid out as MTCNN reads it (`[W, H, 3]`, x before y), normalised as
/// `(p − 127.5) / 128`.
fn layout(image: &RgbImage) -> Vec<f32> {
    let mut input = Vec::with_capacity(image.len());
    for x in 0..image.width() {
        for y in 0..image.height() {
            input.extend(image.get_pixel(x, y).0.map(|p| (f32::from(p) - 127.5) / 128.0));
        }
    }
    input
}

/// `image` cut to `count` overlapping squares, each resized to `side`: one batch of crops.
fn crops(image: &RgbImage, count: u32, side: u32) -> Vec<f32> {
    let step = image.width().saturating_sub(image.height()) / count;
    (0..count)
        .flat_map(|k| {
            let square = image::imageops::crop_imm(image, k * step, 0, image.height(), image.height()).to_image();
            layout(&image::imageops::resize(&square, side, side, image::imageops::FilterType::Triangle))
        })
        .collect()
}

/// Every output of the graph `file` on `input` of `shape`, in the graph's order.
fn outputs(file: &std::path::Path, shape: [usize; 4], input: &[f32]) -> Vec<Vec<f32>> {
    let cpu = SessionOptions { provider: Provider::Cpu, ..Default::default() };
    let mut session = open_session(onnx::environment(None).unwrap(), file, &cpu).unwrap();
    let tensor = TensorRef::from_array_view((shape, input)).unwrap();
    session
        .run(ort::inputs![tensor], |outputs| {
            Ok(outputs.values().map(|v| v.try_extract_tensor::<f32>().unwrap().1.to_vec()).collect())
        })
        .unwrap()
}

#[test]
fn the_rewritten_networks_compute_the_packages_values_bit_for_bit_without_prelu() {
    let out = tempfile::tempdir().unwrap();
    let written = write_mtcnn(&assets().join("mtcnn"), out.path()).unwrap();
    assert_eq!(written, NETS.map(|net| out.path().join(net)));
    let frame = VideoSource::open(&media("multi_face.jpg")).unwrap().next_frame().unwrap().unwrap();
    let pyramid_level = image::imageops::resize(&frame.image, 192, 128, image::imageops::FilterType::Triangle);
    // P-Net on one pyramid level of the five-face photo; R-Net and O-Net on batches of crops.
    let cases: [(&str, [usize; 4], Vec<f32>); 3] = [
        ("pnet.onnx", [1, 192, 128, 3], layout(&pyramid_level)),
        ("rnet.onnx", [12, 24, 24, 3], crops(&frame.image, 12, 24)),
        ("onet.onnx", [5, 48, 48, 3], crops(&frame.image, 5, 48)),
    ];
    for (net, shape, input) in &cases {
        let rewritten = out.path().join(net);
        let model = ModelProto::parse_from_bytes(&std::fs::read(&rewritten).unwrap()).unwrap();
        let ops = op_types(&model);
        assert!(!ops.contains("PRelu") && ops.contains("Min"), "{net}: {ops:?}");
        assert!(model.metadata_props.iter().any(|p| p.key == "emoedge.rewritten_from" && p.value.contains("sha256")));

        let package = outputs(&assets().join("mtcnn").join(net), *shape, input);
        let ours = outputs(&rewritten, *shape, input);
        assert_eq!(package.len(), ours.len(), "{net}");
        for (a, b) in package.iter().zip(&ours) {
            assert_eq!(a.len(), b.len(), "{net}");
            let differing = a.iter().zip(b).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
            assert_eq!(differing, 0, "{net}: {differing} of {} values differ", a.len());
        }
        // Not a degenerate case where any graph would agree: the outputs vary with the input.
        assert!(package.iter().flatten().any(|v| *v != package[0][0]), "{net}");
    }
}
