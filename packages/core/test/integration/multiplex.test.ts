import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { type Client, type InputBuffer, type Listener, MultiplexServer, type Mux } from '../../src/index.js';
import { deferred, TestClient, withTimeout } from '../helpers/client.js';
import { startServer } from '../helpers/server.js';

const local = { port: ['127.0.0.1:0'], log_level: 4 };

class Echo extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    client.write(input.takeAll());
  }
}

/** Records every hook call, in order, with whether the client was accepted. */
class Recorder extends MultiplexServer<{ n: number }> {
  events: string[] = [];
  closed = deferred();
  allow = true;
  override postAcceptHook(): void {
    this.events.push('postAcceptHook');
  }
  override allowDenyHook(): boolean {
    this.events.push('allowDenyHook');
    return this.allow;
  }
  override requestDeniedHook(client: Client<{ n: number }>): void {
    this.events.push('requestDeniedHook');
    client.print('Go away!\n');
  }
  override muxConnection(_mux: Mux<{ n: number }>, client: Client<{ n: number }>): void {
    this.events.push('muxConnection');
    client.state = { n: 0 };
  }
  override muxInput(_mux: Mux<{ n: number }>, client: Client<{ n: number }>, input: InputBuffer): void {
    for (const line of input.lines()) {
      this.events.push(`muxInput:${line}`);
      client.print(`got ${line}\n`);
    }
  }
  override muxEof(_mux: Mux<{ n: number }>, client: Client<{ n: number }>, input: InputBuffer): void {
    this.events.push(`muxEof:${client.accepted ? 'client' : 'listener'}:${input.text()}`);
    if (client.accepted) client.print('bye\n');
  }
  override postProcessRequestHook(): void {
    this.events.push('postProcessRequestHook');
  }
  override muxClose(_mux: Mux<{ n: number }>, client: Client<{ n: number }>): void {
    this.events.push(`muxClose:${client.accepted ? 'client' : 'listener'}`);
    this.closed.resolve();
  }
}

