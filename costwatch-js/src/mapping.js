// Events from the response objects of the official SDKs (docs/sending-events.md#what-the-helpers-map).
//
// Nothing here imports an SDK: objects are read by key, snake_case first (openai,
// @anthropic-ai/sdk) then camelCase (@google/genai), so any SDK version works.
// This is a port of the Python client's costwatch_client/sdk.py: the same response gives
// the same event in both languages (tests/integrations/test_js_client.py checks it).
//
// Token fields follow the events API: `input_tokens` is ALL input (cached reads and cache
// writes included), `output_tokens` includes reasoning/thinking tokens.

// Finish reasons normalised to the API's vocabulary; `length` means "hit the output cap".
const FINISH = {
  // OpenAI chat / responses
  stop: 'stop', length: 'length', tool_calls: 'tool_calls', function_call: 'tool_calls',
  content_filter: 'content_filter',
  // Anthropic
  end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls', refusal: 'content_filter',
  // Google (enum names)
  STOP: 'stop', MAX_TOKENS: 'length', SAFETY: 'content_filter', RECITATION: 'content_filter',
  BLOCKLIST: 'content_filter', PROHIBITED_CONTENT: 'content_filter', SPII: 'content_filter',
  IMAGE_SAFETY: 'content_filter', IMAGE_PROHIBITED_CONTENT: 'content_filter',
  MALFORMED_FUNCTION_CALL: 'error', FINISH_REASON_UNSPECIFIED: null,
};
// Provider service tiers that have their own price rows; "default"/"auto" are standard.
const SERVICE_TIERS = { flex: 'flex', priority: 'priority', batch: 'batch' };

const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

/** A field of an SDK object: snake_case, then camelCase; null/undefined -> fallback. */
export function get(obj, name, fallback = undefined) {
  if (obj === null || obj === undefined || typeof obj !== 'object') return fallback;
  let value = obj[name];
  if (value === undefined || value === null) value = obj[camel(name)];
  return value === undefined || value === null ? fallback : value;
}

function int(value) {
  const n = Math.trunc(Number(value || 0));
  return Number.isFinite(n) ? Math.max(0, n) : 0;
}

/** The length of a string in code points (what Python's len() counts). */
const chars = (text) => {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
};

export function finishReason(raw) {
  if (raw === null || raw === undefined || raw === '') return null;
  const key = String(raw);
  if (Object.prototype.hasOwnProperty.call(FINISH, key)) return FINISH[key];
  return key.toLowerCase().slice(0, 50);
}

/** A rough token count (~4 characters per token) for streams that carry no usage. */
export function estimateTokens(text) {
  return text ? Math.ceil(chars(text) / 4) : 0;
}

function buildEvent({ model, provider, inputTokens, outputTokens, cached = 0, cacheWrite = 0, reasoning = 0,
  cap = null, finish = null, serviceTier = null, fields = null }) {
  // Keep the token invariants the API enforces (cached + cache_write <= input,
  // reasoning <= output), so a provider's odd report still lands instead of being rejected.
  cached = Math.min(cached, inputTokens);
  cacheWrite = Math.min(cacheWrite, Math.max(0, inputTokens - cached));
  const event = {
    model: model ? String(model) : 'unknown',
    provider,
    input_tokens: inputTokens,
    cached_input_tokens: cached,
    cache_write_input_tokens: cacheWrite,
    output_tokens: outputTokens,
    reasoning_tokens: Math.min(reasoning, outputTokens),
  };
  if (cap) event.max_output_tokens = int(cap);
  if (finish) {
    event.finish_reason = finish;
    if (finish === 'error') event.status = 'error';
  }
  const tier = SERVICE_TIERS[serviceTier ? String(serviceTier) : ''];
  if (tier) event.service_tier = tier;
  return mergeFields(event, fields);
}

export function mergeFields(event, fields) {
  for (const [key, value] of Object.entries(fields || {})) {
    if (value === null || value === undefined) continue;
    if (key === 'attributes') event.attributes = { ...(event.attributes || {}), ...value };
    else event[key] = value;
  }
  return event;
}

/** The first of `names` the request set (undefined, null: not set). */
function param(params, ...names) {
  for (const name of names) {
    const value = params && typeof params === 'object' ? params[name] : undefined;
    if (value !== undefined && value !== null) return value;
  }
  return undefined;
}

