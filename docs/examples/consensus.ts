/**
 * A toy consensus engine on aethel-p2p, showing the integration points a real PBFT engine
 * uses: it subscribes to `consensus` and broadcasts its phase messages there, pauses while
 * health says it cannot reach a quorum (2f + 1 of n validators, itself included), and a node
 * that restarts asks a peer for the decided history with a `state_sync` request/response over
 * sendToPeer before it takes part again.
 *
 * Toy: a fixed leader, no view change, no signatures on votes beyond gossip's own. Run it:
 *
 *     npx tsx --conditions=aethel-p2p-source docs/examples/consensus.ts   # in this repository
 *     npx tsx consensus.ts                                                # where aethel-p2p is installed
 *
 * The story it plays: n nodes decide `rounds` heights; all but a quorum-less minority stop
 * (the survivors pause); one stopped node restarts with the same identity, syncs the history
 * over state_sync, the survivors resume, and together they decide `rounds` more heights.
 */
import { pathToFileURL } from 'node:url';
import { P2PNetwork } from 'aethel-p2p';
import type { DeliveryInfo, P2PNetworkOptions } from 'aethel-p2p';

type PhaseType = 'pre-prepare' | 'prepare' | 'commit';
interface Phase {
  type: PhaseType;
  height: number;
  value: string;
}
type SyncMessage = { type: 'request' } | { type: 'response'; decided: string[] };

function isPhase(d: unknown): d is Phase {
  const p = d as Phase;
  return typeof p === 'object' && p !== null && ['pre-prepare', 'prepare', 'commit'].includes(p.type) &&
    Number.isInteger(p.height) && p.height >= 0 && typeof p.value === 'string';
}

/** One validator's engine. Decisions are in `decided` (index = height). */
export class ToyConsensus {
  readonly decided: string[] = [];
  /** True while it cannot reach a quorum; `everPaused` remembers that it happened. */
  paused = false;
  everPaused = false;
  /** Decisions received through state_sync (0 for a node that never synced). */
  syncedEntries = 0;
  /** Decide heights below this; raised by the driver. */
  targetHeight = 0;
  private ready: boolean;
  private syncing = false;
  private readonly f: number;
  private readonly quorum: number;
  private readonly votes = new Map<string, Set<string>>();
  private readonly sent = new Set<string>();
  private readonly proposals = new Map<number, string>();
  private readonly offs: Array<() => void> = [];

  /**
   * @param validators every validator's node id; validators[0] is the leader.
   * @param restarted true for a node that lost its state: it syncs before it votes.
   */
  constructor(readonly node: P2PNetwork, readonly validators: readonly string[], restarted = false) {
    this.f = Math.floor((validators.length - 1) / 3);
    this.quorum = 2 * this.f + 1;
    this.ready = !restarted;
    this.offs.push(node.subscribe('consensus', (d, info) => this.onPhase(d, info)));
    this.offs.push(node.subscribe('state_sync', (d, info) => this.onSync(d as SyncMessage, info)));
    const recheck = () => this.tick();
    for (const e of ['peer:connect', 'peer:disconnect', 'peer:partitioned', 'peer:recovered'] as const) {
      node.on(e, recheck);
      this.offs.push(() => node.off(e, recheck));
    }
  }

  /**
   * Validators reachable now, this one included: what the quorum check is made on. Every peer
   * is a validator here, so health() answers directly; a node that also has non-validator
   * peers counts `node.peers()` with state 'connected' whose id is in the validator set.
   */
  reachable(): number {
    return 1 + this.node.health().connectedPeers;
  }

  /** Do whatever the current state allows: propose, vote, decide. Called on every event. */
  tick(): void {
    if (!this.ready) return void this.requestSync();
    this.paused = this.reachable() < this.quorum;
    if (this.paused) {
      this.everPaused = true;
      return;
    }
    for (;;) {
      const h = this.decided.length;
      if (h >= this.targetHeight) return;
      if (this.validators[0] === this.node.id && !this.proposals.has(h)) {
        this.proposals.set(h, `block ${h} by ${this.node.id.slice(0, 8)}`);
      }
      const value = this.proposals.get(h);
      if (value === undefined) return;
      if (this.validators[0] === this.node.id) this.send({ type: 'pre-prepare', height: h, value });
      this.send({ type: 'prepare', height: h, value });
      if (this.count('prepare', h, value) < this.quorum) return;
      this.send({ type: 'commit', height: h, value });
      if (this.count('commit', h, value) < this.quorum) return;
      this.decided.push(value);
    }
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
  }

  private send(p: Phase): void {
    const key = `${p.type}:${p.height}`;
    if (this.sent.has(key)) return;
    this.sent.add(key);
    this.record(p, this.node.id); // our own broadcasts are not delivered back to us
    this.node.broadcast('consensus', p).catch(() => this.sent.delete(key));
  }

  private record(p: Phase, from: string): void {
    const key = `${p.type}:${p.height}:${p.value}`;
    let voters = this.votes.get(key);
    if (!voters) this.votes.set(key, (voters = new Set()));
    voters.add(from);
  }

  private count(type: PhaseType, height: number, value: string): number {
    return this.votes.get(`${type}:${height}:${value}`)?.size ?? 0;
  }

  private onPhase(d: unknown, info: DeliveryInfo): void {
    if (!isPhase(d) || !this.validators.includes(info.from)) return;
    // Votes for decided heights arrive again after a restart (the peers' catch-up): ignore.
    if (this.ready && d.height < this.decided.length) return;
    if (d.type === 'pre-prepare') {
      if (info.from === this.validators[0] && !this.proposals.has(d.height)) this.proposals.set(d.height, d.value);
    } else {
      this.record(d, info.from);
    }
    this.tick();
  }

