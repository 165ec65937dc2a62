/**
 * Kernels that tfjs-backend-wasm 4.22 lacks (the gradients of convolutions and of gather), plus
 * faster versions of some it has (transposed BatchMatMul, Conv2DBackpropInput, reductions over
 * leading axes, broadcasting Tile, Identity, tall matrix Transpose), found by profiling a CNN
 * training step. Each one is composed from the wasm backend's own kernels (Transpose, Conv2D,
 * DepthwiseConv2dNative, BatchMatMul, AvgPool, ScatterNd, ...), called directly on the backend's
 * TensorInfos: nothing is copied to the pure-JS cpu backend, which would make a CNN training step
 * take minutes.
 */
import * as tf from '@tensorflow/tfjs';

type Info = tf.TensorInfo;
type Attrs = tf.NamedAttrMap;
type Pads = [number, number];
type Run = (kernelName: string, inputs: Record<string, Info>, attrs?: Attrs) => Info;

/** Names of the kernels this module registers for the wasm backend. */
export const WASM_KERNEL_NAMES = [
  tf.Conv2DBackpropFilter,
  tf.DepthwiseConv2dNativeBackpropFilter,
  tf.DepthwiseConv2dNativeBackpropInput,
  tf.UnsortedSegmentSum,
  tf.BatchMatMul,
  tf.Conv2DBackpropInput,
  tf.Sum,
  tf.Mean,
  tf.Tile,
  tf.Identity,
  tf.Transpose,
] as const;

const ours = new WeakSet<tf.KernelConfig>();

/** True when `config` is one of the kernels registered by this module. */
export function isArbexKernel(config: tf.KernelConfig | undefined): boolean {
  return config !== undefined && ours.has(config);
}

function wasmKernel(name: string): tf.KernelFunc {
  const config = tf.getKernel(name, 'wasm');
  if (!config) throw new Error(`wasm kernel ${name} is not registered (is @tensorflow/tfjs-backend-wasm loaded?)`);
  return config.kernelFunc;
}

/**
 * Runs `body` with a `run` function that calls wasm kernels and remembers every result; all of
 * them except the returned one are released afterwards (also when `body` throws), so a composed
 * kernel leaks nothing. Results that share storage (Reshape) are reference-counted by the backend.
 */
function composed(backend: tf.KernelBackend, body: (run: Run) => Info): Info {
  const made: Info[] = [];
  const run: Run = (kernelName, inputs, attrs = {}) => {
    const out = wasmKernel(kernelName)({ inputs, backend, attrs }) as Info;
    made.push(out);
    return out;
  };
  let result: Info | undefined;
  try {
    result = body(run);
    return result;
  } finally {
    for (const t of made) if (t !== result) backend.disposeData(t.dataId);
  }
}

const reshape = (run: Run, x: Info, shape: number[]): Info => run(tf.Reshape, { x }, { shape });
const transpose = (run: Run, x: Info, perm: number[]): Info => run(tf.Transpose, { x }, { perm });

/**
 * Makes paddings usable by a convolution: a negative padding means the convolution never reads
 * those rows/columns, so they are cut from `x` (NHWC) instead. Returns the cropped input and the
 * remaining, non-negative explicit padding.
 */
function cropNegativePads(run: Run, x: Info, ph: Pads, pw: Pads): { x: Info; pad: tf.backend_util.ExplicitPadding } {
  const [, h, w] = x.shape;
  const top = Math.max(0, -ph[0]);
  const bottom = Math.max(0, -ph[1]);
  const left = Math.max(0, -pw[0]);
  const right = Math.max(0, -pw[1]);
  const cropped =
    top + bottom + left + right === 0
      ? x
      : run(tf.Slice, { x }, { begin: [0, top, left, 0], size: [x.shape[0], h - top - bottom, w - left - right, x.shape[3]] });
  const pad: tf.backend_util.ExplicitPadding = [
    [0, 0],
    [Math.max(0, ph[0]), Math.max(0, ph[1])],
    [Math.max(0, pw[0]), Math.max(0, pw[1])],
    [0, 0],
  ];
  return { x: cropped, pad };
}

/** Puts stride-1 zeros after every row and column of NHWC `x` (a transposed convolution's input). */
function spreadByStride(run: Run, x: Info, sh: number, sw: number): Info {
  if (sh === 1 && sw === 1) return x;
  const [b, h, w, c] = x.shape;
  const spread = run(
    tf.PadV2,
    { x: reshape(run, x, [b, h, 1, w, 1, c]) },
    { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 },
  );
  return reshape(run, spread, [b, h * sh, w * sw, c]);
}

