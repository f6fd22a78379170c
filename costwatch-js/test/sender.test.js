// The sender against local stand-ins of costwatch's events API: construction errors,
// splitting a batch that is too large, the bounded queue, gzip and Retry-After.
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { test } from 'node:test';

import { Client, retryAfterMs } from '../src/index.js';
import { quietLogger, serve } from './helpers.js';

const KEY = `cw_testkey1_${'s'.repeat(32)}`;
const NO_SCORES = { sent: 0, rejected: 0, failed: 0, dropped: 0, retried: 0, not_found_retried: 0, queued: 0 };
const event = (n) => ({ feature: 'unit', model: 'm', input_tokens: n, output_tokens: 1 });

test('a missing key or a bad base URL is an error at construction, naming what to fix', () => {
  const saved = { ...process.env };
  delete process.env.COSTWATCH_API_KEY;
  delete process.env.COSTWATCH_INGEST_KEY;
  delete process.env.COSTWATCH_URL;
  try {
    assert.throws(() => new Client({ baseUrl: 'http://127.0.0.1:1' }), /no API key: pass \{apiKey\} or set COSTWATCH_API_KEY/);
    assert.throws(() => new Client({ apiKey: 'sk-proj-123', baseUrl: 'http://127.0.0.1:1' }), /does not look like a costwatch key/);
    assert.throws(() => new Client({ apiKey: KEY }), /no base URL: pass \{baseUrl\} or set COSTWATCH_URL/);
    assert.throws(() => new Client({ apiKey: KEY, baseUrl: 'costwatch.example.com' }), /is not a URL/);
    assert.throws(() => new Client({ apiKey: KEY, baseUrl: 'ftp://costwatch.example.com' }), /must start with http/);
    assert.throws(() => new Client({ apiKey: KEY, baseUrl: 'https://x.example/?a=1' }), /must not carry a query/);
    process.env.COSTWATCH_API_KEY = KEY;
    process.env.COSTWATCH_URL = 'https://costwatch.example.com/';
    const cw = new Client();
    assert.equal(cw.baseUrl, 'https://costwatch.example.com');
    cw.close();
  } finally {
    process.env = saved;
  }
});

test('a batch the server finds too large (413) is sent in halves until it fits', async () => {
  const sizes = [];
  const server = await serve((req, body) => {
    const { events } = JSON.parse(body);
    sizes.push(events.length);
    if (events.length > 2) return { status: 413, body: '{"errors": [{"field": null, "code": "too_large"}]}' };
    return { status: 200, body: JSON.stringify({ accepted: events.length, duplicates: 0, rejected: 0, errors: [] }) };
  });
  const cw = new Client({ apiKey: KEY, baseUrl: server.url, flushIntervalMs: 10 });

  for (let n = 0; n < 7; n += 1) cw.send(event(n));
  await cw.close();
  await server.close();

  assert.deepEqual(sizes, [7, 3, 1, 2, 4, 2, 2]);
  assert.deepEqual(cw.stats(), { sent: 7, duplicates: 0, dropped: 0, failed: 0, rejected: 0, retried: 0, queued: 0,
    scores: NO_SCORES });
});

test('with costwatch down nothing throws, the queue stays bounded and the drops are counted', async () => {
  const down = await serve(() => ({}));
  await down.close();
  const logger = quietLogger();
  const cw = new Client({ apiKey: KEY, baseUrl: down.url, maxQueue: 3, flushIntervalMs: 60_000, maxRetries: 1,
    backoffBaseMs: 10, logger });

  const ids = [0, 1, 2, 3, 4].map((n) => cw.send(event(n)));
  assert.equal(cw.record({ unexpected: true }, { feature: 'unit' }), null); // past the bound too
  assert.equal(cw.record(Promise.resolve({}), { feature: 'unit' }), null); // an SDK call not awaited

  const scored = ['a', 'b', 'c', 'd'].map((id) => cw.score(id, 0.5));
  assert.equal(cw.score('e', 'high'), false); // not a quality: never queued

  assert.equal(ids.filter(Boolean).length, 3);
  assert.deepEqual(ids.slice(3), [null, null]);
  assert.deepEqual(scored, [true, true, true, false]);
  await cw.flush(); // resolves, never rejects
  assert.deepEqual(cw.stats(), { sent: 0, duplicates: 0, dropped: 4, failed: 3, rejected: 0, retried: 1, queued: 0,
    scores: { ...NO_SCORES, rejected: 1, failed: 3, dropped: 1, retried: 1 } });
  assert.match(logger.lines.join('\n'), /the scores queue is full \(3 scores\)/);
  assert.match(logger.lines.join('\n'), /giving up on 3 scores after 2 attempts/);
  assert.match(logger.lines.join('\n'), /the queue is full \(3 events\)/);
  assert.match(logger.lines.join('\n'), /record\(\) got a Promise: await the SDK call first/);
  await cw.close();
});