// --- OpenAI chat completions ------------------------------------------------------------
function chatFinish(choices) {
  const reasons = (choices || []).map((c) => finishReason(get(c, 'finish_reason'))).filter(Boolean);
  if (reasons.includes('length')) return 'length'; // with n > 1, one truncated answer means the cap was hit
  return reasons.length ? reasons[0] : null;
}

export function fromOpenAIChat(response, { requestParams, fields } = {}) {
  return openAIEvent(response, { requestParams, fields }, {
    usageNames: ['prompt_tokens', 'completion_tokens'],
    cap: param(requestParams, 'max_completion_tokens', 'max_tokens'),
    finish: chatFinish(get(response, 'choices')),
    text: (r) => (get(r, 'choices', []) || []).map((c) => String(get(get(c, 'message'), 'content', ''))).join(''),
  });
}

// The event of a chat completion or a Response. Both APIs name their usage counters
// `<input>`, `<input>_details`, `<output>`, `<output>_details`; only the names differ.
// Without usage, the output is estimated from `text(response)`.
function openAIEvent(response, { requestParams, fields }, { usageNames, cap, finish, text }) {
  const usage = get(response, 'usage');
  const model = get(response, 'model') || param(requestParams, 'model');
  if (usage === undefined) {
    return estimated({ model, provider: 'openai', requestParams, outputTokens: estimateTokens(text(response)), cap,
      finish, fields });
  }
  const [inputName, outputName] = usageNames;
  const inputDetails = get(usage, `${inputName}_details`);
  const outputDetails = get(usage, `${outputName}_details`);
  return buildEvent({
    model, provider: 'openai',
    inputTokens: int(get(usage, inputName)),
    cached: int(get(inputDetails, 'cached_tokens')),
    cacheWrite: int(get(inputDetails, 'cache_write_tokens')),
    outputTokens: int(get(usage, outputName)),
    reasoning: int(get(outputDetails, 'reasoning_tokens')),
    cap, finish, serviceTier: get(response, 'service_tier'), fields,
  });
}

export function fromOpenAIChatStream(chunks, { requestParams, fields } = {}) {
  let model; let usage; let serviceTier; let pieces = 0;
  const text = [];
  const reasons = [];
  for (const chunk of chunks) {
    model = get(chunk, 'model') || model;
    serviceTier = get(chunk, 'service_tier') || serviceTier;
    usage = get(chunk, 'usage') || usage;
    for (const choice of get(chunk, 'choices', []) || []) {
      const delta = get(choice, 'delta');
      let content = get(delta, 'content') || '';
      for (const call of get(delta, 'tool_calls', []) || []) content += get(get(call, 'function'), 'arguments', '') || '';
      if (content) {
        text.push(content);
        pieces += 1;
      }
      if (get(choice, 'finish_reason')) reasons.push(choice);
    }
  }
  model = model || param(requestParams, 'model');
  if (usage !== undefined) {
    return fromOpenAIChat({ model, usage, choices: reasons, service_tier: serviceTier }, { requestParams, fields });
  }
  // Roughly one token per content chunk; the character estimate covers bigger chunks.
  const outputTokens = Math.max(pieces, estimateTokens(text.join('')));
  return estimated({ model, provider: 'openai', requestParams, outputTokens,
    cap: param(requestParams, 'max_completion_tokens', 'max_tokens'), finish: chatFinish(reasons), fields });
}

// --- OpenAI Responses API ---------------------------------------------------------------
function responseFinish(response) {
  const status = get(response, 'status');
  if (status === 'incomplete') {
    const reason = get(get(response, 'incomplete_details'), 'reason');
    return { max_output_tokens: 'length', content_filter: 'content_filter' }[reason] || 'other';
  }
  if (status === 'failed' || status === 'cancelled') return 'error';
  if (status === 'completed') {
    const calls = (get(response, 'output', []) || []).filter((item) => String(get(item, 'type', '')).includes('call'));
    return calls.length ? 'tool_calls' : 'stop';
  }
  return null;
}

