import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../../src/env.js';
import { startTestServer } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (apt-get install -y chromium)`;

describe('dashboard in a browser', { skip }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  after(() => browser?.close());

  async function open(url: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // The server's Content-Security-Policy (no inline script or style) must cost the page nothing.
    page.on('console', (m) => void (/Content Security Policy/i.test(m.text()) && errors.push(m.text())));
    // Offline check: the page may talk to this server only.
    await page.route('**/*', (route) => (route.request().url().startsWith(url) ? route.continue() : route.abort()));
    await page.goto(url);
    return { page, errors };
  }

  it('shows live bars, adds a stream, labels an upload and saves a screenshot', async () => {
    const t = await startTestServer({ fake: { intervalMs: 120 } });
    try {
      await t.api('/api/streams', { method: 'POST', json: { source: 'rtsp://lobby/cam', name: 'lobby' } });
      const { page, errors } = await open(t.url);
      await page.waitForSelector('.stream.selected');
      await page.waitForSelector('.face .bar.corrected');
      const barWidth = () => (document.querySelector('.face .bar.corrected') as HTMLElement | null)?.style.width;
      const w0 = await page.evaluate(barWidth);
      const f0 = Number(await page.getAttribute('#faces', 'data-frame'));
      assert.ok(w0, 'a bar is drawn');
      // Bars move with new predictions (frames without a face empty the panel, hence the polling).
      await page.waitForFunction(
        ([w, f]) => {
          const bar = document.querySelector('.face .bar.corrected') as HTMLElement | null;
          return bar && bar.style.width !== w && Number(document.querySelector('#faces')?.getAttribute('data-frame')) > (f as number) + 2;
        },
        [w0, f0] as const,
      );
      await page.waitForFunction(() => (document.querySelector('#frame') as HTMLImageElement).naturalWidth > 0);
      assert.equal(await page.$eval('#frame', (e) => (e as HTMLImageElement).naturalWidth), 320);
      assert.equal(await page.getAttribute('#conn', 'data-state'), 'live');

      await page.fill('#add-stream input[name=source]', 'bad:nowhere');
      await page.click('#add-stream button');
      await page.waitForSelector('#add-error:not([hidden])');
      assert.match(await page.textContent('#add-error') ?? '', /refused source/);

      await page.fill('#add-stream input[name=source]', 'rtsp://door/cam');
      await page.fill('#add-stream input[name=name]', 'front door');
      await page.fill('#add-stream input[name=fps]', '10');
      await page.click('#add-stream button');
      await page.waitForSelector('.stream.selected:has-text("front door")');
      assert.ok(t.engine.opened.includes('rtsp://door/cam'));
      await page.waitForSelector('#add-error', { state: 'hidden' });

      await page.setInputFiles('#upload input[type=file]', { name: 'interview.mp4', mimeType: 'video/mp4', buffer: Buffer.from('FAKEVIDEO 60') });
      await page.click('#upload button');
      await page.waitForSelector('.job.done .downloads button');
      const download = page.waitForEvent('download');
      await page.click('.job.done .downloads button:first-child');
      assert.equal((await download).suggestedFilename(), 'interview.labels.csv');

      // Let the timeline fill a little before the picture.
      await page.waitForTimeout(700);
      const dir = path.join(ROOT, 'test-output');
      mkdirSync(dir, { recursive: true });
      await page.screenshot({ path: path.join(dir, 'dashboard.png'), fullPage: true });
      assert.deepEqual(errors, []);
      await page.close();
    } finally {
      await t.close();
    }
  });

  it('asks for the token when the server requires one', async () => {
    const t = await startTestServer({ token: 'browser-token', fake: { intervalMs: 120 } });
    try {
      await t.api('/api/streams', { method: 'POST', json: { source: 'rtsp://a/b', name: 'guarded' } });
      const { page, errors } = await open(t.url);
      await page.waitForSelector('#token-dialog[open]');
      await page.fill('#token-dialog input[name=token]', 'browser-token');
      await page.click('#token-dialog button');
      await page.waitForSelector('.stream:has-text("guarded")');
      await page.waitForSelector('.face .bar.corrected');
      assert.equal(await page.evaluate(() => sessionStorage.getItem('arbex-token')), 'browser-token');
      assert.deepEqual(errors, []);
      await page.close();
    } finally {
      await t.close();
    }
  });
});
