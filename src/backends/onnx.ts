/**
 * ONNX Runtime as an inference engine beside tfjs: the one module that imports onnxruntime-node.
 *
 * A model describes its inference graph as plain data (`GraphSpec`: ONNX operators, float32 and
 * int64 initializers, one input and one output); `createOnnxEngine` writes it as an ONNX
 * ModelProto in memory (a minimal protobuf writer, no .onnx file on disk) and opens an
 * onnxruntime-node session on the CPU execution provider. onnxruntime-node is loaded lazily, so
 * a machine where its native binding does not load still runs everything on tfjs
 * (`chooseEngine` says why, in one log line, as initBackend does for tfjs backends).
 *
 * @example
 *   const choice = await chooseEngine(settings.engine);          // 'onnx' unless it cannot load
 *   const engine = await createOnnxEngine(graph, { threads: 1 });
 *   const out = await engine.run({ data, shape: [3, 48, 48, 3] }); // { data, shape: [3, 192] }
 *   engine.dispose();
 */
import type { Batch } from './worker-pool.js';

/** Which engine runs a model's extractor: onnxruntime-node, or tfjs (the current tfjs backend). */
export type EngineName = 'onnx' | 'tfjs';

/** One ONNX node. Attribute values: an integer → INT, another number → FLOAT, a number list → INTS, a string → STRING. */
export interface GraphNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, number | number[] | string>;
}

/** A constant of the graph: float32 weights or int64 shapes/indices. */
export interface GraphTensor {
  name: string;
  dims: number[];
  data: Float32Array | BigInt64Array;
}

/** A float32 graph input or output; a string dimension is symbolic (e.g. the batch). */
export interface GraphValue {
  name: string;
  dims: (number | string)[];
}

export interface GraphSpec {
  name: string;
  /** Opset of the default ONNX domain the nodes are written for. */
  opset: number;
  input: GraphValue;
  output: GraphValue;
  nodes: GraphNode[];
  initializers: GraphTensor[];
}

// ---------------------------------------------------------------------------------------------
// A minimal protobuf writer for the few ONNX messages a GraphSpec needs (onnx.proto3 field numbers).

class Writer {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private push(b: Uint8Array) {
    this.chunks.push(b);
    this.size += b.length;
  }
  private varint(v: bigint) {
    // int64 fields: negative numbers are written as their 64-bit two's complement (10 bytes).
    let u = BigInt.asUintN(64, v);
    const out: number[] = [];
    while (u >= 0x80n) {
      out.push(Number(u & 0x7fn) | 0x80);
      u >>= 7n;
    }
    out.push(Number(u));
    this.push(Uint8Array.from(out));
  }
  private tag(field: number, wire: number) {
    this.varint(BigInt((field << 3) | wire));
  }
  int(field: number, v: number | bigint) {
    this.tag(field, 0);
    this.varint(BigInt(v));
    return this;
  }
  float(field: number, v: number) {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }
  bytes(field: number, b: Uint8Array) {
    this.tag(field, 2);
    this.varint(BigInt(b.length));
    this.push(b);
    return this;
  }
  string(field: number, s: string) {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  message(field: number, build: (w: Writer) => void) {
    const w = new Writer();
    build(w);
    return this.bytes(field, w.finish());
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

const FLOAT = 1;
const INT64 = 7;

function writeTensor(w: Writer, t: GraphTensor) {
  const expected = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== expected) throw new Error(`onnx graph: initializer "${t.name}" has ${t.data.length} values for dims [${t.dims}]`);
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.data instanceof Float32Array ? FLOAT : INT64);
  w.string(8, t.name);
  // raw_data is little-endian, as typed arrays are on every platform Node runs on here.
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

function writeValue(w: Writer, v: GraphValue) {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, FLOAT);
      tensor.message(2, (shape) => {
        for (const d of v.dims) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      });
    }),
  );
}

function writeAttr(w: Writer, name: string, v: number | number[] | string) {
  w.string(1, name);
  if (typeof v === 'string') w.bytes(4, new TextEncoder().encode(v)).int(20, 3);
  else if (Array.isArray(v)) {
    for (const x of v) w.int(8, x);
    w.int(20, 7);
  } else if (Number.isInteger(v)) w.int(3, v).int(20, 2);
  else w.float(2, v).int(20, 1);
}

