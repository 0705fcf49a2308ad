import { P2PNetwork } from '../../lib/network.js';
import type { P2PNetworkOptions } from '../../lib/options.js';
import { LOOPBACK_ALLOWLIST } from '../../lib/testnet.js';

/**
 * Nodes for one describe block: `start(opts)` creates and starts a P2PNetwork on
 * 127.0.0.1:0, and every node started is stopped in afterEach, whatever the test did.
 * Every node is 127.0.0.1, so the loopback allowlist is on unless the options set another.
 */
export function useNodes(defaults: P2PNetworkOptions = {}): {
  start(opts?: P2PNetworkOptions): Promise<P2PNetwork>;
  readonly all: P2PNetwork[];
} {
  const all: P2PNetwork[] = [];
  afterEach(async () => {
    await Promise.all(all.splice(0).map((n) => n.stop()));
  });
  return {
    all,
    async start(opts = {}) {
      const n = new P2PNetwork({ admissionAllowlist: [...LOOPBACK_ALLOWLIST], ...defaults, ...opts });
      all.push(n);
      await n.start();
      return n;
    },
  };
}

/** The address other nodes dial to reach `n`, as `host:port`. */
export const addrOf = (n: P2PNetwork): string => `127.0.0.1:${n.address.port}`;
