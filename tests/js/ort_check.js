'use strict';
// Runs ONNX models in ONNX Runtime (onnxruntime-node, CPU) on a set of images and
// compares each with reference outputs computed by convnet (tests/test_ort.c).
//
// usage: node ort_check.js INPUTS.f32 LABELS.u8 MANIFEST
//   INPUTS.f32  N x 1 x 28 x 28 float32 (already normalised, as convnet fed them)
//   LABELS.u8   N bytes
//   MANIFEST    one line per model: NAME ONNX_FILE REFERENCE.f32 (N x classes float32:
//               convnet's outputs, log-probabilities or logits)
// prints one line per model:
//   RESULT NAME n=N agree=A max_diff=D correct=C
// A: images where ORT's predicted class (first maximum) equals convnet's;
// D: the largest |log_softmax(ort) - log_softmax(convnet)| over all N x classes
//    values (log_softmax in double, so logits and log-probabilities compare alike);
// C: images ORT classifies correctly.
const fs = require('fs');
const ort = require('onnxruntime-node');

const PIXELS = 28 * 28, BATCH = 500;

function floats(path) {
  const b = fs.readFileSync(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function logSoftmax(v, off, k, out) {
  let mx = -Infinity;
  for (let j = 0; j < k; j++) mx = Math.max(mx, v[off + j]);
  let s = 0;
  for (let j = 0; j < k; j++) s += Math.exp(v[off + j] - mx);
  const lse = mx + Math.log(s);
  for (let j = 0; j < k; j++) out[j] = v[off + j] - lse;
}

function argmax(v, off, k) {
  let best = 0;
  for (let j = 1; j < k; j++) if (v[off + j] > v[off + best]) best = j;
  return best;
}

async function check(name, file, refPath, x, labels) {
  const n = labels.length, ref = floats(refPath), k = ref.length / n;
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  const input = session.inputNames[0], output = session.outputNames[0];
  let agree = 0, correct = 0, maxDiff = 0;
  const a = new Float64Array(k), b = new Float64Array(k);
  for (let start = 0; start < n; start += BATCH) {
    const m = Math.min(BATCH, n - start);
    const t = new ort.Tensor('float32', x.subarray(start * PIXELS, (start + m) * PIXELS), [m, 1, 28, 28]);
    const out = (await session.run({ [input]: t }))[output];
    if (out.dims.length !== 2 || out.dims[0] !== m || out.dims[1] !== k)
      throw new Error(`${name}: output shape [${out.dims}], expected [${m},${k}]`);
    for (let i = 0; i < m; i++) {
      const r = start + i, c = argmax(out.data, i * k, k);
      agree += c === argmax(ref, r * k, k);
      correct += c === labels[r];
      logSoftmax(out.data, i * k, k, a);
      logSoftmax(ref, r * k, k, b);
      for (let j = 0; j < k; j++) maxDiff = Math.max(maxDiff, Math.abs(a[j] - b[j]));
    }
  }
  console.log(`RESULT ${name} n=${n} agree=${agree} max_diff=${maxDiff.toExponential(3)} correct=${correct}`);
}

async function main() {
  const [inputs, labelsPath, manifest] = process.argv.slice(2);
  const x = floats(inputs), labels = fs.readFileSync(labelsPath);
  if (x.length !== labels.length * PIXELS) throw new Error(`${inputs}: ${x.length} floats for ${labels.length} labels`);
  for (const line of fs.readFileSync(manifest, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const [name, file, ref] = line.trim().split(/\s+/);
    try {
      await check(name, file, ref, x, labels);
    } catch (e) {
      console.log(`RESULT ${name} error=${JSON.stringify(String(e.message || e))}`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