describe('the client flow', () => {
  it('echoes bytes exactly, binary included', async () => {
    const { port } = await startServer(new Echo(local));
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    const payload = Buffer.from([0, 1, 2, 255, 13, 10, 0xc3, 0x28, 65]);
    c.send(payload);
    await c.waitBytes(payload.length);
    expect(c.received).toEqual(payload);
    c.destroy();
  });

  it('runs the hooks of an accepted client in the seed order, with leftover input at eof', async () => {
    const srv = new Recorder(local);
    const { port } = await startServer(srv);
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    c.send('one\ntwo\npart');
    await c.waitFor('got two\n');
    c.end();
    await c.waitClosed();
    await withTimeout(srv.closed.promise, 'muxClose');
    expect(c.text).toBe('got one\ngot two\nbye\n');
    expect(srv.events).toEqual([
      'postAcceptHook',
      'allowDenyHook',
      'muxConnection',
      'muxInput:one',
      'muxInput:two',
      'muxEof:client:part',
      'postProcessRequestHook',
      'muxClose:client',
    ]);
  });

  it('refuses a denied client: requestDeniedHook, no muxConnection or muxInput, eof and close on the listener object', async () => {
    const srv = new Recorder(local);
    srv.allow = false;
    const { port } = await startServer(srv);
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    c.send('hello\n');
    await c.waitClosed();
    await withTimeout(srv.closed.promise, 'muxClose');
    expect(c.text).toBe('Go away!\n');
    expect(srv.events).toEqual([
      'postAcceptHook',
      'allowDenyHook',
      'requestDeniedHook',
      'muxEof:listener:',
      'postProcessRequestHook',
      'muxClose:listener',
    ]);
  });

  it('applies cidr_deny before allowDenyHook runs', async () => {
    const srv = new Recorder({ ...local, cidr_deny: ['127.0.0.0/8'] });
    const { port, logs } = await startServer(srv);
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    await c.waitClosed();
    await withTimeout(srv.closed.promise, 'muxClose');
    expect(srv.events).not.toContain('allowDenyHook');
    expect(srv.events).toContain('requestDeniedHook');
    expect(logs.messages.some((m) => m.startsWith('Denied client'))).toBe(true);
  });

  it('gives each client its connection number, peer and local addresses', async () => {
    const seen: Array<Pick<Client, 'id' | 'peeraddr' | 'peerport' | 'sockaddr' | 'sockport'>> = [];
    class Info extends Echo {
      override muxConnection(_mux: Mux, client: Client): void {
        seen.push({
          id: client.id,
          peeraddr: client.peeraddr,
          peerport: client.peerport,
          sockaddr: client.sockaddr,
          sockport: client.sockport,
        });
        client.print('hi\n');
      }
    }
    const { port } = await startServer(new Info(local));
    const a = await TestClient.connect({ port, host: '127.0.0.1' });
    await a.waitFor('hi');
    const b = await TestClient.connect({ port, host: '127.0.0.1' });
    await b.waitFor('hi');
    expect(seen).toEqual([
      { id: 1, peeraddr: '127.0.0.1', peerport: a.socket.localPort, sockaddr: '127.0.0.1', sockport: port },
      { id: 2, peeraddr: '127.0.0.1', peerport: b.socket.localPort, sockaddr: '127.0.0.1', sockport: port },
    ]);
    a.destroy();
    b.destroy();
  });

  it('counts the connected clients in mux.count, a denied one not included', async () => {
    const counts: number[] = [];
    class Counted extends Echo {
      override allowDenyHook(client: Client): boolean {
        return client.id !== 2;
      }
      override muxConnection(mux: Mux, client: Client): void {
        counts.push(mux.count);
        client.print('in\n');
      }
    }
    const { port } = await startServer(new Counted(local));
    const a = await TestClient.connect({ port, host: '127.0.0.1' });
    await a.waitFor('in');
    const denied = await TestClient.connect({ port, host: '127.0.0.1' });
    await denied.waitClosed();
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    await c.waitFor('in');
    expect(counts).toEqual([1, 2]);
    a.destroy();
    c.destroy();
  });

  it('shows an IPv4 client of a dual-stack socket as plain IPv4, with the address it reached', async () => {
    const peers: string[][] = [];
    class Peer extends Echo {
      override muxConnection(_mux: Mux, client: Client): void {
        peers.push([client.peeraddr, client.sockaddr]);
        client.print('ok\n');
      }
    }
    const { port } = await startServer(new Peer({ port: ['[::]:0'], log_level: 0 }));
    const v4 = await TestClient.connect({ port, host: '127.0.0.1' });
    await v4.waitFor('ok');
    const v6 = await TestClient.connect({ port, host: '::1' });
    await v6.waitFor('ok');
    expect(peers).toEqual([
      ['127.0.0.1', '127.0.0.1'],
      ['::1', '::1'],
    ]);
    v4.destroy();
    v6.destroy();
  });

  it('gives each client the local address and port of the listener it came through', async () => {
    const seen: string[] = [];
    class Local extends Echo {
      override muxConnection(_mux: Mux, client: Client): void {
        seen.push(`${client.sockaddr} ${client.sockport} ${client.listener}`);
        client.print('ok\n');
      }
    }
    const { server } = await startServer(new Local({ port: ['127.0.0.1:0', '[::1]:0'], log_level: 0 }));
    const [v4addr, v6addr] = server.addresses().map((a) => ('port' in a ? a : undefined));
    const v4 = await TestClient.connect({ port: v4addr!.port, host: '127.0.0.1' });
    await v4.waitFor('ok');
    const v6 = await TestClient.connect({ port: v6addr!.port, host: '::1' });
    await v6.waitFor('ok');
    expect(seen).toEqual([
      `127.0.0.1 ${v4addr!.port} 127.0.0.1:${v4addr!.port}/tcp`,
      `::1 ${v6addr!.port} [::1]:${v6addr!.port}/tcp`,
    ]);
    v4.destroy();
    v6.destroy();
  });

  it('serves a half-closed client its answers, then closes', async () => {
    const { port } = await startServer(new Echo(local));
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    c.send('last words');
    c.end();
    await c.waitClosed();
    expect(c.text).toBe('last words');
  });
});

