/**
 * Start N real nodes on 127.0.0.1 with ephemeral ports, joined into a seeded random sparse
 * topology, and tear them all down. Used by the demo, the benchmarks and the cluster tests.
 */
import { P2PNetwork } from './network.js';
import type { P2PNetworkOptions } from './options.js';
import { seededRandom } from './random.js';

/**
 * Every testnet node is 127.0.0.1: a loopback cluster opts out of the per-IP and per-group
 * admission limits (an Internet node keeps them: the default allowlist is empty).
 */
export const LOOPBACK_ALLOWLIST: readonly string[] = Object.freeze(['127.0.0.0/8', '::1']);

export interface TestnetOptions {
  /** Nodes to start. */
  nodes: number;
  /** Each node after the first dials this many random earlier nodes (fewer for the first few). Default 3. */
  degree?: number;
  /** Seed for the topology. Default 1. */
  seed?: number;
  /**
   * Options given to every node (listenHost/listenPort/bootstrap are set by the testnet;
   * admissionAllowlist defaults to LOOPBACK_ALLOWLIST).
   */
  nodeOptions?: P2PNetworkOptions;
  /** Called after each node has started (progress reporting). */
  onStarted?: (started: number) => void;
}

export interface Testnet {
  readonly nodes: P2PNetwork[];
  /** Resolves when every node has at least `min` connected peers, or rejects after timeoutMs. */
  ready(min?: number, timeoutMs?: number): Promise<void>;
  /** Stop every node (in parallel); safe to call twice. */
  stop(): Promise<void>;
}

export async function createTestnet(opts: TestnetOptions): Promise<Testnet> {
  const degree = opts.degree ?? 3;
  const random = seededRandom(opts.seed ?? 1);
  const nodes: P2PNetwork[] = [];
  const stopAll = () => Promise.all(nodes.map((n) => n.stop())).then(() => undefined);
  try {
    for (let i = 0; i < opts.nodes; i++) {
      const earlier = nodes.map((n) => `127.0.0.1:${n.address.port}`);
      const bootstrap: string[] = [];
      while (bootstrap.length < Math.min(degree, earlier.length)) {
        const pick = earlier[Math.floor(random() * earlier.length)]!;
        if (!bootstrap.includes(pick)) bootstrap.push(pick);
      }
      const node = new P2PNetwork({ admissionAllowlist: [...LOOPBACK_ALLOWLIST], ...opts.nodeOptions, listenHost: '127.0.0.1', listenPort: 0, bootstrap });
      nodes.push(node);
      await node.start();
      opts.onStarted?.(i + 1);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    nodes,
    ready: (min = 1, timeoutMs = 10_000) => waitFor(() => nodes.every((n) => n.health().connectedPeers >= min), timeoutMs, 'testnet ready'),
    stop: stopAll,
  };
}

/** Poll `cond` every 10 ms until true, or reject after timeoutMs naming `what`. */
export function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}
