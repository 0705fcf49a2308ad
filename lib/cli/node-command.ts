/**
 * `aethel-p2p node`: one node for people and for tests that run nodes as processes.
 * stdout carries JSON lines only: first {"event":"listening",...} (always first: deliveries
 * that happen while start() is still dialing wait for it), then one {"event":"message",...}
 * per delivery with its time and whether the copy came by push or by repair. Each stdin
 * line is broadcast on the topic. SIGINT/SIGTERM stop the node cleanly and exit 0.
 */
import { createInterface } from 'node:readline';
import type { Interface } from 'node:readline';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { generateIdentity, loadIdentity, saveIdentity } from '../identity.js';
import type { Identity } from '../identity.js';
import { P2PNetwork } from '../network.js';
import { resolveOptions } from '../options.js';
import type { P2PNetworkOptions } from '../options.js';
import { InvalidOptionError } from '../errors.js';
import { parse, intArg, strArg, UsageError } from './args.js';
import { makeLogger } from './logger.js';
import { isoTimeUs, wallClockUs } from '../dump/writer.js';

const HELP = `usage: aethel-p2p node [options]
  --host H            interface to listen on (default 127.0.0.1)
  --port P            port to listen on, 0 = any free port (default 0)
  --advertise-host H  address other machines dial to reach this node (default: --host, or
                      127.0.0.1 when --host is 0.0.0.0 or ::, which only this machine can use)
  --advertise-port P  port they dial, when a forward or proxy differs from --port (default: bound port)
  --bootstrap LIST    comma-separated host:port peers to dial at start
  --topic T           topic to broadcast stdin lines on and print deliveries of (default "chat")
  --network-id ID     network id; peers with another are refused (default "aethel")
  --key FILE          identity key file: loaded if it exists, created (mode 0600) if not
  --dump FILE         write an NDJSON wire dump of every frame
  --keylog FILE       append each session's traffic keys and both node ids (one AETHEL_NOISE
                      line per session) so captures can be decrypted: dump --pcap --keylog.
                      Debugging only: whoever reads the file reads the traffic
  --plaintext         no encryption after the handshake (encryption: false), for lab work;
                      works only with peers that chose it too
  --allow LIST        comma-separated CIDRs or addresses exempt from the per-IP and per-/24
                      connection limits (admissionAllowlist), e.g. 127.0.0.0/8,::1 for several
                      nodes on one machine; default none
  --heartbeat-ms N    heartbeat period, ms (default 1000)
  --verify-workers N  threads that verify gossip signatures off the event loop, shared by
                      the process (verifyWorkers), up to the machine's cores; default 0 (all
                      on the event loop). Worth it on a host with a core to spare under load
  --partition-timeout-ms N
                      a peer silent this long, ms, is partitioned (default 30000)
  --log-level L       fatal|error|warn|info|debug|trace|silent (default warn), to stderr
  --help              this text`;