describe('reverse lookups', () => {
  it('knows the peer host name before postAcceptHook, and allow/deny rules match it', async () => {
    const seen: Array<string | undefined> = [];
    class Named extends Echo {
      override postAcceptHook(client: Client): void {
        seen.push(client.peerhost);
      }
    }
    const { port } = await startServer(new Named({ ...local, reverse_lookups: true, allow: ['localhost'] }));
    const ok = await TestClient.connect({ port, host: '127.0.0.1' });
    ok.send('named');
    await ok.waitFor('named');
    expect(seen).toEqual(['localhost']);
    ok.destroy();

    const denied = new Recorder({ ...local, reverse_lookups: 'double', deny: ['localhost'] });
    const { port: p2 } = await startServer(denied);
    const c = await TestClient.connect({ port: p2, host: '127.0.0.1' });
    await c.waitClosed();
    expect(c.text).toBe('Go away!\n');
  });
});

describe('logging', () => {
  it('routes every log line to writeToLogHook when the server defines it', async () => {
    const lines: Array<[number, string]> = [];
    class Routed extends Echo {
      override writeToLogHook(level: 0 | 1 | 2 | 3 | 4, message: string): void {
        lines.push([level, message]);
      }
    }
    const srv = new Routed({ port: ['127.0.0.1:0'], log_level: 2 });
    await srv.start({ argv: [] });
    srv.log(1, 'custom warning');
    await srv.close();
    expect(lines).toContainEqual([1, 'custom warning']);
    expect(lines.some(([level, m]) => level === 2 && m.startsWith('Binding to 127.0.0.1:'))).toBe(true);
  });
});

