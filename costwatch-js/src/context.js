// track(fields, fn): event fields for everything recorded while fn runs, across awaits.
//
// AsyncLocalStorage carries the scope through promises, timers and callbacks, so two
// requests handled at the same time never see each other's fields.
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

import { toEventFields } from './fields.js';

const storage = new AsyncLocalStorage();

class Scope {
  constructor(fields, parent) {
    const merged = parent ? { ...parent.fields } : {};
    const attributes = { ...(merged.attributes || {}), ...(fields.attributes || {}) };
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined && value !== null) merged[key] = value;
    }
    if (Object.keys(attributes).length) merged.attributes = attributes;
    else delete merged.attributes;
    this.fields = merged;
    this.mark = performance.now();
  }

  /** Time since the block started or since the previous event recorded in it. */
  elapsedMs() {
    const now = performance.now();
    const elapsed = Math.round(now - this.mark);
    this.mark = now;
    return elapsed;
  }
}

/**
 * Run `fn` with event fields (feature, role, requestId, routeReason, attributes, ...) that
 * apply to every event recorded inside it, also after awaits. Nested blocks merge, the
 * inner one wins. Returns what `fn` returns.
 */
export function track(fields, fn) {
  if (typeof fn !== 'function') throw new TypeError('costwatch: track(fields, fn) needs a function');
  return storage.run(new Scope(toEventFields(fields || {}), storage.getStore()), fn);
}

/** The fields of the innermost active track() block (event field names, snake_case). */
export function currentFields() {
  const scope = storage.getStore();
  return scope ? { ...scope.fields } : {};
}

/** The event with the client's defaults, then the active track() fields, under its own. */
export function applyContext(event, defaults) {
  const scope = storage.getStore();
  const base = { ...(defaults || {}) };
  if (scope) {
    Object.assign(base, scope.fields);
    if (event.latency_ms === undefined) event.latency_ms = scope.elapsedMs();
  }
  const attributes = { ...(base.attributes || {}), ...(event.attributes || {}) };
  const merged = { ...base, ...event };
  if (Object.keys(attributes).length) merged.attributes = attributes;
  return merged;
}
