// The options of record(), call() and track() (camelCase, as JavaScript reads) and the
// event fields of the events API they set (snake_case, as the API names them).

export const FIELD_NAMES = {
  feature: 'feature',
  role: 'role',
  requestId: 'request_id',
  parentEventId: 'parent_event_id',
  routeReason: 'route_reason',
  quality: 'quality',
  confidence: 'confidence',
  latencyMs: 'latency_ms',
  ttftMs: 'ttft_ms',
  attributes: 'attributes',
  environment: 'environment',
  tier: 'tier',
  status: 'status',
  eventId: 'event_id',
  timestamp: 'timestamp',
};

/** Options -> event fields; `requestParams` and unknown options are not event fields. */
export function toEventFields(options) {
  const fields = {};
  for (const [key, value] of Object.entries(options || {})) {
    const name = FIELD_NAMES[key];
    if (name === undefined || value === undefined || value === null) continue;
    fields[name] = name === 'timestamp' && value instanceof Date ? value.toISOString() : value;
  }
  return fields;
}
