import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { ServerMessage } from '../../src/server/schemas.js';
import { upgradeStatus } from '../support/ws.js';
import { sleep, startTestServer, waitFor } from './helpers.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;
type Msg = { type: string; [k: string]: unknown };

/** A client that validates and records every server message. */
async function connect(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, { headers });
  const messages: Msg[] = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as Msg;
    ServerMessage.parse(msg);
    messages.push(msg);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const send = (m: unknown) => ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  /** Round-trips a ping, so everything sent before it has been handled. */
  const barrier = async () => {
    const pongs = messages.filter((m) => m.type === 'pong').length;
    send({ type: 'ping' });
    await waitFor(() => messages.filter((m) => m.type === 'pong').length > pongs, 15_000, 'pong');
  };
  const of = (type: string) => messages.filter((m) => m.type === type);
  return { ws, messages, send, barrier, of };
}

async function openStream(t: Server, name: string): Promise<string> {
  const res = await t.api('/api/streams', { method: 'POST', json: { source: `rtsp://cam/${name}`, name } });
  return ((await res.json()) as { id: string }).id;
}

describe('WebSocket messages', () => {
  let t: Server;
  before(async () => {
    t = await startTestServer({ fake: { intervalMs: 20 } });
  });
  after(() => t.close());

  it('subscribes to one stream, receives its state then predictions, and unsubscribes', async () => {
    const a = await openStream(t, 'a');
    const b = await openStream(t, 'b');
    const c = await connect(t.wsUrl);
    c.send({ type: 'subscribe', stream: a });
    await waitFor(() => c.of('prediction').length >= 5, 15_000, 'predictions');
    // b produced frames meanwhile, so that none of them arrived says something.
    await waitFor(() => t.engine.streams().find((h) => h.id === b)!.info().framesOut >= 5, 15_000, 'frames of b');
    assert.equal(c.messages[0]!.type, 'stream');
    assert.equal(c.messages[0]!.stream, a);
    assert.ok(c.of('prediction').every((m) => m.stream === a), 'only the subscribed stream');
    const frames = c.of('prediction').map((m) => m.frame as number);
    assert.deepEqual(frames, frames.map((_, i) => frames[0]! + i), 'every frame, in order');
    c.send({ type: 'unsubscribe', stream: a });
    await c.barrier();
    const count = c.of('prediction').length;
    await sleep(150);
    assert.equal(c.of('prediction').length, count, 'nothing after unsubscribe');
    c.ws.close();
  });

  it('subscribes to every stream with *, including streams opened later, and reports state changes', async () => {
    const c = await connect(t.wsUrl);
    c.send({ type: 'subscribe', stream: '*' });
    await c.barrier();
    const late = await openStream(t, 'late');
    await waitFor(() => new Set(c.of('prediction').map((m) => m.stream)).size >= 3, 15_000, 'three streams');
    assert.ok(c.of('prediction').some((m) => m.stream === late));
    // The list is pushed: the stream's opening (with its info), its stop, and its removal.
    const opened = c.of('stream').find((m) => m.stream === late);
    assert.deepEqual([(opened?.info as { name?: string })?.name, opened?.state], ['late', 'connecting']);
    assert.equal((await t.api(`/api/streams/${late}/stop`, { method: 'POST' })).status, 200);
    await waitFor(() => c.of('stream').some((m) => m.stream === late && m.state === 'stopped'), 15_000, 'stopped state');
    assert.equal(c.of('stream-removed').length, 0, 'a stopped stream stays listed');
    assert.equal((await t.api(`/api/streams/${late}`, { method: 'DELETE' })).status, 204);
    await waitFor(() => c.of('stream-removed').some((m) => m.stream === late), 15_000, 'removal');
    c.send({ type: 'unsubscribe', stream: '*' });
    await c.barrier();
    const count = c.of('prediction').length;
    await sleep(150);
    assert.equal(c.of('prediction').length, count);
    c.ws.close();
  });

  it('pushes the jobs to clients that subscribe to them: the list, then every change until done and removed', async () => {
    const plain = await connect(t.wsUrl);
    const c = await connect(t.wsUrl);
    c.send({ type: 'subscribe-jobs' });
    await c.barrier();
    assert.equal(c.of('job').length, 0, 'no jobs yet');
    const form = new FormData();
    form.append('file', new Blob(['FAKEVIDEO 40']), 'clip.mp4');
    const res = await t.api('/api/jobs', { method: 'POST', body: form });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    const jobStates = () => c.of('job').map((m) => m.job as { id: string; state: string; framesDone: number }).filter((j) => j.id === id);
    await waitFor(() => jobStates().some((j) => j.state === 'done'), 15_000, 'done pushed');
    assert.deepEqual([...new Set(jobStates().map((j) => j.state))], ['queued', 'running', 'done']);
    assert.equal(jobStates().at(-1)!.framesDone, 40);
    // A client that subscribes later gets the list first.
    const late = await connect(t.wsUrl);
    late.send({ type: 'subscribe-jobs' });
    await late.barrier();
    assert.deepEqual(late.of('job').map((m) => (m.job as { id: string; state: string }).state), ['done']);
    assert.equal((await t.api(`/api/jobs/${id}`, { method: 'DELETE' })).status, 200);
    await waitFor(() => c.of('job-removed').some((m) => m.job === id), 15_000, 'removal pushed');
    await plain.barrier();
    assert.equal(plain.of('job').length + plain.of('job-removed').length, 0, 'only subscribers hear of jobs');
    for (const x of [plain, c, late]) x.ws.close();
  });

  it('answers ping, and reports malformed and unknown messages without disconnecting', async () => {
    const c = await connect(t.wsUrl);
    c.send({ type: 'ping' });
    await waitFor(() => c.of('pong').length === 1, 15_000, 'pong');
    const bad: [unknown, string][] = [
      ['{not json', 'bad message'],
      ['"just a string"', 'bad message'],
      ['null', 'bad message'],
      [{ type: 'dance' }, 'unknown type'],
      [{ type: 'subscribe' }, 'bad message'],
      [{ type: 'subscribe', stream: 7 }, 'bad message'],
      [{ type: 'subscribe', stream: 'no-such-stream' }, 'unknown stream'],
      [{ noType: true }, 'bad message'],
    ];
    for (const [m] of bad) c.send(m);
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await c.barrier();
    const errors = c.of('error');
    assert.deepEqual(errors.map((e) => e.error), [...bad.map(([, e]) => e), 'bad message']);
    assert.ok(errors.every((e) => typeof e.detail === 'string'));
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    c.ws.close();
  });

  it('refuses other paths', async () => {
    assert.equal(await upgradeStatus(t.wsUrl.replace('/ws', '/other')), 404);
  });
});

