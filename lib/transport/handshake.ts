/**
 * The session handshake of protocol version 2 (docs/PROTOCOL.md §4.1): Noise XX with the
 * protocol's payloads. Pure: no sockets, no timers. The connection feeds it the Noise
 * messages it receives and sends the ones it returns; when it is done it yields the peer's
 * proven identity, the negotiated version and, on an encrypted session, the two
 * CipherStates of the record layer.
 *
 *   initiator                                   responder
 *   -> e          payload: [minV, maxV, networkId, encrypted]   (in clear, hashed)
 *                 responder checks network, encryption mode, versions; refuses with
 *                 GOODBYE NETWORK_MISMATCH / ENCRYPTION_MISMATCH / VERSION_MISMATCH
 *   <- e, ee, s, es   payload: [version, identityKey, staticSignature, listen, observed]
 *   -> s, se          payload: the same, from the initiator (version echoed)
 *
 * Each identity payload binds the node's Ed25519 identity (node id = SHA-256 of it) to its
 * Noise static key: staticSignature = Ed25519(identityKey, STATIC_KEY_TAG || static key).
 * The Noise static key is fresh per process, so only the identity key is long-lived.
 */
import { ProtocolError } from '../errors.js';
import { nodeIdOf, verifySignature } from '../identity.js';
import type { Identity } from '../identity.js';
import { XXHandshake } from '../noise/handshake.js';
import type { X25519KeyPair } from '../noise/handshake.js';
import type { CipherState } from '../noise/cipher-state.js';
import { keyLogLine } from '../noise/key-log.js';
import { decodeIdentityPayload, decodeInitPayload, encodeIdentityPayload, encodeInitPayload } from '../wire/codec.js';
import type { IdentityPayload } from '../wire/codec.js';

/** Noise prologue: both sides must use it, so a transcript of another protocol never verifies. */
export const NOISE_PROLOGUE = Buffer.from('aethel-p2p', 'ascii');
/** Domain-separation tag of the identity's signature over the Noise static key (ASCII, 24 bytes). */
export const STATIC_KEY_TAG = Buffer.from('aethel-p2p noise static:', 'ascii');

/** What the connection tells the handshake about itself. */
export interface SessionConfig {
  identity: Identity;
  networkId: string;
  /** Seal records after the handshake (true) or send frames in clear (false, both sides must agree). */
  encrypted: boolean;
  /** Protocol versions this side speaks, inclusive. */
  minVersion: number;
  maxVersion: number;
  /** Where this node accepts connections ('' / 0 when it does not listen). */
  listenHost: string;
  listenPort: number;
  /** The peer's address as this side sees it (told to the peer). */
  remoteHost: string;
  remotePort: number;
  /** This node's Noise static key (X25519), fresh per process. */
  staticKey: X25519KeyPair;
  /** Fixed ephemeral key: test vectors only. */
  ephemeralKey?: X25519KeyPair;
}

/** The outcome of a completed handshake. */
export interface SessionResult {
  version: number;
  encrypted: boolean;
  peerPublicKey: Buffer;
  peerId: Buffer;
  peerListenHost: string;
  peerListenPort: number;
  /** Our address as the peer sees it. */
  observedHost: string;
  observedPort: number;
  /** Record-layer cipher states (only when encrypted). */
  send: CipherState | undefined;
  recv: CipherState | undefined;
  /** One key-log line (§4.2) for this session: the split keys, named by the initiator's ephemeral key. */
  keyLog: string;
  handshakeHash: Buffer;
}

/** The signature that binds an identity to a Noise static key. */
export function signStaticKey(identity: Identity, staticPublicKey: Buffer): Buffer {
  return identity.sign(Buffer.concat([STATIC_KEY_TAG, staticPublicKey]));
}

export class SessionHandshake {
  private readonly noise: XXHandshake;
  private step = 0;
  private version = 0;
  private result: SessionResult | undefined;
  private failedCipher: CipherState | undefined;

  constructor(readonly initiator: boolean, private readonly cfg: SessionConfig) {
    this.noise = new XXHandshake({
      initiator,
      prologue: NOISE_PROLOGUE,
      staticKey: cfg.staticKey,
      ...(cfg.ephemeralKey ? { ephemeralKey: cfg.ephemeralKey } : {}),
    });
  }

  /**
   * After a refusal of the peer's last message that Noise itself authenticated (a bad
   * identity binding, a self-connection): the cipher state to seal our GOODBYE with, since
   * the peer already switched to records. Undefined otherwise.
   */
  get refusalCipher(): CipherState | undefined {
    return this.failedCipher;
  }

  /** The completed session, once done. */
  get done(): SessionResult | undefined {
    return this.result;
  }

  /** The initiator's first message (-> e with the init payload). */
  start(): Buffer {
    if (!this.initiator || this.step !== 0) throw new ProtocolError('UNEXPECTED_MESSAGE', 'handshake already started');
    this.step = 1;
    const { minVersion, maxVersion, networkId, encrypted } = this.cfg;
    return this.noise.writeMessage(encodeInitPayload({ minVersion, maxVersion, networkId, encrypted }));
  }

