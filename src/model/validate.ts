/**
 * Checks for configuration read from JSON. Every failure names the config, the field, the rule
 * and the value that broke it, e.g. `head config: dropout must be a number in [0, 1) (got 1.5)`.
 */

export type Json = Record<string, unknown>;

/** Declared with this type, a `fail` narrows types after the call (TypeScript needs the annotation). */
export type Fail = (field: string, rule: string, got: unknown) => never;

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Field checks whose errors start with `what` ("head config", "training config", ...). */
export function configChecks(what: string) {
  const fail: Fail = (field, rule, got) => {
    throw new Error(`${what}: ${field ? `${field} ` : ''}${rule} (got ${JSON.stringify(got) ?? String(got)})`);
  };
  return {
    fail,
    int(field: string, v: unknown, min: number): number {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(field, `must be an integer >= ${min}`, v);
      return v as number;
    },
    positive(field: string, v: unknown): number {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(field, 'must be a finite number > 0', v);
      return v as number;
    },
    nonNegative(field: string, v: unknown): number {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(field, 'must be a finite number >= 0', v);
      return v as number;
    },
    oneOf<T extends string>(field: string, v: unknown, options: readonly T[]): T {
      if (typeof v !== 'string' || !options.includes(v as T)) fail(field, `must be one of ${options.map((o) => `"${o}"`).join(', ')}`, v);
      return v as T;
    },
  };
}