export function fromOpenAIResponse(response, { requestParams, fields } = {}) {
  return openAIEvent(response, { requestParams, fields }, {
    usageNames: ['input_tokens', 'output_tokens'],
    cap: get(response, 'max_output_tokens') || param(requestParams, 'max_output_tokens'),
    finish: responseFinish(response),
    text: (r) => String(get(r, 'output_text', '') || ''),
  });
}

export function fromOpenAIResponseStream(events, { requestParams, fields } = {}) {
  let final; let model;
  const text = [];
  for (const item of events) {
    const kind = get(item, 'type', '');
    if (kind === 'response.completed' || kind === 'response.incomplete' || kind === 'response.failed') {
      final = get(item, 'response');
    } else if (kind === 'response.created' || kind === 'response.in_progress') {
      model = get(get(item, 'response'), 'model') || model;
    } else if (kind === 'response.output_text.delta') {
      text.push(get(item, 'delta', ''));
    }
  }
  if (final !== undefined) return fromOpenAIResponse(final, { requestParams, fields });
  return estimated({ model: model || param(requestParams, 'model'), provider: 'openai', requestParams,
    outputTokens: estimateTokens(text.join('')), cap: param(requestParams, 'max_output_tokens'), finish: null, fields });
}

// --- Anthropic --------------------------------------------------------------------------
function anthropicEvent({ model, usage, stopReason, requestParams, fields }) {
  const cacheRead = int(get(usage, 'cache_read_input_tokens'));
  const cacheCreation = int(get(usage, 'cache_creation_input_tokens'));
  return buildEvent({
    model, provider: 'anthropic',
    // Anthropic's input_tokens excludes cache reads and writes; the API's input is all input.
    inputTokens: int(get(usage, 'input_tokens')) + cacheRead + cacheCreation,
    cached: cacheRead, cacheWrite: cacheCreation,
    outputTokens: int(get(usage, 'output_tokens')),
    reasoning: int(get(get(usage, 'output_tokens_details'), 'thinking_tokens')),
    cap: param(requestParams, 'max_tokens'), finish: finishReason(stopReason),
    serviceTier: get(usage, 'service_tier'), fields,
  });
}

export function fromAnthropicMessage(message, { requestParams, fields } = {}) {
  return anthropicEvent({ model: get(message, 'model') || param(requestParams, 'model'), usage: get(message, 'usage'),
    stopReason: get(message, 'stop_reason'), requestParams, fields });
}

const USAGE_NAMES = ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens',
  'output_tokens_details', 'service_tier'];