/**
 * Padding for the "filter gradient as a convolution" trick along one axis. Forward: output i reads
 * input i*stride - padBefore + k*dilation. The gradient convolution slides the output gradient
 * (as a filter dilated by the forward stride) over the input with stride = forward dilation; it
 * must produce exactly `kernel` outputs.
 */
function filterGradPads(inSize: number, outSize: number, kernel: number, stride: number, dilation: number, padBefore: number): Pads {
  return [padBefore, (kernel - 1) * dilation + (outSize - 1) * stride + 1 - inSize - padBefore];
}

/** Largest c * kh * kw whose filter gradient goes through im2col patches (see below). */
const IM2COL_MAX = 64;

function conv2DBackpropFilter({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: Attrs }): Info {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(dataFormat),
  );
  if (info.dataFormat !== 'channelsLast') throw new Error('wasm Conv2DBackpropFilter supports NHWC only');
  const { batchSize: b, inHeight, inWidth, inChannels: c, outHeight, outWidth, outChannels: o } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo } = info;
  return composed(backend, (run) => {
    const pointwise = kh === 1 && kw === 1 && sh === 1 && sw === 1 && padInfo.top + padInfo.bottom + padInfo.left + padInfo.right === 0;
    if (pointwise) {
      // A 1x1 stride-1 convolution is a matrix product, dW = x^T dy over all pixels. One operand
      // must be transposed for it; the narrower one is cheaper (dW^T = dy^T x when o < c).
      const n = b * inHeight * inWidth;
      const x2 = reshape(run, x, [1, n, c]);
      const dy2 = reshape(run, dy, [1, n, o]);
      const plain = { transposeA: false, transposeB: false };
      if (c <= o) return reshape(run, run(tf.BatchMatMul, { a: transpose(run, x2, [0, 2, 1]), b: dy2 }, plain), [1, 1, c, o]);
      const dwT = run(tf.BatchMatMul, { a: transpose(run, dy2, [0, 2, 1]), b: x2 }, plain);
      return reshape(run, transpose(run, dwT, [0, 2, 1]), [1, 1, c, o]);
    }
    const taps = kh * kw;
    if (c * taps <= IM2COL_MAX) {
      // Few input channels (a network's stem): gather every pixel's receptive field with one
      // depthwise convolution whose filters pick one tap each (im2col, XNNPACK-fast), then
      // dW = patches^T dy is one matrix product, as for a 1x1 convolution.
      const pick = new Float32Array(taps * c * taps);
      for (let t = 0; t < taps; t++) for (let ch = 0; ch < c; ch++) pick[(t * c + ch) * taps + t] = 1;
      const shape = [kh, kw, c, taps];
      const picker: Info = { dataId: backend.write(pick, shape, 'float32'), shape, dtype: 'float32' };
      try {
        const explicit: tf.backend_util.ExplicitPadding = [[0, 0], [padInfo.top, padInfo.bottom], [padInfo.left, padInfo.right], [0, 0]];
        const patches = run(tf.DepthwiseConv2dNative, { x, filter: picker }, { strides: [sh, sw], pad: explicit, dilations: 1, dataFormat: 'NHWC' });
        const n = b * outHeight * outWidth;
        const patchesT = transpose(run, reshape(run, patches, [1, n, c * taps]), [0, 2, 1]);
        const dw = run(tf.BatchMatMul, { a: patchesT, b: reshape(run, dy, [1, n, o]) }, { transposeA: false, transposeB: false });
        // Rows of dw are (channel, tap) pairs, tap = i * kw + j.
        return transpose(run, reshape(run, dw, [c, kh, kw, o]), [1, 2, 0, 3]);
      } finally {
        backend.disposeData(picker.dataId);
      }
    }
    // dW[kh,kw,c,o] = sum_{b,i,j} x[b, i*s+kh-top, j*s+kw-left, c] dy[b,i,j,o]: a convolution whose
    // batch is c, input channels are b, and filter is dy dilated by the forward stride.
    const xt = transpose(run, x, [3, 1, 2, 0]);
    const filter = transpose(run, dy, [1, 2, 0, 3]);
    const { x: input, pad: explicit } = cropNegativePads(
      run,
      xt,
      filterGradPads(inHeight, outHeight, kh, sh, 1, padInfo.top),
      filterGradPads(inWidth, outWidth, kw, sw, 1, padInfo.left),
    );
    const dw = run(tf.Conv2D, { x: input, filter }, { strides: 1, pad: explicit, dataFormat: 'NHWC', dilations: [sh, sw] });
    return transpose(run, dw, [1, 2, 0, 3]);
  });
}

