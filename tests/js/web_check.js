'use strict';
// Drives an exported page (`convnet export --format web`) in Debian's headless
// Chromium through the DevTools protocol (puppeteer-core; it never downloads a
// browser): draws digits on the canvas with mouse events, presses Clear between
// them, and writes what the page saw and said, for tests/test_web.c to compare
// with `convnet predict`.
//
// usage: node web_check.js PAGE_URL OUT_DIR [SCREENSHOT.png]
// For drawing i it writes OUT_DIR/draw<i>.pgm (the canvas's gray pixels that the
// page fed to its WebAssembly runtime) and OUT_DIR/draw<i>-28.pgm (the 28x28
// input after preprocessing, rounded to bytes) and prints
//   DRAW i top=c1,c2,c3 probs=p1,p2,p3 bars=c1:p1,c2:p2,c3:p3
// (top: classes by probability; bars: what the page shows). The screenshot,
// when asked for, is taken after the first drawing.
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

// Strokes in the 280x280 canvas's pixels: a "7" and a "2".
const DIGITS = [
  [[[62, 62], [218, 58], [128, 236]]],
  [[[78, 96], [100, 62], [150, 48], [196, 72], [200, 118], [150, 170], [80, 228], [218, 226]]],
];

function pgm(file, width, height, bytes) {
  fs.writeFileSync(file, Buffer.concat([Buffer.from(`P5\n${width} ${height}\n255\n`), Buffer.from(bytes)]));
}

async function draw(page, box, strokes) {
  const sx = box.width / 280, sy = box.height / 280;
  for (const stroke of strokes) {
    const [x0, y0] = stroke[0];
    await page.mouse.move(box.x + x0 * sx, box.y + y0 * sy);
    await page.mouse.down();
    for (const [x, y] of stroke.slice(1)) await page.mouse.move(box.x + x * sx, box.y + y * sy, { steps: 12 });
    await page.mouse.up();
  }
}

async function main() {
  const [url, outDir, screenshot] = process.argv.slice(2);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'convnet-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    pipe: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 720, height: 660 });
    const requested = []; // anything but the page itself: it must need no network
    page.on('request', (r) => { if (r.url().split('#')[0] !== url.split('#')[0] && !r.url().startsWith('data:')) requested.push(r.url()); });
    page.on('pageerror', (e) => console.log(`PAGEERROR ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.ready, { timeout: 20000 });
    const ready = await page.evaluate(() => document.body.dataset.ready);
    if (ready !== '1') throw new Error(`page not ready: ${ready}: ${await page.$eval('#status', (e) => e.textContent)}`);
    const box = await (await page.$('#pad')).boundingBox();
    for (let i = 0; i < DIGITS.length; i++) {
      await page.click('#clear');
      const cleared = await page.evaluate(() => window.convnetLast === null && document.querySelectorAll('#bars .bar').length === 0);
      if (!cleared) throw new Error('Clear left a drawing or bars behind');
      await draw(page, box, DIGITS[i]);
      await page.waitForFunction(() => window.convnetLast && window.convnetLast.ok, { timeout: 10000 });
      const s = await page.evaluate(() => ({
        last: window.convnetLast,
        bars: [...document.querySelectorAll('#bars .bar')].map((b) => `${b.dataset.cls}:${b.dataset.p}`),
      }));
      const st = s.last;
      pgm(path.join(outDir, `draw${i}.pgm`), st.width, st.height, st.gray);
      pgm(path.join(outDir, `draw${i}-28.pgm`), 28, 28, st.digit.map((v) => Math.round(255 * v)));
      console.log(`DRAW ${i} top=${st.top.join(',')} probs=${st.top.map((k) => st.probs[k]).join(',')} bars=${s.bars.join(',')}`);
      if (i === 0 && screenshot) await page.screenshot({ path: screenshot });
    }
    if (requested.length) throw new Error(`the page requested ${requested.join(' ')}`);
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => { console.log(`ERROR ${e.message}`); process.exit(1); });
