import { expect } from 'chai';
import sinon from 'sinon';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDump } from '../../lib/cli/dump.js';
import { alignClocks } from '../../lib/dump/clock-align.js';
import { countByNode } from '../../lib/dump/counts.js';
import { messageDelays, summarizeDelays } from '../../lib/dump/delays.js';
import { linkViews } from '../../lib/dump/links.js';
import { mapConnections } from '../../lib/dump/pairs.js';
import { mergeByTime, readDump } from '../../lib/dump/reader.js';
import { encodeMessage } from '../../lib/wire/codec.js';
import { MessageType } from '../../lib/wire/messages.js';

const A = 'spec/fixtures/two-nodes-a.ndjson';
const B = 'spec/fixtures/two-nodes-b.ndjson';
const MSG_A = '370341759bb9d09342a85914b2c04ea539636c45aef57d076623501a24fe8fc0';
const NODE_A = '84d06e3ea6db80c93abc77411d2324b8dc85851118c0ffbf65f8c5266e4dc2fe';
const NODE_B = '18000adf6999a9c61bbaf407445670fc0500b6ee2d7c4a4f1f43af26d7910a00';
const NODE_C = 'cc'.repeat(32);
const S = 'spec/fixtures/session';
const SESSION = [`${S}/a.ndjson`, `${S}/b.ndjson`, `${S}/c.ndjson`];

/** Run the dump command: exit code, stdout lines, stderr text. */
async function run(...argv: string[]): Promise<{ code: number; lines: string[]; stderr: string }> {
  const lines: string[] = [];
  let stderr = '';
  const out = sinon.stub(process.stdout, 'write').callsFake((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter((l) => l.length > 0));
    return true;
  });
  const err = sinon.stub(process.stderr, 'write').callsFake((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await runDump(argv), lines, stderr };
  } finally {
    out.restore();
    err.restore();
  }
}

