/** Driving frames through a processor, and the frame-rate meter of a stream's info. */
import type { FrameProcessor } from './process.js';
import type { Frame, FrameOutput } from './types.js';

/**
 * Drives frames from a source through a processor, `inFlight` frames at a time, and hands the
 * outputs on in frame order.
 *
 * @example
 *   await drive(source.frames(), processor, 3, (out) => send(out));
 */
export async function drive(frames: AsyncIterable<Frame>, processor: FrameProcessor, inFlight: number, emit: (out: FrameOutput) => void, onFrame?: (f: Frame) => void): Promise<void> {
  const pending: Promise<FrameOutput>[] = [];
  try {
    for await (const frame of frames) {
      onFrame?.(frame);
      pending.push(processor.process(frame));
      if (pending.length >= inFlight) emit(await pending.shift()!);
    }
    while (pending.length) emit(await pending.shift()!);
  } finally {
    // After a failure the frames still in flight are not awaited: keep their own failures (e.g.
    // the detector workers closed under them) from being reported as unhandled rejections.
    for (const p of pending) p.catch(() => undefined);
  }
}

/** Frames per second over a sliding window of recent timestamps. */
export function rateMeter(windowMs = 2000) {
  const times: number[] = [];
  const forget = (now: number) => {
    while (times.length && times[0]! < now - windowMs) times.shift();
  };
  return {
    tick(now = Date.now()) {
      times.push(now);
      forget(now);
    },
    rate(now = Date.now()) {
      forget(now);
      return times.length / (windowMs / 1000);
    },
  };
}