describe('WebSocket auth', () => {
  let t: Server;
  before(async () => {
    t = await startTestServer({ token: 'tok' });
  });
  after(() => t.close());

  it('requires the token in the Authorization header or the query', async () => {
    assert.equal(await upgradeStatus(t.wsUrl), 401);
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=nope`), 401);
    assert.equal(await upgradeStatus(t.wsUrl, { authorization: 'Bearer nope' }), 401);
    assert.equal(await upgradeStatus(t.wsUrl, { authorization: 'Bearer tok' }), 101);
    assert.equal(await upgradeStatus(`${t.wsUrl}?token=tok`), 101);
  });
});

describe('WebSocket back-pressure and heartbeat', () => {
  it('bounds a paused client while a normal client receives every frame', async (ctx) => {
    const maxBufferedBytes = 256 * 1024;
    const maxQueue = 16;
    // Frames every ~2 ms with 30 faces (≈16 KB each): far more than the paused socket's buffers hold.
    const t = await startTestServer({ fake: { intervalMs: 2, facesPerFrame: 30 }, ws: { maxBufferedBytes, maxQueue, heartbeatMs: 60_000 } });
    try {
      const id = await openStream(t, 'fast');
      const normal = await connect(t.wsUrl);
      const slow = await connect(t.wsUrl);
      normal.send({ type: 'subscribe', stream: id });
      slow.send({ type: 'subscribe', stream: id });
      await waitFor(() => slow.of('prediction').length >= 3, 15_000, 'first frames');
      const slowSocket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      slowSocket.pause();
      // Clients get increasing ids: the slow one connected last.
      const slowId = Math.max(...t.server.hub.clientStats().map((s) => s.id));
      let maxQueued = 0;
      let maxBuffered = 0;
      let maxMessage = 0;
      // Run until the paused client has lost a good number of frames (fast on an idle machine,
      // slower on a loaded one), watching its memory all along.
      const end = Date.now() + 20_000;
      let stats = t.server.hub.clientStats().find((c) => c.id === slowId)!;
      while (stats.dropped < 50 && Date.now() < end) {
        maxQueued = Math.max(maxQueued, stats.queued);
        maxBuffered = Math.max(maxBuffered, stats.bufferedAmount);
        await sleep(25);
        stats = t.server.hub.clientStats().find((c) => c.id === slowId)!;
      }
      for (const m of normal.of('prediction')) maxMessage = Math.max(maxMessage, JSON.stringify(m).length);
      assert.ok(stats.dropped >= 50, `the paused client lost frames (stats ${JSON.stringify(stats)})`);
      assert.ok(maxQueued <= maxQueue, `queue ${maxQueued} <= ${maxQueue}`);
      assert.ok(maxBuffered < maxBufferedBytes + 2 * maxMessage, `buffered ${maxBuffered} bytes stays bounded`);
      ctx.diagnostic(`paused client: ${stats.dropped} dropped, max queue ${maxQueued}, max buffered ${maxBuffered} B (message ${maxMessage} B)`);
      // Stop the stream, so both clients end on the same last frame.
      assert.equal((await t.api(`/api/streams/${id}`, { method: 'DELETE' })).status, 204);
      await normal.barrier();
      const all = normal.of('prediction').map((m) => m.frame as number);
      assert.ok(all.length > stats.dropped, `the normal client got ${all.length} frames`);
      assert.deepEqual(all, all.map((_, i) => all[0]! + i), 'the normal client received every frame, in order');
      assert.equal(normal.of('dropped').length, 0);

      slowSocket.resume();
      await slow.barrier();
      const got = slow.of('prediction').map((m) => m.frame as number);
      const dropped = slow.of('dropped').reduce((n, m) => n + (m.count as number), 0);
      assert.ok(dropped > 0);
      assert.equal(dropped, t.server.hub.clientStats().find((c) => c.id === slowId)!.dropped);
      // Every frame the stream produced after the subscription was either delivered or reported.
      assert.equal(got.length + dropped, all[all.length - 1]! - got[0]! + 1);
      assert.ok(got.every((f, i) => i === 0 || f > got[i - 1]!), 'delivered frames stay in order');
      normal.ws.close();
      slow.ws.close();
    } finally {
      await t.close();
    }
  });

  it('drops a client that stops answering pings, and keeps one that answers', async () => {
    // Long enough that a busy event loop does not make a live client miss its pong.
    const t = await startTestServer({ ws: { heartbeatMs: 400 } });
    try {
      const live = await connect(t.wsUrl);
      const dead = await connect(t.wsUrl);
      await waitFor(() => t.server.hub.stats().clients === 2, 15_000, 'two clients');
      (dead.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      await waitFor(() => t.server.hub.stats().clients === 1, 15_000, 'dead client dropped');
      assert.ok(t.server.hub.stats().clientsTimedOut >= 1);
      await sleep(1000);
      assert.equal(t.server.hub.stats().clients, 1, 'the answering client stays');
      assert.equal(live.ws.readyState, WebSocket.OPEN);
      await live.barrier();
      live.ws.close();
      dead.ws.terminate();
    } finally {
      await t.close();
    }
  });
});
