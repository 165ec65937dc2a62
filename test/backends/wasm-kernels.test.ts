/**
 * The wasm kernels written in src/backends/wasm-kernels.ts against tfjs's reference cpu backend:
 * each kernel over several shapes, strides and paddings, then gradients of a small network.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backends/index.js';
import { WASM_KERNEL_NAMES, isArbexKernel } from '../../src/backends/wasm-kernels.js';
import { seededRandom } from '../../src/model/nn/params.js';
import { relError } from '../numeric.js';

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;

const PADS: Pad[] = ['same', 'valid', [[0, 0], [1, 2], [2, 0], [0, 0]]];

function values(shape: number[], seed: number): Float32Array {
  const rng = seededRandom(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng() * 2 - 1);
}

interface Result {
  shape: number[];
  values: Float32Array;
}

/**
 * Runs `fn` on wasm and on cpu and returns both results as flat arrays. `fn` must create its
 * tensors itself so that each backend computes from scratch. On wasm it also records which
 * kernels ran, so a test can prove that the kernel under test was really used.
 */
async function onBoth(
  fn: () => tf.Tensor | tf.Tensor[],
  reference = fn,
): Promise<{ wasm: Result[]; cpu: Result[]; kernels: string[] }> {
  const collect = (f: typeof fn): Result[] =>
    tf.tidy(() => [f()].flat().map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) })));
  await tf.setBackend('wasm');
  let wasm: Result[] = [];
  const profile = await tf.profile(() => {
    wasm = collect(fn);
  });
  await tf.setBackend('cpu');
  const cpu = collect(reference);
  await tf.setBackend('wasm');
  return { wasm, cpu, kernels: profile.kernels.map((k) => k.name) };
}

async function assertSame(label: string, fn: () => tf.Tensor | tf.Tensor[], mustRun?: string, reference = fn): Promise<void> {
  const { wasm, cpu, kernels } = await onBoth(fn, reference);
  assert.equal(wasm.length, cpu.length);
  wasm.forEach((w, i) => {
    assert.deepEqual(w.shape, cpu[i].shape, `${label}: output ${i} has the wrong shape`);
    const err = relError(w.values, cpu[i].values);
    assert.ok(err <= 1e-4, `${label}: output ${i} differs from cpu, relative error ${err}`);
  });
  if (mustRun) assert.ok(kernels.includes(mustRun), `${label}: ${mustRun} did not run on wasm (ran: ${[...new Set(kernels)].join(', ')})`);
}

const padName = (p: Pad): string => (typeof p === 'string' ? p : 'explicit');

before(async () => {
  await initBackend('wasm', { log: false });
});

test('every kernel of this project is the one registered for wasm', () => {
  assert.equal(tf.getBackend(), 'wasm');
  for (const name of WASM_KERNEL_NAMES) assert.ok(isArbexKernel(tf.getKernel(name, 'wasm')), `${name} is not ours`);
});

