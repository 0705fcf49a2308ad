/**
 * Turn a frame body into something a person can read: the message type, its fields with
 * ids shortened, and a preview of the application payload. Malformed bodies are described,
 * never thrown: a dump or capture with a bad frame in it is still readable past it.
 */
import { nodeIdOf } from '../identity.js';
import { decodeInitPayload, decodeMessage, unpackValue } from '../wire/codec.js';
import type { InitPayload } from '../wire/codec.js';
import { GOODBYE_CODE_NAMES, MESSAGE_TYPE_NAMES, MessageType } from '../wire/messages.js';
import type { Message } from '../wire/messages.js';

/** Hex characters shown for an id in text output. */
export const SHORT_ID_CHARS = 8;
/** Characters of payload shown in text output. */
const PREVIEW_CHARS = 48;

export interface DecodedFrame {
  /** Type name (GOSSIP, PING...), or "MALFORMED". */
  type: string;
  /** The fields in JSON-friendly form: binary as hex, payload as its decoded value when it decodes. */
  fields: Record<string, unknown>;
  /** One line for people. */
  text: string;
  /** Gossip message ids this frame carries or names (GOSSIP id, IHAVE/IWANT ids), hex. */
  msgIds: string[];
  /** Why the body did not decode, when type is MALFORMED. */
  error?: string;
}

const short = (b: Buffer): string => b.toString('hex').slice(0, SHORT_ID_CHARS);

/** A short, single-line rendering of a MessagePack payload. */
export function payloadPreview(payload: Buffer): string {
  let s: string;
  try {
    s = JSON.stringify(unpackValue(payload), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `<${v.length} bytes>` : v)) ?? 'undefined';
  } catch {
    s = `<not MessagePack: ${payload.subarray(0, 16).toString('hex')}>`;
  }
  return s.length > PREVIEW_CHARS ? s.slice(0, PREVIEW_CHARS - 1) + '…' : s;
}

/**
 * The message type a frame body starts with, from its first bytes only (a capture that cut
 * the frame short still shows its type): a MessagePack array whose first element is a known
 * type number. Undefined when the bytes do not read so.
 */
export function peekMessageType(prefix: Uint8Array): string | undefined {
  if (prefix.length < 2) return undefined;
  const tag = prefix[0]!;
  let at = 1;
  if (tag >= 0x90 && tag <= 0x9f) at = 1;
  else if (tag === 0xdc) at = 3;
  else return undefined;
  const type = prefix[at];
  return type === undefined ? undefined : MESSAGE_TYPE_NAMES[type];
}

/** A frame a capture cut short: its type when the captured start tells it, and how much is missing. */
export function describeTruncated(prefix: Buffer, fullLength: number): DecodedFrame {
  const type = peekMessageType(prefix) ?? 'TRUNCATED';
  const error = `truncated by the capture: ${prefix.length} of ${fullLength} B captured`;
  return { type, fields: { truncated: true, capturedBytes: prefix.length, length: fullLength, bytes: prefix.subarray(0, 32).toString('hex') }, text: `${type} [TRUNCATED: ${prefix.length} of ${fullLength} B captured]`, msgIds: [], error };
}

/** The type name of a record of an encrypted session read without its key. */
export const SEALED_TYPE = 'RECORD';

/** One record of an encrypted session that the capture tools have no key for (not an error). */
export function describeSealed(length: number, captured: number): DecodedFrame {
  const cut = captured < length ? ` [TRUNCATED: ${captured} of ${length} B captured]` : '';
  return { type: SEALED_TYPE, fields: { encrypted: true, recordBytes: length, capturedBytes: captured }, text: `encrypted record, ${length} bytes${cut}`, msgIds: [] };
}

/** Decode one frame entry for display: its body, or what a truncating capture left of it. */
export function describeFrame(e: { body: Buffer; truncated?: number; sealed?: number }): DecodedFrame {
  if (e.sealed !== undefined) return describeSealed(e.sealed, e.body.length);
  return e.truncated === undefined ? describeBody(e.body) : describeTruncated(e.body, e.truncated);
}

/** Decode one frame body for display. */
export function describeBody(body: Buffer): DecodedFrame {
  let m: Message;
  try {
    m = decodeMessage(body);
  } catch (err) {
    const error = (err as Error).message;
    return { type: 'MALFORMED', fields: { bytes: body.subarray(0, 32).toString('hex') }, text: `MALFORMED (${error}) ${body.length} B`, msgIds: [], error };
  }
  const type = MESSAGE_TYPE_NAMES[m.type] ?? String(m.type);
  const f = fieldsOf(m);
  return { type, fields: f.fields, text: `${type} ${f.text}`.trimEnd(), msgIds: f.msgIds };
}

