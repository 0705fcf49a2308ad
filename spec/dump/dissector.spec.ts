import { expect } from 'chai';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LinkType } from '../../lib/dump/pcap.js';
import type { Packet } from '../../lib/dump/pcap.js';
import { encodeInitPayload, encodeMessage, packValue } from '../../lib/wire/codec.js';
import { encodeFrame } from '../../lib/wire/frame.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Message } from '../../lib/wire/messages.js';
import { ipv4Tcp, wrap, writePcap } from './packets.js';

const run = promisify(execFile);

function haveTshark(): boolean {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** A plaintext session (encryption: false on both), as packets: message 1 says so; frames stay in clear. */
function plaintextSession(): Packet[] {
  const a = { src: [10, 0, 0, 1] as [number, number, number, number], dst: [10, 0, 0, 2] as [number, number, number, number], sport: 40000, dport: 7001 };
  const b = { src: a.dst, dst: a.src, sport: a.dport, dport: a.sport };
  const frame = (m: Message) => encodeFrame(encodeMessage(m));
  const hs = (noise: Buffer) => frame({ type: MessageType.HANDSHAKE, noise });
  const msg1 = hs(Buffer.concat([Buffer.alloc(32, 0x5e), encodeInitPayload({ minVersion: 2, maxVersion: 2, networkId: 'lab', encrypted: false })]));
  const gossip: Message = {
    type: MessageType.GOSSIP, id: Buffer.alloc(32, 0xab), ttl: 9, hops: 1, seenBy: [Buffer.alloc(8, 1)], origin: Buffer.alloc(32, 2), seq: 7,
    topic: 'chat', payload: packValue('hello in clear'), signature: null,
  };
  const seg: Array<[typeof a, Buffer]> = [[a, msg1], [b, hs(Buffer.alloc(96, 4))], [a, Buffer.concat([hs(Buffer.alloc(64, 3)), frame({ type: MessageType.PING, seq: 1 })])], [b, frame(gossip)]];
  const seq = new Map<string, number>([[`${a.sport}`, 100], [`${b.sport}`, 500]]);
  const out: Packet[] = [
    { t: 1_000_000, linkType: LinkType.ETHERNET, data: wrap(LinkType.ETHERNET, ipv4Tcp({ ...a, seq: 99, syn: true })) },
    { t: 1_000_001, linkType: LinkType.ETHERNET, data: wrap(LinkType.ETHERNET, ipv4Tcp({ ...b, seq: 499, syn: true })) },
  ];
  seg.forEach(([dir, payload], i) => {
    const s = seq.get(`${dir.sport}`)!;
    out.push({ t: 1_000_010 + i * 10, linkType: LinkType.ETHERNET, data: wrap(LinkType.ETHERNET, ipv4Tcp({ ...dir, seq: s, payload })) });
    seq.set(`${dir.sport}`, s + payload.length);
  });
  return out;
}

/** The Lua dissector under tshark, when tshark is installed (skipped otherwise: it is optional). */
describe('the Wireshark dissector (docs/wireshark/aethel.lua)', function () {
  this.timeout(60_000);
  let dir: string;
  before(async function () {
    if (!haveTshark()) this.skip();
    dir = await mkdtemp(join(tmpdir(), 'aethel-dissector-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const tshark = async (file: string): Promise<string[]> => {
    const { stdout, stderr } = await run('tshark', ['-X', 'lua_script:docs/wireshark/aethel.lua', '-r', file, '-Y', 'aethel'], { timeout: 30_000 });
    expect(stdout + stderr).to.not.match(/Lua Error|out of bounds/);
    return stdout.split('\n').filter((l) => l.includes('AETHEL'));
  };

  it('shows the clear handshake of an encrypted session, then its records as opaque, without node ids', async () => {
    const lines = await tshark('spec/fixtures/two-nodes.pcap');
    expect(lines[0]).to.match(/ HANDSHAKE -> e versions=2\.\.2 network=aethel$/);
    expect(lines[1]).to.match(/ HANDSHAKE \(encrypted handshake message, 224 bytes\)$/);
    expect(lines[2]).to.match(/ HANDSHAKE \(encrypted handshake message, 192 bytes\)$/);
    expect(lines.length).to.be.greaterThan(10);
    for (const l of lines.slice(3)) expect(l).to.match(/ encrypted record \(\d+ bytes\)(; encrypted record \(\d+ bytes\))*$/);
    expect(lines.join('\n')).to.not.match(/GOSSIP|PING|MALFORMED/);
  });

  it('decodes the frames of a plaintext session after its handshake', async () => {
    const file = join(dir, 'plaintext.pcap');
    await writeFile(file, writePcap(plaintextSession(), { littleEndian: true, nanos: false }));
    const lines = await tshark(file);
    expect(lines[0]).to.match(/ HANDSHAKE -> e versions=2\.\.2 network=lab PLAINTEXT$/);
    expect(lines[2]).to.match(/ HANDSHAKE \(encrypted handshake message, 64 bytes\); PING seq=1$/);
    expect(lines[3]).to.match(/ GOSSIP id=abababab topic=chat ttl=9 hops=1$/);
    expect(lines.join('\n')).to.not.match(/record|MALFORMED/);
  });

  it('reads the decrypted capture that dump --write-pcap writes: every message, as in a plaintext session', async () => {
    const file = join(dir, 'decrypted.pcap');
    await run(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'dump', '--pcap', 'spec/fixtures/two-nodes.pcap', '--keylog', 'spec/fixtures/two-nodes.keylog', '--write-pcap', file], { timeout: 30_000 });
    const lines = await tshark(file);
    expect(lines[0]).to.match(/ HANDSHAKE -> e versions=2\.\.2 network=aethel PLAINTEXT$/);
    expect(lines.filter((l) => / GOSSIP id=[0-9a-f]{8} topic=chat ttl=10 hops=1$/.test(l))).to.have.length(2);
    expect(lines.some((l) => / GOODBYE NORMAL \(shutting down\)$/.test(l))).to.equal(true);
    expect(lines.join('\n')).to.not.match(/record|MALFORMED/);
  });

  it('marks the frames and records of a capture cut to 80 bytes a packet as truncated', async () => {
    const lines = await tshark('spec/fixtures/two-nodes-snap80.pcap');
    expect(lines.filter((l) => /HANDSHAKE \[TRUNCATED: 10 of \d+ body bytes captured\]/.test(l))).to.have.length(3);
    expect(lines.filter((l) => /encrypted record \(205 bytes\) \[TRUNCATED: 12 of 205 record bytes captured\]/.test(l))).to.have.length(2);
    expect(lines.some((l) => /encrypted record \(23 bytes\) \[TRUNCATED: 12 of 23 record bytes captured\]$/.test(l))).to.equal(true);
  });
});
