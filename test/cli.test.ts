import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './helpers/fixtures.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

function sana(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('sana --version prints the package version', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const r = sana('--version');
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), `sana-ts ${pkg.version}`);
});

test('sana --help lists the commands; subcommands have their own help', () => {
  const r = sana('--help');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /run <component>/);
  assert.match(r.stdout, /generate PROMPT/);
  const gen = sana('generate', '--help');
  assert.equal(gen.code, 0);
  assert.match(gen.stdout, /--no-binning/);
  const sub = sana('run', '--help');
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /--component DIR/);
  assert.match(sub.stdout, /vae-decode/);
});

test('unknown command and unknown option exit 2 with a message and no stack trace', () => {
  const r = sana('frobnicate');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  const o = sana('run', 'transformer', '--bogus');
  assert.equal(o.code, 2);
  assert.match(o.stderr, /--bogus/);
  assert.doesNotMatch(o.stderr, /\n\s+at /);
});

test('sana run validates the component name, the folder and the files', () => {
  const unknown = sana('run', 'unet', '--component', '.', '--inputs', 'x', '--output', 'y');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown component "unet".*transformer, vae-encode, vae-decode, text-encoder/);

  const noDir = sana('run', 'transformer', '--inputs', 'x', '--output', 'y');
  assert.equal(noDir.code, 2);
  assert.match(noDir.stderr, /missing --component DIR/);

  const notFolder = sana('run', 'transformer', '--component', '/nonexistent/folder', '--inputs', 'x', '--output', 'y');
  assert.equal(notFolder.code, 2);
  assert.match(notFolder.stderr, /\/nonexistent\/folder is not a folder/);

  const noConfig = sana('run', 'transformer', '--component', repoRoot, '--inputs', 'x', '--output', 'y');
  assert.equal(noConfig.code, 2);
  assert.match(noConfig.stderr, /has no config.json/);
});
