/**
 * A deliberately broken protocol target for the conformance kit's own tests: a raw server
 * that completes the handshake honestly and then ignores everything (it never answers PING,
 * never relays, never refuses). Each check that needs an answer must fail against it.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { generateIdentity } from '../../lib/identity.js';
import { generateX25519 } from '../../lib/noise/handshake.js';
import { SessionHandshake } from '../../lib/transport/handshake.js';
import { decodeMessage, encodeMessage } from '../../lib/wire/codec.js';
import { FrameDecoder, encodeFrame } from '../../lib/wire/frame.js';
import { MIN_PROTOCOL_VERSION, MessageType, PROTOCOL_VERSION } from '../../lib/wire/messages.js';
import type { Message } from '../../lib/wire/messages.js';

export interface BrokenTarget {
  port: number;
  close(): Promise<void>;
}

export async function startSilentTarget(): Promise<BrokenTarget> {
  const identity = generateIdentity();
  const staticKey = generateX25519();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    const send = (m: Message) => socket.write(encodeFrame(encodeMessage(m)));
    const hs = new SessionHandshake(false, {
      identity, networkId: 'aethel', encrypted: true, minVersion: MIN_PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION,
      listenHost: '', listenPort: 0, remoteHost: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0, staticKey,
    });
    const decoder = new FrameDecoder();
    socket.on('data', (chunk) => {
      if (hs.done) return; // after the handshake: deaf and mute
      try {
        decoder.push(chunk, (body) => {
          const m = decodeMessage(body);
          if (m.type === MessageType.HANDSHAKE && !hs.done) {
            const reply = hs.receive(m.noise);
            if (reply) send({ type: MessageType.HANDSHAKE, noise: reply });
          }
        });
      } catch {
        // Broken on purpose: bad bytes are ignored, not refused.
      }
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('no address');
  return {
    port: a.port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
