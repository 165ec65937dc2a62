/**
 * The fake engine as a job-process module (createProcessRunner's `module`): its labels name the
 * process that made them (`stream: "pid-<n>"`), so tests can tell where a job ran.
 */
import type { Engine, LabelOptions } from '../../src/pipeline/types.js';
import { createFakeEngine, type FakeEngineOptions } from './fake-engine.js';

export async function createJobEngine(spec: FakeEngineOptions): Promise<Engine> {
  const engine = createFakeEngine(spec);
  return {
    ...engine,
    async *labelVideo(file: string, options?: LabelOptions) {
      for await (const output of engine.labelVideo(file, options)) yield { ...output, stream: `pid-${process.pid}` };
    },
  };
}