/** JSON for any decoded MessagePack value: binary as {"$bin": base64}, bigint as string. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Uint8Array) return { $bin: Buffer.from(v).toString('base64') };
    if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return { $bin: Buffer.from((v as { data: number[] }).data).toString('base64') };
    }
    return v;
  });
}

async function identityFrom(keyFile: string | undefined): Promise<Identity> {
  if (!keyFile) return generateIdentity();
  if (existsSync(keyFile)) return loadIdentity(keyFile);
  const id = generateIdentity();
  await saveIdentity(id, keyFile);
  return id;
}

export async function runNode(argv: string[]): Promise<number> {
  const v = parse(argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    'advertise-host': { type: 'string' },
    'advertise-port': { type: 'string' },
    bootstrap: { type: 'string' },
    topic: { type: 'string' },
    'network-id': { type: 'string' },
    key: { type: 'string' },
    dump: { type: 'string' },
    keylog: { type: 'string' },
    plaintext: { type: 'boolean' },
    allow: { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    'verify-workers': { type: 'string' },
    'partition-timeout-ms': { type: 'string' },
    'log-level': { type: 'string' },
    help: { type: 'boolean' },
  });
  if (v.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const topic = strArg(v, 'topic') ?? 'chat';
  const logger = makeLogger(strArg(v, 'log-level'));
  const bootstrap = strArg(v, 'bootstrap')?.split(',').filter((s) => s.length > 0) ?? [];
  const options: P2PNetworkOptions = {
    listenHost: strArg(v, 'host') ?? '127.0.0.1',
    listenPort: intArg(v, 'port', 0, 0, 65535),
    advertiseHost: strArg(v, 'advertise-host'),
    advertisePort: intArg(v, 'advertise-port', 0, 0, 65535),
    bootstrap,
    networkId: strArg(v, 'network-id'),
    wireDump: strArg(v, 'dump'),
    keyLog: strArg(v, 'keylog'),
    ...(v.plaintext === true ? { encryption: false } : {}),
    ...(strArg(v, 'allow') !== undefined ? { admissionAllowlist: strArg(v, 'allow')!.split(',').filter((x) => x.length > 0) } : {}),
    heartbeatMs: v['heartbeat-ms'] === undefined ? undefined : intArg(v, 'heartbeat-ms', 0, 1, 2 ** 31 - 1),
    partitionTimeoutMs: v['partition-timeout-ms'] === undefined ? undefined : intArg(v, 'partition-timeout-ms', 0, 1, 2 ** 31 - 1),
    verifyWorkers: intArg(v, 'verify-workers', 0, 0, availableParallelism()),
    logger,
  };
  try {
    resolveOptions(options); // before --key may create a file: a bad command line leaves nothing behind
  } catch (err) {
    if (err instanceof InvalidOptionError) throw new UsageError(flagProblem(err));
    throw err;
  }
  const node = new P2PNetwork({ ...options, identity: await identityFrom(strArg(v, 'key')) });
  // Until the listening line is out, message lines wait here (start() dials the bootstrap
  // peers and joins the DHT before it resolves, and deliveries can come in meanwhile).
  let held: string[] | undefined = [];
  node.subscribe(topic, (data, info) => {
    const line = toJson({ event: 'message', t: isoTimeUs(wallClockUs()), topic: info.topic, from: info.from, id: info.id, hops: info.hops, via: info.direct ? 'direct' : info.via ?? 'push', direct: info.direct, data }) + '\n';
    if (held) held.push(line);
    else process.stdout.write(line);
  });

  // Handlers go in before start(): a signal during the bootstrap dial still stops cleanly.
  let lines: Interface | undefined;
  let stopping = false;
  const stopped = new Promise<number>((resolve) => {
    const shutdown = (why: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ why }, 'stopping');
      lines?.close();
      process.stdin.destroy();
      node.stop().then(() => resolve(0), () => resolve(1));
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    // A reader that went away (EPIPE) ends the node instead of crashing it.
    process.stdout.on('error', () => shutdown('stdout closed'));
  });

  try {
    await node.start();
  } catch (err) {
    await node.stop().catch(() => undefined);
    throw err;
  }
  if (stopping) return stopped;
  const { host, port } = node.address;
  process.stdout.write(JSON.stringify({ event: 'listening', t: isoTimeUs(wallClockUs()), id: node.id, host, port }) + '\n' + held.join(''));
  held = undefined;

  lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    node.broadcast(topic, line).catch((err: Error) => logger.warn({ err }, 'broadcast failed'));
  });
  return stopped;
}

/** Command-line flags for the P2PNetwork options the node command sets. */
const FLAG_OF: Record<string, string> = {
  listenHost: '--host',
  advertiseHost: '--advertise-host',
  advertisePort: '--advertise-port',
  listenPort: '--port',
  networkId: '--network-id',
  wireDump: '--dump',
  keyLog: '--keylog',
  admissionAllowlist: '--allow',
  heartbeatMs: '--heartbeat-ms',
  partitionTimeoutMs: '--partition-timeout-ms',
};

/** An InvalidOptionError reworded in terms of the flag that caused it. */
function flagProblem(err: InvalidOptionError): string {
  const flag = err.field.startsWith('bootstrap') ? '--bootstrap' : err.field.startsWith('admissionAllowlist') ? '--allow' : FLAG_OF[err.field];
  if (!flag) return err.message;
  return `${flag}: ${err.message.replace(/^invalid option [^:]*: /, '')}`;
}
