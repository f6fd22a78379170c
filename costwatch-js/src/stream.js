// A pass-through wrapper for SDK streams that records the call's event when the stream ends.
//
// The app gets a Proxy of the SDK's own stream object (instanceof, .controller, helpers
// all still work); only async iteration goes through a recorder that keeps each chunk,
// times the first one and, when the stream is exhausted, broken out of or fails, sends one
// event built from the chunks (usage from the final chunk, or estimated and flagged).
import { performance } from 'node:perf_hooks';

const ITERATOR_METHODS = new Set(['next', 'return', 'throw']);
const FINAL_METHODS = new Set(['finalMessage', 'finalChatCompletion', 'finalResponse']);

export function isStream(value) {
  return value !== null && typeof value === 'object' && typeof value[Symbol.asyncIterator] === 'function';
}

export function wrapStream(stream, onEnd, startedAt) {
  const state = { chunks: [], firstAt: null, done: false, shared: null };

  const finish = (error) => {
    if (state.done) return;
    state.done = true;
    const now = performance.now();
    onEnd({
      chunks: state.chunks,
      error,
      latencyMs: Math.round(now - startedAt),
      ttftMs: state.firstAt === null ? null : Math.round(state.firstAt - startedAt),
    });
  };

  const recorder = (inner) => ({
    async next(...args) {
      let step;
      try {
        step = await inner.next(...args);
      } catch (error) {
        finish(error);
        throw error;
      }
      if (step.done) finish(null);
      else {
        if (state.firstAt === null) state.firstAt = performance.now();
        state.chunks.push(step.value);
      }
      return step;
    },
    async return(value) {
      finish(null); // the app stopped early (break): record what it saw
      return typeof inner.return === 'function' ? inner.return(value) : { done: true, value };
    },
    async throw(error) {
      finish(error);
      if (typeof inner.throw === 'function') return inner.throw(error);
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  });

  // For a stream that is its own iterator (an async generator, as @google/genai returns),
  // next()/return()/throw() called directly go through the same recorder.
  const shared = () => {
    if (!state.shared) state.shared = recorder(stream[Symbol.asyncIterator]());
    return state.shared;
  };

  return new Proxy(stream, {
    get(target, prop, receiver) {
      if (prop === Symbol.asyncIterator) {
        return () => (typeof target.next === 'function' ? shared() : recorder(target[Symbol.asyncIterator]()));
      }
      if (ITERATOR_METHODS.has(prop) && typeof target.next === 'function') {
        const iterator = shared();
        return iterator[prop].bind(iterator);
      }
      if (FINAL_METHODS.has(prop) && typeof target[prop] === 'function') {
        // The SDKs' stream helpers (anthropic messages.stream(), openai chat.completions.stream()
        // and responses.stream()): an app that only awaits the final object never iterates;
        // record that object instead (its usage is complete when the SDK put it there).
        return async (...args) => {
          const final = await target[prop](...args);
          if (!state.done) {
            state.chunks = [final];
            finish(null);
          }
          return final;
        };
      }
      const value = Reflect.get(target, prop, target);
      // toReadableStream() (e.g. `new Response(stream.toReadableStream())` in a route handler)
      // iterates `this`: run it on the proxy so that its chunks are recorded too. Other methods
      // run on the SDK's own object: its private state is keyed by it, not by the proxy.
      if (prop === 'toReadableStream' && typeof value === 'function') return value.bind(receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
