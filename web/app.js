// arbex dashboard: plain ES module, no build step, no network beyond this server.
// Type-checked (npm run typecheck: web/tsconfig.json) against the server's message schemas.
// Streams and jobs are pushed on the WebSocket; nothing here polls the API for them.

/** @typedef {import('../src/server/schemas.js').ServerMessage} ServerMessage */
/** @typedef {import('../src/server/schemas.js').JobInfo} JobInfo */
/** @typedef {import('../src/pipeline/schemas.js').StreamInfo} StreamInfo */
/** @typedef {import('../src/pipeline/schemas.js').FrameOutput} FrameOutput */

const COLORS = ['#8a94a6', '#e5484d', '#46a758', '#8e4ec6', '#f5a524', '#3e63dd', '#12a594', '#d6409f'];
const TIMELINE_MS = 30_000;
const FRAME_REFRESH_MS = 150;

/**
 * The element a selector names; every one the page uses exists in index.html.
 * @template {Element} [T=HTMLElement]
 * @param {string} sel
 * @returns {T}
 */
const $ = (sel) => /** @type {T} */ (document.querySelector(sel));

const state = {
  token: sessionStorage.getItem('arbex-token') || '',
  /** @type {string[]} */
  classes: [],
  /** Every listed stream, as the server last pushed it. @type {StreamInfo[]} */
  streams: [],
  /** @type {JobInfo[]} */
  jobs: [],
  /** @type {string | undefined} */
  selected: undefined,
  /** Latest prediction per stream id. @type {Map<string, FrameOutput>} */
  latest: new Map(),
  /** Per stream: the labels of the last 30 s. @type {Map<string, {t: number, track: number, label: string}[]>} */
  history: new Map(),
  /** @type {WebSocket | undefined} */
  ws: undefined,
  drawPending: false,
};

/** Streams that no longer run; their ✕ removes them from the list. */
const FINISHED = ['ended', 'failed', 'stopped'];

// ---------- HTTP ----------

/** One prompt at a time, however many requests were refused together. @type {Promise<void> | undefined} */
let tokenPrompt;

function askToken() {
  tokenPrompt ??= (async () => {
    const dialog = /** @type {HTMLDialogElement} */ ($('#token-dialog'));
    const form = /** @type {HTMLFormElement} */ ($('#token-form'));
    dialog.showModal();
    await new Promise((resolve) => form.addEventListener('submit', resolve, { once: true }));
    state.token = /** @type {HTMLInputElement} */ (form.elements.namedItem('token')).value.trim();
    sessionStorage.setItem('arbex-token', state.token);
    if (state.ws) connectSocket(true);
  })().finally(() => (tokenPrompt = undefined));
  return tokenPrompt;
}

async function api(path, init = {}) {
  for (;;) {
    const headers = { ...(init.headers || {}) };
    if (state.token) headers.authorization = `Bearer ${state.token}`;
    const res = await fetch(path, { ...init, headers });
    if (res.status !== 401) return res;
    await askToken();
  }
}

/** Shows a failed response's error under a form (hides it on success); true when ok. */
async function showResult(error, res) {
  error.hidden = res.ok;
  if (!res.ok) error.textContent = await errorText(res);
  return res.ok;
}

async function errorText(res) {
  try {
    const body = await res.json();
    return body.detail ? `${body.error}: ${body.detail}` : body.error;
  } catch {
    return `HTTP ${res.status}`;
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    // Through the CSSOM: the Content-Security-Policy refuses style attributes.
    else if (k === 'style') node.style.cssText = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== undefined && c !== null) node.append(c);
  return node;
}

// ---------- streams ----------

/**
 * A stream the server pushed (opened, changed, or its counters moved), or removed (undefined).
 * @param {string} id
 * @param {StreamInfo | undefined} info
 */
function updateStream(id, info) {
  const i = state.streams.findIndex((s) => s.id === id);
  if (info && i >= 0) state.streams[i] = info;
  else if (info) state.streams.push(info);
  else if (i >= 0) state.streams.splice(i, 1);
  if (!state.streams.some((s) => s.id === state.selected)) select(state.streams[0]?.id);
  renderStreams();
}

