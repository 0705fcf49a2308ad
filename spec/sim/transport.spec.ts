import { expect } from 'chai';
import { Metrics } from '../../lib/metrics.js';
import { SimTransport } from '../../lib/sim/transport.js';
import type { Endpoint } from '../../lib/sim/transport.js';
import { VirtualClock } from '../../lib/sim/virtual-clock.js';
import { decodeMessage, encodeMessage } from '../../lib/wire/codec.js';
import { MessageType } from '../../lib/wire/messages.js';

interface Received { from: number; type: number; at: number; body: Buffer }

type TestEndpoint = Endpoint & { up: boolean; connections: Map<number, object> };

/** n endpoints, each with an open connection to every other (replace one to model a reconnect). */
function endpoints(clock: VirtualClock, n: number): { eps: TestEndpoint[]; got: Received[] } {
  const got: Received[] = [];
  const eps = Array.from({ length: n }, (_, index) => {
    const connections = new Map<number, object>();
    for (let j = 0; j < n; j++) if (j !== index) connections.set(j, {});
    return {
      index,
      up: true,
      metrics: new Metrics(),
      connections,
      receive: (from: number, type: number, body: Buffer) => void got.push({ from, type, at: clock.now(), body }),
      connectionTo: (from: number) => connections.get(from),
    };
  });
  return { eps, got };
}

function drain(clock: VirtualClock): void {
  while (clock.step()) { /* run everything */ }
}

describe('sim/SimTransport', () => {
  it('delivers the encoded body after the link latency and charges both ends body + 4 header bytes', () => {
    const clock = new VirtualClock();
    const { eps, got } = endpoints(clock, 2);
    const t = new SimTransport(clock, eps, { latencyMs: 25, jitterMs: 0, loss: 0 }, 1);
    const body = encodeMessage({ type: MessageType.PING, seq: 42 });
    t.send(eps[0]!, eps[1]!, MessageType.PING, body);
    drain(clock);
    expect(got).to.have.length(1);
    expect(got[0]!.at).to.equal(25);
    expect(decodeMessage(got[0]!.body)).to.deep.equal({ type: MessageType.PING, seq: 42 });
    expect(eps[0]!.metrics.bytesSent).to.equal(body.length + 4);
    expect(eps[1]!.metrics.bytesReceived).to.equal(body.length + 4);
  });

  it('gives each pair one seeded latency, the same both ways, within [latency, latency + jitter)', () => {
    const clock = new VirtualClock();
    const { eps } = endpoints(clock, 50);
    const t = new SimTransport(clock, eps, { latencyMs: 10, jitterMs: 40, loss: 0 }, 3);
    const seen = new Set<number>();
    for (let a = 0; a < 50; a++) {
      for (let b = a + 1; b < 50; b++) {
        const l = t.latency(a, b);
        expect(l).to.equal(t.latency(b, a));
        expect(l).to.be.within(10, 49);
        seen.add(l);
      }
    }
    expect(seen.size).to.be.greaterThan(20);
  });

  it('holds frames sent across a partition, as TCP does, and delivers them in order after the heal', () => {
    const clock = new VirtualClock();
    const { eps, got } = endpoints(clock, 4);
    const t = new SimTransport(clock, eps, { latencyMs: 5, jitterMs: 0, loss: 0 }, 1);
    const ping = (seq: number) => encodeMessage({ type: MessageType.PING, seq });
    t.partition(Int32Array.from([0, 0, 1, 1]));
    t.send(eps[0]!, eps[1]!, MessageType.PING, ping(1)); // same group
    t.send(eps[0]!, eps[2]!, MessageType.PING, ping(2)); // across
    t.send(eps[0]!, eps[2]!, MessageType.PING, ping(3)); // across
    drain(clock);
    expect(got).to.have.length(1);
    t.heal();
    t.send(eps[0]!, eps[2]!, MessageType.PING, ping(4)); // after the heal: behind the held ones
    drain(clock);
    expect(got.slice(1).map((g) => (decodeMessage(g.body) as { seq: number }).seq)).to.deep.equal([2, 3, 4]);
    expect(t.stats.framesHeld).to.equal(2);
    expect(t.stats.framesUnreachable).to.equal(0);
  });

  it('drops held frames whose connection the receiver closed or replaced before the heal', () => {
    const clock = new VirtualClock();
    const { eps, got } = endpoints(clock, 3);
    const t = new SimTransport(clock, eps, { latencyMs: 5, jitterMs: 0, loss: 0 }, 1);
    const body = encodeMessage({ type: MessageType.PING, seq: 1 });
    t.partition(Int32Array.from([0, 1, 1]));
    t.send(eps[0]!, eps[1]!, MessageType.PING, body);
    t.send(eps[0]!, eps[2]!, MessageType.PING, body);
    drain(clock);
    eps[1]!.connections.set(0, {}); // closed and redialed: a new connection
    eps[2]!.connections.delete(0); // closed
    t.heal();
    drain(clock);
    expect(got).to.deep.equal([]);
    expect(t.stats.framesUnreachable).to.equal(2);
  });

  it('drops frames to a crashed endpoint and about the configured fraction under loss', () => {
    const clock = new VirtualClock();
    const { eps, got } = endpoints(clock, 2);
    const t = new SimTransport(clock, eps, { latencyMs: 1, jitterMs: 0, loss: 0.25 }, 9);
    const body = encodeMessage({ type: MessageType.PING, seq: 1 });
    for (let i = 0; i < 2000; i++) t.send(eps[0]!, eps[1]!, MessageType.PING, body);
    drain(clock);
    expect(got.length).to.be.within(1400, 1600);
    expect(t.stats.framesLost + got.length).to.equal(2000);
    eps[1]!.up = false;
    const before = got.length;
    t.send(eps[0]!, eps[1]!, MessageType.PING, body);
    drain(clock);
    expect(got.length).to.equal(before);
  });
});
