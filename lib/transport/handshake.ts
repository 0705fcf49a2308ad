/**
 * The handshake transcript: what AUTH signs. Pure, so that test vectors and other
 * implementations can reproduce it byte for byte (docs/PROTOCOL.md §Handshake).
 */
import { randomBytes } from 'node:crypto';
import { KEY_BYTES } from '../identity.js';

/** Domain-separation tag that starts every AUTH transcript (ASCII, 18 bytes). */
export const AUTH_TAG = Buffer.from('aethel-p2p auth v1', 'ascii');

/** A fresh 32-byte handshake nonce. */
export function newNonce(): Buffer {
  return randomBytes(KEY_BYTES);
}

/**
 * Bytes the signer signs in AUTH: tag || verifier's nonce || signer id || verifier id.
 * Signing the other side's fresh nonce proves possession of the key now; binding both ids
 * keeps a signature from being replayed on a connection between other parties.
 */
export function authTranscript(verifierNonce: Uint8Array, signerId: Uint8Array, verifierId: Uint8Array): Buffer {
  return Buffer.concat([AUTH_TAG, verifierNonce, signerId, verifierId]);
}