function renderStreams() {
  const list = $('#streams');
  list.replaceChildren();
  if (!state.streams.length) list.append(el('li', { class: 'empty' }, 'No streams yet.'));
  for (const s of state.streams) {
    const item = el(
      'li',
      { class: `stream${s.id === state.selected ? ' selected' : ''}`, 'data-id': s.id, onclick: () => select(s.id) },
      el('div', { class: 'stream-main' }, el('span', { class: 'name' }, s.name), el('span', { class: `badge ${s.state}` }, s.state)),
      el(
        'div',
        { class: 'stream-meta' },
        `${s.fpsIn.toFixed(1)} fps in · ${s.fpsOut.toFixed(1)} out · ${s.faces} face${s.faces === 1 ? '' : 's'}${s.drops ? ` · ${s.drops} dropped` : ''}`,
      ),
      s.lastError ? el('div', { class: 'stream-error' }, s.lastError) : undefined,
      FINISHED.includes(s.state)
        ? el('button', { class: 'icon', title: 'Remove this stream', onclick: (/** @type {Event} */ e) => (e.stopPropagation(), removeStream(s.id)) }, '✕')
        : el('button', { class: 'icon', title: 'Stop this stream', onclick: (/** @type {Event} */ e) => (e.stopPropagation(), stopStream(s.id)) }, '■'),
    );
    list.append(item);
  }
  const s = state.streams.find((x) => x.id === state.selected);
  $('#view-title').textContent = s ? s.name : 'Live view';
  $('#view-meta').textContent = s ? `${s.source} · ${s.state}` : '';
}

function select(id) {
  if (state.selected === id) return;
  state.selected = id;
  $('#frame').removeAttribute('src');
  $('#no-frame').hidden = Boolean(id);
  renderStreams();
  scheduleDraw();
}

/** Stops a stream; it stays listed, stopped, until removed. The new state comes on the WebSocket. @param {string} id */
async function stopStream(id) {
  await api(`/api/streams/${encodeURIComponent(id)}/stop`, { method: 'POST' });
}

/** @param {string} id */
async function removeStream(id) {
  await api(`/api/streams/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

$('#add-stream').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = /** @type {{source: HTMLInputElement, name: HTMLInputElement, fps: HTMLInputElement, reset(): void}} */ (/** @type {unknown} */ (e.currentTarget));
  const body = { source: form.source.value.trim() };
  if (form.name.value.trim()) body.name = form.name.value.trim();
  if (form.fps.value) body.fps = Number(form.fps.value);
  const error = $('#add-error');
  const res = await api('/api/streams', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!(await showResult(error, res))) return;
  form.reset();
  const { id } = await res.json();
  select(id);
});

// ---------- live frame ----------

async function frameLoop() {
  const img = /** @type {HTMLImageElement} */ ($('#frame'));
  for (;;) {
    const id = state.selected;
    if (id) {
      const res = await api(`/api/streams/${encodeURIComponent(id)}/frame.jpg`).catch(() => undefined);
      if (res?.ok && id === state.selected) {
        const url = URL.createObjectURL(await res.blob());
        await new Promise((resolve) => {
          img.onload = img.onerror = resolve;
          img.src = url;
        });
        URL.revokeObjectURL(url);
        $('#no-frame').hidden = true;
        drawOverlay();
      }
    }
    await new Promise((r) => setTimeout(r, FRAME_REFRESH_MS));
  }
}

function drawOverlay() {
  const img = /** @type {HTMLImageElement} */ ($('#frame'));
  const canvas = /** @type {HTMLCanvasElement} */ ($('#overlay'));
  const ratio = window.devicePixelRatio || 1;
  // The canvas has screen resolution, so labels stay crisp however small the frame is.
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(canvas.clientHeight * ratio);
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, canvas.clientWidth, canvas.clientHeight);
  const out = state.selected && state.latest.get(state.selected);
  if (!out || !img.naturalWidth) return;
  // Where the image really is inside its box (object-fit: contain letterboxes it).
  const ir = img.getBoundingClientRect();
  const cr = canvas.getBoundingClientRect();
  const k = Math.min(ir.width / img.naturalWidth, ir.height / img.naturalHeight);
  const ox = ir.left - cr.left + (ir.width - img.naturalWidth * k) / 2;
  const oy = ir.top - cr.top + (ir.height - img.naturalHeight * k) / 2;
  ctx.lineWidth = 2.5;
  ctx.font = '600 13px system-ui, sans-serif';
  for (const f of out.results) {
    const color = COLORS[state.classes.indexOf(f.smoothedLabel) % COLORS.length] || '#fff';
    const x = ox + f.box.x * k;
    const y = oy + f.box.y * k;
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, f.box.w * k, f.box.h * k);
    const text = `#${f.track} ${f.smoothedLabel} ${(f.confidence * 100).toFixed(0)}%`;
    const w = ctx.measureText(text).width + 12;
    const ty = y > 22 ? y - 22 : y;
    ctx.fillStyle = color;
    ctx.fillRect(x - 1.25, ty, w, 22);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, x + 5, ty + 15.5);
  }
}

// ---------- faces: bars and confidence ----------

