/**
 * A set of listeners and the function that tells them all; a listener that throws is logged and
 * skipped, so it cannot stop a stream or the listeners after it.
 *
 * @example
 *   const events = createEmitter<EngineEvent>((e) => console.error(`listener failed: ${e.message}`));
 *   const stop = events.subscribe((e) => e.type === 'output' && show(e.output));
 *   events.emit({ type: 'removed', stream: id });
 */
export interface Emitter<E> {
  emit(event: E): void;
  /** Returns the function that stops listening. */
  subscribe(listener: (event: E) => void): () => void;
  clear(): void;
}

export function createEmitter<E>(onListenerError: (error: Error) => void): Emitter<E> {
  const listeners = new Set<(event: E) => void>();
  return {
    emit(event) {
      for (const listener of listeners) {
        try {
          listener(event);
        } catch (e) {
          onListenerError(e as Error);
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    clear: () => listeners.clear(),
  };
}
