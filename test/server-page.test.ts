// The page at `/`, end to end in a real browser (Debian's chromium through playwright-core) against the real server
// and the bundled model: generate with progress and previews, download, reuse settings, settings from the URL with
// run=1, a server-picked seed, cancel, an API error, the phone layout, and the API-key dialog. Also writes
// docs/server-page.png for the README. ref: docs/server.md "The page"

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Browser, BrowserContext, Page, chromium } from 'playwright-core';
import { decodePng } from '../src/io/png.js';
import { SanaServer, startSanaServer } from '../src/server/server.js';
import { repoRoot } from './helpers/fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PROMPT = 'a red circle left of a blue square on a yellow background';
// Two slow CPU cores shared with other work: waits are generous, a hang still ends the test.
const WAIT_MS = 45_000;
const STEP_TIMEOUT = { timeout: 90_000 };

// Functions passed to the page run in the browser; the project compiles without the DOM's types, so these names are
// declared here. (Strings would not do: the page's Content-Security-Policy forbids eval, which waitForFunction uses.)
declare const document: any;
declare const window: any;
declare const localStorage: any;
declare const history: any;
declare class MutationObserver {
  constructor(callback: () => void);
  observe(target: unknown, options: object): void;
}

describe('the web page', { timeout: 240_000 }, () => {
  let server: SanaServer | undefined;
  let browser: Browser | undefined;
  let desktop: BrowserContext;
  let page: Page;
  /** Uncaught exceptions in the page: there must be none. */
  const pageErrors: string[] = [];

  async function newPage(context: BrowserContext): Promise<Page> {
    const p = await context.newPage();
    p.setDefaultTimeout(WAIT_MS);
    p.on('pageerror', (e) => pageErrors.push(`${p.url()}: ${e.message}`));
    return p;
  }

  /** Resolves once the page has loaded the model list and applied the URL's settings. */
  async function open(p: Page, url: string): Promise<void> {
    await p.goto(url);
    await p.waitForSelector('body[data-ready="true"]');
  }

  /** An image in the gallery that has its pixels. */
  async function waitForImage(p: Page, selector: string): Promise<void> {
    await p.waitForFunction(
      (sel) => {
        const img = document.querySelector(sel);
        return !!img && img.complete && img.naturalWidth > 0;
      },
      `#gallery ${selector}`,
      { timeout: WAIT_MS },
    );
  }

  before(async () => {
    assert.ok(
      fs.existsSync(CHROMIUM),
      `${CHROMIUM} is missing: the page's browser test needs Debian's chromium (apt-get install chromium)`,
    );
    server = await startSanaServer({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    desktop = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await newPage(desktop);
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await server?.close();
    }
  });

  it('generates an image with progress, a step preview and its parameters', STEP_TIMEOUT, async () => {
    await open(page, server!.url);
    const sizeLabel = await page.locator('#size option:checked').textContent();
    assert.match(sizeLabel ?? '', /^256 × 256 \(1:1\)/);
    assert.equal(await page.locator('#model-field').isHidden(), true, 'one model: no model choice');

    await page.fill('#prompt', PROMPT);
    await page.fill('#steps', '20');
    await page.fill('#seed', '7');
    assert.equal(await page.isChecked('#random-seed'), false, 'typing a seed turns "random each time" off');
    // The bundled model takes well under a second: record what the progress panel shows instead of racing it.
    await page.evaluate(() => {
      const seen: { texts: string[]; previews: number } = (window.__seen = { texts: [], previews: 0 });
      const text = document.getElementById('progress-text');
      new MutationObserver(() => {
        if (seen.texts.at(-1) !== text.textContent) seen.texts.push(text.textContent);
      }).observe(text, { childList: true, characterData: true, subtree: true });
      const preview = document.getElementById('preview');
      new MutationObserver(() => {
        if (preview.src.startsWith('data:image/png;base64,')) seen.previews++;
      }).observe(preview, { attributes: true, attributeFilter: ['src'] });
    });
    await page.click('#generate');
    await waitForImage(page, 'img[data-seed="7"]');

    const seen: { texts: string[]; previews: number } = await page.evaluate(() => window.__seen);
    assert.ok(seen.texts.some((t) => /^Step \d+ of 20/.test(t)), `progress showed steps: ${JSON.stringify(seen.texts)}`);
    assert.ok(seen.previews >= 1, 'a step preview was shown');
    assert.match((await page.textContent('#progress-text')) ?? '', /^Done: 1 image in [0-9.]+ s$/);
    assert.equal(await page.isVisible('#cancel'), false);
    assert.equal(await page.isEnabled('#generate'), true);

    const img = page.locator('#gallery .result img').first();
    assert.equal(await img.getAttribute('data-prompt'), PROMPT);
    assert.equal(await img.getAttribute('data-index'), '0');
    assert.match((await img.getAttribute('data-job')) ?? '', /^j_/);
    const natural: number[] = await img.evaluate((el: { naturalWidth: number; naturalHeight: number }) => [el.naturalWidth, el.naturalHeight]);
    assert.deepEqual(natural, [256, 256]);
    const params = (await page.textContent('#gallery .result .params')) ?? '';
    for (const part of [PROMPT, 'Seed7', '256 × 256', 'Steps20', 'Guidance4.5', 'Samplerdpm', 'Time']) {
      assert.ok(params.includes(part), `card shows ${part}: ${params}`);
    }
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('prompt'), PROMPT);
    assert.equal(url.searchParams.get('seed'), '7');
    assert.equal(url.searchParams.get('steps'), '20');
  });

  it('downloads the image as a 256 x 256 PNG', STEP_TIMEOUT, async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#gallery .result a.download')]);
    assert.equal(download.suggestedFilename(), 'sana-7-0.png');
    const file = await download.path();
    const bytes = fs.readFileSync(file);
    assert.deepEqual(bytes.subarray(0, 8), PNG_SIGNATURE);
    const png = decodePng(bytes);
    assert.equal(png.width, 256);
    assert.equal(png.height, 256);
    assert.equal(png.text.prompt, PROMPT);
    assert.equal(png.text.seed, '7');
  });

  it('"Reuse these settings" puts the job back into the form and the URL', STEP_TIMEOUT, async () => {
    await page.fill('#prompt', 'something else');
    await page.fill('#seed', '12345');
    await page.fill('#steps', '3');
    await page.evaluate(() => history.replaceState(null, '', '/?prompt=something%20else&seed=12345'));
    await page.click('#gallery .result button.reuse');
    assert.equal(await page.inputValue('#prompt'), PROMPT);
    assert.equal(await page.inputValue('#seed'), '7');
    assert.equal(await page.inputValue('#steps'), '20');
    assert.equal(await page.inputValue('#size'), '256x256');
    assert.equal(await page.inputValue('#sampler'), 'dpm');
    assert.equal(await page.isChecked('#random-seed'), false);
    assert.ok(page.url().includes('seed=7'), page.url());
    assert.equal(new URL(page.url()).searchParams.get('prompt'), PROMPT);
  });

  it('writes a screenshot of the page with finished images to docs/server-page.png', STEP_TIMEOUT, async () => {
    await page.fill('#prompt', 'a green circle above an orange square on a white background');
    await page.fill('#count', '2');
    await page.check('#random-seed');
    await page.click('#reroll');
    assert.match(await page.inputValue('#seed'), /^[0-9]+$/);
    assert.equal(await page.isChecked('#random-seed'), false, 'a re-rolled seed is used as it is');
    // A fixed seed after all, so that the README's picture changes only when the model or the page does.
    const seed = '21';
    await page.fill('#seed', seed);
    await page.click('#generate');
    await waitForImage(page, `img[data-seed="${seed}"][data-index="1"]`);
    assert.equal(await page.locator('#gallery .result').count(), 3, 'newest first, the first image kept');
    assert.equal(await page.locator('#gallery .result img').first().getAttribute('data-seed'), seed);
    await page.locator('#generate').blur();
    // Written under a temporary name and renamed, so the README never shows half a file.
    const target = path.join(repoRoot, 'docs', 'server-page.png');
    const temporary = `${target}.${process.pid}.tmp.png`;
    try {
      await page.screenshot({ path: temporary });
      assert.deepEqual(fs.readFileSync(temporary).subarray(0, 8), PNG_SIGNATURE);
      fs.renameSync(temporary, target);
    } finally {
      fs.rmSync(temporary, { force: true });
    }
  });

  it('takes its settings from the URL and starts at once with run=1', STEP_TIMEOUT, async () => {
    await page.goto(`${server!.url}/?prompt=a%20green%20square&seed=3&steps=10&run=1`);
    await waitForImage(page, 'img[data-seed="3"]');
    const img = page.locator('#gallery img[data-seed="3"]');
    assert.equal(await img.getAttribute('data-prompt'), 'a green square');
    assert.equal(await page.inputValue('#steps'), '10');
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('run'), null, 'run=1 is not kept');
    assert.equal(url.searchParams.get('seed'), '3');
    assert.equal(url.searchParams.get('steps'), '10');
  });

  it('"random each time" lets the server pick the seed, then shows it and puts it in the URL', STEP_TIMEOUT, async () => {
    const before = await page.locator('#gallery .result').count();
    await page.check('#random-seed');
    await page.fill('#steps', '2');
    await page.click('#generate');
    await page.waitForFunction((n) => document.querySelectorAll('#gallery .result').length > n, before);
    await waitForImage(page, '.result:first-child img');
    const seed = await page.getAttribute('#gallery .result:first-child img', 'data-seed');
    assert.match(seed ?? '', /^[0-9]+$/);
    assert.equal(await page.inputValue('#seed'), seed);
    assert.equal(await page.isChecked('#random-seed'), true, 'still random for the next one');
    assert.equal(new URL(page.url()).searchParams.get('seed'), seed);
  });

  it('cancels a running job', STEP_TIMEOUT, async () => {
    const before = await page.locator('#gallery .result').count();
    await page.fill('#steps', '100');
    await page.click('#generate');
    await page.waitForFunction(() => /^Step \d+ of 100/.test(document.getElementById('progress-text').textContent));
    await page.click('#cancel');
    await page.waitForFunction(() => document.getElementById('progress-text').textContent === 'Cancelled');
    assert.equal(await page.isVisible('#cancel'), false);
    assert.equal(await page.isEnabled('#generate'), true);
    assert.equal(await page.locator('#gallery .result').count(), before, 'no image from a cancelled job');
    assert.equal(await page.isVisible('#error'), false);
  });

  it('shows an API error in #error and marks the field (started with Ctrl+Enter)', STEP_TIMEOUT, async () => {
    await page.fill('#steps', '100000');
    await page.press('#prompt', 'Control+Enter');
    await page.waitForSelector('#error:not([hidden])');
    const message = (await page.textContent('#error')) ?? '';
    assert.match(message, /steps/);
    assert.match(message, /100/);
    assert.equal(await page.getAttribute('#steps', 'aria-invalid'), 'true');
    assert.equal(await page.isEnabled('#generate'), true);
  });

  it('fits a phone-width screen: one column, form above the gallery, no horizontal scroll', STEP_TIMEOUT, async () => {
    const phone = await browser!.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    try {
      const p = await newPage(phone);
      await p.goto(`${server!.url}/?prompt=${encodeURIComponent(PROMPT)}&seed=11&steps=4&run=1`);
      await waitForImage(p, 'img[data-seed="11"]');
      const layout: { scrollWidth: number; formBottom: number; galleryTop: number; galleryWidth: number } = await p.evaluate(() => {
        const form = document.getElementById('form').getBoundingClientRect();
        const gallery = document.getElementById('gallery').getBoundingClientRect();
        return { scrollWidth: document.documentElement.scrollWidth, formBottom: form.bottom, galleryTop: gallery.top, galleryWidth: gallery.width };
      });
      assert.ok(layout.scrollWidth <= 390, `no horizontal scroll: ${JSON.stringify(layout)}`);
      assert.ok(layout.formBottom <= layout.galleryTop, `form above gallery: ${JSON.stringify(layout)}`);
      assert.ok(layout.galleryWidth > 300, `gallery uses the width: ${JSON.stringify(layout)}`);
    } finally {
      await phone.close();
    }
  });

  it('asks for the API key once, keeps it, and sends it on every request', STEP_TIMEOUT, async () => {
    const key = 'page-test-key';
    const locked = await startSanaServer({ port: 0, host: '127.0.0.1', apiKey: key });
    const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const p = await newPage(context);
      await p.goto(`${locked.url}/?prompt=a%20blue%20diamond&seed=5&steps=5`);
      await p.waitForSelector('#key-dialog[open]');
      await p.fill('#api-key', 'wrong-key');
      await p.click('#key-form button.primary');
      await p.waitForFunction(() => document.getElementById('key-message').textContent.includes('did not accept'));
      await p.fill('#api-key', key);
      await p.click('#key-form button.primary');
      await p.waitForSelector('body[data-ready="true"]');
      assert.equal(await p.evaluate(() => localStorage.getItem('sana-api-key')), key);
      // The event stream and the image need the header too: only fetch() can send it.
      await p.click('#generate');
      await waitForImage(p, 'img[data-seed="5"]');
      assert.equal(await p.getAttribute('#gallery img', 'data-prompt'), 'a blue diamond');
      await p.reload();
      await p.waitForSelector('body[data-ready="true"]');
      assert.equal(await p.isVisible('#key-dialog'), false, 'the stored key is used without asking again');
    } finally {
      await context.close();
      await locked.close();
    }
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });
});
