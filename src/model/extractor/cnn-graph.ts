/**
 * The cnn extractor's inference pass as a plain ONNX graph description (src/backends/onnx.ts
 * writes and runs it): the same computation as `createCnnExtractor(...).forward` at inference,
 *   images [B, S, S, 3] in [0, 1] → grey (MatMul by LUMA) → (grey - greyMean) / greyStd
 *   → NCHW [B, 1, S, S] (a Reshape: one channel) → with mirror 'average', Concat of the face and
 *   its left-right flip (Slice with step -1) on the batch axis
 *   → stem Conv + Relu → basic blocks (Conv + Relu, Conv, shortcut Conv or identity, Add, Relu)
 *   → GlobalAveragePool → [B, D] (mirror: Reshape [2, B, D] and ReduceMean over the first axis).
 * BatchNorm is folded into each conv's weights and bias exactly as `fusedConvBn` folds it at
 * inference (float32 at every step), so both engines see the same constants.
 */
import type { GraphNode, GraphSpec, GraphTensor } from '../../backends/onnx.js';
import type { ParamStore } from '../nn/params.js';
import { LUMA, type CnnConfig } from './cnn.js';
import { BN_EPS } from './parts.js';

const f32 = Math.fround;

/**
 * The graph of a cnn extractor built in `store` under `name`, with the weights the store holds now
 * (a later change of the weights needs a new graph).
 *
 * @example
 *   const graph = cnnGraph(model.store, model.config.extractor as CnnConfig, 'extractor');
 *   const engine = await createOnnxEngine(graph);     // src/backends/onnx.ts
 */
export function cnnGraph(store: ParamStore, cfg: CnnConfig, name: string): GraphSpec {
  const nodes: GraphNode[] = [];
  const initializers: GraphTensor[] = [];
  const values = (n: string): Float32Array => {
    const v = store.vars.get(n);
    if (!v) throw new Error(`cnn graph: parameter "${n}" is missing`);
    return v.dataSync() as Float32Array;
  };
  const constant = (n: string, dims: number[], data: Float32Array | BigInt64Array) => {
    initializers.push({ name: n, dims, data });
    return n;
  };
  const ints = (n: string, v: number[] | bigint[]) => constant(n, [v.length], BigInt64Array.from(v.map((x) => BigInt(x))));
  let count = 0;
  const node = (op: string, inputs: string[], attrs?: GraphNode['attrs']) => {
    const out = `t${count++}`;
    nodes.push({ op, inputs, outputs: [out], ...(attrs && { attrs }) });
    return out;
  };

  /** Conv (tfjs weights [k, k, in, out]) with its BatchNorm folded: ONNX Conv [out, in, k, k] + bias. */
  const convBn = (x: string, conv: string, bn: string, inCh: number, outCh: number, kernel: 1 | 3, stride: 1 | 2) => {
    const w = values(`${conv}.weight`);
    const [gamma, beta, mean, variance] = ['gamma', 'beta', 'movingMean', 'movingVar'].map((k) => values(`${bn}.${k}`)) as Float32Array[];
    const convBias = store.vars.has(`${conv}.bias`) ? values(`${conv}.bias`) : undefined;
    const eps = f32(BN_EPS);
    const scale = Float32Array.from(gamma!, (g, o) => f32(g / f32(Math.sqrt(f32(variance![o]! + eps)))));
    const bias = Float32Array.from(scale, (s, o) =>
      f32((convBias ? f32(f32(convBias[o]! - mean![o]!) * s) : -f32(mean![o]! * s)) + beta![o]!),
    );
    const k2 = kernel * kernel;
    const filter = new Float32Array(outCh * inCh * k2);
    for (let ky = 0; ky < kernel; ky++)
      for (let kx = 0; kx < kernel; kx++)
        for (let i = 0; i < inCh; i++)
          for (let o = 0; o < outCh; o++) {
            filter[((o * inCh + i) * kernel + ky) * kernel + kx] = f32(w[((ky * kernel + kx) * inCh + i) * outCh + o]! * scale[o]!);
          }
    const p = kernel === 3 ? 1 : 0;
    return node('Conv', [x, constant(`${conv}.w`, [outCh, inCh, kernel, kernel], filter), constant(`${conv}.b`, [outCh], bias)], {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      pads: [p, p, p, p],
    });
  };

  const S = cfg.inputSize;
  const grey = node('MatMul', ['images', constant('luma', [3, 1], Float32Array.from(LUMA))]);
  const normed = node('Div', [node('Sub', [grey, constant('greyMean', [], Float32Array.of(cfg.greyMean))]), constant('greyStd', [], Float32Array.of(cfg.greyStd))]);
  let x = node('Reshape', [normed, ints('nchw', [-1, 1, S, S])]);
  if (cfg.mirror === 'average') {
    const flipped = node('Slice', [x, ints('flip.starts', [-1]), ints('flip.ends', [-(2n ** 63n)]), ints('flip.axes', [3]), ints('flip.steps', [-1])]);
    x = node('Concat', [x, flipped], { axis: 0 });
  }
  x = node('Relu', [convBn(x, `${name}.stem.conv`, `${name}.stem.bn`, 1, cfg.stemWidth, 3, 1)]);
  let inCh = cfg.stemWidth;
  cfg.widths.forEach((width, s) => {
    for (let i = 0; i < cfg.depths[s]!; i++) {
      const stride = i === 0 && s > 0 ? 2 : 1;
      const b = `${name}.stage${s + 1}.${i}`;
      const h = node('Relu', [convBn(x, `${b}.conv1`, `${b}.bn1`, inCh, width, 3, stride)]);
      const res = convBn(h, `${b}.conv2`, `${b}.bn2`, width, width, 3, 1);
      const shortcut = inCh !== width || stride !== 1 ? convBn(x, `${b}.shortcut.conv`, `${b}.shortcut.bn`, inCh, width, 1, stride) : x;
      x = node('Relu', [node('Add', [res, shortcut])]);
      inCh = width;
    }
  });
  const pooled = node('GlobalAveragePool', [x]);
  const D = cfg.embedDim;
  if (cfg.mirror === 'average') node('ReduceMean', [node('Reshape', [pooled, ints('pairs', [2, -1, D])])], { axes: [0], keepdims: 0 });
  else node('Reshape', [pooled, ints('flat', [-1, D])]);
  // The last node writes the graph's output.
  nodes.at(-1)!.outputs = ['embedding'];
  return {
    name: `${name}.cnn`,
    opset: 17,
    input: { name: 'images', dims: ['batch', S, S, 3] },
    output: { name: 'embedding', dims: ['batch', D] },
    nodes,
    initializers,
  };
}
