/**
 * Node identity: an Ed25519 key pair. The node id is SHA-256 of the raw 32-byte public key,
 * shown as 64 lowercase hex characters.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile, open } from 'node:fs/promises';
import { P2PError } from './errors.js';

/** Length in bytes of a raw Ed25519 public key, a node id and a message id. */
export const KEY_BYTES = 32;
/** Length in bytes of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64;

// DER prefixes that wrap a raw 32-byte Ed25519 key (RFC 8410).
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

const KEY_FILE_TYPE = 'aethel-p2p/ed25519';

export interface Identity {
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  /** SHA-256 of the public key (32 bytes). */
  readonly id: Buffer;
  /** `id` as 64 lowercase hex characters. */
  readonly idHex: string;
  /** Sign `data` with the private key (64-byte Ed25519 signature). */
  sign(data: Uint8Array): Buffer;
  /** The 32-byte private seed; handle with care. */
  exportSeed(): Buffer;
}

/** SHA-256 of a public key: the node id. */
export function nodeIdOf(publicKey: Uint8Array): Buffer {
  if (nodeIdMemo === undefined) return createHash('sha256').update(publicKey).digest();
  const memoKey = latin1(publicKey);
  let id = nodeIdMemo.get(memoKey);
  if (id === undefined) {
    id = createHash('sha256').update(publicKey).digest();
    if (nodeIdMemo.size >= nodeIdMemoMax) nodeIdMemo.clear();
    nodeIdMemo.set(memoKey, id);
  }
  return Buffer.from(id); // a copy: the caller may keep or change it
}

/**
 * Simulator only (setNodeIdMemo): thousands of simulated nodes in one process each hash the
 * same origins' keys (a gossip engine names a message's origin by node id); nodeIdOf is a
 * pure function of the key, so one hash per key serves them all.
 */
let nodeIdMemo: Map<string, Buffer> | undefined;
let nodeIdMemoMax = 0;

/** Simulator only: memoize up to `maxEntries` node ids (0 turns the memo off and drops it). */
export function setNodeIdMemo(maxEntries: number): void {
  if (!Number.isInteger(maxEntries) || maxEntries < 0) throw P2PError.invalidArgument(`maxEntries must be a non-negative integer, got ${maxEntries}`);
  nodeIdMemoMax = maxEntries;
  nodeIdMemo = maxEntries > 0 ? new Map() : undefined;
}

function fromPrivateKey(privateKey: KeyObject): Identity {
  const publicKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  const id = nodeIdOf(publicKey);
  return {
    publicKey: Buffer.from(publicKey),
    id,
    idHex: id.toString('hex'),
    sign: (data) => sign(null, data, privateKey),
    exportSeed: () => Buffer.from(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length)),
  };
}

/**
 * A fresh random identity: a 32-byte seed from the system's secure random source (RFC 8032
 * section 5.1.5: the private key is 32 random bytes), imported. Not generateKeyPairSync: on
 * Node 20 a key it made can deadlock the thread when a collection frees the generating job
 * while the key is being exported or used (lib/noise/x25519.ts randomPrivateKey()).
 */
export function generateIdentity(): Identity {
  const seed = randomBytes(KEY_BYTES);
  try {
    return identityFromSeed(seed);
  } finally {
    seed.fill(0);
  }
}

/** The identity whose private seed is `seed` (32 bytes): deterministic, for tests and vectors. */
export function identityFromSeed(seed: Uint8Array): Identity {
  if (seed.length !== KEY_BYTES) throw P2PError.invalidArgument(`seed must be ${KEY_BYTES} bytes, got ${seed.length}`);
  return fromPrivateKey(createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }));
}

/** Write the identity to `path` as JSON, creating the file with mode 0600 (fails if it exists). */
export async function saveIdentity(identity: Identity, path: string): Promise<void> {
  const body = JSON.stringify({
    type: KEY_FILE_TYPE,
    publicKey: identity.publicKey.toString('hex'),
    seed: identity.exportSeed().toString('hex'),
  });
  let handle;
  try {
    handle = await open(path, 'wx', 0o600);
    await handle.writeFile(body + '\n');
  } catch (err) {
    throw new P2PError('IDENTITY_FILE', `cannot write key file ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    await handle?.close();
  }
}

/** Read an identity saved by {@link saveIdentity}; a missing, corrupt or wrong-type file throws IDENTITY_FILE naming it. */
export async function loadIdentity(path: string): Promise<Identity> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new P2PError('IDENTITY_FILE', `cannot read key file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const bad = (why: string) => new P2PError('IDENTITY_FILE', `key file ${path} is not a valid aethel-p2p key: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw bad('not a JSON object');
  const { type, seed, publicKey } = parsed as Record<string, unknown>;
  if (type !== KEY_FILE_TYPE) throw bad(`type is ${JSON.stringify(type)}, expected ${JSON.stringify(KEY_FILE_TYPE)}`);
  if (typeof seed !== 'string' || !/^[0-9a-f]{64}$/.test(seed)) throw bad('seed must be 64 hex characters');
  const identity = identityFromSeed(Buffer.from(seed, 'hex'));
  if (publicKey !== undefined && publicKey !== identity.publicKey.toString('hex')) throw bad('publicKey does not match seed');
  return identity;
}

// Verification needs a KeyObject; building one from raw bytes costs more than a cache lookup.
const VERIFY_KEY_CACHE_MAX = 4096;
const verifyKeys = new Map<string, KeyObject>();

/**
 * A memo of verification results, off unless the simulator turns it on
 * (setVerificationMemo): it runs thousands of nodes in one process, each verifying the same
 * signed messages, and verifySignature is a pure function of (key, data, signature), so a
 * triple verified once for real is answered from the memo after. Keyed by the three inputs'
 * bytes, so only an identical triple hits; cleared when it holds maxEntries.
 */
let verifyMemo: Map<string, boolean> | undefined;
let verifyMemoMax = 0;

/** Simulator only: memoize up to `maxEntries` verification results (0 turns the memo off and drops it). */
export function setVerificationMemo(maxEntries: number): void {
  if (!Number.isInteger(maxEntries) || maxEntries < 0) throw P2PError.invalidArgument(`maxEntries must be a non-negative integer, got ${maxEntries}`);
  verifyMemoMax = maxEntries;
  verifyMemo = maxEntries > 0 ? new Map() : undefined;
}

/** Verify an Ed25519 signature by a raw 32-byte public key. Never throws for bad input. */
export function verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  if (verifyMemo === undefined) return verifyUncached(publicKey, data, signature);
  const memoKey = latin1(publicKey) + latin1(signature) + latin1(data);
  let ok = verifyMemo.get(memoKey);
  if (ok === undefined) {
    ok = verifyUncached(publicKey, data, signature);
    if (verifyMemo.size >= verifyMemoMax) verifyMemo.clear();
    verifyMemo.set(memoKey, ok);
  }
  return ok;
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

function verifyUncached(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  const hex = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString('latin1');
  let key = verifyKeys.get(hex);
  try {
    if (!key) {
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
      // Full: start over (amortised O(1)). Dropping the first entry instead would start a Map
      // iterator each time, which walks every slot deleted since the last rehash.
      if (verifyKeys.size >= VERIFY_KEY_CACHE_MAX) verifyKeys.clear();
      verifyKeys.set(hex, key);
    }
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}
