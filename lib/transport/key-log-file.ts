/**
 * The key log file (the keyLog option): one line per session, appended, created with mode
 * 0600 because whoever reads it can decrypt those sessions. Writes are asynchronous and in
 * order; a file that cannot be written stops the log (reported once through onError), never
 * the node.
 */
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';

export class KeyLogFile {
  private stream: WriteStream | undefined;

  constructor(readonly path: string, onError: (err: Error) => void) {
    const stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
    stream.once('error', (err) => {
      this.stream = undefined;
      stream.destroy();
      onError(err);
    });
    this.stream = stream;
  }

  /** Append one session's line. */
  readonly line = (text: string): void => {
    this.stream?.write(`${text}\n`);
  };

  /** Flush and close; idempotent. */
  close(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    if (!stream) return Promise.resolve();
    return new Promise((resolve) => stream.end(() => resolve()));
  }
}
