// The page served at `/`: a form for the native API, a progress panel that follows the job's event stream, and a
// gallery of results. Plain ES module, no build step, nothing fetched from outside the server. Every request goes
// through fetch() so that an API key can travel in the Authorization header (EventSource and <img src> cannot send
// one). ref: docs/server.md "The page"

const KEY_STORAGE = 'sana-api-key';
/** Cards beyond this are dropped, oldest first, and their object URLs released, so a long session stays small. */
const MAX_CARDS = 60;
const SEED_PATTERN = /^[0-9]{1,20}$/;
const TERMINAL = new Set(['done', 'failed', 'cancelled']);
/** The form field to mark for an error's `param`. */
const FIELD_OF_PARAM = { width: 'size', height: 'size', numImages: 'count' };
const STAGE_TEXT = { encode: 'Encoding the prompt…', denoise: 'Denoising…', decode: 'Decoding the image…' };
const STAGE_FRACTION = { encode: 0.03, denoise: 0.05, decode: 0.95 };

const $ = (id) => document.getElementById(id);

/** A new element with properties and children. */
function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

const state = {
  models: [],
  limits: null,
  /** The selected model's entry from GET /api/models. */
  model: null,
  running: false,
  /** The job being followed, once its id is known. */
  jobId: null,
  /** Cancel was pressed before the job's id came back; it is cancelled as soon as it does. */
  cancelPending: false,
};

class ApiError extends Error {
  constructor(status, message, param = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.param = param;
    this.retryAfter = retryAfter;
  }
}

// ---- API key and requests ----

/** Where local storage is off (private mode), the key lasts as long as the page. */
let memoryKey = '';
/** One dialog for all requests that hit 401 at the same time (image fetches run together). */
let keyPrompt = null;

function currentKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || memoryKey;
  } catch {
    return memoryKey;
  }
}

function storeKey(key) {
  memoryKey = key;
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage is off: memoryKey serves.
  }
}

/** Shows the key dialog; resolves once a key is stored, rejects when the user cancels. */
function askForKey(message) {
  if (keyPrompt) return keyPrompt;
  const dialog = $('key-dialog');
  $('key-message').textContent = message;
  $('api-key').value = '';
  keyPrompt = new Promise((resolve, reject) => {
    const onClose = () => {
      keyPrompt = null;
      const key = $('api-key').value.trim();
      if (dialog.returnValue === 'ok' && key) {
        storeKey(key);
        resolve();
      } else {
        reject(new ApiError(401, 'This server needs an API key. Reload the page to enter it.'));
      }
    };
    dialog.addEventListener('close', onClose, { once: true });
  });
  dialog.returnValue = '';
  dialog.showModal();
  return keyPrompt;
}

/** The server's error body ({error: {message, param}}) as an ApiError; any other body gives the status line. */
async function errorFrom(res) {
  let message = `${res.status} ${res.statusText}`.trim();
  let param = null;
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error.message === 'string') {
      message = body.error.message;
      param = body.error.param ?? null;
    }
  } catch {
    // Not JSON (a proxy's error page): the status line is all there is.
  }
  return new ApiError(res.status, message, param, res.headers.get('Retry-After'));
}

