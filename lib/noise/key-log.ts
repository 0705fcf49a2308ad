/**
 * The session key log, so captures of encrypted traffic still decode (like TLS's
 * SSLKEYLOGFILE). One line per session, written by the connection right after Split():
 *
 *   AETHEL_NOISE <initiator ephemeral public key> <initiator->responder key> <responder->initiator key> [<initiator id> <responder id>]
 *
 * each field 64 hex digits (32 bytes). The two node ids are optional (a reader accepts lines
 * with or without them; a node writes them): with them a capture reader names both ends. The initiator's ephemeral key is the first 32 bytes of
 * handshake message 0, so a capture reader can match a TCP stream to its line. The keys are
 * Split()'s, before any rekey: the reader replays the rekey schedule (records.ts) itself.
 */
import { P2PError } from '../errors.js';

/** The label that starts every key-log line. */
export const KEY_LOG_LABEL = 'AETHEL_NOISE';

/** One session's traffic keys, as read from a key log. */
export interface SessionKeys {
  /** Initiator-to-responder key (the first CipherState of Split()), 32 bytes. */
  i2r: Buffer;
  /** Responder-to-initiator key (the second CipherState of Split()), 32 bytes. */
  r2i: Buffer;
  /** The initiator's and the responder's node ids (64 hex, lowercase), when the line carries them. */
  initiatorId?: string;
  responderId?: string;
}

const FIELD = /^[0-9a-f]{64}$/i;

/**
 * The key-log line (no newline) for one session; each argument is 32 bytes. With `ids`
 * (the initiator's and the responder's node ids) the line carries six fields, else four.
 */
export function keyLogLine(
  initiatorEphemeral: Buffer,
  initiatorToResponderKey: Buffer,
  responderToInitiatorKey: Buffer,
  ids?: { initiator: Buffer; responder: Buffer },
): string {
  const fields = [initiatorEphemeral, initiatorToResponderKey, responderToInitiatorKey];
  if (ids) fields.push(ids.initiator, ids.responder);
  if (fields.some((f) => !Buffer.isBuffer(f) || f.length !== 32)) {
    throw P2PError.invalidArgument('key-log fields are 32 bytes each');
  }
  return [KEY_LOG_LABEL, ...fields.map((f) => f.toString('hex'))].join(' ');
}

/**
 * Parse a key log: a map from the hex (lowercase) of each session's initiator ephemeral key
 * to its keys. Blank lines and lines starting with # are ignored; a later line for the same
 * session replaces an earlier one. A malformed line throws P2PError INVALID_ARGUMENT naming
 * its 1-based line number.
 */
export function parseKeyLog(text: string): Map<string, SessionKeys> {
  const sessions = new Map<string, SessionKeys>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    if ((f.length !== 4 && f.length !== 6) || f[0] !== KEY_LOG_LABEL || !f.slice(1).every((x) => FIELD.test(x))) {
      throw P2PError.invalidArgument(`key log line ${i + 1}: expected "${KEY_LOG_LABEL}" and three (or five, with the two node ids) 64-digit hex fields`);
    }
    const keys: SessionKeys = { i2r: Buffer.from(f[2]!, 'hex'), r2i: Buffer.from(f[3]!, 'hex') };
    if (f.length === 6) {
      keys.initiatorId = f[4]!.toLowerCase();
      keys.responderId = f[5]!.toLowerCase();
    }
    sessions.set(f[1]!.toLowerCase(), keys);
  }
  return sessions;
}