  /**
   * Handle the peer's next Noise message; returns our reply, if any. Throws ProtocolError
   * with the code whose GOODBYE reports it (NETWORK_MISMATCH, VERSION_MISMATCH,
   * ENCRYPTION_MISMATCH, BAD_SIGNATURE, SELF_CONNECTION, SCHEMA, NOISE_HANDSHAKE,
   * UNEXPECTED_MESSAGE).
   */
  receive(message: Buffer): Buffer | undefined {
    if (this.initiator) {
      if (this.step !== 1) throw new ProtocolError('UNEXPECTED_MESSAGE', 'HANDSHAKE after the handshake completed');
      this.step = 2;
      const peer = decodeIdentityPayload(this.noise.readMessage(message));
      if (peer.version < this.cfg.minVersion || peer.version > this.cfg.maxVersion) {
        throw new ProtocolError('VERSION_MISMATCH', `peer chose version ${peer.version}; we speak ${this.cfg.minVersion}..${this.cfg.maxVersion}`);
      }
      this.version = peer.version;
      const ours = this.identityPayload();
      const reply = this.noise.writeMessage(encodeIdentityPayload(ours));
      this.finish(peer, this.noise.split());
      return reply;
    }
    if (this.step === 0) {
      this.step = 1;
      const init = decodeInitPayload(this.noise.readMessage(message));
      if (init.networkId !== this.cfg.networkId) {
        throw new ProtocolError('NETWORK_MISMATCH', `peer is on network ${JSON.stringify(init.networkId)}, we are on ${JSON.stringify(this.cfg.networkId)}`);
      }
      if (init.encrypted !== this.cfg.encrypted) {
        throw new ProtocolError('ENCRYPTION_MISMATCH', this.cfg.encrypted ? 'this node requires encryption; the peer asked for plaintext' : 'this node runs plaintext (encryption: false); the peer requires encryption');
      }
      const version = Math.min(init.maxVersion, this.cfg.maxVersion);
      if (version < Math.max(init.minVersion, this.cfg.minVersion)) {
        throw new ProtocolError('VERSION_MISMATCH', `no common version: peer speaks ${init.minVersion}..${init.maxVersion}, we speak ${this.cfg.minVersion}..${this.cfg.maxVersion}`);
      }
      this.version = version;
      return this.noise.writeMessage(encodeIdentityPayload(this.identityPayload()));
    }
    if (this.step !== 1 || this.result) throw new ProtocolError('UNEXPECTED_MESSAGE', 'HANDSHAKE after the handshake completed');
    this.step = 2;
    const payload = this.noise.readMessage(message);
    // Noise authenticated the transcript: the initiator already reads records, so any refusal
    // from here on (bad payload, bad binding, self-connection) goes out sealed.
    const keys = this.noise.split();
    if (this.cfg.encrypted) this.failedCipher = keys.send;
    const peer = decodeIdentityPayload(payload);
    if (peer.version !== this.version) throw new ProtocolError('VERSION_MISMATCH', `peer echoed version ${peer.version}, we chose ${this.version}`);
    this.finish(peer, keys);
    return undefined;
  }

  private identityPayload(): IdentityPayload {
    return {
      version: this.version,
      identityKey: this.cfg.identity.publicKey,
      staticSignature: signStaticKey(this.cfg.identity, this.cfg.staticKey.publicKey),
      listenHost: this.cfg.listenHost,
      listenPort: this.cfg.listenPort,
      observedHost: this.cfg.remoteHost,
      observedPort: this.cfg.remotePort,
    };
  }

  private finish(peer: IdentityPayload, { send, recv }: { send: CipherState; recv: CipherState }): void {
    const remoteStatic = this.noise.remoteStatic;
    if (!remoteStatic) throw new ProtocolError('NOISE_HANDSHAKE', 'no remote static key after the handshake');
    if (!verifySignature(peer.identityKey, Buffer.concat([STATIC_KEY_TAG, remoteStatic]), peer.staticSignature)) {
      throw new ProtocolError('BAD_SIGNATURE', 'the identity signature over the Noise static key does not verify');
    }
    const peerId = nodeIdOf(peer.identityKey);
    if (peerId.equals(this.cfg.identity.id)) throw new ProtocolError('SELF_CONNECTION', 'connected to ourselves');
    this.failedCipher = undefined;
    const initiatorEphemeral = this.noise.initiatorEphemeral!;
    const [i2r, r2i] = this.initiator ? [send.key!, recv.key!] : [recv.key!, send.key!];
    this.result = {
      version: this.version,
      encrypted: this.cfg.encrypted,
      peerPublicKey: ownCopy(peer.identityKey),
      peerId,
      peerListenHost: peer.listenHost,
      peerListenPort: peer.listenPort,
      observedHost: peer.observedHost,
      observedPort: peer.observedPort,
      send: this.cfg.encrypted ? send : undefined,
      recv: this.cfg.encrypted ? recv : undefined,
      keyLog: keyLogLine(initiatorEphemeral, i2r, r2i, this.initiator ? { initiator: this.cfg.identity.id, responder: peerId } : { initiator: peerId, responder: this.cfg.identity.id }),
      handshakeHash: this.noise.handshakeHash,
    };
  }
}

/**
 * A copy of `b` in memory of its own. Buffer.from() would take a small copy from Node's shared
 * 8 KiB pool, and a key kept for a connection's life would keep that whole block alive.
 */
function ownCopy(b: Uint8Array): Buffer {
  const c = Buffer.allocUnsafeSlow(b.length);
  c.set(b);
  return c;
}
