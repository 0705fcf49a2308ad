/**
 * Peer-level trace lines for a wire dump: connect, disconnect (with the reason),
 * partitioned, recovered and invalid, taken from the network's own events.
 */
import type { P2PNetwork } from '../network.js';
import type { DumpWriter } from './writer.js';

/** Subscribe `dump` to the peer events of `net`. Listeners stay for the network's lifetime. */
export function traceNetworkEvents(net: P2PNetwork, dump: DumpWriter): void {
  net.on('peer:connect', (p) => dump.trace({ event: 'connect', peer: p.id }));
  net.on('peer:disconnect', (p, reason) => dump.trace({ event: 'disconnect', peer: p.id, reason }));
  net.on('peer:partitioned', (p) => dump.trace({ event: 'partitioned', peer: p.id }));
  net.on('peer:recovered', (p) => dump.trace({ event: 'recovered', peer: p.id }));
  net.on('peer:invalid', (peer, reason) => dump.trace({ event: 'invalid', peer, reason }));
}