describe('convolution gradients', () => {
  const convCases: { x: number[]; k: number[] }[] = [
    { x: [2, 9, 9, 3], k: [3, 3, 3, 4] },
    { x: [2, 8, 7, 5], k: [1, 1, 5, 6] },
    { x: [1, 10, 6, 4], k: [3, 2, 4, 3] },
    // More channels than the im2col path takes: the convolution-shaped path.
    { x: [2, 7, 6, 8], k: [3, 3, 8, 2] },
  ];
  for (const { x, k } of convCases)
    for (const stride of [1, 2])
      for (const pad of PADS) {
        const name = `x ${x} filter ${k} stride ${stride} ${padName(pad)}`;
        const out = () => {
          const info = tf.backend_util.computeConv2DInfo(x as [number, number, number, number], k as [number, number, number, number], stride, 1, pad);
          return info.outShape;
        };
        test(`Conv2DBackpropFilter ${name}`, () =>
          assertSame(
            name,
            () =>
              tf.engine().runKernel(
                tf.Conv2DBackpropFilter,
                { x: tf.tensor(values(x, 1), x), dy: tf.tensor(values(out(), 2), out()) },
                { strides: [stride, stride], pad, dataFormat: 'NHWC', filterShape: k } as unknown as tf.NamedAttrMap,
              ) as tf.Tensor,
            tf.Conv2DBackpropFilter,
          ));
        test(`Conv2DBackpropInput ${name}`, () =>
          assertSame(
            name,
            () =>
              tf.engine().runKernel(
                tf.Conv2DBackpropInput,
                { dy: tf.tensor(values(out(), 3), out()), filter: tf.tensor(values(k, 4), k) },
                { strides: [stride, stride], pad, dataFormat: 'NHWC', inputShape: x } as unknown as tf.NamedAttrMap,
              ) as tf.Tensor,
            tf.Conv2DBackpropInput,
          ));
      }

  const depthwiseCases: { x: number[]; k: number[]; dilation?: number }[] = [
    { x: [2, 9, 9, 4], k: [3, 3, 4, 1] },
    { x: [2, 8, 7, 3], k: [3, 3, 3, 2] },
    { x: [3, 7, 7, 5], k: [7, 7, 5, 1] },
    // 'valid' makes it a global depthwise conv (1x1 output), which has its own path.
    { x: [3, 5, 4, 3], k: [5, 4, 3, 2] },
    { x: [1, 10, 9, 2], k: [3, 3, 2, 2], dilation: 2 },
  ];
  for (const { x, k, dilation = 1 } of depthwiseCases)
    for (const stride of dilation > 1 ? [1] : [1, 2])
      for (const pad of PADS) {
        const name = `x ${x} filter ${k} stride ${stride} dilation ${dilation} ${padName(pad)}`;
        const [, , c, m] = k;
        // tfjs's cpu kernels ignore dilation in these gradients, so a dilated case is checked
        // against the equivalent undilated convolution whose filter has zeros between the taps.
        const big = [(k[0] - 1) * dilation + 1, (k[1] - 1) * dilation + 1, c, m];
        const out = tf.backend_util.computeConv2DInfo(x as [number, number, number, number], k as [number, number, number, number], stride, dilation, pad, undefined, true).outShape;
        const kernel = (name: string, inputs: tf.NamedTensorMap, d: number, extra: object) =>
          tf.engine().runKernel(name, inputs, { strides: [stride, stride], dilations: [d, d], pad, ...extra } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
        const spreadFilter = (f: Float32Array): tf.Tensor => {
          const buf = tf.buffer(big);
          for (let i = 0; i < k[0]; i++)
            for (let j = 0; j < k[1]; j++)
              for (let ch = 0; ch < c * m; ch++) buf.values[((i * dilation * big[1] + j * dilation) * c * m) + ch] = f[(i * k[1] + j) * c * m + ch];
          return buf.toTensor();
        };
        test(`DepthwiseConv2dNativeBackpropFilter ${name}`, () =>
          assertSame(
            name,
            () => kernel(tf.DepthwiseConv2dNativeBackpropFilter, { x: tf.tensor(values(x, 5), x), dy: tf.tensor(values(out, 6), out) }, dilation, { filterShape: k }),
            tf.DepthwiseConv2dNativeBackpropFilter,
            () => {
              const full = kernel(tf.DepthwiseConv2dNativeBackpropFilter, { x: tf.tensor(values(x, 5), x), dy: tf.tensor(values(out, 6), out) }, 1, { filterShape: big });
              return tf.stridedSlice(full, [0, 0, 0, 0], big, [dilation, dilation, 1, 1]);
            },
          ));
        test(`DepthwiseConv2dNativeBackpropInput ${name}`, () =>
          assertSame(
            name,
            () => kernel(tf.DepthwiseConv2dNativeBackpropInput, { dy: tf.tensor(values(out, 7), out), filter: tf.tensor(values(k, 8), k) }, dilation, { inputShape: x }),
            tf.DepthwiseConv2dNativeBackpropInput,
            () => kernel(tf.DepthwiseConv2dNativeBackpropInput, { dy: tf.tensor(values(out, 7), out), filter: spreadFilter(values(k, 8)) }, 1, { inputShape: x }),
          ));
      }
});

describe('UnsortedSegmentSum', () => {
  test('1-D ids with repeats, unused segments and out-of-range ids', () =>
    assertSame(
      'segment sum',
      () =>
        tf.unsortedSegmentSum(tf.tensor(values([7, 3, 2], 9), [7, 3, 2]), tf.tensor1d([0, 2, 2, 5, -1, 1, 2], 'int32'), 4),
      tf.UnsortedSegmentSum,
    ));

  test('2-D ids sum like their flattened form on cpu', () =>
    assertSame(
      '2-D ids',
      () =>
        tf.engine().runKernel(
          tf.UnsortedSegmentSum,
          { x: tf.tensor(values([2, 3, 4], 10), [2, 3, 4]), segmentIds: tf.tensor2d([[0, 1, 1], [2, 0, 3]], [2, 3], 'int32') },
          { numSegments: 4 },
        ) as tf.Tensor,
      tf.UnsortedSegmentSum,
      () => tf.unsortedSegmentSum(tf.tensor(values([2, 3, 4], 10), [6, 4]), tf.tensor1d([0, 1, 1, 2, 0, 3], 'int32'), 4),
    ));

  test('gather gradient (embedding lookup)', () =>
    assertSame(
      'gather grad',
      () => tf.grad((table: tf.Tensor) => tf.gather(table, tf.tensor1d([3, 0, 3, 5, 3], 'int32')).square().sum())(tf.tensor(values([6, 4], 11), [6, 4])),
      tf.UnsortedSegmentSum,
    ));
});

describe('faster replacements of existing wasm kernels', () => {
  const shapes: [number[], number[]][] = [
    [[3, 4], [4, 5]],
    [[2, 3, 4], [2, 4, 5]],
    [[2, 3, 4], [1, 4, 5]],
    [[2, 2, 3, 4], [2, 2, 4, 5]],
  ];
  for (const [a, b] of shapes)
    for (const transposeA of [false, true])
      for (const transposeB of [false, true]) {
        const swap = (s: number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
        const sa = transposeA ? swap(a) : a;
        const sb = transposeB ? swap(b) : b;
        test(`BatchMatMul ${sa} x ${sb} transposeA=${transposeA} transposeB=${transposeB}`, () =>
          assertSame('matMul', () => tf.matMul(tf.tensor(values(sa, 12), sa), tf.tensor(values(sb, 13), sb), transposeA, transposeB), tf.BatchMatMul));
      }

  const reductions: [number[], number | number[], boolean][] = [
    [[2, 5, 6, 7], [0, 1, 2], false],
    [[2, 5, 6, 7], [2, 0, 1], true],
    [[9, 4], 0, false],
    [[3, 4, 5], [0, 1, 2], false],
    [[3, 4, 5], [1, 2], true],
    // Rows too wide for XNNPACK's pooling must take wasm's own reduction instead of crashing.
    [[16, 9000], 0, false],
    [[2, 16384], [0], true],
  ];
  for (const [shape, axis, keepDims] of reductions) {
    test(`Sum ${shape} axis ${axis} keepDims ${keepDims}`, () =>
      assertSame('sum', () => tf.sum(tf.tensor(values(shape, 14), shape), axis, keepDims), tf.Sum));
    test(`Mean ${shape} axis ${axis} keepDims ${keepDims}`, () =>
      assertSame('mean', () => tf.mean(tf.tensor(values(shape, 15), shape), axis, keepDims), tf.Mean));
  }

  // Tall matrix transposes (more than 64 rows, a multiple of 64) are tiled; the rest are not.
  const transposes: [number[], number[]][] = [
    [[320, 7], [1, 0]],
    [[2, 192, 5], [0, 2, 1]],
    [[2, 16, 8, 5], [0, 3, 1, 2]],
    [[8, 16, 3, 5], [2, 3, 0, 1]],
    [[4, 32, 3, 6], [0, 3, 1, 2]],
    [[64, 300], [1, 0]],
    [[3, 4, 64, 2], [3, 1, 2, 0]],
  ];
  for (const [shape, perm] of transposes)
    test(`Transpose ${shape} perm ${perm}`, () =>
      assertSame('transpose', () => tf.transpose(tf.tensor(values(shape, 18), shape), perm), tf.Transpose));

  test('Tile as a broadcast and as a real tile', async () => {
    await assertSame('tile broadcast', () => tf.tile(tf.tensor(values([1, 1, 1, 5], 16), [1, 1, 1, 5]), [2, 3, 4, 1]), tf.Tile);
    await assertSame('tile', () => tf.tile(tf.tensor(values([2, 3], 17), [2, 3]), [2, 2]), tf.Tile);
  });
});

describe('gradients of a small network', () => {
  const shapes = {
    x: [2, 12, 12, 3],
    conv: [3, 3, 3, 8],
    dw: [3, 3, 8, 1],
    dw2: [3, 3, 8, 2],
    point: [1, 1, 16, 6],
    table: [5, 6],
    alpha: [8],
  };
  const inputs = () => Object.fromEntries(Object.entries(shapes).map(([k, s], i) => [k, tf.tensor(values(s, 20 + i), s)])) as Record<keyof typeof shapes, tf.Tensor>;
  // Both samples share a class, so the embedding gradient must add up two rows.
  const labels = [4, 4];
  /** conv (stride 2) + PReLU -> depthwise -> depthwise x2 (stride 2) -> pointwise -> pooled, plus an embedding lookup. */
  const loss = (x: tf.Tensor, conv: tf.Tensor, dw: tf.Tensor, dw2: tf.Tensor, point: tf.Tensor, table: tf.Tensor, alpha: tf.Tensor): tf.Scalar => {
    let h: tf.Tensor4D = tf.prelu(tf.conv2d(x as tf.Tensor4D, conv as tf.Tensor4D, 2, 'same'), alpha) as tf.Tensor4D;
    h = tf.depthwiseConv2d(h, dw as tf.Tensor4D, 1, 'same');
    h = tf.depthwiseConv2d(h, dw2 as tf.Tensor4D, 2, 'valid');
    h = tf.conv2d(h, point as tf.Tensor4D, 1, 'same');
    const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
    const emb = tf.gather(table, tf.tensor1d(labels, 'int32')) as tf.Tensor2D;
    return tf.sum(tf.square(tf.sub(pooled, emb))).add(tf.sum(tf.matMul(pooled, emb, false, true)));
  };
  const gradsOf = () => {
    const t = inputs();
    return tf.grads(loss as (...args: tf.Tensor[]) => tf.Tensor)([t.x, t.conv, t.dw, t.dw2, t.point, t.table, t.alpha]);
  };

  test('match the cpu backend for every input', async () => {
    const { wasm, cpu, kernels } = await onBoth(gradsOf);
    wasm.forEach((w, i) => {
      assert.deepEqual(w.shape, cpu[i].shape);
      const err = relError(w.values, cpu[i].values);
      assert.ok(err <= 1e-4, `gradient ${i}: relative error ${err}`);
    });
    for (const k of [tf.Conv2DBackpropFilter, tf.DepthwiseConv2dNativeBackpropFilter, tf.DepthwiseConv2dNativeBackpropInput, tf.UnsortedSegmentSum, tf.Identity])
      assert.ok(kernels.includes(k), `${k} was not used`);
  });

  test('leave no tensors behind, not even inside the composed kernels', async () => {
    await tf.setBackend('wasm');
    const t = inputs();
    const g = tf.grads(loss as (...args: tf.Tensor[]) => tf.Tensor);
    const args = [t.x, t.conv, t.dw, t.dw2, t.point, t.table, t.alpha];
    tf.dispose(g(args));
    const tensors = tf.memory().numTensors;
    // Intermediates of a composed kernel are backend data, invisible to numTensors.
    const data = tf.engine().backend.numDataIds();
    for (let i = 0; i < 3; i++) tf.dispose(g(args));
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(tf.engine().backend.numDataIds(), data);
    tf.dispose(args);
  });
});
