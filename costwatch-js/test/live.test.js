// The client against a LIVE costwatch (COSTWATCH_URL, COSTWATCH_API_KEY), with the real
// openai, @anthropic-ai/sdk and @google/genai packages pointed at a local stand-in of each
// provider's HTTP API. What was stored is checked from the Python side
// (tests/integrations/test_js_client.py) through the lines written to CW_RESULTS.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client, currentFields, track } from '../src/index.js';
import { CASES, caseNamed, live, plain, providerStandIn, quietLogger, report, sdkCall, sdkClients, serve } from './helpers.js';

const drain = async (iterable) => {
  const seen = [];
  for await (const item of iterable) seen.push(item);
  return seen;
};

const NO_SCORES = { sent: 0, rejected: 0, failed: 0, dropped: 0, retried: 0, not_found_retried: 0, queued: 0 };
const options = { skip: !live && 'set COSTWATCH_URL, COSTWATCH_API_KEY and CW_RESULTS', timeout: 120_000 };

describe('against a live costwatch', options, () => {
  let provider;
  before(async () => {
    provider = await providerStandIn();
  });
  after(async () => {
    await provider.close();
  });

  test('call() records every provider case and hands the app exactly what the SDK gives', async () => {
    const logger = quietLogger();
    const cw = new Client({ flushIntervalMs: 50, logger });
    for (const c of CASES) {
      provider.state.current = c;
      const fn = sdkCall(c, provider.url);
      const direct = await fn(structuredClone(c.params));
      const expected = c.stream ? plain(await drain(direct)) : plain(direct);

      const result = await cw.call(fn, structuredClone(c.params), { feature: 'sdk-call', requestId: `js-${c.name}` });

      if (c.stream) {
        assert.equal(Object.getPrototypeOf(result), Object.getPrototypeOf(direct), `${c.name}: the SDK's own stream`);
        assert.deepEqual(plain(await drain(result)), expected, `${c.name}: the same chunks as without costwatch`);
      } else {
        assert.deepEqual(plain(result), expected, `${c.name}: the SDK's response unchanged`);
      }
    }
    await cw.close();
    assert.deepEqual(cw.stats(), { sent: CASES.length, duplicates: 0, dropped: 0, failed: 0, rejected: 0, retried: 0,
      queued: 0, scores: NO_SCORES });
    assert.deepEqual(logger.lines, []);
    report({ check: 'cases', names: CASES.map((c) => c.name) });
  });

  test('record() maps a response the app already has, with the request for the cap', async () => {
    const c = caseNamed('anthropic');
    provider.state.current = c;
    const message = await sdkCall(c, provider.url)(c.params);
    const cw = new Client({ flushIntervalMs: 50 });

    const eventId = cw.record(message, { requestParams: c.params, feature: 'summaries', role: 'escalation',
      parentEventId: 'lite-1', routeReason: 'low_confidence', quality: 0.75, latencyMs: 420,
      attributes: { customer: 'acme' } });

    await cw.close();
    assert.equal(cw.stats().sent, 1);
    report({ check: 'record', eventId });
  });

  test('stream helpers: awaiting finalMessage() / finalResponse() without iterating records the final object', async () => {
    const c = caseNamed('anthropic_stream');
    provider.state.current = c;
    const anthropic = sdkClients(provider.url).anthropic;
    const cw = new Client({ flushIntervalMs: 50 });

    const stream = await cw.call((p) => anthropic.messages.stream(p), c.params, { feature: 'message-stream',
      requestId: 'js-message-stream' });
    const texts = [];
    stream.on('text', (text) => texts.push(text));
    const message = await stream.finalMessage();

    const r = caseNamed('responses_stream');
    provider.state.current = r;
    const openai = sdkClients(provider.url).openai;
    const helper = await cw.call((p) => openai.responses.stream(p), r.params, { feature: 'message-stream',
      requestId: 'js-response-stream' });
    const response = await helper.finalResponse();

    await cw.close();
    assert.deepEqual([texts.join(''), message.usage.output_tokens], ['Sent Monday.', 15]);
    assert.equal(response.usage.output_tokens, 300);
    assert.equal(cw.stats().sent, 2);
    report({ check: 'message_stream' });
  });

  test('a stream handed on with toReadableStream() (a Next.js route returning it) is recorded when read', async () => {
    const c = caseNamed('chat_stream');
    provider.state.current = c;
    const cw = new Client({ flushIntervalMs: 50 });

    const stream = await cw.call(sdkCall(c, provider.url), c.params, { feature: 'route-stream',
      requestId: 'js-readable-stream' });
    const body = await new Response(stream.toReadableStream()).text();

    await cw.close();
    assert.deepEqual(body.trim().split('\n').map((line) => JSON.parse(line).object), Array(4).fill('chat.completion.chunk'));
    assert.equal(cw.stats().sent, 1);
    report({ check: 'readable_stream' });
  });

  test('track() fields follow each request across awaits, and concurrent requests stay apart', async () => {
    const c = caseNamed('chat');
    provider.state.current = c;
    const create = sdkCall(c, provider.url);
    const cw = new Client({ flushIntervalMs: 50 });
    const seen = {};

    const handle = (requestId, customer, pause) => track(
      { feature: 'support-answer', requestId, attributes: { customer } },
      async () => {
        await sleep(pause);
        await track({ role: 'triage', routeReason: 'simple' }, () => cw.call(create, c.params));
        await sleep(pause);
        await cw.call(create, c.params, { attributes: { step: 'answer' } });
        seen[requestId] = currentFields();
      },
    );
    await Promise.all([handle('req-a', 'acme', 30), handle('req-b', 'globex', 5)]);
    cw.record(await create(c.params), { requestParams: c.params, feature: 'outside', requestId: 'req-outside' });

    await cw.close();
    assert.deepEqual(seen['req-a'], { feature: 'support-answer', request_id: 'req-a', attributes: { customer: 'acme' } });
    assert.deepEqual(seen['req-b'], { feature: 'support-answer', request_id: 'req-b', attributes: { customer: 'globex' } });
    assert.deepEqual(currentFields(), {});
    assert.equal(cw.stats().sent, 5);
    report({ check: 'track' });
  });

  test('a 503 with Retry-After is retried, and the batch is stored once', async () => {
    const forwarded = [];
    const proxy = await serve(async (req, body) => {
      forwarded.push(body.toString());
      if (forwarded.length === 1) return { status: 503, headers: { 'retry-after': '1' }, body: '{"errors": []}' };
      const upstream = await fetch(`${process.env.COSTWATCH_URL}${req.url}`, {
        method: 'POST', body, headers: { authorization: req.headers.authorization, 'content-type': 'application/json' },
      });
      return { status: upstream.status, headers: { 'content-type': 'application/json' }, body: await upstream.text() };
    });
    const cw = new Client({ baseUrl: proxy.url, flushIntervalMs: 50 });

    const ids = [1, 2, 3].map((n) => cw.send({ feature: 'retry-check', model: 'gpt-5-mini-2025-08-07',
      input_tokens: n, output_tokens: 1 }));

    await cw.close();
    await proxy.close();
    assert.equal(forwarded.length, 2);
    assert.equal(forwarded[0], forwarded[1], 'the same events, with the same event_ids');
    assert.deepEqual(cw.stats(), { sent: 3, duplicates: 0, dropped: 0, failed: 0, rejected: 0, retried: 1, queued: 0,
      scores: NO_SCORES });
    report({ check: 'retry', eventIds: ids });
  });

  test('score() stores late qualities, and retries a score that arrived before its event', async () => {
    // A proxy in front of costwatch sees every scores request. The first carries only the score of
    // an event not stored yet (not_found); before that answer goes back, another client stores the
    // event, so the retry after the not_found backoff finds it. No timing involved.
    const early = randomUUID();
    const answers = [];
    const other = new Client({ flushIntervalMs: 50 });
    const proxy = await serve(async (req, body) => {
      const upstream = await fetch(`${process.env.COSTWATCH_URL}${req.url}`, {
        method: 'POST', body, headers: { authorization: req.headers.authorization, 'content-type': 'application/json' },
      });
      const text = await upstream.text();
      if (req.url.startsWith('/api/v1/scores')) {
        answers.push(JSON.parse(text));
        if (answers.length === 1) {
          other.send({ event_id: early, feature: 'scored', model: 'gpt-5-mini-2025-08-07', input_tokens: 5,
            output_tokens: 1 });
          await other.flush();
        }
      }
      return { status: upstream.status, headers: { 'content-type': 'application/json' }, body: text };
    });
    const logger = quietLogger();
    const cw = new Client({ baseUrl: proxy.url, flushIntervalMs: 50, logger, scoreNotFoundBackoffMs: 50 });

    assert.equal(cw.score(early, 0.25, 'judge'), true);
    await cw.flush();
    const scored = cw.send({ feature: 'scored', model: 'gpt-5-mini-2025-08-07', input_tokens: 7, output_tokens: 2 });
    assert.equal(cw.score(scored, 0.9, 'thumbs'), true);
    assert.equal(cw.score(scored, 1.5), false); // out of range: counted as rejected, never sent
    assert.equal(cw.score(scored, -0.1, 'judge'), false);
    await cw.close();
    await other.close();
    await proxy.close();

    assert.deepEqual(answers.map((a) => [a.accepted, a.rejected, a.errors.map((e) => [e.index, e.code])]),
      [[0, 1, [[0, 'not_found']]], [1, 0, []], [1, 0, []]]);
    assert.deepEqual(cw.stats().scores, { ...NO_SCORES, sent: 2, rejected: 2, not_found_retried: 1 });
    assert.equal(cw.stats().sent, 1);
    assert.equal(logger.lines.length, 1, logger.lines.join('\n'));
    assert.match(logger.lines[0], /quality must be a number from 0 to 1, got 1\.5/);
    report({ check: 'score', early, scored });
  });

  test('a score whose event never arrives is retried a bounded number of times, then counted as failed', async () => {
    const logger = quietLogger();
    const cw = new Client({ flushIntervalMs: 50, logger, scoreNotFoundRetries: 2, scoreNotFoundBackoffMs: 20 });

    assert.equal(cw.score(randomUUID(), 0.5), true);
    await cw.close();

    assert.deepEqual(cw.stats().scores, { ...NO_SCORES, failed: 1, not_found_retried: 2 });
    assert.equal(logger.lines.length, 1, logger.lines.join('\n'));
    assert.match(logger.lines[0], /no stored event has this event_id after 3 tries/);
  });

  test('a 207 counts the rejected events and logs each kind of error once', async () => {
    const logger = quietLogger();
    const cw = new Client({ flushIntervalMs: 50, logger });

    const good = cw.send({ feature: 'partial', model: 'gpt-5-mini-2025-08-07', input_tokens: 10, output_tokens: 2 });
    cw.send({ feature: 'partial', model: 'gpt-5-mini-2025-08-07', input_tokens: 10, output_tokens: -2 });
    await cw.flush();
    cw.send({ feature: 'partial', model: 'gpt-5-mini-2025-08-07', input_tokens: 11, output_tokens: -3 });
    await cw.close();

    const stats = cw.stats();
    assert.deepEqual([stats.sent, stats.rejected, stats.failed, stats.retried], [1, 2, 0, 0]);
    assert.equal(logger.lines.length, 1, logger.lines.join('\n'));
    assert.match(logger.lines[0], /output_tokens min_value/);
    report({ check: '207', eventIds: [good] });
  });

  test('a response it cannot map is recorded with what it could read, warned once per kind', async () => {
    const logger = quietLogger();
    const cw = new Client({ flushIntervalMs: 50, logger });
    class LocalModelReply {
      constructor(tokens) {
        this.model = 'llama-3.1-8b';
        this.usage = { prompt_tokens: tokens, completion_tokens: 7 };
      }
    }

    const first = cw.record(new LocalModelReply(50), { feature: 'local-llm', requestParams: { max_tokens: 64 } });
    const second = cw.record(new LocalModelReply(60), { feature: 'local-llm' });
    await cw.close();

    assert.equal(cw.stats().sent, 2);
    assert.equal(logger.lines.length, 1);
    assert.match(logger.lines[0], /LocalModelReply/);
    report({ check: 'unmapped', eventIds: [first, second] });
  });

  test('the process exits by itself right after its last call, and the event is stored', async () => {
    const c = caseNamed('chat_stream');
    provider.state.current = c;
    const eventId = randomUUID();
    const child = await runChild({ PROVIDER_URL: provider.url, CW_EVENT_ID: eventId });
    assert.deepEqual([child.code, child.signal], [0, null], child.output);
    assert.match(child.output, /iterated 4 chunks with text "Hi there!"/);
    report({ check: 'exit', eventIds: [eventId] });
  });

  test('with costwatch down the process still exits by itself, and the app never sees an error', async () => {
    const down = await serve(() => ({}));
    await down.close(); // a port where nothing listens
    const c = caseNamed('chat');
    provider.state.current = c;
    const child = await runChild({ PROVIDER_URL: provider.url, CW_EVENT_ID: randomUUID(), COSTWATCH_URL: down.url,
      CW_SHUTDOWN_MS: '1500' }, 'chat');
    assert.deepEqual([child.code, child.signal], [0, null], child.output);
    assert.match(child.output, /giving up on 1 events/);
  });
});

/** Run test/exit-child.js; resolves when it exits on its own (the test runner's timeout catches a hang). */
function runChild(env, caseName = 'chat_stream') {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [new URL('./exit-child.js', import.meta.url).pathname, caseName],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (data) => { output += data; });
    child.stderr.on('data', (data) => { output += data; });
    child.on('exit', (code, signal) => resolve({ code, signal, output }));
  });
}
