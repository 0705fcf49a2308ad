/**
 * Noise HandshakeState (Noise Protocol Framework rev. 34, section 5.3) for one pattern,
 * Noise_XX_25519_ChaChaPoly_SHA256:
 *
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 *
 * Pure: no sockets, no timers. The connection creates one XXHandshake per side, calls
 * writeMessage/readMessage in turn (initiator writes messages 0 and 2, responder writes 1),
 * carries each message in its own framing, and once `complete` calls split() for the two
 * CipherStates of the record layer. Each side learns the other's static key after message 1
 * (initiator) or 2 (responder); binding it to an identity is the caller's job (the payload).
 *
 * Payload security (Noise section 7.7): message 0's payload is plaintext and unauthenticated
 * (put nothing there a responder must trust before message 2); message 1's is encrypted to
 * the initiator's ephemeral key and authenticates the responder only once the initiator has
 * read it; message 2's is encrypted and authenticates the initiator.
 */
import type { KeyObject } from 'node:crypto';
import { P2PError, ProtocolError } from '../errors.js';
import { type CipherState, TAG_BYTES } from './cipher-state.js';
import { SymmetricState } from './symmetric-state.js';
import { DH_BYTES, dh, generateLocalKey, isLowOrder, localKey, publicKeyObject, type LocalKey, type X25519KeyPair } from './x25519.js';

export { generateX25519, x25519FromPrivate, type X25519KeyPair } from './x25519.js';

/** The Noise protocol name; hashed into h first, so a peer on any other protocol fails at message 1. */
export const PROTOCOL_NAME = 'Noise_XX_25519_ChaChaPoly_SHA256';
/** Largest Noise message, bytes (Noise section 3): the handshake messages obey it too. */
export const MAX_NOISE_MESSAGE_BYTES = 65535;

