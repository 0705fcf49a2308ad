/**
 * A strict, bounded decoder of standard MessagePack (the format table of the MessagePack
 * spec, nothing implementation-specific). codec.ts calls decodeStrict() with PROTOCOL_LIMITS
 * for every frame body and with PAYLOAD_LIMITS for application payloads; nothing else keeps
 * state here.
 *
 * Strict: the input is exactly one value with nothing after it; the never-used byte 0xc1,
 * every ext type but the timestamp (-1, and only where the limits allow it), truncation,
 * invalid UTF-8 in a str and a timestamp out of range are refused.
 *
 * Bounded: cost is linear in the input and capped by the limits. A declared str/bin/ext
 * length or array/map count is checked against the bytes left (and the count against the
 * item budget) before anything is allocated, so a 5-byte header cannot make us allocate
 * 4 GiB or loop a billion times; nesting is capped, so recursion cannot exhaust the stack.
 * Leaves (ints, strs, bins...) cost at most their bytes; containers are counted by maxItems.
 *
 * Values:
 * - int -> number when it is a safe integer (|v| <= 2^53 - 1), else bigint. The protocol's
 *   u53 fields then always arrive as numbers, and a larger value as a bigint the schema
 *   refuses by type.
 * - float 32/64 -> number, or a MsgpackFloat box when `floats: 'boxed'` (protocol messages:
 *   no field is a float, so a schema check can refuse 7.0 where an integer is due; JavaScript
 *   numbers cannot tell 7.0 from 7).
 * - str -> string; bin -> a Buffer view of the input (subarray, no copy: it keeps the input
 *   alive); nil -> null; array -> array.
 * - map -> a plain object when every key is a str (a "__proto__" key becomes an own property,
 *   never the prototype), otherwise a Map (key order: a map that mixes key types is a Map
 *   whose leading str keys come in object-property order). A repeated key: the last wins.
 * - timestamp (ext -1 of 4, 8 or 12 data bytes) -> Date, only with `timestamps: true`;
 *   nanoseconds below a millisecond are dropped (a Date holds milliseconds).
 *
 * Every failure throws ProtocolError('MALFORMED', ...) naming the byte offset; nothing else
 * escapes (spec/wire/msgpack.spec.ts fuzzes it).
 */
import { P2PError, ProtocolError } from '../errors.js';

/** What one decodeStrict() call may spend, and which optional types it admits. */
export interface DecodeLimits {
  /** Deepest nesting of arrays and maps: a scalar is depth 0, `[]` depth 1, `[[]]` depth 2. */
  maxDepth: number;
  /** Array elements plus map entries, summed over the whole value (each checked at its header). */
  maxItems: number;
  /**
   * Map entries alone, summed over the whole value (part of maxItems); unset: maxItems. A map
   * entry with a key never seen before costs ~1 µs (V8 makes a new string and hidden class),
   * twenty times an array element, so entries get their own, smaller budget.
   */
  maxMapEntries?: number;
  /** Longest input in bytes; unset: whatever the caller hands in (the frame cap bounds it). */
  maxBytes?: number;
  /** Decode the timestamp extension (-1) to a Date; otherwise every ext is MALFORMED. Default false. */
  timestamps?: boolean;
  /** 'number' (default): floats decode to numbers; 'boxed': to MsgpackFloat. */
  floats?: 'number' | 'boxed';
}

/**
 * Application payloads (unpackValue). 32 levels cover any sane document; 65,536 array
 * elements and map entries, of which 4,096 map entries, keep the costliest value they admit
 * to a few milliseconds (`npx tsx bench/codec.ts` measures each shape: 65,535 bigints or
 * Dates, 4,096 never-seen keys in maps of 15). Without the map budget, 65,536 fresh keys
 * cost over 100 ms. packValue() refuses values beyond these limits, so a node never
 * publishes what its peers would reject.
 */
export const PAYLOAD_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxDepth: 32,
  maxItems: 65_536,
  maxMapEntries: 4_096,
  timestamps: true,
  floats: 'number' as const,
});