describe('async hooks', () => {
  it('delivers input that arrives during a pending hook after it, while other clients are served', async () => {
    const gate = deferred();
    const order: string[] = [];
    class Slow extends MultiplexServer {
      override async muxConnection(_mux: Mux, client: Client): Promise<void> {
        if (client.id === 1) await gate.promise;
        order.push(`connected ${client.id}`);
      }
      override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
        const text = input.takeAll().toString();
        order.push(`input ${client.id} ${text}`);
        client.print(`echo ${text}`);
      }
    }
    const { port } = await startServer(new Slow(local));
    const a = await TestClient.connect({ port, host: '127.0.0.1' });
    a.send('early');
    const b = await TestClient.connect({ port, host: '127.0.0.1' });
    b.send('fast');
    await b.waitFor('echo fast');
    expect(a.text).toBe('');
    gate.resolve();
    await a.waitFor('echo early');
    expect(order).toEqual(['connected 2', 'input 2 fast', 'connected 1', 'input 1 early']);
    a.destroy();
    b.destroy();
  });

  it('keeps one connection in order across async muxInput calls', async () => {
    class AsyncLines extends MultiplexServer {
      override async muxInput(_mux: Mux, client: Client, input: InputBuffer): Promise<void> {
        for (const line of input.lines()) {
          await new Promise((r) => setImmediate(r));
          client.print(`${line}\n`);
        }
      }
    }
    const { port } = await startServer(new AsyncLines(local));
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i}`);
    for (const l of lines) c.send(`${l}\n`);
    await c.waitFor('line 199\n');
    expect(c.text).toBe(lines.map((l) => `${l}\n`).join(''));
    c.destroy();
  });
});

describe('error isolation', () => {
  for (const mode of ['throws', 'rejects'] as const) {
    it(`a hook that ${mode} costs only that connection, muxClose still runs, and the log names the client`, async () => {
      const closedIds: number[] = [];
      class Fragile extends MultiplexServer {
        override muxInput(_mux: Mux, client: Client, input: InputBuffer): void | Promise<void> {
          const text = input.takeAll().toString();
          if (text.includes('boom')) {
            if (mode === 'throws') throw new Error('kaboom');
            return Promise.reject(new Error('kaboom'));
          }
          client.print(text);
        }
        override muxClose(_mux: Mux, client: Client): void {
          closedIds.push(client.id);
        }
      }
      const { port, logs } = await startServer(new Fragile(local));
      const bad = await TestClient.connect({ port, host: '127.0.0.1' });
      const good = await TestClient.connect({ port, host: '127.0.0.1' });
      bad.send('boom');
      await bad.waitClosed();
      good.send('still here');
      await good.waitFor('still here');
      const line = logs.lines.find((l) => String(l.msg).includes('kaboom'));
      expect(line, 'a log line about the failed hook').toBeDefined();
      expect(line?.peer).toBe('127.0.0.1');
      expect(String(line?.msg)).toContain('muxInput');
      expect(closedIds).toContain(1);
      good.destroy();
    });
  }

  it('a throwing muxConnection disconnects that client only', async () => {
    class BadConnect extends Echo {
      override muxConnection(_mux: Mux, client: Client): void {
        if (client.id === 1) throw new TypeError('no state for you');
      }
    }
    const { port } = await startServer(new BadConnect(local));
    const a = await TestClient.connect({ port, host: '127.0.0.1' });
    await a.waitClosed();
    const b = await TestClient.connect({ port, host: '127.0.0.1' });
    b.send('ok');
    await b.waitFor('ok');
    b.destroy();
  });
});

describe('bounds', () => {
  it('disconnects a client whose unconsumed input passes max_input_buffer; others go on', async () => {
    class Hoarder extends MultiplexServer {
      override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
        if (input.text().startsWith('echo')) client.write(input.takeAll());
      }
    }
    const { port, logs } = await startServer(new Hoarder({ ...local, max_input_buffer: 1000 }));
    const flood = await TestClient.connect({ port, host: '127.0.0.1' });
    const other = await TestClient.connect({ port, host: '127.0.0.1' });
    flood.send(Buffer.alloc(5000, 'x'));
    await flood.waitClosed();
    other.send('echo me');
    await other.waitFor('echo me');
    expect(logs.lines.some((l) => l.limit === 'max_input_buffer')).toBe(true);
    other.destroy();
  });

  it('disconnects a client that does not read once its unsent output passes max_output_buffer', async () => {
    class Firehose extends MultiplexServer {
      override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
        input.clear();
        const chunk = Buffer.alloc(64 * 1024, 'y');
        for (let i = 0; i < 200 && client.open; i++) client.write(chunk);
      }
    }
    const { port, logs } = await startServer(new Firehose({ ...local, max_output_buffer: 256 * 1024 }));
    const slow = await TestClient.connect({ port, host: '127.0.0.1' });
    slow.socket.pause();
    slow.send('go');
    await logs.waitFor((l) => l.limit === 'max_output_buffer', 'a max_output_buffer log line');
    slow.socket.resume();
    await slow.waitClosed();
    expect(slow.received.length).toBeLessThan(200 * 64 * 1024);
  });

  it('logs a flood of connections refused at max_connections in a few lines, counted, and goes on serving', async () => {
    const { port, logs } = await startServer(new Echo({ ...local, max_connections: 1 }));
    const witness = await TestClient.connect({ port, host: '127.0.0.1' });
    witness.send('before\n');
    await witness.waitFor('before\n');
    const flood = 300;
    const refused = await Promise.all(
      Array.from({ length: flood }, () =>
        TestClient.connect({ port, host: '127.0.0.1' }).then(
          (c) => c.waitClosed().then(() => c),
          () => undefined,
        ),
      ),
    );
    expect(refused.filter((c) => c !== undefined && c.text !== '')).toEqual([]);
    witness.send('during\n');
    await witness.waitFor('before\nduring\n');
    const lines = () => logs.lines.filter((l) => String(l.msg).startsWith('max_connections (1) reached'));
    const counted = () => lines().reduce((n, l) => n + (typeof l.refused === 'number' ? l.refused : 1), 0);
    await logs.waitFor(() => counted() === flood, `log lines counting all ${flood} refused connections`);
    // One line at once, then at most one a second with the count.
    expect(lines().length).toBeLessThanOrEqual(4);
    expect(String(lines()[0]!.msg)).toBe('max_connections (1) reached: refusing 127.0.0.1');
    witness.send('after\n');
    await witness.waitFor('before\nduring\nafter\n');
    witness.destroy();
  });

  it('refuses connections past max_connections', async () => {
    const { port } = await startServer(new Echo({ ...local, max_connections: 1 }));
    const a = await TestClient.connect({ port, host: '127.0.0.1' });
    a.send('a');
    await a.waitFor('a');
    const b = await TestClient.connect({ port, host: '127.0.0.1' });
    await b.waitClosed();
    expect(b.text).toBe('');
    a.destroy();
  });
});

describe('timeouts and dequeue', () => {
  it('fires fractional client and listener timeouts alongside check_for_dequeue', async () => {
    const fired: string[] = [];
    const enough = deferred();
    class Timed extends Echo {
      dequeues = 0;
      override preLoopHook(): void {
        this.mux.setTimeout(this.listeners[0]!, 0.05);
      }
      override muxConnection(mux: Mux, client: Client): void {
        mux.setTimeout(client, 0.1);
      }
      override muxTimeout(_mux: Mux, target: Client | Listener): void {
        fired.push(target.kind);
        if (target.kind === 'client') target.print('tick\n');
      }
      override runDequeue(): void {
        this.dequeues++;
        if (this.dequeues >= 3) enough.resolve();
      }
    }
    const srv = new Timed({ ...local, check_for_dequeue: 0.02 });
    const { port } = await startServer(srv);
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    await c.waitFor('tick\n');
    await withTimeout(enough.promise, '3 runDequeue calls');
    expect(fired).toEqual(['listener', 'client']);
    c.destroy();
  });

  it('clears a timeout with null and replaces one set again', async () => {
    class Replace extends Echo {
      fired = 0;
      override muxConnection(mux: Mux, client: Client): void {
        mux.setTimeout(client, 0.05);
        mux.setTimeout(client, null);
        mux.setTimeout(client, 0.1);
        mux.setTimeout(client, 0.02);
      }
      override muxTimeout(mux: Mux, target: Client | Listener): void {
        if (target.kind !== 'client') return;
        this.fired++;
        target.print(`t${this.fired}\n`);
        // The second timeout comes after the replaced 0.05 s and 0.1 s ones would have fired.
        if (this.fired === 1) mux.setTimeout(target, 0.15);
      }
    }
    const { port } = await startServer(new Replace(local));
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    await c.waitFor('t2\n');
    expect(c.text).toBe('t1\nt2\n');
    c.destroy();
  });
});

describe('endloop', () => {
  it('stops the server: listeners close, clients get their output, close hooks run in order', async () => {
    const order: string[] = [];
    class Stopper extends MultiplexServer {
      override muxInput(mux: Mux, client: Client, input: InputBuffer): void {
        if (input.takeAll().toString().includes('stop')) {
          client.print('stopping\n');
          mux.endloop();
        }
      }
      override preServerCloseHook(): void {
        order.push('preServerCloseHook');
      }
      override muxClose(): void {
        order.push('muxClose');
      }
      override postChildCleanupHook(): void {
        order.push('postChildCleanupHook');
      }
    }
    const srv = new Stopper(local);
    const { port } = await startServer(srv);
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    c.send('stop');
    await c.waitClosed();
    await withTimeout(srv.done, 'the server to finish');
    expect(c.text).toBe('stopping\n');
    expect(order).toEqual(['preServerCloseHook', 'muxClose', 'postChildCleanupHook']);
    await expect(
      new Promise((resolve, reject) => {
        const s = net.connect({ port, host: '127.0.0.1' });
        s.on('connect', () => resolve('connected'));
        s.on('error', reject);
      }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
