/**
 * A deliberately tiny, strict reader of standard MessagePack (https://msgpack.org spec), written
 * for the tests from the format table and independent of msgpackr. It accepts only the
 * standard formats (plus the timestamp extension, type -1) and throws on anything else: an
 * implementation-specific extension (msgpackr records, structured clone), the unused byte
 * 0xc1, invalid UTF-8, truncation or trailing bytes. If our encoder's output reads here, any
 * conforming MessagePack library can read it.
 *
 * Values: int -> number (bigint beyond 2^53), str -> string, bin -> Buffer, array -> array,
 * map -> Map, timestamp -> { timestamp: bytes }.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function readStandardMsgpack(bytes: Uint8Array): unknown {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let pos = 0;

  const need = (n: number): void => {
    if (pos + n > buf.length) throw new Error(`truncated at byte ${pos}`);
  };
  const take = (n: number): Buffer => {
    need(n);
    pos += n;
    return buf.subarray(pos - n, pos);
  };
  const u = (n: 1 | 2 | 4): number => {
    need(n);
    const v = buf.readUIntBE(pos, n);
    pos += n;
    return v;
  };
  const int64 = (signed: boolean): number | bigint => {
    need(8);
    const v = signed ? buf.readBigInt64BE(pos) : buf.readBigUInt64BE(pos);
    pos += 8;
    return v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? Number(v) : v;
  };
  const ext = (length: number): unknown => {
    need(1);
    const type = buf.readInt8(pos++);
    if (type !== -1 || ![4, 8, 12].includes(length)) throw new Error(`non-standard extension type ${type} (${length} bytes)`);
    return { timestamp: Buffer.from(take(length)) };
  };
  const array = (n: number): unknown[] => Array.from({ length: n }, () => value());
  const map = (n: number): Map<unknown, unknown> => {
    const m = new Map<unknown, unknown>();
    for (let i = 0; i < n; i++) m.set(value(), value());
    return m;
  };

  function value(): unknown {
    const b = u(1);
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return map(b & 0x0f);
    if (b <= 0x9f) return array(b & 0x0f);
    if (b <= 0xbf) return utf8.decode(take(b & 0x1f));
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return Buffer.from(take(u(1)));
      case 0xc5: return Buffer.from(take(u(2)));
      case 0xc6: return Buffer.from(take(u(4)));
      case 0xc7: return ext(u(1));
      case 0xc8: return ext(u(2));
      case 0xc9: return ext(u(4));
      case 0xca: need(4); pos += 4; return buf.readFloatBE(pos - 4);
      case 0xcb: need(8); pos += 8; return buf.readDoubleBE(pos - 8);
      case 0xcc: return u(1);
      case 0xcd: return u(2);
      case 0xce: return u(4);
      case 0xcf: return int64(false);
      case 0xd0: need(1); pos += 1; return buf.readInt8(pos - 1);
      case 0xd1: need(2); pos += 2; return buf.readInt16BE(pos - 2);
      case 0xd2: need(4); pos += 4; return buf.readInt32BE(pos - 4);
      case 0xd3: return int64(true);
      case 0xd4: return ext(1);
      case 0xd5: return ext(2);
      case 0xd6: return ext(4);
      case 0xd7: return ext(8);
      case 0xd8: return ext(16);
      case 0xd9: return utf8.decode(take(u(1)));
      case 0xda: return utf8.decode(take(u(2)));
      case 0xdb: return utf8.decode(take(u(4)));
      case 0xdc: return array(u(2));
      case 0xdd: return array(u(4));
      case 0xde: return map(u(2));
      case 0xdf: return map(u(4));
      default: throw new Error(`byte 0x${b.toString(16)} is not a MessagePack format`);
    }
  }

  const v = value();
  if (pos !== buf.length) throw new Error(`${buf.length - pos} trailing byte(s)`);
  return v;
}