/**
 * Protocol messages (decodeMessage). Depth 3 is NODES ([type, reqId, [[id, host, port], ...]]).
 * Items: the largest message is an IHAVE or IWANT, 2 + 1,024 ids (LIMITS.idsPerAdvert); a
 * NODES is 3 + 64 contacts x 4 (LIMITS.contacts); 1,280 = 1,024 + 64 x 3 + 64 leaves room for
 * both plus a few envelope fields, so a field over its cap still reads as SCHEMA (naming the
 * field), while anything far larger stops at its header as MALFORMED. No ext is a message
 * field, and floats come boxed so an integer field sent as 7.0 is a SCHEMA error.
 */
export const PROTOCOL_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxDepth: 3,
  maxItems: 1_280,
  timestamps: false,
  floats: 'boxed' as const,
});

/** A MessagePack float, as decoded with `floats: 'boxed'`: a type no integer check accepts. */
export class MsgpackFloat {
  constructor(readonly value: number) {}
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const EMPTY = Buffer.alloc(0);
/** Timestamps must fit a Date: +-8.64e15 ms, i.e. +-8.64e12 s around the epoch. */
const MAX_DATE_SECONDS = 8.64e12;

// Decode state. decodeStrict() runs to completion synchronously and calls out to nothing,
// so one set of module variables serves every call (no closure or object per call).
let buf: Buffer = EMPTY;
let pos = 0;
let end = 0;
let items = 0;
let maxDepth = 0;
let maxItems = 0;
let mapEntries = 0;
let maxMapEntries = 0;
let timestamps = false;
let boxFloats = false;
/** A DataView of buf, made on the first bigint: its getBig*64 make one BigInt, Buffer's three. */
let dataView: DataView | undefined;

function view(): DataView {
  return (dataView ??= new DataView(buf.buffer, buf.byteOffset, buf.length));
}

function malformed(what: string): ProtocolError {
  return new ProtocolError('MALFORMED', `invalid MessagePack: ${what}`);
}

/**
 * Decode exactly one standard MessagePack value from `bytes` within `limits`. Throws
 * ProtocolError MALFORMED for anything else (see the module comment for the value mapping).
 */
export function decodeStrict(bytes: Uint8Array, limits: DecodeLimits): unknown {
  if (limits.maxBytes !== undefined && bytes.length > limits.maxBytes) {
    throw malformed(`${bytes.length} bytes exceeds the limit of ${limits.maxBytes}`);
  }
  buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = 0;
  end = buf.length;
  items = 0;
  maxDepth = limits.maxDepth;
  maxItems = limits.maxItems;
  mapEntries = 0;
  maxMapEntries = limits.maxMapEntries ?? limits.maxItems;
  timestamps = limits.timestamps === true;
  boxFloats = limits.floats === 'boxed';
  dataView = undefined;
  try {
    if (end === 0) throw malformed('no value (0 bytes)');
    const value = read(0);
    if (pos !== end) throw malformed(`${end - pos} trailing byte(s) after the value, at offset ${pos}`);
    return value;
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    // Not reachable by design; a guard so that no other exception leaves the decoder.
    throw malformed(`at offset ${pos}: ${(err as Error).message}`);
  } finally {
    buf = EMPTY; // do not keep the caller's bytes alive
    dataView = undefined;
  }
}

/** Throws unless `n` more bytes follow `pos`; `what` names the field being read. */
function need(n: number, what: string): void {
  if (n > end - pos) throw malformed(`${what} at offset ${pos - 1} needs ${n} byte(s), ${end - pos} left`);
}

function u8(): number {
  return buf[pos++]!;
}

function u16(): number {
  const v = (buf[pos]! << 8) | buf[pos + 1]!;
  pos += 2;
  return v;
}

function u32(): number {
  const v = buf[pos]! * 0x1000000 + ((buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!);
  pos += 4;
  return v;
}

function read(depth: number): unknown {
  if (pos >= end) throw malformed(`truncated: a value expected at offset ${pos}`);
  const b = buf[pos++]!;
  if (b < 0x80) return b; // positive fixint
  if (b >= 0xe0) return b - 0x100; // negative fixint
  if (b < 0x90) return readMap(b & 0x0f, depth);
  if (b < 0xa0) return readArray(b & 0x0f, depth);
  if (b < 0xc0) return readStr(b & 0x1f);
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: need(1, 'bin 8 length'); return readBin(u8());
    case 0xc5: need(2, 'bin 16 length'); return readBin(u16());
    case 0xc6: need(4, 'bin 32 length'); return readBin(u32());
    case 0xc7: need(1, 'ext 8 length'); return readExt(u8(), pos - 2);
    case 0xc8: need(2, 'ext 16 length'); return readExt(u16(), pos - 3);
    case 0xc9: need(4, 'ext 32 length'); return readExt(u32(), pos - 5);
    case 0xca: {
      need(4, 'float 32');
      const f = buf.readFloatBE(pos);
      pos += 4;
      return boxFloats ? new MsgpackFloat(f) : f;
    }
    case 0xcb: {
      need(8, 'float 64');
      const f = buf.readDoubleBE(pos);
      pos += 8;
      return boxFloats ? new MsgpackFloat(f) : f;
    }
    case 0xcc: need(1, 'uint 8'); return u8();
    case 0xcd: need(2, 'uint 16'); return u16();
    case 0xce: need(4, 'uint 32'); return u32();
    case 0xcf: {
      need(8, 'uint 64');
      const hi = u32();
      const lo = u32();
      // hi < 2^21 keeps the value below 2^53: exact as a number.
      return hi < 0x200000 ? hi * 0x100000000 + lo : view().getBigUint64(pos - 8);
    }
    case 0xd0: need(1, 'int 8'); return (u8() << 24) >> 24;
    case 0xd1: need(2, 'int 16'); return (u16() << 16) >> 16;
    case 0xd2: need(4, 'int 32'); return u32() | 0;
    case 0xd3: {
      need(8, 'int 64');
      const hi = u32() | 0;
      const lo = u32();
      const n = hi * 0x100000000 + lo; // exact whenever the result is a safe integer
      return hi >= -0x200000 && hi < 0x200000 && Number.isSafeInteger(n) ? n : view().getBigInt64(pos - 8);
    }
    case 0xd4: return readExt(1, pos - 1);
    case 0xd5: return readExt(2, pos - 1);
    case 0xd6: return readExt(4, pos - 1);
    case 0xd7: return readExt(8, pos - 1);
    case 0xd8: return readExt(16, pos - 1);
    case 0xd9: need(1, 'str 8 length'); return readStr(u8());
    case 0xda: need(2, 'str 16 length'); return readStr(u16());
    case 0xdb: need(4, 'str 32 length'); return readStr(u32());
    case 0xdc: need(2, 'array 16 length'); return readArray(u16(), depth);
    case 0xdd: need(4, 'array 32 length'); return readArray(u32(), depth);
    case 0xde: need(2, 'map 16 length'); return readMap(u16(), depth);
    case 0xdf: need(4, 'map 32 length'); return readMap(u32(), depth);
    default: // only 0xc1 is left
      throw malformed(`byte 0xc1 at offset ${pos - 1} is never used in MessagePack`);
  }
}

function readBin(n: number): Buffer {
  if (n > end - pos) throw malformed(`bin of ${n} bytes at offset ${pos} runs past the end (${end - pos} left)`);
  pos += n;
  return buf.subarray(pos - n, pos);
}

function readStr(n: number): string {
  if (n > end - pos) throw malformed(`str of ${n} bytes at offset ${pos} runs past the end (${end - pos} left)`);
  const start = pos;
  pos += n;
  // Short strs (topics, map keys, small fields) are most strs, and a TextDecoder call costs
  // a few hundred ns whatever the length: decode them here, checking UTF-8 as strictly.
  return n <= SHORT_STR_BYTES ? shortStr(start) : utf8Str(start);
}

/** Longest str decoded by shortStr(): beyond it the native decoder is faster. */
const SHORT_STR_BYTES = 64;
/** Buffer's native ASCII slice (untyped in @types/node; toString's latin1 if it ever goes). */
const asciiSlice: (this: Buffer, start: number, end: number) => string =
  (Buffer.prototype as unknown as { asciiSlice?: (start: number, end: number) => string }).asciiSlice ??
  function (this: Buffer, start: number, end: number) {
    return this.toString('latin1', start, end);
  };
/** UTF-16 code units of the str being decoded by shortStr() (at most one per byte). */
const units: number[] = [];

/**
 * UTF-8 to a string for buf[start..pos), refusing what a fatal TextDecoder refuses: stray
 * continuation bytes, overlong forms, surrogates (ED A0..BF), code points above U+10FFFF and
 * truncated sequences (the well-formed byte sequences of Unicode's table 3-7).
 */
function shortStr(start: number): string {
  let i = start;
  if (pos - start <= 8) {
    // Tiny ASCII (most map keys): concatenation beats building an array.
    let s = '';
    for (; i < pos; i++) {
      const c = buf[i]!;
      if (c >= 0x80) break;
      s += String.fromCharCode(c);
    }
    if (i === pos) return s;
  } else {
    while (i < pos && buf[i]! < 0x80) i++;
    if (i === pos) return asciiSlice.call(buf, start, pos); // one native call, no check needed
  }
  units.length = 0;
  for (let j = start; j < i; j++) units.push(buf[j]!);
  while (i < pos) {
    const c = buf[i++]!;
    if (c < 0x80) {
      units.push(c);
      continue;
    }
    let cp: number;
    let more: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      cp = c & 0x1f;
      more = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      cp = c & 0x0f;
      more = 2;
      if (c === 0xe0) lo = 0xa0; // overlong
      else if (c === 0xed) hi = 0x9f; // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      cp = c & 0x07;
      more = 3;
      if (c === 0xf0) lo = 0x90; // overlong
      else if (c === 0xf4) hi = 0x8f; // above U+10FFFF
    } else {
      throw malformed(`str at offset ${start} is not valid UTF-8`);
    }
    if (more > pos - i) throw malformed(`str at offset ${start} is not valid UTF-8`);
    for (let k = 0; k < more; k++) {
      const d = buf[i++]!;
      if (d < lo || d > hi) throw malformed(`str at offset ${start} is not valid UTF-8`);
      lo = 0x80;
      hi = 0xbf;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < 0x10000) units.push(cp);
    else units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
  }
  return String.fromCharCode.apply(null, units);
}