function usageDict(usage) {
  const out = {};
  for (const name of USAGE_NAMES) {
    const value = get(usage, name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export function fromAnthropicStream(events, { requestParams, fields } = {}) {
  let model; let stopReason; let sawDeltaUsage = false;
  let usage = {};
  const text = [];
  for (const item of events) {
    const kind = get(item, 'type', '');
    if (kind === 'message_start') {
      const message = get(item, 'message');
      model = get(message, 'model') || model;
      usage = { ...usage, ...usageDict(get(message, 'usage')) };
    } else if (kind === 'message_delta') {
      stopReason = get(get(item, 'delta'), 'stop_reason') || stopReason;
      const deltaUsage = usageDict(get(item, 'usage'));
      if ('output_tokens' in deltaUsage) sawDeltaUsage = true;
      usage = { ...usage, ...deltaUsage }; // cumulative counts: the last one wins
    } else if (kind === 'content_block_delta') {
      const delta = get(item, 'delta');
      text.push(get(delta, 'text', '') || get(delta, 'thinking', '') || get(delta, 'partial_json', ''));
    }
  }
  model = model || param(requestParams, 'model');
  if (!sawDeltaUsage) {
    // Cut off before message_delta: message_start's output count is only a placeholder.
    usage.output_tokens = Math.max(int(usage.output_tokens), estimateTokens(text.join('')));
    const event = anthropicEvent({ model, usage, stopReason, requestParams, fields });
    if (!usage.input_tokens) event.input_tokens = Math.max(event.input_tokens, estimateRequestInput(requestParams));
    return markEstimated(event);
  }
  return anthropicEvent({ model, usage, stopReason, requestParams, fields });
}

// --- Google genai -----------------------------------------------------------------------
function googleCap(requestParams) {
  const config = param(requestParams, 'config', 'generation_config', 'generationConfig');
  return config !== undefined ? get(config, 'max_output_tokens') : undefined;
}

function googleFinish(candidates) {
  for (const candidate of candidates || []) {
    const reason = finishReason(get(candidate, 'finish_reason'));
    const parts = get(get(candidate, 'content'), 'parts', []) || [];
    if (reason === 'stop' && parts.some((part) => get(part, 'function_call') !== undefined)) return 'tool_calls';
    if (reason) return reason;
  }
  return null;
}

function googleModel(response, requestParams) {
  const model = String(get(response, 'model_version') || param(requestParams, 'model') || '');
  return model.startsWith('models/') ? model.slice('models/'.length) : model;
}

function googleText(responses) {
  const pieces = [];
  for (const response of responses) {
    for (const candidate of get(response, 'candidates', []) || []) {
      for (const part of get(get(candidate, 'content'), 'parts', []) || []) pieces.push(String(get(part, 'text', '') || ''));
    }
  }
  return pieces.join('');
}

export function fromGoogleGenAI(response, { requestParams, fields } = {}) {
  const usage = get(response, 'usage_metadata');
  const model = googleModel(response, requestParams);
  const finish = googleFinish(get(response, 'candidates'));
  if (usage === undefined || (get(usage, 'candidates_token_count') === undefined
      && get(usage, 'prompt_token_count') === undefined)) {
    return estimated({ model, provider: 'google', requestParams, outputTokens: estimateTokens(googleText([response])),
      cap: googleCap(requestParams), finish, fields });
  }
  const thoughts = int(get(usage, 'thoughts_token_count'));
  return buildEvent({
    model, provider: 'google',
    inputTokens: int(get(usage, 'prompt_token_count')),
    cached: int(get(usage, 'cached_content_token_count')),
    outputTokens: int(get(usage, 'candidates_token_count')) + thoughts,
    reasoning: thoughts,
    cap: googleCap(requestParams), finish, fields,
  });
}

export function fromGoogleGenAIStream(chunks, { requestParams, fields = {} } = {}) {
  let lastUsage; let finish = null; let modelSource;
  for (const chunk of chunks) {
    if (get(chunk, 'usage_metadata') !== undefined) lastUsage = get(chunk, 'usage_metadata');
    finish = googleFinish(get(chunk, 'candidates')) || finish;
    if (get(chunk, 'model_version')) modelSource = chunk;
  }
  if (lastUsage === undefined || (get(lastUsage, 'candidates_token_count') === undefined
      && !get(lastUsage, 'thoughts_token_count'))) {
    const event = estimated({ model: googleModel(modelSource, requestParams), provider: 'google', requestParams,
      outputTokens: estimateTokens(googleText(chunks)), cap: googleCap(requestParams), finish, fields });
    if (lastUsage !== undefined && get(lastUsage, 'prompt_token_count')) {
      event.input_tokens = int(get(lastUsage, 'prompt_token_count'));
      event.cached_input_tokens = Math.min(event.input_tokens, int(get(lastUsage, 'cached_content_token_count')));
    }
    return event;
  }
  const final = { usage_metadata: lastUsage, model_version: get(modelSource, 'model_version') };
  const event = fromGoogleGenAI(final, { requestParams, fields });
  if (finish && !('finish_reason' in (fields || {}))) {
    event.finish_reason = finish;
    if (finish === 'error' && !event.status) event.status = 'error';
  }
  return event;
}

// --- streams without usage --------------------------------------------------------------
// The request's text as Python's json.dumps(ensure_ascii=False) writes it, so that an
// estimate is the same number in the JS and the Python client.
function pyJson(value) {
  if (value === null || value === undefined) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : JSON.stringify(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pyJson).join(', ')}]`;
  if (typeof value === 'object') {
    if (typeof value.toJSON === 'function') return pyJson(value.toJSON());
    const items = Object.entries(value).filter(([, v]) => v !== undefined && typeof v !== 'function');
    return `{${items.map(([k, v]) => `${JSON.stringify(k)}: ${pyJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(String(value));
}

function estimateRequestInput(requestParams) {
  if (!requestParams || typeof requestParams !== 'object') return 0;
  const parts = ['messages', 'input', 'contents', 'system', 'instructions'].map((n) => param(requestParams, n))
    .filter((p) => p !== undefined);
  return parts.length ? estimateTokens(pyJson(parts)) : 0;
}

function markEstimated(event) {
  event.attributes = { ...(event.attributes || {}), usage_estimated: true };
  return event;
}

function estimated({ model, provider, requestParams, outputTokens, cap, finish, fields }) {
  // A call whose usage never arrived: tokens counted from the text, marked as estimated.
  const event = buildEvent({ model, provider, inputTokens: estimateRequestInput(requestParams), outputTokens, cap,
    finish, fields });
  return markEstimated(event);
}

// --- dispatch by shape ------------------------------------------------------------------
const ANTHROPIC_STREAM_TYPES = new Set(['message_start', 'message_delta', 'message_stop', 'content_block_start',
  'content_block_delta', 'content_block_stop', 'ping']);

/** Which SDK response this is: 'openai_chat', 'openai_response', 'anthropic', 'google' or null. */
export function responseKind(obj) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return null;
  const object = get(obj, 'object');
  if (object === 'chat.completion') return 'openai_chat';
  if (object === 'response') return 'openai_response';
  if (get(obj, 'type') === 'message' && ('stop_reason' in obj || 'usage' in obj)) return 'anthropic';
  if (obj.constructor?.name === 'GenerateContentResponse' || 'usageMetadata' in obj || 'usage_metadata' in obj
      || ('candidates' in obj && 'modelVersion' in obj)) return 'google';
  return null;
}

/** Which SDK's stream a chunk belongs to. */
export function chunkKind(chunk) {
  if (!chunk || typeof chunk !== 'object') return null;
  if (get(chunk, 'object') === 'chat.completion.chunk') return 'openai_chat';
  const kind = get(chunk, 'type', '');
  if (typeof kind === 'string' && kind.startsWith('response.')) return 'openai_response';
  if (ANTHROPIC_STREAM_TYPES.has(kind)) return 'anthropic';
  if (chunk.constructor?.name === 'GenerateContentResponse' || 'usageMetadata' in chunk || 'usage_metadata' in chunk
      || 'candidates' in chunk) return 'google';
  return null;
}

const FROM_RESPONSE = {
  openai_chat: fromOpenAIChat, openai_response: fromOpenAIResponse, anthropic: fromAnthropicMessage,
  google: fromGoogleGenAI,
};
const FROM_STREAM = {
  openai_chat: fromOpenAIChatStream, openai_response: fromOpenAIResponseStream, anthropic: fromAnthropicStream,
  google: fromGoogleGenAIStream,
};

/**
 * The event for a supported SDK response, or for an array of a stream's chunks.
 * Returns null when the object is none of them (see unmappedEvent).
 */
export function eventFromResponse(response, { requestParams, fields } = {}) {
  if (Array.isArray(response)) {
    const kind = response.map(chunkKind).find(Boolean);
    return kind ? FROM_STREAM[kind](response, { requestParams, fields }) : null;
  }
  const kind = responseKind(response);
  return kind ? FROM_RESPONSE[kind](response, { requestParams, fields }) : null;
}

/** What a response of no known SDK shape still tells: its model and any usage counts. */
export function unmappedEvent(response, { requestParams, fields } = {}) {
  const source = Array.isArray(response) ? response[response.length - 1] : response;
  const usage = get(source, 'usage') || get(source, 'usage_metadata') || {};
  const first = (obj, ...names) => names.map((n) => get(obj, n)).find((v) => v !== undefined);
  const input = first(usage, 'input_tokens', 'prompt_tokens', 'prompt_token_count');
  const output = first(usage, 'output_tokens', 'completion_tokens', 'candidates_token_count');
  const model = first(source, 'model', 'model_version') || param(requestParams, 'model');
  const event = buildEvent({
    model, provider: undefined,
    inputTokens: input !== undefined ? int(input) : estimateRequestInput(requestParams),
    outputTokens: int(output),
    cap: param(requestParams, 'max_completion_tokens', 'max_tokens', 'max_output_tokens') || googleCap(requestParams),
    fields,
  });
  delete event.provider;
  if (input === undefined || output === undefined) markEstimated(event);
  return event;
}
