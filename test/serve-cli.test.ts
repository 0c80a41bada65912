// `sana serve` as users start it: bad flags and an unauthenticated public address are refused with the reason, and
// SIGTERM during a running job cancels it at its next step, ends its event stream and exits 0.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './helpers/fixtures.js';
import { api, readEvents } from './helpers/server-client.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

test('sana serve refuses bad flags and a public address without a key', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--host', '0.0.0.0', '--port', '0'], /refusing to listen on 0\.0\.0\.0 without an API key/],
    [['--port', 'http'], /--port: expected an integer >= 0, got "http"/],
    [['--port', '70000'], /--port: expected 0\.\.65535/],
    [['--queue-size', '0'], /--queue-size: expected a positive integer/],
    [['--max-size', '16'], /--max-size must be an integer >= 32, got 16/],
    [['--text-quantization', 'int3'], /--text-quantization: expected none, int8 or int4/],
    [['--transformer-quantization', 'int4'], /--transformer-quantization: expected none or int8, got "int4"/],
    [['--model', '/nonexistent/model', '--port', '0'], /\/nonexistent\/model/],
    [['--queue', 'ftp://127.0.0.1:6379', '--port', '0'], /--queue: expected a redis:\/\/ or rediss:\/\/ URL, got "ftp:\/\/127\.0\.0\.1:6379"/],
  ];
  for (const [args, message] of cases) {
    const r = spawnSync(process.execPath, [cli, 'serve', ...args], { encoding: 'utf8', env: { ...process.env, SANA_API_KEY: '' } });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('SIGTERM cancels the running job at its next step, ends its stream and exits 0', async () => {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const base = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = stderr.match(/sana serve: (http:\/\/127\.0\.0\.1:\d+)/);
        if (m) resolve(m[1]);
      });
      child.on('exit', () => reject(new Error(`sana serve exited early: ${stderr}`)));
    });
    assert.match(stderr, /models: default \(sana-ts\/default/);
    const submit = await api(base, 'POST', '/api/generate', { prompt: 'a red circle', steps: 100, preview: false });
    assert.equal(submit.status, 202);
    const events = await readEvents(`${base}/api/jobs/${submit.body.id}/events`, {}, (e) => {
      if (e.event === 'step' && e.data.step === 2) child.kill('SIGTERM');
    });
    assert.equal(events.at(-1)!.event, 'cancelled');
    assert.ok(events.filter((e) => e.event === 'step').length < 100);
    assert.equal(await exited, 0);
    assert.match(stderr, /SIGTERM: stopping/);
    assert.match(stderr, /stopped\n$/);
    await assert.rejects(fetch(`${base}/healthz`));
  } finally {
    child.kill('SIGKILL');
  }
});