/** A dump file of `node` holding these records (t in µs). */
async function dumpFile(path: string, node: string, recs: Array<Record<string, unknown>>): Promise<string> {
  await writeFile(path, [{ t: recs[0]?.t ?? 1, kind: 'dump', v: 1, node }, ...recs].map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

describe('dump views', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aethel-views-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('--msg that cannot mislead', () => {
    it('says so, with exit code 1, when no message id starts with the prefix', async () => {
      const r = await run(A, B, '--msg', '99999');
      expect(r.code).to.equal(1);
      expect(r.lines).to.deep.equal([]);
      expect(r.stderr).to.equal('aethel-p2p: no message id starts with 99999 in these inputs (dump --delays lists every message)\n');
    });

    it('recognises a node id given as a message id and points to --peer', async () => {
      const r = await run(A, B, '--msg', NODE_B.slice(0, 8));
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(`aethel-p2p: ${NODE_B.slice(0, 8)} is a node id (${NODE_B.slice(0, 16)}), not a message id: --peer ${NODE_B.slice(0, 8)} shows its traffic\n`);
    });

    it('lists every message a prefix matches instead of following the first', async () => {
      const ids = ['abcd' + '1'.repeat(60), 'abcd' + '2'.repeat(60)];
      const path = await dumpFile(join(dir, 'two-ids.ndjson'), NODE_C, ids.map((msg, i) => ({ t: 1_000_000 + i, kind: 'trace', event: 'duplicate', msg, peer: NODE_A })));
      const r = await run(path, '--msg', 'abcd');
      expect(r.code).to.equal(1);
      expect(r.lines[0]).to.equal('abcd matches 2 messages; give more of the id:');
      expect(r.lines.slice(1).map((l) => l.trim().split(' ')[0])).to.deep.equal(ids);
      expect((await run(path, '--msg', 'abcd1')).code).to.equal(0);
    });
  });

  describe('delays and routes', () => {
    it('tabulates delay from publication, push or repair, sender and hops per message and node, and lists the late ones', async () => {
      const [da] = await Promise.all([readDump(A)]);
      const published = da.find((e) => e.kind === 'trace' && e.rec.event === 'forwarded' && e.rec.msg === MSG_A && !e.rec.peer)!.t;
      const c = await dumpFile(join(dir, 'late-c.ndjson'), NODE_C, [
        { t: published + 250_000, kind: 'trace', event: 'delivered', msg: MSG_A, peer: NODE_B, hops: 2, via: 'repair' },
      ]);
      const list = messageDelays(mergeByTime([da, await readDump(B), await readDump(c)]));
      const m = list.find((x) => x.id === MSG_A)!;
      expect(m.origin).to.equal(NODE_A);
      expect(m.publishEstimated).to.equal(false);
      const row = Object.fromEntries(m.nodes.map((n) => [n.node, n]));
      expect(row[NODE_A]).to.include({ via: 'origin', delayMs: 0 });
      expect(row[NODE_B]).to.include({ via: 'push', from: NODE_A, hops: 1 });
      expect(row[NODE_B]!.delayMs).to.be.within(0, 50);
      expect(row[NODE_C]).to.include({ via: 'repair', from: NODE_B, hops: 2, delayMs: 250 });
      const summary = summarizeDelays(list, 100);
      expect(summary.late.map((l) => [l.id, l.node])).to.deep.equal([[MSG_A, NODE_C]]);
      const atC = summary.perNode.find((s) => s.node === NODE_C)!;
      expect(atC).to.include({ delivered: 1, repaired: 1, missing: 1, p50Ms: 250, maxMs: 250 });

      const text = await run(A, B, c, '--delays', '--late-ms', '100');
      expect(text.code).to.equal(0);
      expect(text.lines).to.include(`  ${NODE_C.slice(0, 8)}    250.000 ms  repair  from ${NODE_B.slice(0, 8)}  hops 2  LATE`);
      expect(text.lines).to.include('late (more than 100 ms after publication): 1');
      expect(text.lines).to.include(`  ${MSG_A.slice(0, 8)} at ${NODE_C.slice(0, 8)}: 250.0 ms by repair from ${NODE_B.slice(0, 8)}, hops 2`);
      const json = JSON.parse((await run(A, B, c, '--delays', '--json')).lines[0]!) as { summary: { late: unknown[]; lateMs: number } };
      expect(json.summary.lateMs).to.equal(100);
      expect(json.summary.late).to.have.length(1);
    });

    it('counts a copy that came after the node asked for it by IWANT as a repair in dumps without the via field', async () => {
      const da = await readDump(A);
      const published = da.find((e) => e.kind === 'trace' && e.rec.event === 'forwarded' && e.rec.msg === MSG_A && !e.rec.peer)!.t;
      const iwant = encodeMessage({ type: MessageType.IWANT, ids: [Buffer.from(MSG_A, 'hex')] }).toString('base64');
      const c = await dumpFile(join(dir, 'old-c.ndjson'), NODE_C, [
        { t: published + 100_000, kind: 'frame', conn: 1, dir: 'out', local: 'x:1', remote: 'y:2', peer: NODE_B, len: 37, body: iwant },
        { t: published + 200_000, kind: 'trace', event: 'delivered', msg: MSG_A, peer: NODE_B, hops: 2 },
      ]);
      const m = messageDelays(mergeByTime([da, await readDump(c)])).find((x) => x.id === MSG_A)!;
      expect(m.nodes.find((n) => n.node === NODE_C)).to.include({ via: 'repair', delayMs: 200 });
    });

    it('marks in the hop-by-hop view a copy that was sent and never received', async () => {
      const r = await run(...SESSION, '--msg', 'fd6401f5');
      const lost = r.lines.filter((l) => l.includes('✗ never received by af64aef6'));
      expect(lost).to.have.length(1);
      expect(lost[0]).to.match(/0eb989e8 {2}→ af64aef6 GOSSIP id=fd6401f5 .* {2}✗ never received by af64aef6$/);
      expect(r.lines.find((l) => l.startsWith('  af64aef6  never received:'))).to.include('sent to it and never received: from 0eb989e8 at 12:54:37.926');
      // A copy that arrived is not marked.
      const m1 = await run(...SESSION, '--msg', '7ffb3abc');
      expect(m1.lines.some((l) => l.includes('✗'))).to.equal(false);
    });
  });

  describe('verdicts from a capture', () => {
    it('lists every copy, follows a copy through a relay, and says when the relay swallowed it', async () => {
      const cap = `${S}/session.pcap`;
      const verdict = async (m: string) => (await run('--pcap', cap, '--keylog', `${S}/session.keylog`, '--msg', m)).lines.find((l) => l.startsWith('  af64aef6  '))!;
      expect(await verdict('7ffb3abc')).to.equal('  af64aef6  sent to it (capture): 1 copy on the wire towards it: 12:54:37.790389 127.0.0.1:44403 > 127.0.0.1:41568 → relay → 127.0.0.1:44555 > 127.0.0.1:49746 (arrived 12:54:37.815855) (a capture records no decisions)');
      expect(await verdict('fd6401f5')).to.equal('  af64aef6  lost in a relay (capture): 1 copy on the wire towards it: 12:54:37.927049 127.0.0.1:44403 > 127.0.0.1:41568: went into a relay (which passes this connection on as 127.0.0.1:44555 > 127.0.0.1:49746) and never came out');
    });
  });

  describe('--links', () => {
    it('shows every connection from both ends, pairs ends through a relay by node ids, and says where frames stopped arriving', async () => {
      const map = mapConnections(mergeByTime(await Promise.all(SESSION.map((f) => readDump(f)))));
      const views = linkViews(map, 1000);
      // B to C through the cut cable: addresses do not mirror, node ids do.
      const cut = views.filter((v) => v.a.node.startsWith('af64aef6') && v.b?.node.startsWith('0eb989e8'))[0]!;
      expect(cut.pairedBy).to.equal('node ids');
      expect(cut.note).to.match(/a relay or NAT between them/);
      const bToC = cut.directions.find((d) => d.from.startsWith('0eb989e8'))!;
      expect(bToC).to.include({ sent: 11, received: 3, lost: 8, sentAfterLastReceived: 8 });
      expect(cut.silences.map((s) => [s.node.slice(0, 8), Math.round(s.ms)])).to.have.deep.members([['af64aef6', 1709], ['0eb989e8', 1631]]);
      // A to B directly: paired by address; at the end both sent GOODBYE at once, nothing lost.
      expect(views[0]!.pairedBy).to.equal('address');
      expect(views[0]!.directions.map((d) => [d.lost, d.lostOnlyAtClose])).to.deep.equal([[1, true], [1, true]]);
      expect(bToC.lostOnlyAtClose).to.equal(undefined);
      // The redials the cable swallowed: ends that never finished the handshake.
      expect(views.filter((v) => !v.b && /handshake never finished/.test(v.note ?? ''))).to.have.length(8);

      const text = await run(...SESSION, '--links', '--gap-ms', '1000', '--raw-times');
      expect(text.lines).to.include('  0eb989e8 → af64aef6: sent 11 (12:54:37.765877 .. 12:54:39.402382), received 3 (12:54:37.766239 .. 12:54:37.816201); 8 never received, 8 of them sent after the last one that arrived (first at 12:54:37.901519)');
      expect(text.lines.some((l) => /silent: af64aef6 heard nothing from 0eb989e8 12:54:37\.816\d+ \.\. 12:54:39\.524\d+ \(1709 ms/.test(l))).to.equal(true);
    });
  });

  describe('clock alignment', () => {
    it('estimates per-dump offsets from matched frames so that no receive is shown before its send, and reports them', async () => {
      // C's clock 50 ms behind: many of its receipts would precede their sends.
      const skewed = join(dir, 'c-skewed.ndjson');
      const lines = (await readFile(`${S}/c.ndjson`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { t: number });
      await writeFile(skewed, lines.map((r) => JSON.stringify({ ...r, t: r.t - 50_000 })).join('\n') + '\n');
      const merged = mergeByTime(await Promise.all([`${S}/a.ndjson`, `${S}/b.ndjson`, skewed].map((f) => readDump(f))));
      const al = alignClocks(mapConnections(merged));
      expect(al.inversionsBefore).to.be.greaterThan(10);
      expect(al.inversionsAfter).to.equal(0);
      expect(al.offsets[skewed]! - al.offsets[`${S}/b.ndjson`]!).to.be.within(-50_100, -49_900);

      const r = await run(`${S}/a.ndjson`, `${S}/b.ndjson`, skewed, '--clocks');
      expect(r.lines[0]).to.match(/^clocks: 131 frame\(s\) matched across dumps; received before sent: \d+ as recorded, 0 after alignment$/);
      expect(r.lines.some((l) => /^ {2}af64aef6 {2}\+(49|50)\.\d{3} ms {2}.*c-skewed\.ndjson$/.test(l))).to.equal(true);
      // The hop-by-hop view is in causal order again: C's receipt of M1 after B's send.
      const m1 = (await run(`${S}/a.ndjson`, `${S}/b.ndjson`, skewed, '--msg', '7ffb3abc')).lines;
      const sendAt = m1.findIndex((l) => /0eb989e8 {2}→ af64aef6 GOSSIP/.test(l));
      const recvAt = m1.findIndex((l) => /af64aef6 {2}← 0eb989e8 GOSSIP/.test(l));
      expect(sendAt).to.be.greaterThan(0);
      expect(recvAt).to.be.greaterThan(sendAt);
      const raw = (await run(`${S}/a.ndjson`, `${S}/b.ndjson`, skewed, '--msg', '7ffb3abc', '--raw-times')).lines;
      expect(raw.findIndex((l) => /af64aef6 {2}← 0eb989e8 GOSSIP/.test(l))).to.be.lessThan(raw.findIndex((l) => /0eb989e8 {2}→ af64aef6 GOSSIP/.test(l)));
    });
  });

  describe('--counts', () => {
    it('counts repair traffic, duplicates and drops per node and flags a gap in a node\'s dump', async () => {
      const counts = countByNode(mergeByTime(await Promise.all(SESSION.map((f) => readDump(f)))), 900);
      const b = counts.find((c) => c.node.startsWith('0eb989e8'))!;
      expect(b.types.GOSSIP).to.deep.equal({ in: 3, out: 3 });
      expect(b.delivered).to.equal(3);
      expect(b.events).to.include({ partitioned: 1 });
      const c = counts.find((x) => x.node.startsWith('af64aef6'))!;
      expect(c.gaps.length).to.be.greaterThan(0);

      const r = await run(...SESSION, '--counts', '--gap-ms', '900');
      expect(r.lines).to.include('  push:    GOSSIP in 3, out 3; delivered 3 (0 by repair), duplicates 0');
      expect(r.lines.some((l) => /^ {2}repair: {2}IHAVE in \d+ \(\d+ ids\), out \d+ \(\d+ ids\); IWANT in \d+ \(\d+ ids\), out \d+ \(\d+ ids\); copies served on IWANT \d+$/.test(l))).to.equal(true);
      expect(r.lines.some((l) => /^ {2}GAP: nothing written [\d:.]+ \.\. [\d:.]+ \(\d+ ms\)/.test(l))).to.equal(true);
      expect((await run(...SESSION, '--counts')).lines.some((l) => l.includes('GAP'))).to.equal(false); // 3 s default
    });

    it('flags a stall traced by a frozen node', async () => {
      const path = await dumpFile(join(dir, 'frozen.ndjson'), NODE_C, [
        { t: 1_000_000, kind: 'trace', event: 'connect', peer: NODE_A },
        { t: 35_000_000, kind: 'trace', event: 'stalled', reason: 'event loop stalled for 34000 ms' },
      ]);
      const r = await run(path, '--counts');
      expect(r.lines).to.include('  events:  connect 1, stalled 1');
      expect(r.lines.some((l) => l.startsWith('  GAP: nothing written') && l.includes('(34000 ms)'))).to.equal(true);
      expect((await run(path, '--type', 'stalled')).lines).to.deep.equal([`00:00:35.000000 ${NODE_C.slice(0, 8)} · stalled reason="event loop stalled for 34000 ms"`]);
    });
  });

  describe('inputs that are not dumps', () => {
    for (const [name, content, message] of [
      ['an empty file', '', 'is empty: not a wire dump'],
      ['a file whose first line is not a dump header', '{"hello":1}\n', 'is not a wire dump: its first line is not a {"kind":"dump",...} header (a capture? use --pcap)'],
      ['a capture given as a dump', '\xd4\xc3\xb2\xa1 binary', 'is not a wire dump'],
    ] as const) {
      it(`refuses ${name} with a message naming it`, async () => {
        const path = join(dir, `bad-${name.length}.ndjson`);
        await writeFile(path, content, 'latin1');
        const err = (await runDump([path]).catch((e: unknown) => e)) as Error;
        expect(err).to.be.instanceOf(Error);
        expect(err.message.startsWith(`${path} ${message}`), err.message).to.equal(true);
      });
    }

    it('refuses a missing file and a non-capture given to --pcap, in one clean line', async () => {
      const missing = (await runDump([join(dir, 'nope.ndjson')]).catch((e: unknown) => e)) as Error;
      expect(missing.message).to.equal(`cannot read ${join(dir, 'nope.ndjson')}: no such file`);
      const notCap = (await runDump(['--pcap', A]).catch((e: unknown) => e)) as Error;
      expect(notCap.message).to.equal(`${A}: not a capture (not a pcap or pcapng file (unknown magic))`);
      const emptyCap = join(dir, 'empty.pcap');
      await writeFile(emptyCap, Buffer.concat([Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex')]));
      expect(((await runDump(['--pcap', emptyCap]).catch((e: unknown) => e)) as Error).message).to.equal(`${emptyCap}: a capture with no packets`);
    });
  });
});
