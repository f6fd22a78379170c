// costwatch: send one usage event per LLM call from Node.js (>= 18), no runtime dependencies.
//
//   import { Client, track } from 'costwatch';
//   const cw = new Client({ apiKey: process.env.COSTWATCH_API_KEY, baseUrl: process.env.COSTWATCH_URL });
//   const resp = await cw.call((p) => openai.chat.completions.create(p),
//     { model: 'gpt-5-mini', messages, max_completion_tokens: 512 }, { feature: 'ticket-triage' });
export { Client, retryAfterMs, VERSION } from './client.js';
export { currentFields, track } from './context.js';
export {
  eventFromResponse,
  fromAnthropicMessage,
  fromAnthropicStream,
  fromGoogleGenAI,
  fromGoogleGenAIStream,
  fromOpenAIChat,
  fromOpenAIChatStream,
  fromOpenAIResponse,
  fromOpenAIResponseStream,
} from './mapping.js';
