/** Starting servers in-process for tests, on port 0, with their log lines captured as JSON. */
import { Writable } from 'node:stream';
import { onTestFinished } from 'vitest';
import type { AnyMultiplexServer } from '../../src/index.js';

/** LogSink collects a server's JSON log lines. */
export class LogSink extends Writable {
  lines: Array<Record<string, unknown>> = [];
  #waiters = new Set<() => void>();
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    for (const w of [...this.#waiters]) w();
    done();
  }
  /** waitFor resolves once a line matching `pred` has been logged, failing after `ms`. */
  waitFor(pred: (line: Record<string, unknown>) => boolean, what: string, ms = 5000): Promise<void> {
    if (this.lines.some(pred)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.lines.some(pred)) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `timed out after ${ms} ms waiting for ${what}; logged: ${JSON.stringify(this.messages.slice(-10))}`,
          ),
        );
      }, ms);
      this.#waiters.add(check);
    });
  }
  /** messages lists each line's msg. */
  get messages(): string[] {
    return this.lines.map((l) => String(l.msg));
  }
}

/** startServer starts `server` on its configured ports and closes it when the test ends. */
export async function startServer<T extends AnyMultiplexServer>(
  server: T,
  argv: string[] = [],
): Promise<{ server: T; port: number; logs: LogSink }> {
  const logs = new LogSink();
  onTestFinished(() => server.close());
  await server.start({ argv, logDestination: logs });
  const first = server.addresses()[0];
  const port = first && 'port' in first ? first.port : 0;
  return { server, port, logs };
}