/** fetch() with the stored key; a 401 asks for a key and tries again; any other error status throws ApiError. */
async function api(path, init = {}) {
  for (;;) {
    const key = currentKey();
    const headers = new Headers(init.headers);
    if (key) headers.set('Authorization', `Bearer ${key}`);
    let res;
    try {
      res = await fetch(path, { ...init, headers });
    } catch {
      throw new ApiError(0, 'Cannot reach the server. Is it still running?');
    }
    if (res.status === 401) {
      await res.body?.cancel();
      await askForKey(key ? 'The server did not accept this key. Enter it again:' : 'This server needs an API key.');
      continue;
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }
}

const apiJson = async (path, init) => (await api(path, init)).json();
const jobPath = (id) => `/api/jobs/${encodeURIComponent(id)}`;

// ---- server-sent events over fetch ----

/** Parses one event block ("event: x" / "data: ..." lines); null for a comment-only block. */
function parseEventBlock(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return null;
  try {
    return { event, data: JSON.parse(data.join('\n')) };
  } catch {
    return { event, data: {} };
  }
}

/** Yields {event, data} from a text/event-stream response body; blocks end at a blank line. */
async function* readEvents(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  // A chunk can end between the \r and \n of a CRLF; holding the \r back keeps that from reading as two line ends.
  let heldCR = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      let chunk = heldCR ? `\r${value}` : value;
      heldCR = chunk.endsWith('\r');
      if (heldCR) chunk = chunk.slice(0, -1);
      pending += chunk.replace(/\r\n?/g, '\n');
      let end;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const ev = parseEventBlock(pending.slice(0, end));
        pending = pending.slice(end + 2);
        if (ev) yield ev;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

// ---- the form ----

function ratioLabel(w, h) {
  let [a, b] = [w, h];
  while (b) [a, b] = [b, a % b];
  return w / a <= 32 && h / a <= 32 ? `${w / a}:${h / a}` : `${(w / h).toFixed(2)}:1`;
}

const sizeOption = (w, h, note = '') => el('option', { value: `${w}x${h}`, textContent: `${w} × ${h} (${ratioLabel(w, h)})${note}` });

/** Selects W x H, adding it to the presets when it is not one of the model's bins (a size from a URL). */
function selectSize(w, h) {
  const select = $('size');
  const value = `${w}x${h}`;
  if (![...select.options].some((o) => o.value === value)) select.append(sizeOption(w, h, ' custom'));
  select.value = value;
}

function fillModel(model) {
  state.model = model;
  // Neighbouring aspect-ratio bins can share one size; each size is offered once.
  const sizes = [];
  for (const s of [...(model.sizes || []), { width: model.width, height: model.height }]) {
    if (!sizes.some((t) => t.width === s.width && t.height === s.height)) sizes.push(s);
  }
  $('size').replaceChildren(...sizes.map((s) => sizeOption(s.width, s.height)));
  $('model-name').textContent = model.name || model.id;
}

function applyModelDefaults(model) {
  selectSize(model.width, model.height);
  const d = model.defaults || {};
  if (d.steps != null) $('steps').value = String(d.steps);
  if (d.guidance != null) $('guidance').value = String(d.guidance);
  if (typeof d.negative === 'string') $('negative').value = d.negative;
  if (model.sampler === 'dpm' || model.sampler === 'euler') $('sampler').value = model.sampler;
}

function selectModel(model) {
  $('model').value = model.id;
  fillModel(model);
  applyModelDefaults(model);
}

function setupModels(info, wantedId) {
  state.models = info.models || [];
  state.limits = info.limits || null;
  if (state.models.length === 0) throw new ApiError(0, 'The server has no models loaded.');
  $('model').replaceChildren(...state.models.map((m) => el('option', { value: m.id, textContent: m.name || m.id })));
  $('model-field').hidden = state.models.length < 2;
  if (state.limits) {
    $('count').max = String(state.limits.maxImages);
    $('steps').max = String(state.limits.maxSteps);
  }
  selectModel(state.models.find((m) => m.id === wantedId) || state.models.find((m) => m.default) || state.models[0]);
}

/** Settings from the page's query string, as strings; only those present. */
function readUrl() {
  const q = new URLSearchParams(location.search);
  const p = {};
  for (const name of ['prompt', 'negative', 'seed', 'steps', 'guidance', 'width', 'height', 'sampler', 'n', 'model']) {
    if (q.has(name)) p[name] = q.get(name);
  }
  p.run = q.get('run') === '1' || q.get('run') === 'true';
  return p;
}

/** Puts settings (URL strings or a job's parameters) into the form. */
function applySettings(p) {
  const model = p.model != null && state.models.find((m) => m.id === p.model);
  if (model && model !== state.model) selectModel(model);
  const fields = { prompt: 'prompt', negative: 'negative', steps: 'steps', guidance: 'guidance', n: 'count' };
  for (const [name, id] of Object.entries(fields)) if (p[name] != null) $(id).value = String(p[name]);
  if (p.sampler === 'dpm' || p.sampler === 'euler') $('sampler').value = p.sampler;
  const w = Number(p.width ?? state.model.width);
  const h = Number(p.height ?? state.model.height);
  if ((p.width != null || p.height != null) && Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0) {
    selectSize(w, h);
  }
  if (p.seed != null && SEED_PATTERN.test(String(p.seed))) {
    $('seed').value = String(p.seed);
    $('random-seed').checked = false;
  }
}

/** The request body from the form; null (with the reason shown) when it cannot be sent. */
function readForm() {
  const prompt = $('prompt').value.trim();
  if (!prompt) {
    showError(new ApiError(0, 'Write a prompt first.', 'prompt'));
    return null;
  }
  const body = { prompt, negative: $('negative').value, sampler: $('sampler').value, model: state.model.id };
  // Numbers go to the server as typed: it is the one that knows the limits, and its 400 names the field.
  for (const [name, id] of [['steps', 'steps'], ['guidance', 'guidance'], ['numImages', 'count']]) {
    const v = $(id).value.trim();
    if (v !== '') body[name] = Number(v);
  }
  const [w, h] = $('size').value.split('x').map(Number);
  if (w && h) Object.assign(body, { width: w, height: h });
  // Seeds go as decimal strings: JSON numbers lose precision above 2^53 and seeds reach 2^64 - 1.
  const seed = $('seed').value.trim();
  if (!$('random-seed').checked && seed !== '') body.seed = seed;
  return body;
}

/** A job's parameters in the page's settings names; `prompt` is the given image's prompt or the first one. */
function settingsOfJob(job, prompt) {
  const p = job.parameters;
  return {
    prompt: prompt ?? (Array.isArray(p.prompt) ? p.prompt[0] : p.prompt),
    negative: p.negative,
    seed: p.seed,
    steps: p.steps,
    guidance: p.guidance,
    width: p.width,
    height: p.height,
    sampler: p.sampler,
    n: p.numImages,
    model: job.model,
  };
}

function writeUrl(s) {
  const q = new URLSearchParams({ prompt: s.prompt });
  if (s.negative) q.set('negative', s.negative);
  for (const name of ['seed', 'steps', 'guidance', 'width', 'height', 'sampler']) q.set(name, String(s[name]));
  if (s.n > 1) q.set('n', String(s.n));
  if (state.models.length > 1 && s.model) q.set('model', s.model);
  history.replaceState(null, '', `${location.pathname}?${q}`);
}

// ---- status display ----

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
  for (const node of document.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
}

function showError(err) {
  let message = err && err.message ? err.message : String(err);
  if (err instanceof ApiError && err.status === 429) {
    message += err.retryAfter ? ` Try again in ${err.retryAfter} s.` : ' Try again shortly.';
  }
  $('error').textContent = message;
  $('error').hidden = false;
  const field = err instanceof ApiError && err.param ? $(FIELD_OF_PARAM[err.param] || err.param) : null;
  if (field) {
    field.setAttribute('aria-invalid', 'true');
    field.focus({ preventScroll: true });
  }
}

/** Shows a status line and how far the job is (0..1; null leaves the bar where it is). */
function showProgress(text, fraction) {
  $('progress').hidden = false;
  $('progress-text').textContent = text;
  if (fraction != null) $('progress-bar').value = Math.max(0, Math.min(1, fraction));
}

function showPreview(src) {
  const img = $('preview');
  img.hidden = !src;
  if (src) img.src = src;
  else img.removeAttribute('src');
}

const queuedText = (position) => (position === 1 ? 'Queued: next in line' : `Queued: position ${position}`);
/** Denoising takes most of the time, so steps fill the bar from 5% to 95%. */
const stepFraction = (step, total) => 0.05 + (0.9 * step) / Math.max(1, total);

function showStage(stage) {
  showProgress(STAGE_TEXT[stage] || stage, STAGE_FRACTION[stage] ?? null);
}

function setRunning(on) {
  state.running = on;
  $('generate').disabled = on;
  $('generate').textContent = on ? 'Generating…' : 'Generate';
  $('cancel').hidden = !on;
  $('cancel').disabled = false;
}

// ---- following a job ----

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Follows the job's event stream until it ends; returns the finished job, or null when the stream broke off. */
async function followEvents(id) {
  const res = await api(`${jobPath(id)}/events`, { headers: { Accept: 'text/event-stream' } });
  for await (const { event, data } of readEvents(res)) {
    if (event === 'queued') showProgress(queuedText(data.position), 0);
    else if (event === 'started') showProgress('Starting…', 0.02);
    else if (event === 'stage') showStage(data.stage);
    else if (event === 'step') {
      const left = data.seconds > 0 ? (data.total - data.step) * data.seconds : 0;
      const eta = left >= 1 ? ` · about ${Math.round(left)} s left` : '';
      showProgress(`Step ${data.step} of ${data.total}${eta}`, stepFraction(data.step, data.total));
      if (data.preview) showPreview(data.preview);
    } else if (event === 'done') return data;
    else if (event === 'error') return { id, status: 'failed', error: data.message };
    else if (event === 'cancelled') return { id, status: 'cancelled' };
  }
  return null;
}

/** Asks for the job until it has finished: the fallback when the event stream is cut. */
async function pollJob(id) {
  for (;;) {
    const job = await apiJson(jobPath(id));
    if (TERMINAL.has(job.status)) return job;
    const { stage, step, total } = job.progress || {};
    if (job.status === 'queued') showProgress(queuedText(job.position ?? 1), 0);
    else if (stage === 'denoise' && step > 0) showProgress(`Step ${step} of ${total}`, stepFraction(step, total));
    else if (stage) showStage(stage);
    await sleep(1000);
  }
}

async function followJob(id) {
  try {
    const job = await followEvents(id);
    if (job) return job;
  } catch (e) {
    // An answer from the server (404, a refused key) is final; a dropped connection is not: the job may still run.
    if (e instanceof ApiError && e.status !== 0) throw e;
  }
  return pollJob(id);
}

async function cancelJob() {
  if (!state.running) return;
  $('cancel').disabled = true;
  showProgress('Cancelling…', null);
  if (!state.jobId) {
    state.cancelPending = true;
    return;
  }
  try {
    await api(jobPath(state.jobId), { method: 'DELETE' });
  } catch (e) {
    // 409: it finished first; its result is on its way to the gallery.
    if (!(e instanceof ApiError && e.status === 409)) showError(e);
  }
}

async function generate() {
  if (state.running || !state.model) return;
  clearError();
  const body = readForm();
  if (!body) return;
  setRunning(true);
  state.jobId = null;
  state.cancelPending = false;
  showPreview(null);
  showProgress('Submitting…', 0);
  try {
    const submitted = await apiJson('/api/generate', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    state.jobId = submitted.id;
    if (state.cancelPending) void cancelJob();
    else if (submitted.status === 'queued') showProgress(queuedText(submitted.position ?? 1), 0);
    // The seed is fixed at submission (random when none was given): the job says which, so the URL can repeat it.
    const job = await apiJson(jobPath(submitted.id));
    $('seed').value = job.parameters.seed;
    writeUrl(settingsOfJob(job));
    const finished = await followJob(submitted.id);
    if (finished.status === 'done') {
      const n = finished.images.length;
      const took = finished.timings ? ` in ${finished.timings.totalSeconds.toFixed(2)} s` : '';
      showProgress(`Done: ${n} image${n === 1 ? '' : 's'}${took}`, 1);
      await addResults(finished);
    } else if (finished.status === 'cancelled') {
      showProgress('Cancelled', 0);
    } else {
      showProgress('Failed', 0);
      showError(new ApiError(500, `Generation failed: ${finished.error || 'unknown error'}`));
    }
  } catch (e) {
    $('progress').hidden = true;
    showError(e);
  } finally {
    showPreview(null);
    setRunning(false);
    state.jobId = null;
  }
}

// ---- gallery ----

async function imageCard(job, image) {
  const blob = await (await api(`${jobPath(job.id)}/images/${image.index}`)).blob();
  const url = URL.createObjectURL(blob);
  const p = job.parameters;
  const img = el('img', { src: url, alt: image.prompt, width: image.width, height: image.height });
  Object.assign(img.dataset, { seed: p.seed, prompt: image.prompt, index: String(image.index), job: job.id });

  const rows = [
    ['Prompt', image.prompt],
    ['Negative', p.negative],
    ['Seed', job.images.length > 1 ? `${p.seed} (image ${image.index + 1} of ${job.images.length})` : p.seed],
    ['Size', `${image.width} × ${image.height}`],
    ['Steps', String(p.steps)],
    ['Guidance', String(p.guidance)],
    ['Sampler', p.sampler],
    ['Time', job.timings ? `${job.timings.totalSeconds.toFixed(2)} s` : ''],
    ['Note', (job.warnings || []).join(' ')],
  ];
  const params = el('dl', { className: 'params' });
  for (const [name, value] of rows) if (value) params.append(el('dt', { textContent: name }), el('dd', { textContent: value }));

  const download = el('a', { className: 'download button', href: url, download: `sana-${p.seed}-${image.index}.png`, textContent: 'Download' });
  const reuse = el('button', { type: 'button', className: 'reuse', textContent: 'Reuse these settings' });
  reuse.addEventListener('click', () => reuseSettings(job, image.prompt));

  const card = el(
    'article',
    { className: 'result' },
    el('a', { className: 'open', href: url, target: '_blank', rel: 'noopener', title: 'Open full size' }, img),
    params,
    el('div', { className: 'card-actions' }, download, reuse),
  );
  card.objectUrl = url;
  // Inserted only once decoded, so an <img> in the gallery always has its pixels (and natural size).
  await img.decode().catch(() => undefined);
  return card;
}

async function addResults(job) {
  const cards = [];
  for (const image of job.images) cards.push(await imageCard(job, image));
  const gallery = $('gallery');
  gallery.prepend(...cards);
  while (gallery.children.length > MAX_CARDS) {
    URL.revokeObjectURL(gallery.lastElementChild.objectUrl);
    gallery.lastElementChild.remove();
  }
  $('empty').hidden = gallery.children.length > 0;
}

function reuseSettings(job, prompt) {
  const settings = settingsOfJob(job, prompt);
  clearError();
  applySettings(settings);
  writeUrl(settings);
  // On a phone the form is above the gallery, out of sight.
  if (window.matchMedia('(max-width: 800px)').matches) $('form').scrollIntoView({ behavior: 'smooth' });
}

// ---- start ----

function bindEvents() {
  $('form').addEventListener('submit', (e) => {
    e.preventDefault();
    void generate();
  });
  $('form').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void generate();
    }
  });
  $('cancel').addEventListener('click', () => void cancelJob());
  $('key-cancel').addEventListener('click', () => $('key-dialog').close('cancel'));
  $('reroll').addEventListener('click', () => {
    $('seed').value = String(crypto.getRandomValues(new Uint32Array(1))[0]);
    $('random-seed').checked = false;
  });
  // Typing a seed means wanting that seed.
  $('seed').addEventListener('input', () => {
    if ($('seed').value !== '') $('random-seed').checked = false;
  });
  $('model').addEventListener('change', () => {
    const model = state.models.find((m) => m.id === $('model').value);
    if (model) selectModel(model);
  });
}

async function start() {
  bindEvents();
  const settings = readUrl();
  if (settings.run) {
    // run=1 is a one-time instruction: reloading the page must not generate again.
    const q = new URLSearchParams(location.search);
    q.delete('run');
    const rest = q.toString();
    history.replaceState(null, '', rest ? `${location.pathname}?${rest}` : location.pathname);
  }
  try {
    setupModels(await apiJson('/api/models'), settings.model);
  } catch (e) {
    showError(e);
    return;
  }
  applySettings(settings);
  document.body.dataset.ready = 'true';
  if (settings.run) void generate();
}

void start();