function utf8Str(start: number): string {
  try {
    return utf8.decode(buf.subarray(start, pos));
  } catch {
    throw malformed(`str at offset ${start} is not valid UTF-8`);
  }
}

function enter(n: number, perItemBytes: number, kind: string, depth: number): void {
  if (depth >= maxDepth) throw malformed(`${kind} at offset ${pos} nests deeper than ${maxDepth}`);
  if (n * perItemBytes > end - pos) {
    throw malformed(`${kind} of ${n} at offset ${pos} cannot fit in the ${end - pos} byte(s) left`);
  }
  items += n;
  if (items > maxItems) throw malformed(`more than ${maxItems} array elements and map entries in all (${kind} at offset ${pos})`);
}

function readArray(n: number, depth: number): unknown[] {
  enter(n, 1, 'array', depth);
  const a = new Array<unknown>(n);
  for (let i = 0; i < n; i++) a[i] = read(depth + 1);
  return a;
}

function readMap(n: number, depth: number): Record<string, unknown> | Map<unknown, unknown> {
  enter(n, 2, 'map', depth);
  mapEntries += n;
  if (mapEntries > maxMapEntries) throw malformed(`more than ${maxMapEntries} map entries in all (map at offset ${pos})`);
  const obj: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const b = buf[pos]!; // undefined past the end: read() then reports the truncation
    const key = b >= 0xa0 && b <= 0xa0 + KEY_CACHE_MAX_BYTES ? readKey(b & 0x1f) : read(depth + 1);
    const value = read(depth + 1);
    if (typeof key !== 'string') return readMapTail(obj, key, value, n - i - 1, depth);
    if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
    else obj[key] = value;
  }
  return obj;
}

