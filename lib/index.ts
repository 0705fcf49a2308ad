/** Public exports of aethel-p2p. Everything else is internal. */
export { P2PNetwork } from './network.js';
export type {
  PeerInfo, PeerState, HealthSnapshot, MessageHandler, P2PNetworkEvents,
  StartResult, SendOptions, DialFailure, DisconnectDetail, DisconnectCode, AdmissionStats,
} from './network.js';
export type { DeliveryInfo } from './gossip/engine.js';
export { DEFAULTS } from './options.js';
export type { P2PNetworkOptions } from './options.js';
export type { RetryConfig } from './retry/backoff.js';
export { SCORING_DEFAULTS } from './peers/peer-ledger.js';
export type { ScoringOptions, PeerSnapshot, PeerCounters, Verdict } from './peers/peer-ledger.js';
export type { MetricsSnapshot } from './metrics.js';
export { PROMETHEUS_CONTENT_TYPE } from './metrics-text.js';
export { P2PError, InvalidOptionError, ProtocolError, ERROR_CODES } from './errors.js';
export type { ErrorCode } from './errors.js';
export { generateIdentity, identityFromSeed, loadIdentity, saveIdentity, nodeIdOf } from './identity.js';
export type { Identity } from './identity.js';
export type { Clock, TimerHandle } from './clock.js';
export { createTestnet, LOOPBACK_ALLOWLIST } from './testnet.js';
export type { Testnet, TestnetOptions } from './testnet.js';
// Wire layer, for conformance tests, dump tools and other implementations.
export { FrameDecoder, encodeFrame, frameHeader, DEFAULT_MAX_FRAME_BYTES } from './wire/frame.js';
export { encodeMessage, decodeMessage } from './wire/codec.js';
export { MessageType, GoodbyeCode, PROTOCOL_VERSION, LIMITS } from './wire/messages.js';
export type { Message } from './wire/messages.js';
export { gossipMessageId } from './gossip/message-id.js';
export { SessionHandshake, NOISE_PROLOGUE, STATIC_KEY_TAG } from './transport/handshake.js';