/**
 * Padding that makes a convolution produce at least `kernel` outputs along one axis for the
 * "filter gradient as a convolution" trick (see filterGradPads); surplus outputs are cut from the
 * small result afterwards, which is far cheaper than cropping the large input (wasm's Slice is a
 * slow element loop).
 */
const atLeast = (pads: Pads): Pads => [Math.max(0, pads[0]), Math.max(0, pads[1])];

function depthwiseBackpropFilter({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: Attrs }): Info {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  const { batchSize: b, inHeight, inWidth, inChannels: c, outHeight, outWidth, outChannels } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, padInfo } = info;
  const m = outChannels / c;
  const padded = padInfo.top + padInfo.bottom + padInfo.left + padInfo.right > 0;
  if (outHeight === 1 && outWidth === 1 && kh === inHeight && kw === inWidth && !padded) {
    // The filter covers the whole input (a global depthwise conv): dW = sum over the batch of
    // x times the sample's one dy value per channel.
    return composed(backend, (run) => {
      const product = run(tf.Multiply, { a: reshape(run, x, [b, inHeight, inWidth, c, 1]), b: reshape(run, dy, [b, 1, 1, c, m]) });
      return run(tf.Sum, { x: product }, { axis: [0], keepDims: false });
    });
  }
  return composed(backend, (run) => {
    // The filter gradient is a depthwise convolution of x with dy as the filter (forward stride
    // as its dilation, forward dilation as its stride). The batch is summed by the same
    // convolution: the images are stacked vertically, each x padded to `rows` = sh * dyRows rows
    // and each dy to dyRows rows with zeros, so image i's dy rows meet exactly image i's x rows
    // and neither transposes nor a separate sum over the batch are needed.
    const dyRows = Math.max(Math.ceil(((outHeight - 1) * sh + (kh - 1) * dh + 1) / sh), Math.ceil((padInfo.top + inHeight) / sh));
    const rows = sh * dyRows;
    const zeroRows = (t: Info, top: number, bottom: number): Info =>
      top + bottom === 0 ? t : run(tf.PadV2, { x: t }, { paddings: [[0, 0], [top, bottom], [0, 0], [0, 0]], constantValue: 0 });
    const input = reshape(run, zeroRows(x, padInfo.top, rows - padInfo.top - inHeight), [1, b * rows, inWidth, c]);
    const filter = reshape(run, zeroRows(dy, 0, dyRows - outHeight), [b * dyRows, outWidth, c, m]);
    const explicit: tf.backend_util.ExplicitPadding = [
      [0, 0],
      [0, Math.max(0, (kh - 1) * dh + 1 - sh)],
      atLeast(filterGradPads(inWidth, outWidth, kw, sw, dw, padInfo.left)),
      [0, 0],
    ];
    const grad = run(tf.DepthwiseConv2dNative, { x: input, filter }, { strides: [dh, dw], pad: explicit, dilations: [sh, sw], dataFormat: 'NHWC' });
    const exact = grad.shape[1] === kh && grad.shape[2] === kw ? grad : run(tf.Slice, { x: grad }, { begin: [0, 0, 0, 0], size: [1, kh, kw, c * m] });
    return reshape(run, exact, [kh, kw, c, m]);
  });
}

function depthwiseBackpropInput({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: Attrs }): Info {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  const { batchSize: b, inHeight, inWidth, inChannels: c, outChannels } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, padInfo } = info;
  const m = outChannels / c;
  const padded = padInfo.top + padInfo.bottom + padInfo.left + padInfo.right > 0;
  if (info.outHeight === 1 && info.outWidth === 1 && kh === inHeight && kw === inWidth && !padded) {
    // A global depthwise conv: each sample's one dy value per channel times the filter (XNNPACK
    // pads a 1x1 input to the filter's size very slowly).
    return composed(backend, (run) => {
      const dx = run(tf.Multiply, { a: reshape(run, dy, [b, 1, 1, c, m]), b: reshape(run, filter, [1, kh, kw, c, m]) });
      return m === 1 ? reshape(run, dx, [b, inHeight, inWidth, c]) : run(tf.Sum, { x: dx }, { axis: [4], keepDims: false });
    });
  }
  return composed(backend, (run) => {
    // dx is the "full" correlation of dy, spread out by the stride (zeros between rows/columns),
    // with the spatially flipped filter; each of the c*m filter channels acts on its own dy channel.
    const up = spreadByStride(run, dy, sh, sw);
    const flipped = reshape(run, run(tf.Reverse, { x: filter }, { dims: [0, 1] }), [kh, kw, outChannels, 1]);
    const top = (kh - 1) * dh - padInfo.top;
    const left = (kw - 1) * dw - padInfo.left;
    const { x: input, pad: explicit } = cropNegativePads(
      run,
      up,
      [top, inHeight - up.shape[1] + padInfo.top],
      [left, inWidth - up.shape[2] + padInfo.left],
    );
    const dx = run(
      tf.DepthwiseConv2dNative,
      { x: input, filter: flipped },
      { strides: 1, pad: explicit, dilations: [dh, dw], dataFormat: 'NHWC' },
    );
    if (m === 1) return dx;
    return run(tf.Sum, { x: reshape(run, dx, [b, inHeight, inWidth, c, m]) }, { axis: [4], keepDims: false });
  });
}

