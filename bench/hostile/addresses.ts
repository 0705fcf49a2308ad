/**
 * Who sits at which loopback address in the hostile-peer suite, and how a dial is made from
 * one of them. Linux routes all of 127.0.0.0/8 to lo, so a client socket bound to 127.a.b.c
 * looks to the victim like a separate host, and 127.a.b.0/24 like a separate address group.
 *
 *   victim        127.0.0.1          (listens; dials the honest peers itself)
 *   honest i      127.(1+i).0.1      (one /24 each: A, B, the observer C)
 *   newcomer      127.4.0.1          (a new honest node, sybil-flood)
 *   joiner        127.5.0.1          (a new node joining through the victim, dht-poisoning)
 *   third party   127.9.0.1          (the listener whose addresses attackers claim)
 *   attackers     127.100+.g.j       (identity i in address group g = i mod groups)
 *
 * Neither WireClient.open nor P2PNetwork can choose the local address of a dial yet, so
 * fromAddress() wraps the call: net.connect is replaced once by a version that adds
 * `localAddress` while a synchronous call is in progress (WireClient.open and
 * P2PNetwork.addPeer both call it synchronously). syncBuiltinESMExports() makes the named
 * `connect` import of lib/ see the replacement. When WireClient gains a localAddress option
 * this wrapper can go.
 */
import net from 'node:net';
import { syncBuiltinESMExports } from 'node:module';

export const VICTIM_HOST = '127.0.0.1';
export const NEWCOMER_HOST = '127.4.0.1';
export const JOINER_HOST = '127.5.0.1';
export const THIRD_PARTY_HOST = '127.9.0.1';

/** Host of the i-th honest peer (0 = A, 1 = B, 2 = observer C). */
export function honestHost(i: number): string {
  return `127.${1 + i}.0.1`;
}

/**
 * Source address of attacker identity `i` when the attacker spreads over `groups` /24
 * address groups: round-robin over the groups, a distinct host in each (254 per /24, then
 * the next second octet: more groups than asked only past 254 identities per group).
 */
export function attackerHost(i: number, groups: number): string {
  const g = i % groups;
  const j = Math.floor(i / groups);
  return `127.${100 + Math.floor(j / 254)}.${g}.${1 + (j % 254)}`;
}

/** The /24 of an IPv4 address ("127.100.3"), the unit per-group limits count by. */
export function group24(host: string): string {
  return host.split('.').slice(0, 3).join('.');
}

let localForNextConnect: string | undefined;
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  const original = net.connect;
  const patched = function (this: unknown, ...args: unknown[]) {
    if (localForNextConnect !== undefined && typeof args[0] === 'object' && args[0] !== null) {
      args[0] = { ...(args[0] as object), localAddress: localForNextConnect };
    }
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  };
  (net as { connect: unknown }).connect = patched;
  (net as { createConnection: unknown }).createConnection = patched;
  syncBuiltinESMExports();
}

/** Run `fn`; any TCP connection it opens synchronously is bound to `localAddress`. */
export function fromAddress<T>(localAddress: string, fn: () => T): T {
  install();
  localForNextConnect = localAddress;
  try {
    return fn();
  } finally {
    localForNextConnect = undefined;
  }
}
