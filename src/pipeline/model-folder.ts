// Resolving a pipeline model: a diffusers folder with model_index.json, or a Hugging Face repo id found in the local
// Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). No network is used.
// ref: SANA.md §0 (pipeline components)

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { containedPath } from '../io/contained-path.js';
import { readJsonFile } from '../io/config.js';

export interface PipelineFolder {
  readonly root: string;
  readonly index: Record<string, unknown>;
  /** Component sub-folders that model_index.json lists. */
  readonly components: {
    readonly transformer: string;
    readonly vae: string;
    readonly scheduler: string;
    /** Absent in pipelines saved without a text encoder (driven by prompt embeddings). */
    readonly text_encoder?: string;
    readonly tokenizer?: string;
    /** SanaControlNetPipeline folders: the SanaControlNetModel. */
    readonly controlnet?: string;
  };
  /** model_index.json's _class_name (SanaPipeline, SanaSprintPipeline, SanaPAGPipeline, SanaControlNetPipeline...). */
  readonly pipelineClass: string;
}

const REQUIRED_FILES: Record<string, string[]> = {
  transformer: ['config.json'],
  vae: ['config.json'],
  scheduler: ['scheduler_config.json'],
  text_encoder: ['config.json'],
  tokenizer: ['tokenizer.json'],
  controlnet: ['config.json'],
};

/** A pipeline may be saved without its text side; it is then driven by prompt embeddings. */
const OPTIONAL = ['text_encoder', 'tokenizer', 'controlnet'];

export const ACCEPTED_CLASSES: Record<string, string[]> = {
  transformer: ['SanaTransformer2DModel'],
  vae: ['AutoencoderDC'],
  scheduler: ['DPMSolverMultistepScheduler', 'FlowMatchEulerDiscreteScheduler', 'SCMScheduler'],
  text_encoder: ['Gemma2Model', 'Gemma2ForCausalLM'],
  tokenizer: ['GemmaTokenizer', 'GemmaTokenizerFast'],
  controlnet: ['SanaControlNetModel'],
};

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return path.join(env.HF_HOME, 'hub');
  return path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface', 'hub');
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** Finds `owner/name` in the local Hugging Face cache: the snapshot named by refs/main (or the only snapshot). */
export function findInHubCache(repoId: string, env: NodeJS.ProcessEnv = process.env): string {
  const cache = hubCacheDir(env);
  const repoDir = path.join(cache, `models--${repoId.replace('/', '--')}`);
  if (!fs.existsSync(repoDir)) {
    throw new Error(`model "${repoId}" is not in the local Hugging Face cache (${cache}); download it first or pass a folder`);
  }
  const ref = path.join(repoDir, 'refs', 'main');
  const snapshots = path.join(repoDir, 'snapshots');
  if (fs.existsSync(ref)) {
    const rev = fs.readFileSync(ref, 'utf8').trim();
    // the revision names a folder of snapshots/, never a path elsewhere
    const snap = containedPath(snapshots, rev, { file: ref, key: 'the revision' }, { kind: 'folder' });
    if (fs.existsSync(snap)) return snap;
  }
  const revs = fs.existsSync(snapshots) ? fs.readdirSync(snapshots) : [];
  if (revs.length === 1) return path.join(snapshots, revs[0]);
  throw new Error(
    `model "${repoId}" in ${repoDir}: ${revs.length ? `${revs.length} snapshots and no refs/main to choose one` : 'no snapshot'}`,
  );
}

/** Resolves a folder or a repo id and validates the pipeline layout; errors say which file is missing. */
export function resolvePipelineFolder(model: string, env: NodeJS.ProcessEnv = process.env): PipelineFolder {
  let root: string;
  if (fs.existsSync(model)) root = path.resolve(model);
  else if (REPO_ID.test(model)) root = findInHubCache(model, env);
  else throw new Error(`model "${model}": no such folder, and not a Hugging Face repo id (owner/name)`);
  if (!fs.statSync(root).isDirectory()) throw new Error(`model ${root}: not a folder`);
  const indexPath = path.join(root, 'model_index.json');
  if (!fs.existsSync(indexPath)) {
    throw new Error(`model ${root}: not a pipeline folder (missing model_index.json)`);
  }
  const index = readJsonFile(indexPath);
  const components: Record<string, string> = {};
  for (const [name, files] of Object.entries(REQUIRED_FILES)) {
    const entry = index[name];
    const absent = (Array.isArray(entry) && entry[1] === null) || (entry === undefined && name === 'controlnet');
    if (absent && OPTIONAL.includes(name)) continue;
    if (!Array.isArray(entry) || absent) {
      throw new Error(`${indexPath}: no "${name}" component listed (SANA needs ${Object.keys(REQUIRED_FILES).filter((k) => k !== 'controlnet').join(', ')})`);
    }
    const cls = String(entry[1]);
    if (!ACCEPTED_CLASSES[name].includes(cls)) {
      throw new Error(`${indexPath}: "${name}" is ${cls}; expected ${ACCEPTED_CLASSES[name].join(' or ')}`);
    }
    // a component folder (and each file in it) must be inside the pipeline folder: no link out of it
    const dir = containedPath(root, name, { file: indexPath, key: `"${name}"` }, { kind: 'folder' });
    for (const f of files) {
      if (!fs.existsSync(containedPath(dir, f, { file: dir }, { kind: 'file' }))) throw new Error(`model ${root}: missing ${name}/${f}`);
    }
    checkComponentClass(dir, name);
    components[name] = dir;
  }
  const pipelineClass = typeof index._class_name === 'string' ? index._class_name : 'SanaPipeline';
  const sprintScheduler = String((index.scheduler as unknown[])[1]) === 'SCMScheduler';
  if (sprintScheduler !== pipelineClass.startsWith('SanaSprint')) {
    throw new Error(
      `${indexPath}: a ${pipelineClass} ${sprintScheduler ? 'cannot sample with SCMScheduler (SANA-Sprint only)' : 'needs the SCMScheduler (SANA-Sprint)'}`,
    );
  }
  if (Boolean(components.text_encoder) !== Boolean(components.tokenizer)) {
    throw new Error(`${indexPath}: a text encoder needs a tokenizer and the other way round`);
  }
  if (Boolean(components.controlnet) !== (pipelineClass === 'SanaControlNetPipeline')) {
    throw new Error(`${indexPath}: ${components.controlnet ? `a controlnet component in a ${pipelineClass}` : 'a SanaControlNetPipeline without its controlnet component'}`);
  }
  return { root, index, components: components as PipelineFolder['components'], pipelineClass };
}

/**
 * A diffusers component's config.json names its class: a folder of another model (a UNet where the transformer
 * should be) is refused here, by name, before its config is read as ours.
 */
function checkComponentClass(dir: string, name: string): void {
  if (name !== 'transformer' && name !== 'vae') return;
  const file = path.join(dir, 'config.json');
  const cls = readJsonFile(file)._class_name;
  if (cls !== undefined && !ACCEPTED_CLASSES[name].includes(cls as string)) {
    throw new Error(`${file}: "_class_name" is ${JSON.stringify(cls)}; the "${name}" component must be ${ACCEPTED_CLASSES[name].join(' or ')}`);
  }
}
