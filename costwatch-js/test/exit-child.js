// A tiny app for the exit test: one SDK call through costwatch, then nothing. It never calls
// flush() or close(), and its batch timer is ten minutes long: the process can only end right
// away if the client keeps nothing alive and sends its queue on 'beforeExit'.
import { Client } from '../src/index.js';
import { caseNamed, sdkCall } from './helpers.js';

const c = caseNamed(process.argv[2]);
const cw = new Client({ flushIntervalMs: 600_000, shutdownTimeoutMs: Number(process.env.CW_SHUTDOWN_MS || 5000),
  backoffBaseMs: 100 });
const result = await cw.call(sdkCall(c, process.env.PROVIDER_URL), c.params,
  { feature: 'exit-check', eventId: process.env.CW_EVENT_ID });
if (c.stream) {
  let chunks = 0;
  let text = '';
  for await (const chunk of result) {
    chunks += 1;
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  console.log(`iterated ${chunks} chunks with text ${JSON.stringify(text)}`);
} else {
  console.log(`got ${result.choices[0].message.content}`);
}