function renderFaces() {
  const box = $('#faces');
  const out = state.selected && state.latest.get(state.selected);
  if (!out || !out.results.length) {
    if (!box.querySelector('.empty')) box.replaceChildren(el('p', { class: 'empty' }, 'No face in view.'));
    return;
  }
  box.dataset.frame = String(out.frame);
  const cards = out.results.map((f) => {
    const rows = state.classes.map((name, i) =>
      el(
        'div',
        { class: `bar-row${f.corrected[i] === Math.max(...f.corrected) ? ' top' : ''}` },
        el('span', { class: 'bar-name' }, name),
        el(
          'span',
          { class: 'bars' },
          el('span', { class: 'bar corrected', style: `width:${(f.corrected[i] * 100).toFixed(1)}%;background:${COLORS[i % COLORS.length]}` }),
          el('span', { class: 'bar primary', style: `width:${(f.primary[i] * 100).toFixed(1)}%` }),
        ),
        el('span', { class: 'bar-value' }, `${(f.corrected[i] * 100).toFixed(0)}%`),
      ),
    );
    const conf = Math.max(0, Math.min(1, f.confidence));
    return el(
      'div',
      { class: 'face', 'data-track': String(f.track) },
      el('div', { class: 'face-head' }, el('span', { class: 'track' }, `#${f.track}`), el('span', { class: 'label' }, f.label), el('span', { class: 'smoothed' }, `smoothed: ${f.smoothedLabel}`)),
      el(
        'div',
        { class: 'meter', title: 'confidence of the corrected distribution' },
        el('span', { class: 'meter-name' }, 'confidence'),
        el('span', { class: 'meter-track' }, el('span', { class: 'meter-fill', style: `width:${(conf * 100).toFixed(1)}%;background:hsl(${conf * 120},65%,45%)` })),
        el('span', { class: 'meter-value' }, `${(conf * 100).toFixed(0)}%`),
      ),
      ...rows,
    );
  });
  box.replaceChildren(...cards);
}

// ---------- timeline ----------

function renderLegend() {
  $('#legend').replaceChildren(
    ...state.classes.map((name, i) => el('span', { class: 'legend-item' }, el('span', { class: 'swatch', style: `background:${COLORS[i % COLORS.length]}` }), name)),
  );
}

function drawTimeline() {
  const canvas = /** @type {HTMLCanvasElement} */ ($('#timeline'));
  const width = canvas.clientWidth;
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(160 * ratio);
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, 160);
  const now = Date.now();
  const history = (state.selected && state.history.get(state.selected)) || [];
  const tracks = [...new Set(history.map((h) => h.track))].slice(-4);
  const left = 44;
  const plot = width - left - 8;
  const rowH = tracks.length ? Math.min(30, 124 / tracks.length) : 30;
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillStyle = '#6b7280';
  ctx.strokeStyle = '#e5e7eb';
  for (let s = 0; s <= 30; s += 5) {
    const x = left + plot * (1 - s / 30);
    ctx.beginPath();
    ctx.moveTo(x, 4);
    ctx.lineTo(x, 134);
    ctx.stroke();
    ctx.fillText(s === 0 ? 'now' : `-${s}s`, x - (s === 0 ? 20 : 12), 152);
  }
  tracks.forEach((track, row) => {
    const y = 8 + row * rowH;
    ctx.fillStyle = '#374151';
    ctx.fillText(`#${track}`, 6, y + rowH / 2 + 4);
    const points = history.filter((h) => h.track === track);
    for (let i = 0; i < points.length; i++) {
      const p = points[i];
      const next = points[i + 1];
      // A gap of more than half a second means the face was not seen: leave it blank.
      const end = next && next.t - p.t < 500 ? next.t : p.t + 100;
      const x0 = left + plot * (1 - (now - p.t) / TIMELINE_MS);
      const x1 = left + plot * (1 - (now - Math.min(end, now)) / TIMELINE_MS);
      ctx.fillStyle = COLORS[state.classes.indexOf(p.label) % COLORS.length] || '#999';
      ctx.fillRect(Math.max(left, x0), y, Math.max(1, x1 - Math.max(left, x0)), rowH - 6);
    }
  });
  if (!tracks.length) {
    ctx.fillStyle = '#9ca3af';
    ctx.fillText('No faces in the last 30 s.', left + 8, 70);
  }
}

function scheduleDraw() {
  if (state.drawPending) return;
  state.drawPending = true;
  requestAnimationFrame(() => {
    state.drawPending = false;
    renderFaces();
    drawOverlay();
    drawTimeline();
  });
}

// ---------- WebSocket ----------

function setConn(s, text) {
  $('#conn').dataset.state = s;
  $('#conn-text').textContent = text;
}

