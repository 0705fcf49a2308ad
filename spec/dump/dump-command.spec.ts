import { expect } from 'chai';
import sinon from 'sinon';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDump } from '../../lib/cli/dump.js';
import { UsageError } from '../../lib/cli/args.js';
import { followMessage } from '../../lib/dump/follow.js';
import { mergeByTime, readDump } from '../../lib/dump/reader.js';

const A = 'spec/fixtures/two-nodes-a.ndjson';
const B = 'spec/fixtures/two-nodes-b.ndjson';
const PCAP = 'spec/fixtures/two-nodes.pcap';
/** "hello from a", published by node a in the fixture session. */
const MSG_A = '370341759bb9d09342a85914b2c04ea539636c45aef57d076623501a24fe8fc0';
const NODE_A = '84d06e3ea6db80c93abc77411d2324b8dc85851118c0ffbf65f8c5266e4dc2fe';
const NODE_B = '18000adf6999a9c61bbaf407445670fc0500b6ee2d7c4a4f1f43af26d7910a00';
const KEYLOG = 'spec/fixtures/two-nodes.keylog';

/** Run the dump command, returning what it printed. */
async function dump(...argv: string[]): Promise<string[]> {
  const lines: string[] = [];
  const stub = sinon.stub(process.stdout, 'write').callsFake((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter((l) => l.length > 0));
    return true;
  });
  try {
    expect(await runDump(argv)).to.equal(0);
  } finally {
    stub.restore();
  }
  return lines;
}

