/**
 * One error class for the whole library, with stable string codes that callers and tests
 * match on. Caller misuse throws synchronously; a misbehaving peer never throws out of the
 * data path: its connection is closed and the error is reported through events and metrics.
 */

/** Every error code this library produces. Listed, with meaning, in docs/API.md. */
export const ERROR_CODES = [
  // caller misuse
  'INVALID_OPTION',
  'INVALID_ARGUMENT',
  'NOT_STARTED',
  'STOPPED',
  'IDENTITY_FILE',
  // delivery
  'PEER_UNREACHABLE',
  'NOT_CONNECTED',
  'QUEUE_FULL',
  'TIMEOUT',
  'CONNECTION_CLOSED',
  'NO_HANDLER',
  'HANDLER_FAILED',
  'ABORTED',
  // start()
  'LISTEN_FAILED',
  'BOOTSTRAP_FAILED',
  // protocol errors caused by a peer's bytes
  'FRAME_EMPTY',
  'FRAME_TOO_LARGE',
  'MALFORMED',
  'UNKNOWN_TYPE',
  'SCHEMA',
  'UNEXPECTED_MESSAGE',
  'VERSION_MISMATCH',
  'NETWORK_MISMATCH',
  'BAD_SIGNATURE',
  'HANDSHAKE_TIMEOUT',
  'SELF_CONNECTION',
  'DUPLICATE_CONNECTION',
  'ENCRYPTION_MISMATCH',
  'BAD_RECORD',
  'NOISE_HANDSHAKE',
  'BANNED',
  // admission: refused or closed by the node's connection limits
  'NOT_MEMBER',
  'TOO_MANY_PEERS',
  'EVICTED',
  // a bug of ours reached while handling a peer's message: only that connection is closed
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class P2PError extends Error {
  /** Stable machine-readable code; never changes meaning between versions. */
  readonly code: ErrorCode;
  /** For errors from the operating system (LISTEN_FAILED, dial failures): its code, e.g. 'EADDRINUSE'. */
  syscallCode?: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'P2PError';
    this.code = code;
  }

  static invalidArgument(what: string): P2PError {
    return new P2PError('INVALID_ARGUMENT', what);
  }

  /** The caller's AbortSignal fired; `cause` is the signal's reason. */
  static aborted(what: string, reason?: unknown): P2PError {
    return new P2PError('ABORTED', `${what} aborted`, { cause: reason });
  }

  /**
   * The listening socket could not be opened. The operating system's code (EADDRINUSE,
   * EACCES, EADDRNOTAVAIL) is kept in `syscallCode` and in the message, once.
   */
  static listenFailed(host: string, port: number, err: unknown): P2PError {
    const sys = (err as { code?: unknown } | null)?.code;
    const code = typeof sys === 'string' ? sys : undefined;
    const why = code ? (LISTEN_PROBLEMS[code] ?? code) : (err instanceof Error ? err.message : String(err));
    const e = new P2PError('LISTEN_FAILED', `cannot listen on ${host}:${port}: ${why}${code && LISTEN_PROBLEMS[code] ? ` (${code})` : ''}`, { cause: err });
    if (code) e.syscallCode = code;
    return e;
  }

  static peerUnreachable(peer: string, attempts: number, cause?: unknown): P2PError {
    return new P2PError(
      'PEER_UNREACHABLE',
      `peer ${peer.slice(0, 16)} unreachable after ${attempts} attempt(s)`,
      { cause },
    );
  }
}

/** Plain words for the listen errors people meet. */
const LISTEN_PROBLEMS: Readonly<Record<string, string>> = Object.freeze({
  EADDRINUSE: 'the port is already in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'this machine has no such address',
});

/** Thrown by option validation; `field` names the offending option (dotted for nested). */
export class InvalidOptionError extends P2PError {
  readonly field: string;

  constructor(field: string, problem: string) {
    super('INVALID_OPTION', `invalid option ${field}: ${problem}`);
    this.name = 'InvalidOptionError';
    this.field = field;
  }
}

/** An error caused by the bytes a peer sent. Closes that peer's connection, nothing else. */
export class ProtocolError extends P2PError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}
