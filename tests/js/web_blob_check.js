'use strict';
// Loads blobs into the web target's WebAssembly runtime (the wasm32 build of
// src/io/web_model.c that exported pages embed) with plain node, no packages, as
// the page does: WASI imports stubbed (ENOSYS), cnw_alloc, copy, cnw_load.
// tests/test_web.c uses it to hold the wasm32 parser (32-bit size_t and long) to
// its overflow guards.
//
// usage: node web_blob_check.js RUNTIME.wasm BLOB...
// prints, per blob i: BLOB i status S: MESSAGE   (S = cnw_load's cn_status; 0 = accepted)
// A trap (e.g. an out-of-bounds read) prints BLOB i trap: MESSAGE.
const fs = require('fs');

async function main() {
  const [runtime, ...blobs] = process.argv.slice(2);
  const module = await WebAssembly.compile(fs.readFileSync(runtime));
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    imports[imp.module] = imports[imp.module] || {};
    imports[imp.module][imp.name] = () => 52;
  }
  for (let i = 0; i < blobs.length; i++) {
    // a fresh instance per blob, so that a trap leaves nothing behind
    const wasm = (await WebAssembly.instantiate(module, imports)).exports;
    const blob = fs.readFileSync(blobs[i]);
    try {
      const p = wasm.cnw_alloc(blob.length);
      new Uint8Array(wasm.memory.buffer, p, blob.length).set(blob);
      const st = wasm.cnw_load(p, blob.length);
      const u8 = new Uint8Array(wasm.memory.buffer), e0 = wasm.cnw_error();
      let e = e0;
      while (u8[e]) e++;
      console.log(`BLOB ${i} status ${st}: ${st ? new TextDecoder().decode(u8.subarray(e0, e)) : 'ok'}`);
    } catch (err) {
      console.log(`BLOB ${i} trap: ${err.message}`);
    }
  }
}

main().catch((err) => { console.error(err.message); process.exit(1); });