describe('aethel-p2p dump', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aethel-dumpcmd-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('merges two nodes\' dumps by time and prints frames as readable messages', async () => {
    const lines = await dump(A, B);
    const times = lines.map((l) => l.slice(0, 15));
    expect([...times].sort()).to.deep.equal(times);
    expect(lines.some((l) => /84d06e3e → 18000adf +185 B {2}GOSSIP id=37034175 topic="chat" origin=84d06e3e ttl=10 hops=1 seenBy=2 payload="hello from a"/.test(l))).to.equal(true);
    expect(lines.some((l) => /18000adf · delivered msg=37034175 peer=84d06e3e hops=1/.test(l))).to.equal(true);
  });

  it('keeps one message type with --type, with the decisions about the messages it carries', async () => {
    const lines = await dump(A, B, '--type', 'gossip');
    const frames = lines.filter((l) => / [→←] /.test(l));
    expect(frames).to.have.length(4); // each of the two messages: out at its origin, in at the other node
    expect(frames.every((l) => / GOSSIP id=/.test(l))).to.equal(true);
    const decisions = lines.filter((l) => / · /.test(l));
    expect(decisions.map((l) => l.split(' · ')[1]!.split(' ')[0])).to.have.members(['forwarded', 'delivered', 'forwarded', 'forwarded', 'delivered', 'forwarded']);
    expect(await dump(A, B, '--type', 'gossip', '--exclude-type', 'decisions')).to.deep.equal(frames);
  });

  it('takes several types as a comma list or a repeated flag, and hides types with --exclude-type', async () => {
    const comma = await dump(A, B, '--type', 'PING,PONG');
    expect(comma.length).to.be.greaterThan(0);
    expect(comma.every((l) => / (PING|PONG) seq=/.test(l))).to.equal(true);
    expect(await dump(A, B, '--type', 'PING', '--type', 'PONG')).to.deep.equal(comma);
    const all = await dump(A, B);
    const rest = await dump(A, B, '--exclude-type', 'ping,pong');
    expect(rest).to.have.length(all.length - comma.length);
    expect(rest.some((l) => / (PING|PONG) seq=/.test(l))).to.equal(false);
    expect(rest.some((l) => / · delivered /.test(l))).to.equal(true);
  });

  it('keeps a time range with --since and --until (ISO, time of day, or from the first line)', async () => {
    const all = await dump(A, B);
    const t = (l: string) => l.slice(0, 15);
    const mid = t(all[Math.floor(all.length / 2)]!);
    const late = await dump(A, B, '--since', mid);
    expect(late.length).to.be.greaterThan(0).and.lessThan(all.length);
    expect(late.every((l) => t(l) >= mid)).to.equal(true);
    const early = await dump(A, B, '--until', mid);
    expect(early.length + late.length).to.equal(all.length);
    const day = (await dump(A, B, '--json')).map((l) => JSON.parse(l) as { t: number })[0]!.t;
    const iso = new Date(Math.floor(day / 1000)).toISOString().slice(0, 10) + 'T' + mid + 'Z';
    expect(await dump(A, B, '--since', iso)).to.deep.equal(late);
    expect(await dump(A, B, '--until', '+0ms')).to.deep.equal([]);
    expect(await dump(A, B, '--since', '+0s')).to.deep.equal(all);
  });

  it('keeps only what involves one node with --peer', async () => {
    const all = await dump(B);
    const lines = await dump(A, B, '--peer', NODE_B.slice(0, 6));
    expect(lines.length).to.be.greaterThan(all.length); // b's own lines plus a's frames with b
    // a's frames on its connection with b before the handshake named b (the three HANDSHAKE
    // messages, a the responder) are b's too.
    const unnamed = lines.filter((l) => !l.includes(NODE_B.slice(0, 8)));
    expect(unnamed).to.have.length(3);
    for (const l of unnamed) expect(l).to.match(new RegExp(`^[\\d:.]+ ${NODE_A.slice(0, 8)} [←→] 127\\.0\\.0\\.1:\\d+ +\\d+ B {2}HANDSHAKE `));
  });

  it('follows one message id across nodes and gives a verdict per node', async () => {
    const lines = (await dump(A, B, '--msg', MSG_A.slice(0, 8))).filter((l) => !l.startsWith('clocks aligned'));
    expect(lines[0]).to.equal(`message ${MSG_A}: 7 step(s)`);
    const steps = lines.slice(1, 6).map((l) => l.replace(/^ +\+ *[\d.]+ ms {2}/, ''));
    expect(steps).to.deep.equal([
      `${NODE_A.slice(0, 8)}  published to ${NODE_B.slice(0, 8)} ttl 10`,
      `${NODE_A.slice(0, 8)}  → ${NODE_B.slice(0, 8)} GOSSIP id=37034175 topic="chat" origin=${NODE_A.slice(0, 8)} ttl=10 hops=1 seenBy=2`,
      `${NODE_B.slice(0, 8)}  ← ${NODE_A.slice(0, 8)} GOSSIP id=37034175 topic="chat" origin=${NODE_A.slice(0, 8)} ttl=10 hops=1 seenBy=2`,
      `${NODE_B.slice(0, 8)}  delivered (from ${NODE_A.slice(0, 8)}, hops 1)`,
      `${NODE_B.slice(0, 8)}  forwarded (from ${NODE_A.slice(0, 8)}) to nobody (no eligible peer) ttl 9`,
    ]);
    expect(lines).to.include(`  ${NODE_A.slice(0, 8)}  origin: published it`);
    expect(lines.find((l) => l.startsWith(`  ${NODE_B.slice(0, 8)}  delivered: `))).to.match(new RegExp(`delivered: \\+\\d+\\.\\d ms by push from ${NODE_A.slice(0, 8)}, hops 1$`));
  });

  it('decodes a capture like a dump file with --pcap, --keylog and --port', async () => {
    const lines = await dump('--pcap', PCAP, '--keylog', KEYLOG, '--type', 'GOSSIP', '--json');
    const recs = lines.map((l) => JSON.parse(l) as { node: string; fields: { payload: string; id: string } });
    expect(recs.map((r) => [r.node, r.fields.payload])).to.deep.equal([[NODE_A, '"hello from a"'], [NODE_B, '"hello from b"']]);
    expect(await dump('--pcap', PCAP, '--keylog', KEYLOG, '--port', '1')).to.deep.equal([]);
  });

  it('shows an encrypted capture without its key log as the handshake, then one line per record', async () => {
    expect(await dump('--pcap', PCAP, '--type', 'GOSSIP')).to.deep.equal([]);
    const lines = await dump('--pcap', PCAP);
    expect(lines.slice(0, 3).every((l) => / HANDSHAKE /.test(l))).to.equal(true);
    expect(lines.slice(3).every((l) => /\d+ B {2}encrypted record, \d+ bytes {2}\[127\.0\.0\.1:\d+ > 127\.0\.0\.1:\d+\]$/.test(l))).to.equal(true);
    expect(lines.join('\n')).to.not.match(/MALFORMED|hello from/);
  });

  it('writes a decrypted capture with --write-pcap that reads like a plaintext session, the same frames in order', async () => {
    const out = join(dir, 'decrypted.pcap');
    const said = await dump('--pcap', PCAP, '--keylog', KEYLOG, '--write-pcap', out);
    expect(said).to.deep.equal([`wrote ${out}: 22 packet(s); connections: 1 decrypted, 0 still encrypted (no key), 0 in clear`]);
    const strip = (l: string) => l.replace(/^[\d:.]+ +\S+ [→←] \S+ +/, '').replace(/ {2}\[.*\]$/, '');
    const original = (await dump('--pcap', PCAP, '--keylog', KEYLOG)).map(strip);
    const reread = (await dump('--pcap', out)).map(strip);
    // The one difference: message 1 of the written session says PLAINTEXT, so readers take frames after the handshake.
    expect(reread[0]).to.equal(`${original[0]} PLAINTEXT`);
    expect(reread.slice(1)).to.deep.equal(original.slice(1));
    expect(reread.join('\n')).to.include('payload="hello from a"');
    expect(await runDump(['--write-pcap', out, A]).catch((e: unknown) => e)).to.be.instanceOf(UsageError);
  });

  it('refuses a missing, malformed or empty key log with a message naming the file and line', async () => {
    const bad = join(dir, 'bad.keylog');
    await writeFile(bad, `# two sessions\nAETHEL_NOISE ${'ab'.repeat(32)} ${'01'.repeat(32)} ${'02'.repeat(32)}\nAETHEL_NOISE 12\n`);
    const empty = join(dir, 'empty.keylog');
    await writeFile(empty, '\n');
    const cases: Array<[string, RegExp]> = [
      [join(dir, 'nope.keylog'), /^cannot read .*nope\.keylog: no such file$/],
      [bad, /bad\.keylog: key log line 3: expected "AETHEL_NOISE"/],
      [empty, /empty\.keylog: not a key log/],
    ];
    for (const [file, re] of cases) {
      const err = await runDump(['--pcap', PCAP, '--keylog', file]).catch((e: unknown) => e);
      expect(err, file).to.be.instanceOf(Error);
      expect((err as Error).message).to.match(re);
    }
    expect(await runDump(['--keylog', KEYLOG, A]).catch((e: unknown) => e)).to.be.instanceOf(UsageError);
  });

  it('shows malformed lines and frames as malformed and reads on', async () => {
    const path = join(dir, 'bad.ndjson');
    await writeFile(path, [
      JSON.stringify({ t: 1_000_000, kind: 'dump', v: 1, node: NODE_A }),
      'this is not json',
      JSON.stringify({ t: 1_000_001, kind: 'frame', conn: 1, dir: 'in', local: 'l:1', remote: 'r:2', peer: NODE_B, len: 2, body: Buffer.from([0x92, 0x03]).toString('base64') }),
      JSON.stringify({ t: 1_000_002, kind: 'trace', event: 'rejected', msg: MSG_A, peer: NODE_B, reason: 'bad_signature' }),
      JSON.stringify({ t: 1_000_003, kind: 'loss', frames: 3, traces: 1, bytes: 900 }),
    ].join('\n') + '\n');
    const lines = await dump(path);
    expect(lines).to.have.length(4);
    expect(lines[0]).to.match(/! MALFORMED .*bad\.ndjson:2: not JSON/);
    expect(lines[1]).to.match(/← 18000adf +2 B {2}MALFORMED \(invalid MessagePack/);
    expect(lines[2]).to.match(/rejected msg=37034175 peer=18000adf reason="bad_signature"/);
    expect(lines[3]).to.match(/the dump lost 3 frame line\(s\) and 1 trace line\(s\)/);
    const trail = followMessage(mergeByTime([await readDump(path)]), MSG_A.slice(0, 6));
    expect(trail.nodes).to.deep.equal([{ node: NODE_A, verdict: 'rejected', detail: `bad_signature (copy from ${NODE_B.slice(0, 8)})` }]);
  });

  it('explains a miss: a node that never got the message, and the link it lost meanwhile', async () => {
    const path = join(dir, 'c.ndjson');
    const NODE_C = 'cc'.repeat(32);
    // C's dump starts before the message was published and loses B just after.
    const published = (await readDump(A)).find((e) => e.kind === 'trace' && e.rec.msg === MSG_A)!.t;
    await writeFile(path, [
      JSON.stringify({ t: published - 1_000_000, kind: 'dump', v: 1, node: NODE_C }),
      JSON.stringify({ t: published + 40_000, kind: 'trace', event: 'disconnect', peer: NODE_B, reason: 'peer ended the connection' }),
    ].join('\n') + '\n');
    const trail = followMessage(mergeByTime([await readDump(A), await readDump(B), await readDump(path)]), MSG_A);
    expect(trail.nodes.find((n) => n.node === NODE_C)).to.deep.equal({
      node: NODE_C,
      verdict: 'never received',
      detail: `no copy and no IHAVE reached it in these dumps; meanwhile: disconnect ${NODE_B.slice(0, 8)} (peer ended the connection)`,
    });
  });

  it('rejects a command line without input, an unknown type and a non-hex message id', async () => {
    for (const argv of [[], [A, '--type', 'NOPE'], [A, '--msg', 'xyz'], [A, '--port', '7']]) {
      const err = await runDump(argv).catch((e: unknown) => e);
      expect(err, argv.join(' ')).to.be.instanceOf(UsageError);
    }
  });
});