function unsortedSegmentSum({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: Attrs }): Info {
  const { x, segmentIds } = inputs as { x: Info; segmentIds: Info };
  const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
  const idsRank = segmentIds.shape.length;
  const n = tf.util.sizeFromShape(segmentIds.shape);
  const rest = x.shape.slice(idsRank);
  const d = tf.util.sizeFromShape(rest);
  return composed(backend, (run) => {
    // ScatterNd adds up duplicate indices. Ids outside [0, numSegments) must be dropped (as in
    // TensorFlow): they are sent to one extra row that is cut off at the end.
    const ids = reshape(run, segmentIds, [n]);
    const scalar = (value: number): Info => run(tf.Fill, {}, { shape: [], value, dtype: 'int32' });
    const inRange = run(tf.LogicalAnd, {
      a: run(tf.GreaterEqual, { a: ids, b: scalar(0) }),
      b: run(tf.Less, { a: ids, b: scalar(numSegments) }),
    });
    const spare = run(tf.Fill, {}, { shape: [n], value: numSegments, dtype: 'int32' });
    const safeIds = run(tf.Select, { condition: inRange, t: ids, e: spare });
    const summed = run(
      tf.ScatterNd,
      { indices: reshape(run, safeIds, [n, 1]), updates: reshape(run, x, [n, d]) },
      { shape: [numSegments + 1, d] },
    );
    const kept = run(tf.Slice, { x: summed }, { begin: [0, 0], size: [numSegments, d] });
    return reshape(run, kept, [numSegments, ...rest]);
  });
}

type KernelFn = (args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: Attrs }) => Info;

/**
 * BatchMatMul with transposeA/transposeB is several times slower on wasm than transposing
 * explicitly and multiplying plain matrices (measured 2.6-4x on dense-layer gradient shapes, 8-20x
 * on others), and every matMul gradient uses the flags.
 */
const transposeFreeMatMul = (original: KernelFn): KernelFn => ({ inputs, backend, attrs }) => {
  const { a, b } = inputs as { a: Info; b: Info };
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const plain = { transposeA: false, transposeB: false };
  if (!transposeA && !transposeB) return original({ inputs, backend, attrs: plain });
  return composed(backend, (run) => {
    const swapLast = (t: Info): Info => {
      const perm = t.shape.map((_, i) => i);
      perm.splice(-2, 2, perm.length - 1, perm.length - 2);
      return transpose(run, t, perm);
    };
    return original({ inputs: { a: transposeA ? swapLast(a) : a, b: transposeB ? swapLast(b) : b }, backend, attrs: plain });
  });
};

/**
 * wasm's Conv2DBackpropInput is a plain loop, not XNNPACK: about 10x slower than Conv2D. dx is the
 * full correlation of dy (spread by the stride) with the flipped filter whose in/out channels are
 * swapped, so XNNPACK's Conv2D computes it; a 1x1 stride-1 convolution is just dy W^T.
 */
