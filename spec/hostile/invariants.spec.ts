/**
 * Fast cases of the hostile-peer suite (docs/HOSTILE.md): invariants that hold today and
 * must keep holding as admission control and peer scoring land. Whatever a hostile peer
 * sends, the node does not crash, delivers nothing forged, and serves honest peers again
 * once the attacker is gone. The attackers are the suite's own (bench/hostile/attacker.ts),
 * speaking the protocol through the conformance kit's WireClient.
 */
import { expect } from 'chai';
import net from 'node:net';
import { P2PNetwork } from '../../lib/network.js';
import { encodeFrame } from '../../lib/wire/frame.js';
import { packValue } from '../../lib/wire/codec.js';
import { gossipMessageId } from '../../lib/gossip/message-id.js';
import { generateIdentity } from '../../lib/identity.js';
import { MessageType } from '../../lib/wire/messages.js';
import type { Gossip, Message } from '../../lib/wire/messages.js';
import { attackerHost } from '../../bench/hostile/addresses.js';
import { Attacker, signedGossip } from '../../bench/hostile/attacker.js';
import { emptyMapsArray } from '../../bench/hostile/cases-admission.js';
import { useNodes } from '../helpers/nodes.js';

const TOPIC = 'hostile/spec';
const LOCAL = '127.0.0.1';
/**
 * Attackers dial from their own loopback addresses (Linux routes 127/8 to lo): limits and
 * bans by address must hit them, not the honest peers, which all dial from 127.0.0.1.
 */
let nextAttacker = 0;
const attackerAddress = () => attackerHost(nextAttacker++, 4);

/** Resolves with the first value `n` delivers on TOPIC whose `tag` matches; rejects after timeoutMs. */
function nextDelivery(n: P2PNetwork, tag: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no delivery of ${tag} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = n.subscribe(TOPIC, (data) => {
      if ((data as { tag?: unknown }).tag !== tag) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** Count deliveries on TOPIC of payloads marked { forged: 1 }. */
function countForged(nodes: P2PNetwork[]): { count: number } {
  const c = { count: 0 };
  for (const n of nodes) n.subscribe(TOPIC, (d) => void ((d as { forged?: unknown }).forged === 1 && c.count++));
  return c;
}

const addr = (n: P2PNetwork) => ({ host: LOCAL, port: n.address.port });

describe('hostile peers: what must always hold', function () {
  this.timeout(20_000);
  const nodes = useNodes({ heartbeatMs: 200, partitionTimeoutMs: 5000 });
  const attackers: Attacker[] = [];
  afterEach(() => {
    for (const a of attackers.splice(0)) a.destroy();
  });

  /** A victim with two honest peers dialed to it; B receives what A broadcasts only through the victim. */
  async function triangle(): Promise<{ victim: P2PNetwork; a: P2PNetwork; b: P2PNetwork }> {
    const victim = await nodes.start();
    const a = await nodes.start();
    const b = await nodes.start();
    await a.addPeer(`${LOCAL}:${victim.address.port}`);
    await b.addPeer(`${LOCAL}:${victim.address.port}`);
    return { victim, a, b };
  }

  async function join(victim: P2PNetwork): Promise<Attacker> {
    const a = await Attacker.join(addr(victim), 'aethel', attackerAddress());
    expect(a, 'the attacker completes the handshake').to.not.equal(undefined);
    attackers.push(a!);
    return a!;
  }

  it('delivers nothing forged, and still relays honest messages, under a flood of forged signatures', async () => {
    const { victim, a, b } = await triangle();
    const forged = countForged([victim, b]);
    const attacker = await join(victim);
    const origin = generateIdentity();
    const make = (seq: number): Gossip => {
      const payload = packValue({ forged: 1, n: seq });
      const id = gossipMessageId(origin.publicKey, seq, TOPIC, payload);
      return { type: MessageType.GOSSIP, id, origin: origin.publicKey, seq, topic: TOPIC, ttl: 5, hops: 1, seenBy: [], payload, signature: Buffer.alloc(64, 7) };
    };
    const repeated = make(1);
    for (let i = 0; i < 500; i++) attacker.send(repeated);
    for (let i = 0; i < 500; i++) attacker.send(make(2 + i));
    const got = nextDelivery(b, 'after-forgeries');
    await a.broadcast(TOPIC, { tag: 'after-forgeries' });
    await got;
    expect(forged.count).to.equal(0);
  });

  it('delivers none of the invalid kinds (wrong id, ttl 0, unsigned) and keeps running after unsolicited NODES', async () => {
    const { victim, a, b } = await triangle();
    const forged = countForged([victim, b]);
    const attacker = await join(victim);
    const seq0 = Date.now() * 1000;
    const msgs: Message[] = [];
    for (let i = 0; i < 50; i++) {
      const g = signedGossip(attacker.identity, seq0 + i, TOPIC, packValue({ forged: 1, n: i }));
      msgs.push({ ...g, id: Buffer.alloc(32, 1 + (i % 200)) });
      msgs.push({ ...signedGossip(attacker.identity, seq0 + 100 + i, TOPIC, packValue({ forged: 1, n: i })), ttl: 0 });
      msgs.push({ ...signedGossip(attacker.identity, seq0 + 200 + i, TOPIC, packValue({ forged: 1, n: i })), signature: null });
      msgs.push({ type: MessageType.NODES, reqId: i, contacts: [{ id: Buffer.alloc(32, i + 1), host: '127.9.0.1', port: 1000 + i }] });
    }
    for (const m of msgs) attacker.send(m);
    const got = nextDelivery(b, 'after-invalid');
    await a.broadcast(TOPIC, { tag: 'after-invalid' });
    await got;
    expect(forged.count).to.equal(0);
  });

  it('accepts and serves a new peer after a pre-handshake decode bomb', async () => {
    const { victim, a } = await triangle();
    const bomb = encodeFrame(emptyMapsArray(200_000));
    const sock = net.connect({ host: LOCAL, port: victim.address.port, localAddress: attackerAddress() });
    sock.on('error', () => {});
    sock.on('data', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.write(bomb);
    const closed = new Promise((r) => sock.once('close', r));
    await closed; // the victim refuses the bytes and closes the socket
    const late = await nodes.start();
    await late.addPeer(`${LOCAL}:${victim.address.port}`);
    const got = nextDelivery(late, 'after-bomb');
    await a.broadcast(TOPIC, { tag: 'after-bomb' });
    await got;
  });

  it('serves a new honest peer once Sybil identities that filled its slots are gone', async () => {
    const victim = await nodes.start({ maxPeers: 4, minPeers: 2 });
    const sybils: Attacker[] = [];
    for (let i = 0; i < 6; i++) {
      const s = await Attacker.join(addr(victim), 'aethel', attackerAddress());
      if (s) {
        sybils.push(s);
        attackers.push(s);
      }
    }
    for (const s of sybils) s.destroy();
    const a = await nodes.start();
    const b = await nodes.start();
    // The victim may still be noticing the closed sockets: dial until it takes us, within 5 s.
    const deadline = Date.now() + 5000;
    for (const n of [a, b]) {
      for (;;) {
        try {
          await n.addPeer(`${LOCAL}:${victim.address.port}`);
          await new Promise((r) => setTimeout(r, 100));
          if (n.peers().some((p) => p.state === 'connected')) break;
        } catch {
          // refused while full: try again
        }
        if (Date.now() > deadline) throw new Error('the victim did not take an honest peer within 5 s of the Sybils leaving');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const got = nextDelivery(b, 'after-sybils');
    await a.broadcast(TOPIC, { tag: 'after-sybils' });
    await got;
  });
});