/** Longest fixstr key looked up in the key cache. */
const KEY_CACHE_MAX_BYTES = 16;
const KEY_CACHE_SLOTS = 4096;
/** Recently seen short ASCII keys, by a hash of their bytes: a hit costs no new string. */
const keyCache: Array<string | undefined> = new Array<string | undefined>(KEY_CACHE_SLOTS);

/**
 * A fixstr map key of n bytes whose format byte is at pos. Payload maps repeat the same few
 * keys; returning the same (already internalized) string makes the property store cheaper.
 */
function readKey(n: number): string {
  if (n + 1 > end - pos) return read(0) as string; // let read() report the truncation
  const start = pos + 1;
  let h = n;
  for (let i = start; i < start + n; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
  const slot = h & (KEY_CACHE_SLOTS - 1);
  const hit = keyCache[slot];
  if (hit !== undefined && hit.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (hit.charCodeAt(i) !== buf[start + i]) {
        same = false;
        break;
      }
    }
    if (same) {
      pos = start + n;
      return hit;
    }
  }
  pos = start;
  const key = readStr(n);
  // Only ASCII keys are cached: their UTF-16 units are their bytes, so the check above holds.
  if (key.length === n) keyCache[slot] = key;
  return key;
}

/** The rest of a map once a key that is not a str was met: everything goes into a Map. */
function readMapTail(obj: Record<string, unknown>, key: unknown, value: unknown, left: number, depth: number): Map<unknown, unknown> {
  const map = new Map<unknown, unknown>(Object.entries(obj));
  map.set(key, value);
  for (let i = 0; i < left; i++) {
    const k = read(depth + 1);
    map.set(k, read(depth + 1));
  }
  return map;
}