const conv2DBackpropInputFast = (original: KernelFn): KernelFn => ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(dataFormat),
  );
  if (info.dataFormat !== 'channelsLast') return original({ inputs, backend, attrs });
  const { batchSize: b, inHeight, inWidth, inChannels: c, outHeight, outWidth, outChannels: o } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo } = info;
  return composed(backend, (run) => {
    const pointwise = kh === 1 && kw === 1 && sh === 1 && sw === 1 && padInfo.top + padInfo.bottom + padInfo.left + padInfo.right === 0;
    if (pointwise) {
      const wt = transpose(run, reshape(run, filter, [1, c, o]), [0, 2, 1]);
      const dx = run(tf.BatchMatMul, { a: reshape(run, dy, [1, b * inHeight * inWidth, o]), b: wt }, { transposeA: false, transposeB: false });
      return reshape(run, dx, [b, inHeight, inWidth, c]);
    }
    const up = spreadByStride(run, dy, sh, sw);
    const flipped = transpose(run, run(tf.Reverse, { x: filter }, { dims: [0, 1] }), [0, 1, 3, 2]);
    const { x: input, pad: explicit } = cropNegativePads(
      run,
      up,
      [kh - 1 - padInfo.top, inHeight - outHeight * sh + padInfo.top],
      [kw - 1 - padInfo.left, inWidth - outWidth * sw + padInfo.left],
    );
    return run(tf.Conv2D, { x: input, filter: flipped }, { strides: 1, pad: explicit, dataFormat: 'NHWC', dilations: 1 });
  });
};

/** Leading axes `0..k-1` of a reduction, or -1 when the axes are not such a prefix. */
function leadingAxes(axis: number | number[], shape: number[]): number {
  const axes = [...tf.util.parseAxisParam(axis, shape)].sort((p, q) => p - q);
  return axes.every((a, i) => a === i) ? axes.length : -1;
}

/**
 * wasm reduces only innermost axes and transposes everything else first, which dominates
 * BatchNorm statistics and gradients and bias gradients on NHWC data (leading axes). XNNPACK's
 * average pooling with one window over all leading positions reduces them in place, 20x faster.
 * (A product with a row of ones would be as fast, but wasm's BatchMatMul keeps a packed copy of
 * its right operand, here the whole activation, for as long as that tensor lives.)
 */
const leadingReduce = (original: KernelFn, mean: boolean): KernelFn => ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: Info };
  const { axis, keepDims } = attrs as unknown as tf.SumAttrs;
  const k = leadingAxes(axis, x.shape);
  const rest = x.shape.slice(k);
  // XNNPACK's pooling reads out of bounds for very wide rows (measured: [8, 16384] and
  // [16, 16384] crash with "memory access out of bounds", [512, 8192] and [16, 8193] do not),
  // e.g. attention-bias gradients of a 12x12 window; those go to wasm's own reduction.
  if (x.dtype !== 'float32' || k <= 0 || tf.util.sizeFromShape(rest) > 8192) return original({ inputs, backend, attrs });
  const n = tf.util.sizeFromShape(x.shape.slice(0, k));
  return composed(backend, (run) => {
    const column = reshape(run, x, [1, n, 1, tf.util.sizeFromShape(rest)]);
    let out = run(tf.AvgPool, { x: column }, { filterSize: [n, 1], strides: 1, pad: 'valid' });
    if (!mean) out = run(tf.Multiply, { a: out, b: run(tf.Fill, {}, { shape: [], value: n, dtype: 'float32' }) });
    return reshape(run, out, keepDims ? [...x.shape.slice(0, k).map(() => 1), ...rest] : rest);
  });
};

/**
 * wasm's Tile walks every output element with index arithmetic. When each tiled axis has size 1
 * (BatchNorm gradients broadcast per-channel values over NHWC this way) tiling is a broadcast,
 * done by XNNPACK's broadcasting Add onto zeros.
 */
const broadcastTile = (original: KernelFn): KernelFn => ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: Info };
  const { reps } = attrs as unknown as tf.TileAttrs;
  const isBroadcast = x.shape.every((d, i) => d === 1 || reps[i] === 1);
  if (x.dtype !== 'float32' || !isBroadcast) return original({ inputs, backend, attrs });
  return composed(backend, (run) => {
    const zeros = run(tf.Fill, {}, { shape: x.shape.map((d, i) => d * reps[i]), value: 0, dtype: 'float32' });
    return run(tf.Add, { a: zeros, b: x });
  });
};

/**
 * wasm's Identity copies the data. Tensors are immutable, so sharing the storage (as the cpu
 * backend does) is equivalent; tf.where clones all three operands through broadcastTo, which made
 * these copies a noticeable part of every PReLU gradient.
 */
const sharedIdentity = (original: KernelFn): KernelFn => ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: Info };
  if (x.dtype === 'string') return original({ inputs, backend, attrs });
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/**
 * Splits `perm` as "keep axes 0..p-1, then move the block of axes p..q-1 after q..rank-1": a
 * batch of matrix transposes [A, R, C] -> [A, C, R]. Returns the three sizes, or undefined.
 */
