/**
 * Adam (Kingma & Ba) over named variables, with its whole state in the open so a checkpoint can
 * hold it: the step count t and, per variable, the first and second moment estimates m and v.
 * The update is tfjs's AdamOptimizer's, formula for formula (ε = 1e-7, tfjs's float32 default):
 *
 *   m ← β₁·m + (1 − β₁)·g     v ← β₂·v + (1 − β₂)·g²
 *   θ ← θ − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
 *
 * tfjs's own optimizer keeps its moments by the position of a variable in the gradient map and
 * its bias corrections as running float32 products, which a restore cannot reproduce; here the
 * moments are keyed by the store's parameter names and β₁ᵗ, β₂ᵗ are computed from t.
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
}

export interface Adam {
  readonly options: AdamOptions;
  /** Updates done so far (t). */
  readonly step: number;
  /** One update of every variable with a gradient in `grads` (keyed by parameter name). */
  apply(grads: ReadonlyMap<string, tf.Tensor>, learningRate: number): void;
  /** The moment estimates as `<name>/m` and `<name>/v` (live variables: read, do not dispose). */
  moments(): Map<string, tf.Variable>;
  /** Continues from a saved state; the names and shapes must match the variables exactly. */
  restore(step: number, moments: ReadonlyMap<string, tf.Tensor>): void;
  /** Releases the moment variables (the trained variables stay). */
  dispose(): void;
}

export const ADAM_DEFAULTS: AdamOptions = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

/**
 * Makes an Adam optimizer for the named variables.
 *
 * @example
 * const adam = createAdam(new Map([['head.mlp.out.weight', w]]));
 * const { grads } = tf.variableGrads(loss, [w]); // keyed by tfjs's own variable names
 * adam.apply(new Map([['head.mlp.out.weight', grads[w.name]!]]), 3e-4);
 * // later, in another process: adam.restore(savedStep, savedMoments)
 */
export function createAdam(variables: ReadonlyMap<string, tf.Variable>, options: Partial<AdamOptions> = {}): Adam {
  const o: AdamOptions = { ...ADAM_DEFAULTS, ...options };
  const zeros = () => new Map([...variables].map(([name, theta]) => [name, tf.tidy(() => tf.variable(tf.zerosLike(theta), false))]));
  let m = zeros();
  let v = zeros();
  let step = 0;

  function apply(grads: ReadonlyMap<string, tf.Tensor>, learningRate: number): void {
    for (const name of grads.keys()) if (!variables.has(name)) throw new Error(`adam: "${name}" is not one of the optimised variables`);
    const t = step + 1;
    const c1 = 1 / (1 - o.beta1 ** t);
    const c2 = 1 / (1 - o.beta2 ** t);
    tf.tidy(() => {
      for (const [name, g] of grads) {
        const mi = m.get(name)!;
        const vi = v.get(name)!;
        const nextM = tf.add(tf.mul(mi, o.beta1), tf.mul(g, 1 - o.beta1));
        const nextV = tf.add(tf.mul(vi, o.beta2), tf.mul(tf.square(g), 1 - o.beta2));
        mi.assign(nextM);
        vi.assign(nextV);
        const delta = tf.div(tf.mul(nextM, c1), tf.add(tf.sqrt(tf.mul(nextV, c2)), o.epsilon));
        const theta = variables.get(name)!;
        theta.assign(tf.sub(theta, tf.mul(delta, learningRate)));
      }
    });
    step = t;
  }

  function moments(): Map<string, tf.Variable> {
    return new Map([...variables.keys()].flatMap((n) => [[`${n}/m`, m.get(n)!], [`${n}/v`, v.get(n)!]]));
  }

  function restore(savedStep: number, saved: ReadonlyMap<string, tf.Tensor>): void {
    if (!(Number.isInteger(savedStep) && savedStep >= 0)) throw new Error(`adam: step must be an integer >= 0 (got ${savedStep})`);
    const live = moments();
    const missing = [...live.keys()].filter((n) => !saved.has(n));
    const extra = [...saved.keys()].filter((n) => !live.has(n));
    if (missing.length || extra.length) {
      throw new Error(`adam: the saved state is for other variables (missing ${missing.slice(0, 3).join(', ') || 'none'}; unexpected ${extra.slice(0, 3).join(', ') || 'none'})`);
    }
    for (const [name, target] of live) {
      const shape = saved.get(name)!.shape;
      if (shape.join(',') !== target.shape.join(',')) throw new Error(`adam: ${name} has shape [${shape}], the variable [${target.shape}]`);
    }
    for (const [name, target] of live) target.assign(saved.get(name)!);
    step = savedStep;
  }

  return {
    options: o,
    get step() {
      return step;
    },
    apply,
    moments,
    restore,
    dispose() {
      tf.dispose([...m.values(), ...v.values()]);
      m = new Map();
      v = new Map();
    },
  };
}
