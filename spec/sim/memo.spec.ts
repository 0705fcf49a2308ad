import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { nodeIdOf, setNodeIdMemo } from '../../lib/identity.js';

describe('sim/node id memo (lib/identity.ts setNodeIdMemo)', () => {
  afterEach(() => setNodeIdMemo(0));

  it('gives the SHA-256 of the key with the memo on, as without it, and a fresh copy each time', () => {
    const key = randomBytes(32);
    const plain = nodeIdOf(key);
    setNodeIdMemo(4);
    const first = nodeIdOf(key);
    const second = nodeIdOf(key);
    expect(first.equals(createHash('sha256').update(key).digest())).to.equal(true);
    expect(first.equals(plain) && second.equals(plain)).to.equal(true);
    first.fill(0); // a caller changing its copy does not change what the next caller gets
    expect(nodeIdOf(key).equals(plain)).to.equal(true);
  });

  it('stays correct once full (it starts over) and is off again after setNodeIdMemo(0)', () => {
    setNodeIdMemo(2);
    const keys = [randomBytes(32), randomBytes(32), randomBytes(32), randomBytes(32)];
    for (const k of [...keys, ...keys]) expect(nodeIdOf(k).equals(createHash('sha256').update(k).digest())).to.equal(true);
    setNodeIdMemo(0);
    expect(nodeIdOf(keys[0]!).equals(createHash('sha256').update(keys[0]!).digest())).to.equal(true);
    expect(() => setNodeIdMemo(-1)).to.throw();
  });
});