function asMatrixTranspose(shape: number[], perm: number[]): [number, number, number] | undefined {
  const rank = shape.length;
  let p = 0;
  while (p < rank && perm[p] === p) p++;
  if (p === rank) return undefined;
  const q = perm[p];
  const expected = [...Array(p).keys(), ...Array.from({ length: rank - q }, (_, i) => q + i), ...Array.from({ length: q - p }, (_, i) => p + i)];
  if (expected.some((a, i) => perm[i] !== a)) return undefined;
  const size = (from: number, to: number): number => tf.util.sizeFromShape(shape.slice(from, to));
  return [size(0, p), size(p, q), size(q, rank)];
}

/** Tile edge of the blocked transpose: the tiles stay in cache. */
const TILE = 64;

/**
 * wasm's Transpose walks the output in order and reads the input with a large stride, so a
 * matrix transpose of an activation ([pixels, channels] -> [channels, pixels], needed by every
 * filter gradient of a 1x1 convolution) misses the cache on every element: 27 ms for
 * [50176, 64]. Done as TILE x TILE block transposes followed by a copy of whole TILE-long rows,
 * the same transpose takes 4 ms.
 */
const blockedTranspose = (original: KernelFn): KernelFn => ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: Info };
  const { perm } = attrs as unknown as tf.TransposeAttrs;
  const sizes = asMatrixTranspose(x.shape, perm);
  if (!sizes) return original({ inputs, backend, attrs });
  const [a, r, c] = sizes;
  const outShape = perm.map((axis) => x.shape[axis]);
  // Only a tall matrix needs it: with at most TILE rows the strided reads stay in cache.
  if (r <= TILE || r % TILE !== 0) return original({ inputs, backend, attrs });
  const step = (t: Info, shape: number[], stepPerm: number[]): Info =>
    original({ inputs: { x: { ...t, shape } }, backend, attrs: { perm: stepPerm } }) as Info;
  // [a, r/T, T, c] -> [a, r/T, c, T] (tile transposes) -> [a, c, r/T, T] (whole rows of T).
  const first = step(x, [a, r / TILE, TILE, c], [0, 1, 3, 2]);
  try {
    const second = step(first, [a, r / TILE, c, TILE], [0, 2, 1, 3]);
    return { ...second, shape: outShape };
  } finally {
    backend.disposeData(first.dataId);
  }
};

/** Existing wasm kernels replaced by faster compositions; each falls back to the original. */
const overrides: [string, (original: KernelFn) => KernelFn][] = [
  [tf.BatchMatMul, transposeFreeMatMul],
  [tf.Conv2DBackpropInput, conv2DBackpropInputFast],
  [tf.Sum, (original) => leadingReduce(original, false)],
  [tf.Mean, (original) => leadingReduce(original, true)],
  [tf.Tile, broadcastTile],
  [tf.Identity, sharedIdentity],
  [tf.Transpose, blockedTranspose],
];

const gradientKernels: tf.KernelConfig[] = [
  { kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc },
  { kernelName: tf.DepthwiseConv2dNativeBackpropFilter, backendName: 'wasm', kernelFunc: depthwiseBackpropFilter as unknown as tf.KernelFunc },
  { kernelName: tf.DepthwiseConv2dNativeBackpropInput, backendName: 'wasm', kernelFunc: depthwiseBackpropInput as unknown as tf.KernelFunc },
  { kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc },
];
for (const config of gradientKernels) ours.add(config);

function replace(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
  tf.registerKernel(config);
  ours.add(config);
}

/**
 * Registers the kernels for the wasm backend; safe to call more than once. The wasm backend
 * package must already be imported (its own kernels are the building blocks).
 *
 * @example
 * await import('@tensorflow/tfjs-backend-wasm');
 * registerWasmKernels();
 * await tf.setBackend('wasm');
 */
export function registerWasmKernels(): void {
  for (const [name, make] of overrides) {
    const original = tf.getKernel(name, 'wasm');
    if (!original) throw new Error(`wasm kernel ${name} is missing: import @tensorflow/tfjs-backend-wasm first`);
    // Keep the original's setup so the wasm function it wraps is bound even when this runs
    // before the backend initialises.
    if (!isArbexKernel(original)) replace({ ...original, kernelFunc: make(original.kernelFunc as unknown as KernelFn) as unknown as tf.KernelFunc });
  }
  for (const config of gradientKernels) if (tf.getKernel(config.kernelName, 'wasm') !== config) replace(config);
}