function connectSocket(restart = false) {
  if (restart && state.ws) state.ws.close();
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : '';
  const ws = new WebSocket(`${proto}://${location.host}/ws${query}`);
  state.ws = ws;
  ws.onopen = () => {
    setConn('live', 'live');
    // The server answers with every stream and job as they are now, then every change.
    state.streams = [];
    state.jobs = [];
    ws.send(JSON.stringify({ type: 'subscribe', stream: '*' }));
    ws.send(JSON.stringify({ type: 'subscribe-jobs' }));
  };
  ws.onmessage = (e) => {
    const msg = /** @type {ServerMessage} */ (JSON.parse(e.data));
    if (msg.type === 'prediction') {
      state.latest.set(msg.stream, msg);
      const now = Date.now();
      const h = state.history.get(msg.stream) || [];
      for (const f of msg.results) h.push({ t: now, track: f.track, label: f.smoothedLabel });
      while (h.length && now - h[0].t > TIMELINE_MS) h.shift();
      state.history.set(msg.stream, h);
      if (msg.stream === state.selected) scheduleDraw();
    } else if (msg.type === 'stream') {
      updateStream(msg.stream, msg.info);
    } else if (msg.type === 'stream-removed') {
      updateStream(msg.stream, undefined);
    } else if (msg.type === 'job') {
      updateJob(msg.job.id, msg.job);
    } else if (msg.type === 'job-removed') {
      updateJob(msg.job, undefined);
    }
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    setConn('down', 'reconnecting…');
    setTimeout(() => state.ws === ws && connectSocket(), 1000);
  };
}

// ---------- jobs ----------

/**
 * A job the server pushed, or removed (undefined).
 * @param {string} id
 * @param {JobInfo | undefined} job
 */
function updateJob(id, job) {
  const i = state.jobs.findIndex((j) => j.id === id);
  if (job && i >= 0) state.jobs[i] = job;
  else if (job) state.jobs.push(job);
  else if (i >= 0) state.jobs.splice(i, 1);
  renderJobs();
}

function fmtEta(s) {
  if (s === undefined) return '';
  return s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s left` : `${Math.round(s)} s left`;
}

async function download(job, kind) {
  const res = await api(`/api/jobs/${job.id}/labels.${kind}`);
  if (!res.ok) return;
  const url = URL.createObjectURL(await res.blob());
  const a = el('a', { href: url, download: `${job.name.replace(/\.[^.]*$/, '')}.labels.${kind}` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function renderJobs() {
  const list = $('#jobs');
  list.replaceChildren();
  if (!state.jobs.length) list.append(el('li', { class: 'empty' }, 'No jobs yet.'));
  for (const job of [...state.jobs].reverse()) {
    const pct = job.progress !== undefined ? job.progress * 100 : job.state === 'done' ? 100 : 0;
    const frames = job.framesTotal ? `${job.framesDone} / ${job.framesTotal} frames` : `${job.framesDone} frames`;
    list.append(
      el(
        'li',
        { class: `job ${job.state}`, 'data-id': job.id },
        el('div', { class: 'stream-main' }, el('span', { class: 'name' }, job.name), el('span', { class: `badge ${job.state}` }, job.state)),
        el('div', { class: 'progress' }, el('span', { style: `width:${pct.toFixed(1)}%` })),
        el('div', { class: 'stream-meta' }, `${frames}${job.state === 'running' ? ` · ${fmtEta(job.etaSeconds)}` : ''}`),
        job.error ? el('div', { class: 'stream-error' }, job.error) : undefined,
        job.state === 'done'
          ? el(
              'div',
              { class: 'downloads' },
              el('button', { class: 'link', onclick: () => download(job, 'csv') }, 'labels.csv'),
              el('button', { class: 'link', onclick: () => download(job, 'jsonl') }, 'labels.jsonl'),
            )
          : undefined,
        el('button', { class: 'icon', title: job.state === 'running' ? 'Cancel' : 'Remove', onclick: () => removeJob(job.id) }, '✕'),
      ),
    );
  }
}

/** @param {string} id */
async function removeJob(id) {
  await api(`/api/jobs/${id}`, { method: 'DELETE' });
}

$('#upload').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = /** @type {HTMLFormElement} */ (e.currentTarget);
  const file = /** @type {HTMLInputElement} */ (form.elements.namedItem('file')).files?.[0];
  if (!file) return;
  const error = $('#upload-error');
  const body = new FormData();
  body.append('name', file.name);
  body.append('file', file, file.name);
  const button = /** @type {HTMLButtonElement} */ (form.querySelector('button'));
  button.disabled = true;
  button.textContent = 'Uploading…';
  const res = await api('/api/jobs', { method: 'POST', body }).finally(() => {
    button.disabled = false;
    button.textContent = 'Upload and label';
  });
  if (!(await showResult(error, res))) return;
  form.reset();
});

// ---------- start ----------

async function start() {
  const res = await api('/api/info');
  const info = await res.json();
  state.classes = info.classes;
  renderLegend();
  connectSocket();
  // The timeline scrolls with the clock, so it is redrawn even when nothing arrives.
  setInterval(drawTimeline, 250);
  frameLoop();
}

start();