  /** Ask the first connected validator for the decided history. */
  private requestSync(): void {
    if (this.syncing) return;
    const peer = this.node.peers().find((p) => p.state === 'connected' && this.validators.includes(p.id));
    if (!peer) return; // asked again on the next peer:connect
    this.syncing = true;
    this.node.sendToPeer(peer.id, 'state_sync', { type: 'request' } satisfies SyncMessage).catch(() => {
      this.syncing = false;
    });
  }

  private onSync(m: SyncMessage, info: DeliveryInfo): void {
    if (m?.type === 'request') {
      const reply: SyncMessage = { type: 'response', decided: [...this.decided] };
      this.node.sendToPeer(info.from, 'state_sync', reply).catch(() => {}); // the requester asks again
    } else if (m?.type === 'response' && !this.ready && Array.isArray(m.decided)) {
      this.decided.push(...m.decided.map(String));
      this.syncedEntries = m.decided.length;
      this.ready = true;
      this.syncing = false;
      this.tick();
    }
  }
}

export interface ExampleOptions {
  /** Validators, >= 4 (so that f >= 1). Default 4. */
  nodes?: number;
  /** Heights decided before and after the outage. Default 3. */
  rounds?: number;
  /** Bound on each wait, ms. Default 20000. */
  timeoutMs?: number;
  /** Progress lines; silent when absent. */
  log?: (line: string) => void;
}

export interface ExampleResult {
  /** Decided values of each node alive at the end, by start order. */
  decided: string[][];
  /** Whether each survivor of the outage paused for lack of a quorum. */
  survivorsPaused: boolean[];
  /** Decisions the restarted node received through state_sync. */
  syncedEntries: number;
  /** Heights decided while the survivors had no quorum (must be 0). */
  decidedWithoutQuorum: number;
}

/** Short timeouts: the story plays in a couple of seconds. */
const FAST: P2PNetworkOptions = {
  // Every validator runs on this machine (127.0.0.1): exempt loopback from the per-IP limits.
  // A real deployment lists its validators instead: members (and onlyMembers: true).
  admissionAllowlist: ['127.0.0.0/8', '::1'],
  heartbeatMs: 100,
  partitionTimeoutMs: 500,
  ackTimeoutMs: 1000,
  retry: { initialDelayMs: 50, maxDelayMs: 250, maxRetries: 3 },
};

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function main(opts: ExampleOptions = {}): Promise<ExampleResult> {
  const n = opts.nodes ?? 4;
  const rounds = opts.rounds ?? 3;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const log = opts.log ?? (() => {});
  if (n < 4) throw new Error('nodes must be at least 4');
  const quorum = 2 * Math.floor((n - 1) / 3) + 1;
  const nodes: P2PNetwork[] = [];
  const engines: ToyConsensus[] = [];
  try {
    // 1. n validators, fully meshed; the first is the leader.
    for (let i = 0; i < n; i++) {
      const node = new P2PNetwork({ ...FAST, bootstrap: nodes.map((o) => `127.0.0.1:${o.address.port}`) });
      await node.start();
      nodes.push(node);
    }
    await until(() => nodes.every((x) => x.health().connectedPeers === n - 1), timeoutMs, 'a full mesh');
    const validators = nodes.map((x) => x.id);
    for (const node of nodes) engines.push(new ToyConsensus(node, validators));
    for (const e of engines) e.targetHeight = rounds;
    for (const e of engines) e.tick();
    await until(() => engines.every((e) => e.decided.length === rounds), timeoutMs, `${rounds} heights decided`);
    log(`decided ${rounds} heights on ${n} nodes (quorum ${quorum})`);

    // 2. Stop all but quorum - 1 nodes: the survivors cannot reach a quorum and pause.
    const survivors = quorum - 1;
    for (let i = survivors; i < n; i++) {
      engines[i]!.close();
      await nodes[i]!.stop();
    }
    for (const e of engines.slice(0, survivors)) e.targetHeight = 2 * rounds;
    for (const e of engines.slice(0, survivors)) e.tick();
    await until(() => engines.slice(0, survivors).every((e) => e.paused), timeoutMs, 'the survivors to pause');
    const survivorsPaused = engines.slice(0, survivors).map((e) => e.everPaused);
    const decidedWithoutQuorum = Math.max(...engines.slice(0, survivors).map((e) => e.decided.length)) - rounds;
    log(`${n - survivors} nodes stopped: ${survivors} survivors paused, reachable ${engines[0]!.reachable()} < ${quorum}`);

    // 3. One stopped validator restarts with its identity: it syncs over state_sync, the
    //    survivors see a quorum again and resume.
    const back = new P2PNetwork({ ...FAST, identity: nodes[n - 1]!.identity, bootstrap: nodes.slice(0, survivors).map((x) => `127.0.0.1:${x.address.port}`) });
    const restarted = new ToyConsensus(back, validators, true);
    restarted.targetHeight = 2 * rounds;
    await back.start();
    const live = [...engines.slice(0, survivors), restarted];
    nodes.push(back);
    engines.push(restarted);
    restarted.tick();
    await until(() => live.every((e) => e.decided.length === 2 * rounds), timeoutMs, `${2 * rounds} heights decided`);
    log(`restarted node synced ${restarted.syncedEntries} decisions; ${live.length} nodes decided ${2 * rounds} heights`);
    for (const [i, v] of live[0]!.decided.entries()) log(`  height ${i}: ${v}`);
    return {
      decided: live.map((e) => [...e.decided]),
      survivorsPaused,
      syncedEntries: restarted.syncedEntries,
      decidedWithoutQuorum,
    };
  } finally {
    for (const e of engines) e.close();
    await Promise.all(nodes.map((x) => x.stop()));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main({ log: (line) => console.log(line) }).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