test('a permanent 4xx (a revoked key) is not retried; gzip bodies carry the events', async () => {
  const bodies = [];
  const server = await serve((req, body) => {
    bodies.push({ encoding: req.headers['content-encoding'], events: JSON.parse(gunzipSync(body)).events });
    return { status: 401, body: '{"errors": [{"field": null, "code": "invalid_key", "message": "unknown key"}]}' };
  });
  const logger = quietLogger();
  const cw = new Client({ apiKey: KEY, baseUrl: server.url, gzip: true, flushIntervalMs: 10, logger });

  const id = cw.send(event(5));
  await cw.close();
  await server.close();

  assert.equal(bodies.length, 1);
  assert.equal(bodies[0].encoding, 'gzip');
  assert.deepEqual([bodies[0].events[0].event_id, bodies[0].events[0].input_tokens], [id, 5]);
  assert.deepEqual([cw.stats().failed, cw.stats().retried], [1, 0]);
  assert.match(logger.lines[0], /HTTP 401, 1 events not stored: unknown key/);
});

test('Retry-After is read as seconds or as an HTTP date', () => {
  const now = Date.parse('2026-12-06T10:00:00Z');
  assert.equal(retryAfterMs('3', now), 3000);
  assert.equal(retryAfterMs('0.5', now), 500);
  assert.equal(retryAfterMs('Sun, 06 Dec 2026 10:00:07 GMT', now), 7000);
  assert.equal(retryAfterMs('Sun, 06 Dec 2026 09:00:00 GMT', now), 0);
  assert.equal(retryAfterMs('soon', now), null);
  assert.equal(retryAfterMs(null, now), null);
});

test('a 429 waits at least Retry-After before the same batch goes again', async () => {
  const arrivals = [];
  const server = await serve((req, body) => {
    arrivals.push({ body: body.toString() });
    if (arrivals.length === 1) return { status: 429, headers: { 'retry-after': '1' }, body: '{}' };
    return { status: 200, body: '{"accepted": 1, "duplicates": 0, "rejected": 0, "errors": []}' };
  });
  const cw = new Client({ apiKey: KEY, baseUrl: server.url, flushIntervalMs: 10, backoffBaseMs: 1, backoffMaxMs: 2 });

  cw.send(event(1));
  await cw.close();
  await server.close();

  assert.equal(arrivals.length, 2);
  assert.equal(arrivals[1].body, arrivals[0].body);
  assert.equal(cw.stats().retried, 1);
  // The wait it picks: at least what the server asked (plus jitter), however small the backoff.
  const waits = Array.from({ length: 50 }, () => cw._backoff(0, retryAfterMs('1')));
  assert.ok(waits.every((ms) => ms >= 1000 && ms <= 1100), waits.join(','));
});

test('scores go out in one batch after a 429 with Retry-After, the source cut to 50 characters', async () => {
  const bodies = [];
  const server = await serve((req, body) => {
    bodies.push([req.url, JSON.parse(body)]);
    if (bodies.length === 1) return { status: 429, headers: { 'retry-after': '0' }, body: '{"errors": []}' };
    return { status: 200, body: JSON.stringify({ accepted: 2, rejected: 0, errors: [] }) };
  });
  const cw = new Client({ apiKey: KEY, baseUrl: server.url, flushIntervalMs: 10 });

  assert.equal(cw.score('ev-1', 0, 'judge'), true);
  assert.equal(cw.score('ev-2', 1, 'x'.repeat(80)), true);
  await cw.close();
  await server.close();

  const expected = ['/api/v1/scores', { scores: [{ event_id: 'ev-1', quality: 0, source: 'judge' },
    { event_id: 'ev-2', quality: 1, source: 'x'.repeat(50) }] }];
  assert.deepEqual(bodies, [expected, expected]);
  assert.deepEqual(cw.stats().scores, { ...NO_SCORES, sent: 2, retried: 1 });
});