type Token = 'e' | 's' | 'ee' | 'es' | 'se';
/** The XX message patterns, in order; even indices are sent by the initiator. */
const XX: readonly (readonly Token[])[] = [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']];

/** Options of an XXHandshake. */
export interface XXHandshakeOptions {
  /** True on the side that dialled: it writes message 0. */
  initiator: boolean;
  /** Bytes both sides must agree on (network id, versions); mixed into h before message 0. */
  prologue: Buffer;
  /** This node's Noise static key pair (raw X25519). */
  staticKey: X25519KeyPair;
  /** A fixed ephemeral key pair, for test vectors only; default a fresh one per handshake. */
  ephemeralKey?: X25519KeyPair;
}

/** A copy of a peer's public key; throws NOISE_HANDSHAKE for a low-order point. */
function lowOrderChecked(key: Buffer, which: string): Buffer {
  if (isLowOrder(key)) throw new ProtocolError('NOISE_HANDSHAKE', `peer ${which} key is a low-order point`);
  return Buffer.from(key);
}

/** One side of a Noise XX handshake. */
export class XXHandshake {
  /** True on the side that writes message 0. */
  readonly initiator: boolean;
  private readonly ss = new SymmetricState(PROTOCOL_NAME);
  private readonly s: LocalKey;
  private e: LocalKey | undefined;
  private rs: Buffer | undefined;
  private re: Buffer | undefined;
  /** rs and re imported into node:crypto once each, though each takes part in two DHs. */
  private rsKey: KeyObject | undefined;
  private reKey: KeyObject | undefined;
  /** Index into XX of the next message. */
  private step = 0;
  private err: P2PError | undefined;
  private didSplit = false;

  constructor(opts: XXHandshakeOptions) {
    this.initiator = opts.initiator;
    this.s = localKey(opts.staticKey);
    if (opts.ephemeralKey) this.e = localKey(opts.ephemeralKey);
    this.ss.mixHash(opts.prologue);
  }

  /** The peer's static public key (32 bytes), once its `s` token has been read and decrypted. */
  get remoteStatic(): Buffer | undefined {
    return this.rs && Buffer.from(this.rs);
  }

  /** The peer's ephemeral public key (32 bytes), once read. */
  get remoteEphemeral(): Buffer | undefined {
    return this.re && Buffer.from(this.re);
  }

  /** The initiator's ephemeral public key, which names the session in the key log (key-log.ts). */
  get initiatorEphemeral(): Buffer | undefined {
    return this.initiator ? this.e && Buffer.from(this.e.pub) : this.remoteEphemeral;
  }

  /** True after all three messages have been written or read on this side. */
  get complete(): boolean {
    return this.step === XX.length;
  }

  /** h (32 bytes): after completion, the handshake hash both sides share (channel binding). */
  get handshakeHash(): Buffer {
    return this.ss.handshakeHash;
  }

  /**
   * Noise WriteMessage: the next message, carrying `payload` (encrypted from message 1 on;
   * message 0's payload is plaintext). Throws P2PError INVALID_ARGUMENT when it is not this
   * side's turn or the message would exceed MAX_NOISE_MESSAGE_BYTES.
   */
  writeMessage(payload: Buffer): Buffer {
    if (this.err) throw this.err;
    if (this.complete || (this.step % 2 === 0) !== this.initiator) {
      throw P2PError.invalidArgument(`not this side's turn to write (message ${this.step})`);
    }
    const out: Buffer[] = [];
    for (const token of XX[this.step]!) {
      if (token === 'e') {
        this.e ??= generateLocalKey();
        out.push(this.e.pub);
        this.ss.mixHash(this.e.pub);
      } else if (token === 's') {
        out.push(this.ss.encryptAndHash(this.s.pub));
      } else {
        this.mixDh(token);
      }
    }
    const head = out.reduce((n, b) => n + b.length, 0);
    if (head + payload.length + (this.ss.hasKey() ? TAG_BYTES : 0) > MAX_NOISE_MESSAGE_BYTES) {
      this.err = P2PError.invalidArgument(`handshake payload of ${payload.length} bytes exceeds a Noise message`);
      throw this.err;
    }
    out.push(this.ss.encryptAndHash(payload));
    this.step++;
    return Buffer.concat(out);
  }

  /**
   * Noise ReadMessage: processes the peer's next message and returns its payload (message 0's
   * is not authenticated; see the module comment). Throws ProtocolError NOISE_HANDSHAKE when
   * the message comes out of turn, is too short or over 65535 bytes, carries a low-order key
   * or fails to decrypt; the handshake then stays failed and every later call throws the
   * same error.
   */
  readMessage(message: Buffer): Buffer {
    if (this.err) throw this.err;
    try {
      return this.read(message);
    } catch (cause) {
      this.err = cause instanceof ProtocolError && cause.code === 'NOISE_HANDSHAKE'
        ? cause
        : new ProtocolError('NOISE_HANDSHAKE', `message ${this.step}: ${(cause as Error).message}`);
      throw this.err;
    }
  }

  /**
   * Noise Split(), oriented for this side: the initiator sends with the first CipherState and
   * receives with the second; the responder the reverse. Once, after completion.
   */
  split(): { send: CipherState; recv: CipherState } {
    if (!this.complete) throw P2PError.invalidArgument('split() before the handshake completed');
    if (this.didSplit) throw P2PError.invalidArgument('split() called twice: the nonces would repeat');
    this.didSplit = true;
    const [c1, c2] = this.ss.split();
    return this.initiator ? { send: c1, recv: c2 } : { send: c2, recv: c1 };
  }

  private read(message: Buffer): Buffer {
    if (this.complete || (this.step % 2 === 0) === this.initiator) {
      throw new ProtocolError('NOISE_HANDSHAKE', `message ${this.step} arrived out of turn`);
    }
    if (message.length > MAX_NOISE_MESSAGE_BYTES) {
      throw new ProtocolError('NOISE_HANDSHAKE', `message of ${message.length} bytes exceeds ${MAX_NOISE_MESSAGE_BYTES}`);
    }
    let off = 0;
    const take = (n: number): Buffer => {
      if (message.length - off < n) {
        throw new ProtocolError('NOISE_HANDSHAKE', `message ${this.step} too short: ${message.length} bytes`);
      }
      off += n;
      return message.subarray(off - n, off);
    };
    for (const token of XX[this.step]!) {
      if (token === 'e') {
        this.re = lowOrderChecked(take(DH_BYTES), 'ephemeral');
        this.reKey = publicKeyObject(this.re);
        this.ss.mixHash(this.re);
      } else if (token === 's') {
        this.rs = lowOrderChecked(this.ss.decryptAndHash(take(DH_BYTES + (this.ss.hasKey() ? TAG_BYTES : 0))), 'static');
        this.rsKey = publicKeyObject(this.rs);
      } else {
        this.mixDh(token);
      }
    }
    const rest = message.subarray(off);
    if (this.ss.hasKey() && rest.length < TAG_BYTES) take(TAG_BYTES);
    const payload = this.ss.decryptAndHash(rest);
    this.step++;
    return payload;
  }

  /** MixKey(DH(...)) for ee, es or se; which local and remote key depends on the side. */
  private mixDh(token: 'ee' | 'es' | 'se'): void {
    const initiatorKey = token === 'ee' || token === 'es' ? this.e : this.s;
    const responderKey = token === 'ee' || token === 'se' ? this.e : this.s;
    const local = this.initiator ? initiatorKey : responderKey;
    const remote = this.initiator
      ? (token === 'es' ? this.rsKey : this.reKey)
      : (token === 'se' ? this.rsKey : this.reKey);
    if (!local || !remote) throw new P2PError('INTERNAL', `XX token ${token} without its keys`);
    this.ss.mixKey(dh(local.priv, remote));
  }
}
