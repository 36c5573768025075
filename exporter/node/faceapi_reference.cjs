// face-api's own FaceRecognitionNet (@vladmandic/face-api, on TensorFlow.js's CPU backend): the
// reference that exporter/tests/embedder.rs holds the ONNX translation to.
//
//   node faceapi_reference.cjs NODE_MODULES WEIGHTS_DIR SIDE CROP...
//
// Each CROP is SIDE×SIDE×3 interleaved RGB bytes; prints a JSON array of face-api's descriptors
// (not unit length: face-api compares them by Euclidean distance).
const [modules, weightsDir, side, ...crops] = process.argv.slice(2);
const path = require('path');
const fs = require('fs');
const faceapi = require(path.join(modules, '@vladmandic/face-api/dist/face-api.node-wasm.js'));
const tf = faceapi.tf;

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  const manifest = JSON.parse(fs.readFileSync(path.join(weightsDir, 'face_recognition_model-weights_manifest.json')));
  const bin = fs.readFileSync(path.join(weightsDir, 'face_recognition_model.bin'));
  const buffer = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length);
  faceapi.nets.faceRecognitionNet.loadFromWeightMap(tf.io.decodeWeights(buffer, manifest[0].weights));
  const n = Number(side);
  const out = [];
  for (const crop of crops) {
    const pixels = Float32Array.from(fs.readFileSync(crop));
    const descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(tf.tensor4d(pixels, [1, n, n, 3]));
    out.push(Array.from(descriptor));
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
