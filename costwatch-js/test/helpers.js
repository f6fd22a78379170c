// Test helpers: a local stand-in for the providers' HTTP APIs, SDK clients pointed at it,
// and a small HTTP server for costwatch stand-ins (proxy, errors).
import { readFileSync, appendFileSync } from 'node:fs';
import http from 'node:http';

import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';

export const CASES = JSON.parse(readFileSync(new URL('./fixtures/provider-cases.json', import.meta.url), 'utf8'));
export const caseNamed = (name) => CASES.find((c) => c.name === name);

/** Server-sent events as the providers write them: [[event name or null, payload or raw string]]. */
export function sse(events) {
  return events.map(([name, payload]) => `${name ? `event: ${name}\n` : ''}data: ${
    typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`).join('');
}

/** An HTTP server on 127.0.0.1 with `handler(req, body) -> {status, headers, body}`; resolves to its URL. */
export async function serve(handler) {
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const answer = await handler(req, Buffer.concat(chunks));
    // No Date header: two answers a second apart must compare equal (Google's SDK keeps the headers).
    res.sendDate = false;
    res.writeHead(answer.status ?? 200, answer.headers ?? {});
    res.end(answer.body ?? '');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, server, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

/** One stand-in for OpenAI, Anthropic and Google: it answers every request with the current case. */
export async function providerStandIn() {
  const state = { current: null, requests: [] };
  const stand = await serve((req, body) => {
    state.requests.push({ url: req.url, body: body.toString() });
    const c = state.current;
    if (c.json) return { headers: { 'content-type': 'application/json' }, body: JSON.stringify(c.json) };
    return { headers: { 'content-type': 'text/event-stream' }, body: sse(c.sse) };
  });
  return { ...stand, state };
}

/** The real SDK clients, pointed at the stand-in. */
export function sdkClients(baseUrl) {
  return {
    openai: new OpenAI({ apiKey: 'sk-test', baseURL: `${baseUrl}/v1`, maxRetries: 0 }),
    anthropic: new Anthropic({ apiKey: 'sk-ant-test', baseURL: baseUrl, maxRetries: 0 }),
    google: new GoogleGenAI({ apiKey: 'test', httpOptions: { baseUrl } }),
  };
}

/** The SDK call of a case, made with the real SDK package against the stand-in: (params) => result. */
export function sdkCall({ sdk, stream }, baseUrl) {
  const { openai, anthropic, google } = sdkClients(baseUrl);
  if (sdk === 'openai_chat') return (p) => openai.chat.completions.create(p);
  if (sdk === 'openai_response') return (p) => openai.responses.create(p);
  if (sdk === 'anthropic') return (p) => anthropic.messages.create(p);
  return stream ? google.models.generateContentStream : google.models.generateContent;
}

/** The JSON form of whatever the app saw (SDK objects compared by their data). */
export const plain = (value) => JSON.parse(JSON.stringify(value));

/** Results for the pytest side: one JSON line per recorded call. */
export function report(entry) {
  if (process.env.CW_RESULTS) appendFileSync(process.env.CW_RESULTS, `${JSON.stringify(entry)}\n`);
}

export const live = Boolean(process.env.COSTWATCH_URL && process.env.COSTWATCH_API_KEY && process.env.CW_RESULTS);
export const quietLogger = () => {
  const lines = [];
  return { lines, warn: (message) => lines.push(message) };
};
