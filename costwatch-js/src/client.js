// The non-blocking batching sender.
//
// record(), call() and send() run in the app's request path: they never throw and never
// wait for the network. Events go to a bounded in-memory queue that is POSTed to
// /api/v1/events in batches (<= batchSize events, or every flushIntervalMs), retrying 429,
// 5xx and network errors with backoff that honours Retry-After. Every event carries an
// event_id assigned when it is recorded, so a retried batch is deduplicated by the server.
// Timers are unref'd: an idle client never keeps the process alive; 'beforeExit' sends
// what is still queued.
//
// score() queues late quality scores the same way, POSTed to /api/v1/scores after the events
// of the same round. A score whose event the server has not stored yet comes back per item
// as `not_found` (the event may still be queued or in flight): it waits its own backoff and
// is sent again, a bounded number of times, then counted as failed.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';

import { applyContext } from './context.js';
import { toEventFields } from './fields.js';
import { eventFromResponse, responseKind, unmappedEvent } from './mapping.js';
import { isStream, wrapStream } from './stream.js';

export const VERSION = '0.1.0';
const MAX_BATCH = 1000; // the events API takes at most 1000 events per request
const MAX_SCORES = 1000; // the scores API takes at most 1000 items per request
const MAX_SOURCE = 50; // the scores API's limit on `source`
const MAX_BODY_BYTES = 4_500_000; // under the API's 5 MB limit, with room for the envelope
const KEY_PATTERN = /^cw_[A-Za-z0-9]{4,24}_[A-Za-z0-9_-]{24,}$/;
const gzip = promisify(gzipCallback);
// How the warnings about a dropped new event or score name their queue (see _dropsNew).
const EVENTS_QUEUE = { key: '', afterClose: 'an event was recorded after close()', queue: 'the queue',
  items: 'events', stat: 'stats().dropped' };
const SCORES_QUEUE = { key: 'score:', afterClose: 'a score was sent after close()', queue: 'the scores queue',
  items: 'scores', stat: 'stats().scores.dropped' };

const liveClients = new Set();
let exitHookInstalled = false;

