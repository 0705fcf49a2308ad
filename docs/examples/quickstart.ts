/**
 * Quick start: two nodes in one process, a broadcast, a direct message, an error code and
 * the metrics. Runs as written:
 *
 *     npm run quickstart                 # in a clone of this repository
 *     npx tsx quickstart.ts              # in a project that ran `npm install aethel-p2p tsx`
 *
 * In a real deployment each node is its own process, usually on its own machine: give it
 * `listenHost: '0.0.0.0'`, an `advertiseHost` the other machines can reach, and the
 * `bootstrap` addresses of one or two nodes already running.
 */
import { P2PNetwork, P2PError } from 'aethel-p2p';

// A function, not top-level await: the file then runs in an ES module project and in a
// CommonJS one alike.
async function main(): Promise<void> {
  // A first node, alone: no bootstrap address. It listens on 127.0.0.1, on a free port.
  const alice = new P2PNetwork();
  await alice.start();
  console.log(`alice ${alice.id.slice(0, 12)} listens on ${alice.address.host}:${alice.address.port}`);

  // A second node that joins through the first. start() says how many bootstrap addresses
  // answered; with `requireBootstrap: true` it would reject when none did.
  const bob = new P2PNetwork({ bootstrap: [`127.0.0.1:${alice.address.port}`] });
  const { bootstrap } = await bob.start();
  console.log(`bob reached ${bootstrap.answered} of ${bootstrap.total} bootstrap address(es)`);

  // Gossip: every node subscribed to the topic gets it, wherever it is in the network.
  const heard = new Promise<void>((resolve) => {
    alice.subscribe('chat', (data, info) => {
      console.log(`alice got ${JSON.stringify(data)} on "${info.topic}" from ${info.from.slice(0, 12)} after ${info.hops} hop(s)`);
      resolve();
    });
  });
  await bob.broadcast('chat', { text: 'hello, everyone' });
  await heard;

  // A direct message: to one peer by id; resolves when that peer has acknowledged it.
  bob.subscribe('direct', (data, info) => {
    console.log(`bob got ${JSON.stringify(data)} directly (direct: ${info.direct})`);
  });
  await alice.sendToPeer(bob.id, 'direct', { text: 'hello, bob' }, { timeoutMs: 5000 });

  // Every failure of the API is a P2PError with a stable code.
  try {
    await alice.sendToPeer('00'.repeat(32), 'direct', 'anyone there?', { timeoutMs: 300 });
  } catch (err) {
    if (!(err instanceof P2PError)) throw err;
    console.log(`a send to an unknown id failed with ${err.code}`);
  }

  // Metrics: a JSON snapshot, or the Prometheus text format for a /metrics endpoint.
  console.log(`alice delivered ${alice.metrics().delivered} message(s)`);
  console.log(alice.metricsText().split('\n').filter((l) => l.startsWith('aethel_p2p_delivered_total')).join('\n'));

  await bob.stop();
  await alice.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
