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
const MSG_A = '293001a04c1c305152404f1d4c6880d007d1eb63e250a19aa3ccdc39707cbb56';
const NODE_A = 'e99f38ed92ddf9522260d8f5aa169c60f5b4427f203f379875d0ead01659a109';
const NODE_B = '6b12e623a653af32827acdb29eb842889a554056ef9a608995798578dd9b9b60';

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
    expect(lines.some((l) => /e99f38ed → 6b12e623 +188 B {2}GOSSIP id=293001a0 topic="chat" origin=e99f38ed ttl=10 hops=1 seenBy=2 payload="hello from a"/.test(l))).to.equal(true);
    expect(lines.some((l) => /6b12e623 · delivered msg=293001a0 peer=e99f38ed hops=1/.test(l))).to.equal(true);
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
    // a's frames on its connection with b before the handshake named b (a's HELLO) are b's too.
    const unnamed = lines.filter((l) => !l.includes(NODE_B.slice(0, 8)));
    expect(unnamed).to.have.length(1);
    expect(unnamed[0]).to.match(new RegExp(`^[\\d:.]+ ${NODE_A.slice(0, 8)} → 127\\.0\\.0\\.1:\\d+ +\\d+ B {2}HELLO v1`));
  });

  it('follows one message id across nodes and gives a verdict per node', async () => {
    const lines = (await dump(A, B, '--msg', MSG_A.slice(0, 8))).filter((l) => !l.startsWith('clocks aligned'));
    expect(lines[0]).to.equal(`message ${MSG_A}: 7 step(s)`);
    const steps = lines.slice(1, 6).map((l) => l.replace(/^ +\+ *[\d.]+ ms {2}/, ''));
    expect(steps).to.deep.equal([
      `${NODE_A.slice(0, 8)}  published to ${NODE_B.slice(0, 8)} ttl 10`,
      `${NODE_A.slice(0, 8)}  → ${NODE_B.slice(0, 8)} GOSSIP id=293001a0 topic="chat" origin=${NODE_A.slice(0, 8)} ttl=10 hops=1 seenBy=2`,
      `${NODE_B.slice(0, 8)}  ← ${NODE_A.slice(0, 8)} GOSSIP id=293001a0 topic="chat" origin=${NODE_A.slice(0, 8)} ttl=10 hops=1 seenBy=2`,
      `${NODE_B.slice(0, 8)}  delivered (from ${NODE_A.slice(0, 8)}, hops 1)`,
      `${NODE_B.slice(0, 8)}  forwarded (from ${NODE_A.slice(0, 8)}) to nobody (no eligible peer) ttl 9`,
    ]);
    expect(lines).to.include(`  ${NODE_A.slice(0, 8)}  origin: published it`);
    expect(lines.find((l) => l.startsWith(`  ${NODE_B.slice(0, 8)}  delivered: `))).to.match(new RegExp(`delivered: \\+\\d+\\.\\d ms by push from ${NODE_A.slice(0, 8)}, hops 1$`));
  });

  it('decodes a capture like a dump file with --pcap and --port', async () => {
    const lines = await dump('--pcap', PCAP, '--type', 'GOSSIP', '--json');
    const recs = lines.map((l) => JSON.parse(l) as { node: string; fields: { payload: string; id: string } });
    expect(recs.map((r) => [r.node, r.fields.payload])).to.deep.equal([[NODE_A, '"hello from a"'], [NODE_B, '"hello from b"']]);
    expect(await dump('--pcap', PCAP, '--port', '1')).to.deep.equal([]);
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
    expect(lines[1]).to.match(/← 6b12e623 +2 B {2}MALFORMED \(invalid MessagePack/);
    expect(lines[2]).to.match(/rejected msg=293001a0 peer=6b12e623 reason="bad_signature"/);
    expect(lines[3]).to.match(/the dump lost 3 frame line\(s\) and 1 trace line\(s\)/);
    const trail = followMessage(mergeByTime([await readDump(path)]), MSG_A.slice(0, 6));
    expect(trail.nodes).to.deep.equal([{ node: NODE_A, verdict: 'rejected', detail: `bad_signature (copy from ${NODE_B.slice(0, 8)})` }]);
  });

  it('explains a miss: a node that never got the message, and the link it lost meanwhile', async () => {
    const path = join(dir, 'c.ndjson');
    const NODE_C = 'cc'.repeat(32);
    await writeFile(path, [
      JSON.stringify({ t: 1_795_623_109_000_000, kind: 'dump', v: 1, node: NODE_C }),
      JSON.stringify({ t: 1_795_623_109_279_500, kind: 'trace', event: 'disconnect', peer: NODE_B, reason: 'peer ended the connection' }),
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
