/**
 * X25519 (RFC 7748) on node:crypto with raw 32-byte keys: the DH functions of Noise's
 * "25519" (section 12.1). Keys go in and out of node:crypto as JWK (base64url raw bytes):
 * OpenSSL 3 imports a JWK key about fifteen times faster than the same key wrapped in DER,
 * and a handshake imports two peer keys. The static key's KeyObject is cached per key pair.
 */
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto';
import { P2PError, ProtocolError } from '../errors.js';

/** Bytes in an X25519 public key, private key and shared secret (Noise DHLEN). */
export const DH_BYTES = 32;

/** DER before a raw private key: PKCS#8 with the X25519 OID 1.3.101.110 (x25519FromPrivate only). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** An X25519 key pair as raw bytes. */
export interface X25519KeyPair {
  /** The public key, 32 bytes (the u-coordinate, little-endian). */
  publicKey: Buffer;
  /** The private key, 32 bytes (the scalar before clamping). */
  privateKey: Buffer;
}

/** A key pair as raw public bytes and the private KeyObject, for use within one handshake. */
export interface LocalKey {
  /** The public key, 32 raw bytes. */
  pub: Buffer;
  /** The private key, imported into node:crypto once. */
  priv: KeyObject;
}

const rawX = (key: KeyObject): Buffer => Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url');

/**
 * A fresh private key, imported: 32 bytes from the system's secure random source (RFC 7748
 * section 6.1: any 32 bytes are a private key; X25519 clamps them). Not generateKeyPairSync:
 * on Node 20 a key it made shares a lock with the generating job, and a collection that frees
 * the job while an export of the key holds that lock deadlocks the thread for good (seen as
 * a frozen process: main thread waiting on a mutex it holds itself, in ~KeyGenJob from
 * ExportJWKEdKey). Imported keys have no such job. JWK import needs no x for a private key.
 */
function randomPrivateKey(): KeyObject {
  const d = randomBytes(DH_BYTES);
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: d.toString('base64url'), x: '' }, format: 'jwk' });
  d.fill(0);
  return key;
}

/** A fresh key pair as a LocalKey (the handshake's ephemeral key). */
export function generateLocalKey(): LocalKey {
  const priv = randomPrivateKey();
  return { pub: rawX(createPublicKey(priv)), priv };
}

/** A fresh X25519 key pair from the system's secure random source. */
export function generateX25519(): X25519KeyPair {
  const priv = randomPrivateKey();
  return { publicKey: rawX(createPublicKey(priv)), privateKey: Buffer.from(priv.export({ format: 'jwk' }).d!, 'base64url') };
}

/** The key pair for a given 32-byte private key (fixed keys in tests and vectors). */
export function x25519FromPrivate(privateKey: Buffer): X25519KeyPair {
  if (!Buffer.isBuffer(privateKey) || privateKey.length !== DH_BYTES) {
    throw P2PError.invalidArgument(`an X25519 private key is ${DH_BYTES} bytes`);
  }
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
  return { publicKey: rawX(createPublicKey(key)), privateKey: Buffer.from(privateKey) };
}

const cache = new WeakMap<X25519KeyPair, { raw: Buffer; key: LocalKey }>();

/**
 * The LocalKey for a raw key pair, cached per pair object: a node passes the same static
 * key pair to every handshake (a pair whose bytes changed is imported again). Throws P2PError
 * INVALID_ARGUMENT unless both keys are 32 bytes and the public key is the private key's.
 */
export function localKey(pair: X25519KeyPair): LocalKey {
  const { publicKey, privateKey } = pair;
  const hit = cache.get(pair);
  if (hit && hit.key.pub.equals(publicKey) && hit.raw.equals(privateKey)) return hit.key;
  if (!Buffer.isBuffer(privateKey) || privateKey.length !== DH_BYTES || !Buffer.isBuffer(publicKey) || publicKey.length !== DH_BYTES) {
    throw P2PError.invalidArgument(`an X25519 key pair is two ${DH_BYTES}-byte buffers`);
  }
  const priv = createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: privateKey.toString('base64url'), x: publicKey.toString('base64url') },
    format: 'jwk',
  });
  if (!rawX(createPublicKey(priv)).equals(publicKey)) throw P2PError.invalidArgument('X25519 public key does not match the private key');
  const key = { pub: Buffer.from(publicKey), priv };
  cache.set(pair, { raw: Buffer.from(privateKey), key });
  return key;
}

const P = 2n ** 255n - 19n;
/**
 * The u-coordinates (bit 255 masked, as X25519 masks it) of the points of order 1, 2, 4 and 8
 * and their non-canonical encodings below 2^255: 0, 1, p-1, p, p+1 and the two of order 8.
 * DH with any of them gives an all-zero secret whatever our private key.
 */
const LOW_ORDER = [
  0n,
  1n,
  P - 1n,
  P,
  P + 1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
].map((u) => {
  const b = Buffer.alloc(DH_BYTES);
  for (let i = 0; i < DH_BYTES; i++) b[i] = Number((u >> BigInt(8 * i)) & 0xffn);
  return b;
});

/**
 * True when `publicKey` is a low-order point (any value of bit 255): a peer sending one
 * contributes nothing to the shared secret. Checked as soon as a peer key is read, before
 * any DH with it.
 */
export function isLowOrder(publicKey: Buffer): boolean {
  if (publicKey.length !== DH_BYTES) return false;
  const masked = Buffer.from(publicKey);
  masked[DH_BYTES - 1]! &= 0x7f;
  return LOW_ORDER.some((b) => b.equals(masked));
}

/** A node:crypto public KeyObject for a raw 32-byte X25519 public key (any 32 bytes are one). */
export function publicKeyObject(publicKey: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: publicKey.toString('base64url') }, format: 'jwk' });
}

/**
 * DH(private, remotePublic): the 32-byte shared secret. Throws ProtocolError NOISE_HANDSHAKE
 * when the peer's key is a low-order point, i.e. the secret would be all zero: such a key
 * contributes nothing to the session key (RFC 7748 section 6.1 allows the check; Noise
 * section 12.1 permits it). OpenSSL refuses it already; the explicit check keeps it so.
 */
export function dh(privateKey: KeyObject, remotePublic: Buffer | KeyObject): Buffer {
  let secret: Buffer;
  try {
    const publicKey = Buffer.isBuffer(remotePublic) ? publicKeyObject(remotePublic) : remotePublic;
    secret = diffieHellman({ privateKey, publicKey });
  } catch {
    throw new ProtocolError('NOISE_HANDSHAKE', 'X25519 with the peer key failed (low-order point)');
  }
  if (secret.every((b) => b === 0)) throw new ProtocolError('NOISE_HANDSHAKE', 'X25519 shared secret is all zero');
  return secret;
}