/** The ONNX ModelProto bytes of a graph (what an .onnx file holds). */
export function encodeOnnxModel(g: GraphSpec): Uint8Array {
  const m = new Writer();
  m.int(1, 8); // ir_version 8 (opsets up to 18)
  m.string(2, 'arbex');
  m.message(7, (graph) => {
    g.nodes.forEach((n, i) =>
      graph.message(1, (node) => {
        for (const x of n.inputs) node.string(1, x);
        for (const x of n.outputs) node.string(2, x);
        node.string(3, `${n.op}_${i}`);
        node.string(4, n.op);
        for (const [k, v] of Object.entries(n.attrs ?? {})) node.message(5, (a) => writeAttr(a, k, v));
      }),
    );
    graph.string(2, g.name);
    for (const t of g.initializers) graph.message(5, (tensor) => writeTensor(tensor, t));
    graph.message(11, (v) => writeValue(v, g.input));
    graph.message(12, (v) => writeValue(v, g.output));
  });
  m.message(8, (op) => op.string(1, '').int(2, g.opset));
  return m.finish();
}

// ---------------------------------------------------------------------------------------------

type Ort = typeof import('onnxruntime-node');

let ortModule: Promise<Ort> | undefined;

/** Loads onnxruntime-node once per thread; rejects when its native binding cannot load. */
function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node').then((m) => ((m as { default?: Ort }).default ?? m) as Ort);
  ortModule.catch(() => (ortModule = undefined));
  return ortModule;
}

export interface EngineChoice {
  name: EngineName;
  /** Why onnx was not used, when it was wanted and tfjs runs instead. */
  skipped?: string;
  /** onnxruntime-node's version when name is 'onnx'. */
  version?: string;
}

export interface ChooseEngineOptions {
  /** Where the one-line fallback report goes (default: stderr); false silences it. */
  log?: ((line: string) => void) | false;
}

function reason(e: unknown): string {
  const err = e as { code?: string; message?: string };
  if (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') return 'not installed';
  return String(err.message ?? e).split('\n')[0]!;
}

/**
 * Which engine to run a model's extractor on. `force` is the user's choice (settings.engine, from
 * ARBEX_ENGINE): 'tfjs' never loads onnxruntime-node; 'onnx' throws when it cannot load; without
 * it onnx is used when it loads, else tfjs with one log line saying why.
 */
export async function chooseEngine(force?: EngineName, options: ChooseEngineOptions = {}): Promise<EngineChoice> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  if (force === 'tfjs') return { name: 'tfjs' };
  try {
    const ort = await loadOrt();
    return { name: 'onnx', version: ort.env.versions?.common };
  } catch (e) {
    if (force === 'onnx') throw new Error(`inference engine "onnx" is not available (onnxruntime-node: ${reason(e)})`);
    const skipped = `onnxruntime-node: ${reason(e)}`;
    if (log) log(`arbex: engine tfjs (skipped ${skipped})`);
    return { name: 'tfjs', skipped };
  }
}

export interface OnnxEngineOptions {
  /** Intra-op threads of the session (default 1: parallelism comes from worker threads and streams). */
  threads: number;
}

/** A graph opened in onnxruntime-node: one float32 input batch in, one float32 batch out. */
export interface OnnxEngine {
  readonly name: 'onnx';
  run(input: Batch): Promise<Batch>;
  dispose(): Promise<void>;
}

/**
 * Opens `graph` in an onnxruntime-node session on the CPU execution provider.
 * Throws when onnxruntime-node cannot load (call chooseEngine first to fall back to tfjs).
 */
export async function createOnnxEngine(graph: GraphSpec, options: Partial<OnnxEngineOptions> = {}): Promise<OnnxEngine> {
  const { threads } = { threads: 1, ...options };
  const ort = await loadOrt();
  const session = await ort.InferenceSession.create(encodeOnnxModel(graph), {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inputName = graph.input.name;
  const outputName = graph.output.name;
  return {
    name: 'onnx',
    async run(input) {
      const x = new ort.Tensor('float32', input.data, input.shape);
      const out = await session.run({ [inputName]: x });
      const y = out[outputName]!;
      return { data: y.data as Float32Array, shape: [...y.dims] };
    },
    dispose: () => session.release(),
  };
}