/** An ext of `n` data bytes whose format byte is at offset `at`; `pos` is at its type byte. */
function readExt(n: number, at: number): Date {
  if (n + 1 > end - pos) throw malformed(`ext of ${n} bytes at offset ${at} runs past the end (${end - pos} left)`);
  const type = (u8() << 24) >> 24;
  if (type !== -1) throw malformed(`ext type ${type} at offset ${at} is not standard MessagePack (only the timestamp, -1)`);
  if (!timestamps) throw malformed(`timestamp at offset ${at} is not allowed here`);
  let seconds: number;
  let nanos: number;
  if (n === 4) {
    seconds = u32();
    nanos = 0;
  } else if (n === 8) {
    const hi = u32();
    const lo = u32();
    nanos = Math.floor(hi / 4); // upper 30 bits
    seconds = (hi & 3) * 0x100000000 + lo; // lower 34 bits
  } else if (n === 12) {
    nanos = u32();
    const hi = u32() | 0;
    seconds = hi * 0x100000000 + u32(); // exact within the Date range checked below
  } else {
    throw malformed(`timestamp at offset ${at} has ${n} data bytes (4, 8 or 12 expected)`);
  }
  if (nanos > 999_999_999) throw malformed(`timestamp at offset ${at} has ${nanos} nanoseconds`);
  if (Math.abs(seconds) > MAX_DATE_SECONDS) throw malformed(`timestamp at offset ${at} is outside the range of a Date`);
  const date = new Date(seconds * 1000 + Math.floor(nanos / 1e6));
  if (Number.isNaN(date.getTime())) throw malformed(`timestamp at offset ${at} is outside the range of a Date`);
  return date;
}

// ---- what an encoder may be given ----------------------------------------------------------

/** A refusal on its way up from the failing value; each container adds its key on the way. */
class Refusal {
  readonly path: string[] = [];
  constructor(readonly reason: string) {}
}

const INT64_MIN = -(2n ** 63n);
/** String.prototype.isWellFormed (Node 20; our TypeScript lib is ES2022). */
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * Throws P2PError INVALID_ARGUMENT naming the path (`data.a[2]: functions cannot be
 * encoded`) unless `value` is made only of what MessagePack carries faithfully and what
 * decodeStrict(…, limits) accepts back: null, booleans, numbers, bigints within 64 bits,
 * strings without lone surrogates, Buffer/Uint8Array, valid Dates (only when
 * `limits.timestamps`), arrays and plain objects (prototype Object.prototype or null) within
 * maxDepth and maxItems. Refused: undefined (top level, array element or property value:
 * MessagePack has no undefined, and writing nil would change the value), functions, symbols,
 * Map, Set, Error, other class instances and typed arrays, invalid Dates, cycles (caught by
 * maxDepth). One walk over the containers and strings; bins and numbers cost O(1).
 */
