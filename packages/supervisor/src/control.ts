/**
 * control — the supervisor's control socket: a unix socket beside the pid file, readable and
 * writable by its owner only, speaking one JSON object per line. `netplex status`, `reload --wait`
 * and `stop` use it.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { CONTROL_ANSWER_TIMEOUT_MS } from './defaults.js';
import { SupervisorError } from './errors.js';

/** ControlRequest is what a client asks. */
export type ControlRequest = { cmd: 'status' } | { cmd: 'reload' } | { cmd: 'stop'; graceful?: boolean };

/** ControlHandler answers one request. */
export type ControlHandler = (req: ControlRequest) => Promise<unknown>;

/** controlPathFor names the control socket of a pid file. */
export function controlPathFor(pidFile: string): string {
  return `${pidFile}.sock`;
}

/** serveControl listens on `path` and answers requests with `handler`. */
export async function serveControl(path: string, handler: ControlHandler): Promise<net.Server> {
  if (existsSync(path)) unlinkSync(path);
  const server = net.createServer((socket) => {
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 64 * 1024) {
        socket.destroy();
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      const line = buf.slice(0, nl);
      buf = '';
      let req: ControlRequest;
      try {
        req = JSON.parse(line) as ControlRequest;
        if (!['status', 'reload', 'stop'].includes((req as { cmd?: string }).cmd ?? ''))
          throw new Error('unknown cmd');
      } catch {
        socket.end(
          `${JSON.stringify({ ok: false, error: 'bad request: expected {"cmd":"status"|"reload"|"stop"}' })}\n`,
        );
        return;
      }
      handler(req).then(
        (res) => socket.end(`${JSON.stringify(res)}\n`),
        (err: Error) => socket.end(`${JSON.stringify({ ok: false, error: err.message })}\n`),
      );
    });
  });
  // Owner-only from the first instant: the umask applies while the socket file is created.
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);
  server.unref();
  return server;
}

/** askControl sends one request to a supervisor's control socket and returns its answer. */
export function askControl<T = unknown>(
  path: string,
  req: ControlRequest,
  timeoutMs = CONTROL_ANSWER_TIMEOUT_MS,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new SupervisorError('SUP_ERR_CONTROL', `no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on('data', (d: string) => {
      buf += d;
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as T);
      } catch {
        reject(
          new SupervisorError(
            'SUP_ERR_CONTROL',
            `unreadable answer from ${path}: ${JSON.stringify(buf.slice(0, 200))}`,
          ),
        );
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new SupervisorError(
          'SUP_ERR_CONTROL',
          err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
            ? `no supervisor is listening on ${path} (is the server running, with this pid_file?)`
            : `${path}: ${err.message}`,
          { cause: err },
        ),
      );
    });
  });
}
