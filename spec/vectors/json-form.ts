/**
 * Messages in the JSON form used by vectors.json: field names as in docs/PROTOCOL.md §4, byte
 * fields as lowercase hex strings, everything else as is. Which fields hold bytes is fixed by
 * name, so the mapping needs no schema and another implementation can read it the same way.
 */
import type { Message } from '../../lib/wire/messages.js';

/** Field names whose values are bytes (or lists of bytes, or null). */
const BYTE_FIELDS = new Set(['publicKey', 'nonce', 'signature', 'id', 'origin', 'seenBy', 'payload', 'ids', 'ref', 'target', 'noise', 'reply']);

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

function toJsonValue(key: string, v: unknown): JsonValue {
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (Array.isArray(v)) return v.map((x) => toJsonValue(key, x));
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJsonValue(k, x)]));
  }
  if (BYTE_FIELDS.has(key) && v !== null) throw new Error(`field ${key} should hold bytes`);
  return v as JsonValue;
}

function fromJsonValue(key: string, v: JsonValue): unknown {
  if (Array.isArray(v)) return v.map((x) => fromJsonValue(key, x));
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJsonValue(k, x)]));
  }
  if (BYTE_FIELDS.has(key) && typeof v === 'string') return Buffer.from(v, 'hex');
  return v;
}

/** A message in JSON form (bytes as hex). */
export function messageToJson(msg: Message): Record<string, JsonValue> {
  return toJsonValue('', msg) as Record<string, JsonValue>;
}

/** The message a JSON form describes (hex back to Buffers). */
export function messageFromJson(json: Record<string, JsonValue>): Message {
  return fromJsonValue('', json) as Message;
}