/** The init payload of a first handshake message (32-byte ephemeral key, then the payload in clear), if it is one. */
function initPayloadOf(noise: Buffer): InitPayload | undefined {
  if (noise.length <= 32) return undefined;
  try {
    return decodeInitPayload(noise.subarray(32));
  } catch {
    return undefined;
  }
}

function fieldsOf(m: Message): { fields: Record<string, unknown>; text: string; msgIds: string[] } {
  switch (m.type) {
    case MessageType.HANDSHAKE: {
      // Only the first message's payload travels in clear (-> e, payload): show it when it parses.
      const init = initPayloadOf(m.noise);
      return {
        fields: { noiseBytes: m.noise.length, ...(init ? { init } : {}) },
        text: init ? `-> e versions=${init.minVersion}..${init.maxVersion} network=${JSON.stringify(init.networkId)}${init.encrypted ? '' : ' PLAINTEXT'}` : `${m.noise.length} B (encrypted handshake message)`,
        msgIds: [],
      };
    }
    case MessageType.PING:
    case MessageType.PONG:
      return { fields: { seq: m.seq }, text: `seq=${m.seq}`, msgIds: [] };
    case MessageType.GOSSIP: {
      const id = m.id.toString('hex');
      return {
        fields: {
          id, origin: m.origin.toString('hex'), originId: nodeIdOf(m.origin).toString('hex'), seq: m.seq, topic: m.topic, ttl: m.ttl, hops: m.hops,
          seenBy: m.seenBy.map((b) => b.toString('hex')), payload: payloadPreview(m.payload), payloadBytes: m.payload.length,
          signature: m.signature?.toString('hex') ?? null,
        },
        text: `id=${id.slice(0, SHORT_ID_CHARS)} topic=${JSON.stringify(m.topic)} origin=${short(nodeIdOf(m.origin))} ttl=${m.ttl} hops=${m.hops} seenBy=${m.seenBy.length}${m.signature ? '' : ' UNSIGNED'} payload=${payloadPreview(m.payload)}`,
        msgIds: [id],
      };
    }
    case MessageType.IHAVE:
    case MessageType.IWANT: {
      const ids = m.ids.map((b) => b.toString('hex'));
      const shown = ids.slice(0, 4).map((x) => x.slice(0, SHORT_ID_CHARS)).join(',');
      return { fields: { ids }, text: `${ids.length} id(s) [${shown}${ids.length > 4 ? ',…' : ''}]`, msgIds: ids };
    }
    case MessageType.DIRECT:
      return {
        fields: { ref: m.ref.toString('hex'), topic: m.topic, payload: payloadPreview(m.payload), payloadBytes: m.payload.length },
        text: `ref=${short(m.ref)} topic=${JSON.stringify(m.topic)} payload=${payloadPreview(m.payload)}`,
        msgIds: [],
      };
    case MessageType.ACK:
      return { fields: { ref: m.ref.toString('hex'), status: m.status, replyBytes: m.reply?.length ?? null }, text: `ref=${short(m.ref)} status=${m.status}`, msgIds: [] };
    case MessageType.FIND_NODE:
      return { fields: { reqId: m.reqId, target: m.target.toString('hex') }, text: `req=${m.reqId} target=${short(m.target)}`, msgIds: [] };
    case MessageType.NODES:
      return {
        fields: { reqId: m.reqId, contacts: m.contacts.map((c) => ({ id: c.id.toString('hex'), host: c.host, port: c.port })) },
        text: `req=${m.reqId} ${m.contacts.length} contact(s)${m.contacts.slice(0, 3).map((c) => ` ${short(c.id)}@${c.host}:${c.port}`).join('')}`,
        msgIds: [],
      };
    case MessageType.GOODBYE:
      return {
        fields: { code: m.code, codeName: GOODBYE_CODE_NAMES[m.code] ?? 'UNKNOWN', reason: m.reason },
        text: `${m.code} ${GOODBYE_CODE_NAMES[m.code] ?? 'UNKNOWN'} ${JSON.stringify(m.reason)}`,
        msgIds: [],
      };
  }
}