export function assertEncodable(value: unknown, limits: DecodeLimits, root = 'data'): void {
  walkItems = 0;
  walkMapEntries = 0;
  walkLimits = limits;
  try {
    walk(value, 0);
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    throw new P2PError('INVALID_ARGUMENT', `${root}${err.path.reverse().join('')}: ${err.reason}`);
  } finally {
    walkLimits = PAYLOAD_LIMITS;
  }
}

let walkItems = 0;
let walkMapEntries = 0;
let walkLimits: Readonly<DecodeLimits> = PAYLOAD_LIMITS;

function walk(v: unknown, depth: number): void {
  switch (typeof v) {
    case 'number':
    case 'boolean':
      return;
    case 'string':
      if (!isWellFormed(v)) throw new Refusal('strings with lone surrogates cannot be encoded as UTF-8');
      return;
    case 'bigint':
      if (v < INT64_MIN || v > UINT64_MAX) throw new Refusal('bigints outside the 64-bit range cannot be encoded');
      return;
    case 'undefined':
      throw new Refusal('undefined cannot be encoded (MessagePack has no undefined; use null)');
    case 'function':
      throw new Refusal('functions cannot be encoded');
    case 'symbol':
      throw new Refusal('symbols cannot be encoded');
  }
  if (v === null || v instanceof Uint8Array && (Buffer.isBuffer(v) || Object.getPrototypeOf(v) === Uint8Array.prototype)) return;
  if (depth >= walkLimits.maxDepth) throw new Refusal(`nesting deeper than ${walkLimits.maxDepth} cannot be decoded by peers (or the value has a cycle)`);
  if (Array.isArray(v)) {
    walkCount(v.length);
    let i = 0;
    try {
      for (; i < v.length; i++) {
        const x: unknown = v[i];
        if (typeof x !== 'number') walk(x, depth + 1); // numbers, the bulk of big arrays, inline
      }
    } catch (err) {
      if (err instanceof Refusal) err.path.push(`[${i}]`);
      throw err;
    }
    return;
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto === Object.prototype || proto === null) {
    // for-in, not Object.keys: no array per object. A plain object's prototype is
    // Object.prototype or null, whose properties are not enumerable, so only own keys come.
    let key = '';
    let count = 0;
    try {
      for (key in v as object) {
        count++;
        if (!isWellFormed(key)) throw new Refusal('keys with lone surrogates cannot be encoded as UTF-8');
        const x = (v as Record<string, unknown>)[key];
        if (typeof x !== 'number') walk(x, depth + 1);
      }
    } catch (err) {
      if (err instanceof Refusal) err.path.push(/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);
      throw err;
    }
    walkCount(count);
    walkMapEntries += count;
    const maxEntries = walkLimits.maxMapEntries ?? walkLimits.maxItems;
    if (walkMapEntries > maxEntries) throw new Refusal(`more than ${maxEntries} object entries in all cannot be decoded by peers`);
    return;
  }
  if (v instanceof Date) {
    if (!walkLimits.timestamps) throw new Refusal('Dates are not allowed here');
    if (Number.isNaN(v.getTime())) throw new Refusal('invalid Dates cannot be encoded');
    return;
  }
  if (v instanceof Map) throw new Refusal('Maps cannot be encoded faithfully (use a plain object)');
  if (v instanceof Set) throw new Refusal('Sets cannot be encoded faithfully (use an array)');
  if (v instanceof Error) throw new Refusal('Errors cannot be encoded (send their message)');
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  throw new Refusal(`${typeof name === 'string' && name !== '' ? name : 'class'} instances cannot be encoded (only plain objects, arrays, Buffer, Uint8Array and Date)`);
}

function walkCount(n: number): void {
  walkItems += n;
  if (walkItems > walkLimits.maxItems) throw new Refusal(`more than ${walkLimits.maxItems} array elements and object entries in all cannot be decoded by peers`);
}
