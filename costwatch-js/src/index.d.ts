// Types of the costwatch package (hand-written; the sources are plain ESM JavaScript).

/** An event of the costwatch events API (snake_case field names, as the API names them). */
export interface CostwatchEvent {
  event_id?: string;
  timestamp?: string | Date;
  feature?: string;
  model: string;
  provider?: string;
  tier?: 'lite' | 'pro';
  input_tokens: number;
  cached_input_tokens?: number;
  cache_write_input_tokens?: number;
  output_tokens: number;
  reasoning_tokens?: number;
  max_output_tokens?: number | null;
  service_tier?: 'standard' | 'batch' | 'flex' | 'priority';
  finish_reason?: string;
  latency_ms?: number;
  ttft_ms?: number;
  status?: 'ok' | 'error';
  environment?: string;
  role?: Role;
  request_id?: string;
  parent_event_id?: string;
  route_reason?: string;
  confidence?: number;
  quality?: number;
  cost_usd?: string | number;
  attributes?: Attributes;
}

export type Role = 'primary' | 'triage' | 'escalation' | 'shadow';
export type Attributes = Record<string, string | number | boolean | null>;

/** Event fields set by record(), call() and track() (camelCase). */
export interface EventFields {
  feature?: string;
  role?: Role;
  requestId?: string;
  parentEventId?: string;
  routeReason?: string;
  quality?: number;
  confidence?: number;
  latencyMs?: number;
  ttftMs?: number;
  attributes?: Attributes;
  environment?: string;
  tier?: 'lite' | 'pro';
  status?: 'ok' | 'error';
  /** Your own id for the event (default: a random UUID). */
  eventId?: string;
  timestamp?: string | Date;
}

export interface RecordOptions extends EventFields {
  /** The arguments of the SDK call: the cap (max_completion_tokens, max_tokens, max_output_tokens,
   * config.maxOutputTokens) comes from them; without them the event says "no cap". */
  requestParams?: Record<string, unknown>;
}

export type CallOptions = EventFields;

export interface Logger {
  warn(message: string): void;
}

export interface ClientOptions {
  /** A key with the ingest scope (cw_<id>_<secret>); default: env COSTWATCH_API_KEY. */
  apiKey?: string;
  /** Where costwatch runs, e.g. https://costwatch.example.com; default: env COSTWATCH_URL. */
  baseUrl?: string;
  /** Events kept while the server is slow or down; past it events are dropped and counted [10000]. */
  maxQueue?: number;
  /** Events per request, at most 1000 [1000]. */
  batchSize?: number;
  /** A batch is sent at the latest this long after its first event [1000]. */
  flushIntervalMs?: number;
  /** Per request [5000]. */
  timeoutMs?: number;
  /** Retries of 429, 5xx and network errors [5]. */
  maxRetries?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  maxRetryAfterMs?: number;
  /** How long close() and the exit flush keep retrying [5000]. */
  shutdownTimeoutMs?: number;
  /** Times a score whose event is not stored yet (`not_found`) is sent again before it counts as failed [6]. */
  scoreNotFoundRetries?: number;
  /** The first wait before such a retry, doubling each time (up to backoffMaxMs) [1000]. */
  scoreNotFoundBackoffMs?: number;
  /** Compress batches with gzip [false]. */
  gzip?: boolean;
  /** Defaults for every event. */
  environment?: string;
  feature?: string;
  /** Where warnings go [console]. */
  logger?: Logger;
}

export interface ClientStats {
  /** Stored or duplicate. */
  sent: number;
  duplicates: number;
  /** Queue full, closed, or not serialisable. */
  dropped: number;
  /** Not delivered: a permanent 4xx, or retries exhausted. */
  failed: number;
  /** Refused per event by the server (a 207). */
  rejected: number;
  /** Re-sent requests. */
  retried: number;
  queued: number;
  /** The same for score(). */
  scores: ScoreStats;
}

export interface ScoreStats {
  /** Stored. */
  sent: number;
  /** Not a valid score (quality outside 0-1, no event_id), or refused per item by the server. */
  rejected: number;
  /** Not delivered: a permanent 4xx, retries exhausted, or still `not_found` after its retries. */
  failed: number;
  /** Queue full or closed. */
  dropped: number;
  /** Re-sent requests (429, 5xx, network errors). */
  retried: number;
  /** Scores sent again because their event was not stored yet. */
  not_found_retried: number;
  queued: number;
}

export declare class Client {
  constructor(options?: ClientOptions);
  readonly baseUrl: string;
  /** Queue one event; returns its event_id, or null when it was dropped. Never throws. */
  send(event: CostwatchEvent): string | null;
  /** Record a response of openai (chat completions, responses), @anthropic-ai/sdk or @google/genai,
   * or an array of a stream's chunks. Returns the event_id, or null when dropped. Never throws. */
  record(response: unknown, options?: RecordOptions): string | null;
  /** `await fn(params)`, timed and recorded; resolves to the SDK's result unchanged (a stream
   * comes back as the same stream, recorded when its iteration ends). */
  call<P, R>(fn: (params: P) => R, params: P, options?: CallOptions): Promise<Awaited<R>>;
  /** Queue a late quality score (0 bad to 1 good) of a recorded event, by the event_id that
   * record(), call() (options.eventId) or send() gave it; `source` says who scored (e.g. 'judge',
   * 'thumbs', at most 50 characters). Sent in the background; a score that arrives before its
   * event is retried a bounded number of times. Returns true when queued. Never throws. */
  score(eventId: string, quality: number, source?: string): boolean;
  stats(): ClientStats;
  /** Send what is queued; resolves when it was handled. Never rejects. */
  flush(): Promise<void>;
  /** Flush, then drop events recorded later. */
  close(): Promise<void>;
}

/** Run fn with event fields for everything recorded inside, across awaits; returns fn's result. */
export declare function track<T>(fields: EventFields, fn: () => T): T;
/** The fields of the innermost active track() block (event field names). */
export declare function currentFields(): Partial<CostwatchEvent>;
/** Retry-After (delta-seconds or HTTP date) in milliseconds, or null. */
export declare function retryAfterMs(value: string | null | undefined, now?: number): number | null;
export declare const VERSION: string;

export interface MappingOptions {
  requestParams?: Record<string, unknown>;
  fields?: Partial<CostwatchEvent>;
}
/** The event for a supported response or array of stream chunks; null for an unknown shape. */
export declare function eventFromResponse(response: unknown, options?: MappingOptions): CostwatchEvent | null;
export declare function fromOpenAIChat(response: unknown, options?: MappingOptions): CostwatchEvent;
export declare function fromOpenAIChatStream(chunks: Iterable<unknown>, options?: MappingOptions): CostwatchEvent;
export declare function fromOpenAIResponse(response: unknown, options?: MappingOptions): CostwatchEvent;
export declare function fromOpenAIResponseStream(events: Iterable<unknown>, options?: MappingOptions): CostwatchEvent;
export declare function fromAnthropicMessage(message: unknown, options?: MappingOptions): CostwatchEvent;
export declare function fromAnthropicStream(events: Iterable<unknown>, options?: MappingOptions): CostwatchEvent;
export declare function fromGoogleGenAI(response: unknown, options?: MappingOptions): CostwatchEvent;
export declare function fromGoogleGenAIStream(chunks: Iterable<unknown>, options?: MappingOptions): CostwatchEvent;
