import { expect } from 'chai';
import { P2PError } from '../../lib/errors.js';
import { XXHandshake, generateX25519 } from '../../lib/noise/handshake.js';
import { keyLogLine, parseKeyLog } from '../../lib/noise/key-log.js';

const E = Buffer.alloc(32, 0xab);
const K1 = Buffer.alloc(32, 0x01);
const K2 = Buffer.alloc(32, 0x02);

describe('key log', () => {
  it('writes one line with the label and three hex fields', () => {
    expect(keyLogLine(E, K1, K2)).to.equal(`AETHEL_NOISE ${'ab'.repeat(32)} ${'01'.repeat(32)} ${'02'.repeat(32)}`);
    expect(() => keyLogLine(E, K1, Buffer.alloc(31))).to.throw(P2PError, /32 bytes/);
  });

  it('writes and reads back the two node ids when given, and accepts lines without them', () => {
    const I = Buffer.alloc(32, 0xcd);
    const R = Buffer.alloc(32, 0xef);
    const line = keyLogLine(E, K1, K2, { initiator: I, responder: R });
    expect(line).to.equal(`AETHEL_NOISE ${'ab'.repeat(32)} ${'01'.repeat(32)} ${'02'.repeat(32)} ${'cd'.repeat(32)} ${'ef'.repeat(32)}`);
    expect(() => keyLogLine(E, K1, K2, { initiator: I, responder: Buffer.alloc(8) })).to.throw(P2PError, /32 bytes/);
    const map = parseKeyLog(`${line}\n${keyLogLine(K1, K1, K2)}\n`);
    expect(map.get(E.toString('hex'))).to.deep.equal({ i2r: K1, r2i: K2, initiatorId: I.toString('hex'), responderId: R.toString('hex') });
    expect(map.get(K1.toString('hex'))).to.deep.equal({ i2r: K1, r2i: K2 });
  });

  it('reads back what it wrote, skipping blank and # lines and accepting CRLF', () => {
    const text = `# aethel key log\n\n${keyLogLine(E, K1, K2)}\r\n${keyLogLine(K2, E, K1)}\n`;
    const map = parseKeyLog(text);
    expect([...map.keys()]).to.deep.equal([E.toString('hex'), K2.toString('hex')]);
    expect(map.get(E.toString('hex'))).to.deep.equal({ i2r: K1, r2i: K2 });
  });

  it('logs a real session so the reader can decrypt both directions', () => {
    const initiator = new XXHandshake({ initiator: true, prologue: Buffer.alloc(0), staticKey: generateX25519() });
    const responder = new XXHandshake({ initiator: false, prologue: Buffer.alloc(0), staticKey: generateX25519() });
    const m0 = initiator.writeMessage(Buffer.alloc(0));
    responder.readMessage(m0);
    initiator.readMessage(responder.writeMessage(Buffer.alloc(0)));
    responder.readMessage(initiator.writeMessage(Buffer.alloc(0)));
    const i = initiator.split();
    const r = responder.split();
    const line = keyLogLine(responder.initiatorEphemeral!, r.recv.key!, r.send.key!);
    const keys = parseKeyLog(line).get(m0.subarray(0, 32).toString('hex'));
    expect(keys).to.deep.equal({ i2r: i.send.key, r2i: i.recv.key });
  });

  it('names the line number of a malformed line', () => {
    const good = keyLogLine(E, K1, K2);
    const cases = [
      'AETHEL_NOISE abc',
      `CLIENT_RANDOM ${'ab'.repeat(32)} ${'01'.repeat(32)} ${'02'.repeat(32)}`,
      `AETHEL_NOISE ${'zz'.repeat(32)} ${'01'.repeat(32)} ${'02'.repeat(32)}`,
      `${good} extra`,
      `${good} ${'cd'.repeat(32)}`,
      `${good} ${'cd'.repeat(32)} ${'ef'.repeat(32)} ${'01'.repeat(32)}`,
    ];
    for (const bad of cases) {
      try {
        parseKeyLog(`# header\n${good}\n\n${bad}\n`);
        expect.fail(`accepted ${bad}`);
      } catch (err) {
        expect(err).to.be.instanceOf(P2PError);
        expect((err as P2PError).code).to.equal('INVALID_ARGUMENT');
        expect((err as P2PError).message).to.contain('line 4');
      }
    }
  });
});
