/**
 * unixdgram ports over real sockets: bound through the native module, each datagram a test socket
 * sends is served as a udp one is (muxInput once, udp_recv_len cutting it), the reply goes to the
 * path the sender bound, an unbound sender is served but cannot be answered, a close unlinks the
 * path, and without the native module the bind fails (MPX_ERR_BIND) saying why.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { READABLE, type UnixSockets } from '@netplex/unix';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type Client, type InputBuffer, MultiplexServer, type Mux } from '../../src/index.js';
import { withTimeout } from '../helpers/client.js';
import { nativeOrSkip } from '../helpers/move.js';
import { startServer } from '../helpers/server.js';

const unix = nativeOrSkip('unixdgram ports');
const coreDir = fileURLToPath(new URL('../../', import.meta.url));

/** Echo answers each datagram with what it knows of the client, and logs it. */
class Echo extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    const text = input.takeAll().toString();
    this.log(2, `datagram ${JSON.stringify(text)} from ${client.peeraddr || '(unbound)'}`);
    client.write(`${client.proto} ${text} from ${client.peeraddr} to ${client.sockaddr}`);
  }
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'netplex-unixdgram-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A datagram socket of the test's, bound to `path` (or unbound), that waits for what comes. */
function peer(u: UnixSockets, path?: string) {
  const fd = path === undefined ? u.datagramSocket() : u.bindDatagram(path);
  if (fd < 0) throw new Error(`test socket failed: ${fd}`);
  const got: string[] = [];
  const waiters = new Set<() => void>();
  const buffer = Buffer.alloc(65536);
  const watcher = u.watch(fd, READABLE, () => {
    for (let r = u.receive(fd, buffer); typeof r !== 'number'; r = u.receive(fd, buffer))
      got.push(buffer.subarray(0, r.bytes).toString());
    for (const w of [...waiters]) w();
  });
  onTestFinished(() => {
    watcher.close();
    u.close(fd);
  });
  return {
    send: (to: string, text: string) =>
      expect(u.sendTo(fd, to, Buffer.from(text))).toBe(Buffer.byteLength(text)),
    next: (what: string) =>
      withTimeout(
        new Promise<string>((resolve) => {
          const check = () => {
            if (got.length === 0) return;
            waiters.delete(check);
            resolve(got.shift()!);
          };
          waiters.add(check);
          check();
        }),
        what,
      ),
  };
}

describe.runIf(unix)('unixdgram ports, through the native module', () => {
  it('serve each datagram with muxInput and answer the path it came from', async () => {
    const dir = tempDir();
    const path = join(dir, 'server.sock');
    const { server, logs } = await startServer(new Echo({ port: [`${path}|unixdgram`], log_level: 4 }));
    expect(server.addresses()).toEqual([{ proto: 'unix', path }]);
    expect(logs.messages).toContain(`Binding to ${path}|unixdgram`);
    const client = peer(unix!, join(dir, 'client.sock'));
    client.send(path, 'ping');
    expect(await client.next('the reply')).toBe(`unix ping from ${join(dir, 'client.sock')} to ${path}`);
    client.send(path, 'pong');
    expect(await client.next('the second reply')).toBe(
      `unix pong from ${join(dir, 'client.sock')} to ${path}`,
    );
    // Two datagrams, two clients, as Net::Server counts requests.
    expect(server.requests).toBe(2);
  });

  it('serve an unbound sender too, which cannot be answered', async () => {
    const dir = tempDir();
    const path = join(dir, 'server.sock');
    const { logs } = await startServer(new Echo({ port: [`${path}|unixdgram`], log_level: 4 }));
    peer(unix!).send(path, 'anonymous');
    await logs.waitFor((l) => l.msg === 'datagram "anonymous" from (unbound)', 'the datagram served');
    await logs.waitFor(
      (l) => String(l.msg).startsWith('reply to an unbound sender not sent'),
      'the debug line',
    );
  });

  it('cut datagrams to udp_recv_len, and take SOCK_DGRAM unix ports as unixdgram', async () => {
    const dir = tempDir();
    const path = join(dir, 'server.sock');
    await startServer(new Echo({ port: [`${path}|unix`], unix_type: 'SOCK_DGRAM', udp_recv_len: 3 }));
    const client = peer(unix!, join(dir, 'client.sock'));
    client.send(path, 'abcdef');
    expect(await client.next('the reply')).toMatch(/^unix abc from /);
  });

  it('replace a stale socket file, refuse a file that is no socket, and unlink the path on close', async () => {
    const dir = tempDir();
    const path = join(dir, 'server.sock');
    // A socket file left by a server that is gone.
    unix!.close(unix!.bindDatagram(path));
    expect(existsSync(path)).toBe(true);
    const { server } = await startServer(new Echo({ port: [`${path}|unixdgram`] }));
    const client = peer(unix!, join(dir, 'client.sock'));
    client.send(path, 'hi');
    expect(await client.next('the reply')).toMatch(/^unix hi /);
    await server.close();
    expect(existsSync(path)).toBe(false);

    const file = join(dir, 'plain-file');
    writeFileSync(file, '');
    const err = await new Echo({ port: [`${file}|unixdgram`], log_level: 0 })
      .start({ logDestination: { write: () => true } as unknown as NodeJS.WritableStream })
      .catch((e: unknown) => e);
    expect(String((err as Error).message)).toBe(
      `cannot bind ${file}|unixdgram: ${file} exists and is not a socket`,
    );
  });
});

describe('unixdgram ports without the native module', () => {
  it('fail to bind (MPX_ERR_BIND), saying why', () => {
    const dir = tempDir();
    const script = `
      import { MultiplexServer } from './src/index.ts';
      const server = new MultiplexServer({ port: ['${join(dir, 's.sock')}|unixdgram'], log_level: 0 });
      try { await server.start(); console.log('started'); } catch (err) { console.log(err.code + ' ' + err.message); }
    `;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: coreDir,
      encoding: 'utf8',
      env: { ...process.env, NETPLEX_NO_NATIVE: '1' },
      timeout: 30_000,
    });
    expect(child.signal, child.stderr).toBeNull();
    expect(child.stdout.trim()).toBe(
      `MPX_ERR_BIND cannot bind ${join(dir, 's.sock')}|unixdgram: unixdgram sockets need netplex's native module (Node's net and dgram modules have none), which is not available: disabled by NETPLEX_NO_NATIVE`,
    );
  });
});