/** `Retry-After` in milliseconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(value, now = Date.now()) {
  if (value === null || value === undefined || String(value).trim() === '') return null;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.max(0, Number(text) * 1000);
  const when = Date.parse(text);
  return Number.isNaN(when) ? null : Math.max(0, when - now);
}

function configError(message) {
  const error = new Error(`costwatch: ${message}`);
  error.name = 'CostwatchConfigError';
  return error;
}

function readBaseUrl(value) {
  if (!value) throw configError('no base URL: pass {baseUrl} or set COSTWATCH_URL (e.g. https://costwatch.example.com)');
  let url;
  try {
    url = new URL(String(value));
  } catch {
    throw configError(`base URL ${JSON.stringify(String(value))} is not a URL (expected e.g. https://costwatch.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw configError(`base URL ${JSON.stringify(String(value))} must start with http:// or https://`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw configError(`base URL ${JSON.stringify(String(value))} must not carry a query, fragment or credentials`);
  }
  return url.href.replace(/\/+$/, '');
}

function number(options, name, fallback, min = 0) {
  const value = options[name];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw configError(`option ${name} must be a number >= ${min}`);
  }
  return value;
}

class Retryable extends Error {
  constructor(reason, retryAfter = null) {
    super(reason);
    this.retryAfter = retryAfter;
  }
}

export class Client {
  constructor(options = {}) {
    const env = typeof process !== 'undefined' ? process.env : {};
    const apiKey = options.apiKey ?? env.COSTWATCH_API_KEY ?? env.COSTWATCH_INGEST_KEY;
    if (!apiKey) {
      throw configError('no API key: pass {apiKey} or set COSTWATCH_API_KEY (a key with the ingest scope, cw_<id>_<secret>)');
    }
    if (!KEY_PATTERN.test(String(apiKey))) {
      throw configError('the API key does not look like a costwatch key (cw_<id>_<secret>); '
        + 'issue one on the project\'s API keys page');
    }
    this.apiKey = String(apiKey);
    this.baseUrl = readBaseUrl(options.baseUrl ?? env.COSTWATCH_URL);
    this.url = `${this.baseUrl}/api/v1/events`;
    this.scoresUrl = `${this.baseUrl}/api/v1/scores`;
    this.maxQueue = Math.floor(number(options, 'maxQueue', 10000, 1));
    this.batchSize = Math.min(MAX_BATCH, Math.floor(number(options, 'batchSize', MAX_BATCH, 1)));
    this.flushIntervalMs = number(options, 'flushIntervalMs', 1000);
    this.timeoutMs = number(options, 'timeoutMs', 5000, 1);
    this.maxRetries = Math.floor(number(options, 'maxRetries', 5));
    this.backoffBaseMs = number(options, 'backoffBaseMs', 500);
    this.backoffMaxMs = number(options, 'backoffMaxMs', 30000);
    this.maxRetryAfterMs = number(options, 'maxRetryAfterMs', 300000);
    this.shutdownTimeoutMs = number(options, 'shutdownTimeoutMs', 5000);
    this.scoreNotFoundRetries = Math.floor(number(options, 'scoreNotFoundRetries', 6));
    this.scoreNotFoundBackoffMs = number(options, 'scoreNotFoundBackoffMs', 1000);
    this.gzip = Boolean(options.gzip);
    this.logger = options.logger || console;
    this.defaults = toEventFields({ environment: options.environment, feature: options.feature });

    this._queue = [];
    this._timer = null;
    this._sleep = null; // the backoff timer of a retry in progress
    this._sending = null; // the promise of the drain loop, while it runs
    this._waiters = 0; // flush() calls in progress
    this._closed = false;
    this._exiting = false;
    this._warned = new Set();
    this._counts = { sent: 0, duplicates: 0, dropped: 0, failed: 0, rejected: 0, retried: 0 };
    this._scores = []; // {payload, attempts (not_found answers so far), due (ms epoch before which it waits)}
    this._scoreCounts = { sent: 0, rejected: 0, failed: 0, dropped: 0, retried: 0, not_found_retried: 0 };
    liveClients.add(this);
    installExitHook();
  }

  // --- the app's side: never throws, never waits ---------------------------------------
  /** Queue one event (events API field names); returns its event_id, or null when dropped. */
  send(event) {
    try {
      const payload = applyContext({ ...event }, this.defaults);
      if (!payload.event_id) payload.event_id = randomUUID();
      if (!payload.timestamp) payload.timestamp = new Date().toISOString();
      else if (payload.timestamp instanceof Date) payload.timestamp = payload.timestamp.toISOString();
      const data = JSON.stringify(payload);
      return this._enqueue(data) ? payload.event_id : null;
    } catch (error) {
      this._warnOnce('serialise', `dropped an event that could not be serialised: ${error}`);
      this._counts.dropped += 1;
      return null;
    }
  }

  /** Record an SDK response (openai, @anthropic-ai/sdk, @google/genai); returns its event_id or null. */
  record(response, options = {}) {
    try {
      const { requestParams } = options || {};
      const fields = toEventFields(options);
      if (response && typeof response.then === 'function') { // the SDK call's promise, not awaited
        this._warnOnce('promise', 'record() got a Promise: await the SDK call first (or use call()); dropped');
        this._counts.dropped += 1;
        return null;
      }
      let event = eventFromResponse(response, { requestParams, fields });
      if (event === null) {
        const kind = describe(response);
        this._warnOnce(`unmapped:${kind}`, `cannot read usage from a ${kind}; recorded what it could read `
          + '(model, any token counts) with attributes.unmapped_response (and usage_estimated when counts were missing)');
        event = unmappedEvent(response, { requestParams, fields });
        event.attributes = { ...(event.attributes || {}), unmapped_response: kind.slice(0, 100) };
      }
      return this.send(event);
    } catch (error) {
      this._warnOnce('record', `could not record a response: ${error}`);
      this._counts.dropped += 1;
      return null;
    }
  }

  /**
   * `await fn(params)` (an SDK create call), timed and recorded; resolves to the SDK's result.
   * A stream comes back wrapped so that its event is recorded when iteration ends. Errors of
   * the SDK call itself reach the caller as they would without costwatch.
   */
  async call(fn, params, options = {}) {
    const startedAt = performance.now();
    const result = await fn(params);
    try {
      if (isStream(result) && responseKind(result) === null) {
        return wrapStream(result, ({ chunks, error, latencyMs, ttftMs }) => {
          if (!chunks.length) {
            this._warnOnce('empty-stream', 'a stream ended before its first chunk; nothing to record');
            return;
          }
          const one = chunks.length === 1 && responseKind(chunks[0]) !== null; // MessageStream.finalMessage()
          this.record(one ? chunks[0] : chunks, {
            latencyMs, ttftMs: ttftMs ?? undefined, ...(error ? { status: 'error' } : {}), requestParams: params,
            ...options,
          });
        }, startedAt);
      }
      this.record(result, { latencyMs: Math.round(performance.now() - startedAt), requestParams: params, ...options });
    } catch (error) {
      this._warnOnce('call', `could not record a call: ${error}`);
    }
    return result;
  }

  /**
   * Queue a late quality score (0-1) of an event sent before (its event_id, as returned by
   * record(), call()'s options.eventId or send()). Returns true when queued. Never throws:
   * a quality outside 0-1 is counted in stats().scores.rejected and logged once.
   */
  score(eventId, quality, source) {
    try {
      if (typeof eventId !== 'string' || !eventId) {
        this._scoreCounts.rejected += 1;
        this._warnOnce('score:event_id', `score() needs the event_id of a recorded event, got ${describeValue(eventId)}; `
          + 'not sent (more like it are counted in stats().scores.rejected)');
        return false;
      }
      if (typeof quality !== 'number' || !Number.isFinite(quality) || quality < 0 || quality > 1) {
        this._scoreCounts.rejected += 1;
        this._warnOnce('score:quality', `score() quality must be a number from 0 to 1, got ${describeValue(quality)} `
          + `(event ${eventId}); not sent (more like it are counted in stats().scores.rejected)`);
        return false;
      }
      if (this._dropsNew(this._scores, this._scoreCounts, SCORES_QUEUE)) return false;
      const payload = { event_id: eventId, quality };
      if (source !== undefined && source !== null && source !== '') payload.source = String(source).slice(0, MAX_SOURCE);
      this._scores.push({ payload, attempts: 0, due: 0 });
      this._schedule(this.flushIntervalMs);
      return true;
    } catch (error) {
      this._warnOnce('score', `could not queue a score: ${error}`);
      this._scoreCounts.dropped += 1;
      return false;
    }
  }

  /** Counters: sent, duplicates, dropped, failed, rejected, retried, queued; scores: the same for score(). */
  stats() {
    return { ...this._counts, queued: this._queue.length,
      scores: { ...this._scoreCounts, queued: this._scores.length } };
  }

  /** Send everything queued now; resolves when it was handled (sent, rejected or failed). Never rejects. */
  async flush() {
    // The app waits for this: a retry's timer keeps the process up meanwhile.
    this._waiters += 1;
    if (this._sleep) this._sleep.ref();
    try {
      while (this._queue.length || this._scores.length || this._sending) {
        this._startSending();
        if (this._sending) {
          await this._sending;
        } else { // only scores waiting for their not_found backoff: the app waits, so this timer is ref'd
          await new Promise((resolve) => { setTimeout(resolve, Math.max(0, this._nextScoreDue() - Date.now())); });
        }
      }
    } finally {
      this._waiters -= 1;
    }
  }

  /** Flush, then stop accepting events. Resolves when the flush is done. */
  async close() {
    this._closed = true;
    if (!this._exiting) { // retries stop after shutdownTimeoutMs, and their timers keep the process up
      this._exiting = true;
      this._exitDeadline = Date.now() + this.shutdownTimeoutMs;
      if (this._sleep) this._sleep.ref();
    }
    try {
      await this.flush();
    } finally {
      liveClients.delete(this);
    }
  }

  // --- internals ------------------------------------------------------------------------
  _warnOnce(key, message) {
    if (this._warned.has(key)) return;
    this._warned.add(key);
    try {
      this.logger.warn(`costwatch: ${message}`);
    } catch {
      // a broken logger must not break the app
    }
  }

  // True when a new item must be dropped (the client is closed or `queue` is full): it is
  // counted in `counts.dropped` and the reason is warned once per queue.
  _dropsNew(queue, counts, names) {
    let warning = null;
    if (this._closed) {
      warning = [`${names.key}closed`, `${names.afterClose}; it was dropped`];
    } else if (queue.length >= this.maxQueue) {
      warning = [`${names.key}queue-full`, `${names.queue} is full (${this.maxQueue} ${names.items}); new `
        + `${names.items} are dropped and counted in ${names.stat} until it drains`];
    }
    if (warning === null) return false;
    counts.dropped += 1;
    this._warnOnce(...warning);
    return true;
  }

  _enqueue(data) {
    if (this._dropsNew(this._queue, this._counts, EVENTS_QUEUE)) return false;
    this._queue.push(data);
    if (this._queue.length >= this.batchSize) this._startSending();
    else this._schedule(this.flushIntervalMs);
    return true;
  }

  /** A send round in `delay` ms (unref'd unless asked), unless one runs or is due sooner. */
  _schedule(delay, ref = false) {
    if (this._sending) return;
    const at = Date.now() + Math.max(0, delay);
    if (this._timer) {
      if (this._timerAt <= at) return;
      clearTimeout(this._timer);
    }
    this._timerAt = at;
    this._timer = setTimeout(() => {
      this._timer = null;
      this._startSending();
    }, Math.max(0, delay));
    if (!ref) this._timer.unref();
  }

  _nextScoreDue() {
    return this._scores.reduce((soonest, item) => Math.min(soonest, item.due), Infinity);
  }

  _readyScores() {
    const now = Date.now();
    return this._scores.some((item) => item.due <= now);
  }

  _startSending() {
    if (this._timer) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    if (this._sending || (!this._queue.length && !this._readyScores())) {
      if (!this._sending && this._scores.length) this._schedule(this._nextScoreDue() - Date.now());
      return;
    }
    this._sending = this._drain().finally(() => {
      this._sending = null;
      if (this._queue.length || this._scores.length) { // arrived while sending, or waiting after not_found
        const delay = this._queue.length ? (this._exiting ? 0 : this.flushIntervalMs) : this._nextScoreDue() - Date.now();
        this._schedule(delay, this._exiting);
      }
    });
  }

  async _drain() {
    // Events first: a score queued right after its event finds it stored.
    for (;;) {
      if (this._queue.length) await this._drainEvents();
      else if (this._readyScores()) await this._drainScores();
      else return;
    }
  }

  async _drainScores() {
    const now = Date.now();
    const batch = [];
    const later = [];
    for (const item of this._scores) {
      if (item.due <= now && batch.length < MAX_SCORES) batch.push(item);
      else later.push(item);
    }
    this._scores = later;
    try {
      await this._postWithRetries(batch, 'scores');
    } catch (error) {
      this._scoreCounts.failed += batch.length;
      this._warnOnce('score:unexpected', `unexpected error while sending ${batch.length} scores: ${error}`);
    }
  }

  async _drainEvents() {
    const batch = [];
    let bytes = 0;
    while (this._queue.length && batch.length < this.batchSize
           && (!batch.length || bytes + this._queue[0].length < MAX_BODY_BYTES)) {
      const item = this._queue.shift();
      batch.push(item);
      bytes += item.length + 1;
    }
    try {
      await this._postWithRetries(batch, 'events');
    } catch (error) {
      this._counts.failed += batch.length;
      this._warnOnce('unexpected', `unexpected error while sending ${batch.length} events: ${error}`);
    }
  }

  _deadline() {
    return this._exiting ? this._exitDeadline : Infinity;
  }

  async _postWithRetries(batch, kind = 'events') {
    const counts = kind === 'scores' ? this._scoreCounts : this._counts;
    for (let attempt = 0; ; attempt += 1) {
      let status;
      let result;
      try {
        ({ status, result } = kind === 'scores'
          ? await this._post(this.scoresUrl, `{"scores":${JSON.stringify(batch.map((item) => item.payload))}}`)
          : await this._post(this.url, `{"events":[${batch.join(',')}]}`));
      } catch (error) {
        if (!(error instanceof Retryable)) throw error;
        const delay = this._backoff(attempt, error.retryAfter);
        if (attempt >= this.maxRetries || Date.now() + delay > this._deadline()) {
          counts.failed += batch.length;
          try {
            this.logger.warn(`costwatch: giving up on ${batch.length} ${kind} after ${attempt + 1} attempts: ${error.message}`);
          } catch {
            // a broken logger must not break the app
          }
          return;
        }
        counts.retried += 1;
        await this._wait(delay);
        continue;
      }
      if (kind === 'scores') this._handleScoresResponse(batch, status, result);
      else await this._handleResponse(batch, status, result);
      return;
    }
  }

  _handleScoresResponse(batch, status, result) {
    const counts = this._scoreCounts;
    if (!((status >= 200 && status < 300) || (status === 400 && 'rejected' in result))) {
      // A permanent 4xx (bad key, missing scope, body refused): retrying cannot help.
      counts.failed += batch.length;
      const errors = Array.isArray(result.errors) && result.errors.length
        ? result.errors.map((e) => e.message).slice(0, 3).join('; ') : String(result.raw || '').slice(0, 200);
      this._warnOnce(`score:http:${status}`, `HTTP ${status}, ${batch.length} scores not stored: ${errors}`);
      return;
    }
    counts.sent += Number(result.accepted) || 0;
    const errors = Array.isArray(result.errors) ? result.errors : [];
    const seen = new Set();
    for (const error of errors) {
      const item = batch[error.index];
      if (!item || seen.has(error.index)) continue;
      seen.add(error.index);
      if (error.code === 'not_found') { // the event is not stored yet: again later, a bounded number of times
        item.attempts += 1;
        const delay = this._notFoundBackoff(item.attempts);
        if (item.attempts > this.scoreNotFoundRetries || Date.now() + delay > this._deadline()) {
          counts.failed += 1;
          this._warnOnce('score:not_found', `gave up on the score of event ${item.payload.event_id}: no stored event `
            + `has this event_id after ${item.attempts} tries (more like it are counted in stats().scores.failed)`);
          continue;
        }
        item.due = Date.now() + delay;
        counts.not_found_retried += 1;
        this._scores.push(item);
        continue;
      }
      counts.rejected += 1;
      this._warnOnce(`score:rejected:${error.field}:${error.code}`, `the server rejected the score of event `
        + `${error.event_id}: ${error.field} ${error.code}: ${error.message} `
        + '(more like it are counted in stats().scores.rejected)');
    }
    // Items the answer did not account for (an older server, a proxy): counted, not lost silently.
    const unaccounted = batch.length - (Number(result.accepted) || 0) - seen.size;
    if (unaccounted > 0) counts.failed += unaccounted;
  }

  _notFoundBackoff(attempts) {
    const ceiling = Math.min(this.backoffMaxMs, this.scoreNotFoundBackoffMs * 2 ** (attempts - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  _backoff(attempt, retryAfter) {
    if (retryAfter !== null && retryAfter !== undefined) {
      // At least what the server asked, plus a little jitter so clients told the same time spread out.
      const base = Math.min(retryAfter, this.maxRetryAfterMs);
      return base + Math.random() * Math.min(1000, base * 0.1);
    }
    const ceiling = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter"
  }

  _wait(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this._sleep = null;
        resolve();
      }, ms);
      // Unless the app awaits flush() or the process is exiting, a retry never keeps it up.
      if (!this._exiting && !this._waiters) timer.unref();
      this._sleep = timer;
    });
  }

  async _post(url, json) {
    let body = Buffer.from(json);
    let text;
    const headers = {
      Authorization: `Bearer ${this.apiKey}`,
      'Content-Type': 'application/json',
      'User-Agent': `costwatch-js/${VERSION}`,
    };
    if (this.gzip) {
      body = await gzip(body, { level: 5 });
      headers['Content-Encoding'] = 'gzip';
    }
    let response;
    try {
      response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      text = await response.text();
    } catch (error) {
      throw new Retryable(`network error: ${error?.cause?.code || error?.message || error}`);
    }
    if (response.status === 429 || response.status >= 500) {
      throw new Retryable(`HTTP ${response.status}`, retryAfterMs(response.headers.get('retry-after')));
    }
    let result = {};
    try {
      result = JSON.parse(text || '{}');
    } catch {
      result = {};
    }
    if (!result || typeof result !== 'object' || Array.isArray(result)) result = {};
    result.raw = text;
    return { status: response.status, result };
  }

  async _handleResponse(batch, status, result) {
    if (status === 413 && batch.length > 1) { // too large for the server: send it in halves
      const half = Math.floor(batch.length / 2);
      await this._postWithRetries(batch.slice(0, half), 'events');
      await this._postWithRetries(batch.slice(half), 'events');
      return;
    }
    if ((status >= 200 && status < 300) || (status === 400 && 'rejected' in result)) {
      const accepted = Number(result.accepted) || 0;
      const duplicates = Number(result.duplicates) || 0;
      const rejected = Number(result.rejected) || 0;
      this._counts.sent += accepted + duplicates;
      this._counts.duplicates += duplicates;
      if (rejected) {
        this._counts.rejected += rejected;
        for (const error of (Array.isArray(result.errors) ? result.errors : [])) {
          // Once per kind of error: a bug that rejects every event logs one line, not one per batch.
          this._warnOnce(`rejected:${error.field}:${error.code}`, `the server rejected event ${error.event_id}: `
            + `${error.field} ${error.code}: ${error.message} (more like it are counted in stats().rejected)`);
        }
      }
      return;
    }
    // Any other 4xx is permanent (bad key, missing scope, body refused): retrying cannot help.
    this._counts.failed += batch.length;
    const errors = Array.isArray(result.errors) && result.errors.length
      ? result.errors.map((e) => e.message).slice(0, 3).join('; ') : String(result.raw || '').slice(0, 200);
    this._warnOnce(`http:${status}`, `HTTP ${status}, ${batch.length} events not stored: ${errors}`);
  }
}

function describeValue(value) {
  try {
    return typeof value === 'string' ? JSON.stringify(value.slice(0, 60)) : String(value).slice(0, 60);
  } catch {
    return typeof value;
  }
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array of unknown stream chunks';
  if (typeof value !== 'object') return typeof value;
  const name = value.constructor?.name;
  return name && name !== 'Object' ? name : `object with keys ${Object.keys(value).slice(0, 5).join(',')}`;
}

// Node emits 'beforeExit' when nothing is left to do; whatever is queued is sent then
// (this schedules work, so the process stays until it is done, up to shutdownTimeoutMs).
function installExitHook() {
  if (exitHookInstalled || typeof process === 'undefined' || typeof process.on !== 'function') return;
  exitHookInstalled = true;
  process.on('beforeExit', () => {
    for (const client of liveClients) {
      if (!client._queue.length && !client._scores.length && !client._sending) continue;
      if (!client._exiting) {
        client._exiting = true;
        client._exitDeadline = Date.now() + client.shutdownTimeoutMs;
      }
      if (client._sleep) client._sleep.ref(); // a retry waiting to run keeps the process up
      client.flush().catch(() => {});
    }
  });
}
