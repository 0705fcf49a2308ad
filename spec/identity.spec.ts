import { expect } from 'chai';
import { createHash, createPrivateKey, createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { P2PError } from '../lib/errors.js';
import { generateIdentity, identityFromSeed, loadIdentity, nodeIdOf, saveIdentity, verifySignature } from '../lib/identity.js';

const LIB = fileURLToPath(new URL('../lib/', import.meta.url));

/** RFC 8032 §7.1, test 1: a published Ed25519 seed, its public key and its signature of "". */
const RFC8032_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC8032_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const RFC8032_SIG_EMPTY =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

async function loadError(path: string): Promise<P2PError> {
  try {
    await loadIdentity(path);
  } catch (err) {
    expect(err).to.be.instanceOf(P2PError);
    return err as P2PError;
  }
  throw new Error(`loadIdentity(${path}) succeeded`);
}

describe('Identity', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'aethel-identity-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('derives the RFC 8032 public key and signature from the RFC 8032 seed', () => {
    const id = identityFromSeed(Buffer.from(RFC8032_SEED, 'hex'));
    expect(id.publicKey.toString('hex')).to.equal(RFC8032_PUBLIC);
    expect(id.sign(Buffer.alloc(0)).toString('hex')).to.equal(RFC8032_SIG_EMPTY);
    expect(id.exportSeed().toString('hex')).to.equal(RFC8032_SEED);
  });

  it('makes the node id SHA-256 of the raw 32-byte public key, as 64 lowercase hex characters', () => {
    const id = generateIdentity();
    expect(id.publicKey).to.have.length(32);
    expect(id.id.equals(createHash('sha256').update(id.publicKey).digest())).to.equal(true);
    expect(id.id.equals(nodeIdOf(id.publicKey))).to.equal(true);
    expect(id.idHex).to.match(/^[0-9a-f]{64}$/);
    expect(id.idHex).to.equal(id.id.toString('hex'));
  });

  it('exposes the raw public key that node:crypto verifies its signatures with', () => {
    const id = generateIdentity();
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: id.publicKey.toString('base64url') }, format: 'jwk' });
    const data = Buffer.from('transcript');
    const sig = id.sign(data);
    expect(sig).to.have.length(64);
    expect(verify(null, data, key, sig)).to.equal(true);
    expect(verifySignature(id.publicKey, data, sig)).to.equal(true);
  });

  it('gives fresh identities distinct keys', () => {
    expect(generateIdentity().idHex).to.not.equal(generateIdentity().idHex);
  });

  it('makes no key with generateKeyPairSync anywhere in lib/ (on Node 20 such a key can deadlock the thread in a collection)', () => {
    // A key from generateKeyPairSync shares a lock with its job; a collection that frees the job
    // while an export or use of the key holds the lock froze processes (lib/noise/x25519.ts).
    const offenders = readdirSync(LIB, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .filter((f) => /\bgenerateKeyPair(Sync)?\b/.test(readFileSync(join(LIB, f), 'utf8').replace(/^\s*(\*|\/\/).*$/gm, '')));
    expect(offenders).to.deep.equal([]);
  });

  it('rejects a signature over other data, by another key, or of the wrong length, without throwing', () => {
    const a = generateIdentity();
    const b = generateIdentity();
    const sig = a.sign(Buffer.from('x'));
    expect(verifySignature(a.publicKey, Buffer.from('y'), sig)).to.equal(false);
    expect(verifySignature(b.publicKey, Buffer.from('x'), sig)).to.equal(false);
    expect(verifySignature(a.publicKey, Buffer.from('x'), sig.subarray(1))).to.equal(false);
    expect(verifySignature(a.publicKey.subarray(1), Buffer.from('x'), sig)).to.equal(false);
  });

  it('refuses a seed that is not 32 bytes with INVALID_ARGUMENT', () => {
    expect(() => identityFromSeed(Buffer.alloc(31))).to.throw(P2PError).with.property('code', 'INVALID_ARGUMENT');
  });

  describe('key files', () => {
    it('saves and loads back the same identity', async () => {
      const id = generateIdentity();
      const path = join(dir, 'node.key');
      await saveIdentity(id, path);
      const loaded = await loadIdentity(path);
      expect(loaded.idHex).to.equal(id.idHex);
      expect(loaded.publicKey.equals(id.publicKey)).to.equal(true);
      const data = Buffer.from('same key');
      expect(loaded.sign(data).equals(id.sign(data))).to.equal(true);
    });

    it('creates the key file with mode 0600', async () => {
      const path = join(dir, 'node.key');
      await saveIdentity(generateIdentity(), path);
      expect(statSync(path).mode & 0o777).to.equal(0o600);
    });

    it('refuses to overwrite an existing file, naming it', async () => {
      const path = join(dir, 'node.key');
      writeFileSync(path, 'precious');
      const err = await saveIdentity(generateIdentity(), path).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(P2PError).with.property('code', 'IDENTITY_FILE');
      expect((err as Error).message).to.contain(path);
      expect(readFileSync(path, 'utf8')).to.equal('precious');
    });

    const corrupt: Array<[string, string, RegExp]> = [
      ['text that is not JSON', 'not json at all', /not JSON/],
      ['a truncated JSON file', '{"type":"aethel-p2p/ed25519","seed":"00', /not JSON/],
      ['a JSON value that is not an object', '42', /not a JSON object/],
      ['a key file of another type', JSON.stringify({ type: 'ssh-rsa', seed: '00'.repeat(32) }), /type is "ssh-rsa"/],
      ['a seed that is not 64 hex characters', JSON.stringify({ type: 'aethel-p2p/ed25519', seed: 'abc' }), /seed/],
      ['a public key that does not match the seed', JSON.stringify({ type: 'aethel-p2p/ed25519', seed: '00'.repeat(32), publicKey: '11'.repeat(32) }), /publicKey/],
    ];
    for (const [what, content, why] of corrupt) {
      it(`refuses ${what} with IDENTITY_FILE, naming the file`, async () => {
        const path = join(dir, 'bad.key');
        writeFileSync(path, content);
        const err = await loadError(path);
        expect(err.code).to.equal('IDENTITY_FILE');
        expect(err.message).to.contain(path);
        expect(err.message).to.match(why);
      });
    }

    it('refuses a PEM private key of another algorithm with IDENTITY_FILE, naming the file', async () => {
      const path = join(dir, 'x25519.pem');
      const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: randomBytes(32).toString('base64url'), x: '' }, format: 'jwk' });
      writeFileSync(path, privateKey.export({ format: 'pem', type: 'pkcs8' }));
      const err = await loadError(path);
      expect(err.code).to.equal('IDENTITY_FILE');
      expect(err.message).to.contain(path);
    });

    it('reports a missing file with IDENTITY_FILE, naming it', async () => {
      const path = join(dir, 'absent.key');
      const err = await loadError(path);
      expect(err.code).to.equal('IDENTITY_FILE');
      expect(err.message).to.contain(path);
    });
  });
});
