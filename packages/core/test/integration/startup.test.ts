/**
 * Connections that arrive while the start-up hooks await (a database connect in preLoopHook, a
 * slow postBindHook), in-process: they wait and are served, in order, once the loop starts; they
 * count against max_connections; if the start fails they are closed, counted in one log line.
 */
import { describe, expect, it } from 'vitest';
import { type Client, type InputBuffer, MultiplexServer, type Mux } from '../../src/index.js';
import { deferred, TestClient, withTimeout } from '../helpers/client.js';
import { LogSink } from '../helpers/server.js';

/** Gated's preLoopHook awaits `gate` (and then throws when `fail` is set); its postBindHook says `bound`. */
class Gated extends MultiplexServer {
  readonly gate = deferred();
  readonly bound = deferred();
  fail = false;
  override async postBindHook(): Promise<void> {
    this.bound.resolve();
    await new Promise((r) => setImmediate(r));
  }
  override async preLoopHook(): Promise<void> {
    await this.gate.promise;
    if (this.fail) throw new Error('database unreachable');
  }
  override muxConnection(_mux: Mux, client: Client): void {
    client.print(`hello ${client.id}\n`);
  }
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    for (const line of input.lines()) client.print(`echo ${line}\n`);
  }
}

/** starting starts `server` without waiting for it, and resolves once its ports are bound. */
async function starting(server: Gated, argv: string[] = []) {
  const logs = new LogSink();
  const started = server.start({
    argv: ['--port=127.0.0.1:0', '--log_level=3', ...argv],
    logDestination: logs,
  });
  started.catch(() => {});
  await withTimeout(server.bound.promise, 'postBindHook');
  const first = server.addresses()[0];
  const port = first && 'port' in first ? first.port : 0;
  return { started, logs, port };
}

describe('connections that arrive during the start-up hooks', () => {
  it('are served in the order they came once preLoopHook resolves, with what they sent meanwhile', async () => {
    const server = new Gated();
    const { started, port } = await starting(server);
    try {
      const clients: TestClient[] = [];
      for (let i = 0; i < 3; i++) {
        const c = await TestClient.connect({ port, host: '127.0.0.1' });
        c.send(`early ${i}\n`);
        clients.push(c);
      }
      // One that gives up while it waits is skipped without harm to the others.
      const quitter = await TestClient.connect({ port, host: '127.0.0.1' });
      quitter.socket.resetAndDestroy();
      await quitter.until((c) => c.closed, 'the reset to complete');
      expect(server.state).toBe('starting');
      expect(clients.every((c) => c.received.length === 0)).toBe(true);
      server.gate.resolve();
      await withTimeout(started, 'the start to finish');
      for (const [i, c] of clients.entries()) {
        await c.waitFor(`echo early ${i}\n`);
        expect(c.text).toBe(`hello ${i + 1}\necho early ${i}\n`);
        expect(c.closed).toBe(false);
      }
      for (const c of clients) c.destroy();
    } finally {
      server.gate.resolve();
      await server.close();
    }
  });

  it('count against max_connections: one past it is closed at once, the others are served', async () => {
    const server = new Gated();
    const { started, port } = await starting(server, ['--max_connections=2']);
    try {
      const a = await TestClient.connect({ port, host: '127.0.0.1' });
      const b = await TestClient.connect({ port, host: '127.0.0.1' });
      const c = await TestClient.connect({ port, host: '127.0.0.1' });
      await c.waitClosed();
      expect(c.received.length).toBe(0);
      server.gate.resolve();
      await withTimeout(started, 'the start to finish');
      await a.waitFor('hello 1\n');
      await b.waitFor('hello 2\n');
      a.destroy();
      b.destroy();
    } finally {
      server.gate.resolve();
      await server.close();
    }
  });

  it('are closed, counted in one log line, when the start fails', async () => {
    const server = new Gated();
    server.fail = true;
    const { started, logs, port } = await starting(server);
    const clients = [];
    for (let i = 0; i < 3; i++) clients.push(await TestClient.connect({ port, host: '127.0.0.1' }));
    server.gate.resolve();
    await expect(started).rejects.toThrow('database unreachable');
    for (const c of clients) {
      await c.waitClosed();
      expect(c.received.length).toBe(0);
    }
    const lines = logs.messages.filter((m) => m.includes('arrived before the server was ready'));
    expect(lines).toEqual([
      'closed 3 connections that arrived before the server was ready: the start failed',
    ]);
  });
});
