/**
 * The migration state machine of the worker being replaced (migration/migrate-out.ts, freeze.ts,
 * move-state.ts), driven through WorkerHost.migrateOut with a fake MigrationChannel: a real server
 * in this process, real TCP clients on 127.0.0.1, every move state change recorded.
 *
 * With a fake channel no socket handle reaches another process: a released connection's socket is
 * destroyed here and its client sees it close. For released connections the tests check the states
 * and what the channel received; for connections that stay, what their client is served.
 */
import { describe, expect, it } from 'vitest';
import { workerHost } from '../../src/internal.js';
import { FLUSH_MS, SETTLE_MS } from '../../src/migration/freeze.js';
import { MIGRATION_WINDOW_MAX, MIGRATION_WINDOW_MIN, MoveWindow } from '../../src/migration/migrate-out.js';
import { type MoveState, MoveTracker, moveTransitions } from '../../src/migration/move-state.js';
import { deferred, withTimeout } from '../helpers/client.js';
import {
  allLogs,
  FakeChannel,
  MoveServer,
  observedPairs,
  pattern,
  startMoveServer,
  wrongChanges,
} from '../helpers/migration.js';

/** The path of a connection that moves at once. */
const MOVED: MoveState[] = ['queued', 'stopped', 'frozen', 'capturing', 'sent', 'released'];

/** More than a loopback socket and the kernel buffers hold while the client does not read. */
const BIG = 16 * 1024 * 1024;
const bigOptions = { max_output_buffer: 64 * 1024 * 1024 };

describe('migrateOut: the connections of the worker being replaced', () => {
  it('moves an idle connection: state, then the connection, then its release', async () => {
    const h = await startMoveServer();
    const before = Date.now();
    const [p] = await h.connect(1);
    const after = Date.now();
    p!.send('hello\n');
    await p!.waitFor('hello\n');

    const counts = await h.finish(h.migrate());

    expect(counts).toMatchObject({ migrated: 1, drained: 0, failed: 0 });
    expect(h.moves.path(1)).toEqual(MOVED);
    expect(h.channel.calls).toEqual(['state', 'conn #1', 'released #1']);
    expect(h.channel.states).toEqual([{ requests: 1, custom: { rooms: ['lobby'] } }]);
    const frozen = h.channel.frozen(1);
    expect(frozen).toEqual({
      id: 1,
      proto: 'tcp',
      peeraddr: '127.0.0.1',
      peerport: p!.socket.localPort,
      sockaddr: '127.0.0.1',
      sockport: h.port,
      listener: h.srv.client(1).listener,
      peerhost: undefined,
      connectedAt: h.srv.client(1).connectedAt.getTime(),
      state: { n: 1, by: 'muxFreeze' },
    });
    expect(frozen.connectedAt).toBeGreaterThanOrEqual(before - 1);
    expect(frozen.connectedAt).toBeLessThanOrEqual(after + 1);
    expect(h.channel.handles[0]).toBeTypeOf('object');
    expect(h.channel.releases).toEqual([{ id: 1, output: Buffer.alloc(0), end: undefined }]);
    // Released: no longer this worker's, and its close is not run here.
    expect(h.srv.status().connections).toBe(0);
    await p!.waitClosed();
    expect(h.srv.events).not.toContain('muxClose #1');
    expect(h.moves.wrong).toEqual([]);
  });

  it('sends the input muxInput left unconsumed, base64, in frozen.input', async () => {
    const h = await startMoveServer();
    const [p] = await h.connect(1);
    const partial = Buffer.from([0x70, 0x61, 0x72, 0x74, 0x00, 0xff, 0xc3]);
    p!.send(Buffer.concat([Buffer.from('whole\n'), partial]));
    await p!.waitFor('whole\n');

    const counts = await h.finish(h.migrate());

    expect(counts).toMatchObject({ migrated: 1, drained: 0, failed: 0 });
    expect(h.moves.path(1)).toEqual(MOVED);
    const frozen = h.channel.frozen(1);
    expect(frozen.input).toBe(partial.toString('base64'));
    expect(frozen.output).toBeUndefined();
  });

  it.each([
    ['answers false', () => Promise.resolve(false)],
    [
      'throws',
      () => {
        throw new Error('no worker');
      },
    ],
    ['rejects', () => Promise.reject(new Error('no worker'))],
  ] as const)(
    'keeps and serves a connection when conn() %s: sent>unfrozen, nothing lost',
    async (_, refuse) => {
      const h = await startMoveServer({}, (srv) => srv.pinOnConnect.add(2));
      const [p, other] = await h.connect(2);
      p!.send('before\n');
      await p!.waitFor('before\n');
      const gate = deferred();
      h.channel.answer = (f) => (f.id === 1 ? gate.promise.then(refuse) : Promise.resolve(true));

      const migration = h.migrate();
      await h.channel.waitConn(1);
      // On its way: a broadcast to it is held, and what its client sends stays in the kernel.
      other!.send('bcast:held\n');
      await other!.waitFor('held\n');
      p!.send('during\n');
      gate.resolve();
      const counts = await h.finish(migration);

      expect(counts).toMatchObject({ migrated: 0, drained: 1, failed: 1 });
      expect(h.moves.path(1)).toEqual(['queued', 'stopped', 'frozen', 'capturing', 'sent', 'unfrozen']);
      expect(h.moves.path(2)).toEqual(['queued', 'drained']);
      expect(h.channel.releases).toEqual([]);
      await p!.waitFor('during\n');
      p!.send('after\n');
      await p!.waitFor('after\n');
      expect(p!.text).toBe('before\nheld\nduring\nafter\n');
      expect(h.srv.status().connections).toBe(2);
      expect(h.moves.wrong).toEqual([]);
    },
  );

  it('drains a connection whose muxConnection set movable = false: queued>drained, served after', async () => {
    const h = await startMoveServer({}, (srv) => srv.pinOnConnect.add(1));
    const [p] = await h.connect(1);

    const counts = await h.finish(h.migrate());

    expect(counts).toMatchObject({ migrated: 0, drained: 1, failed: 0 });
    expect(h.moves.path(1)).toEqual(['queued', 'drained']);
    expect(h.channel.calls).toEqual(['state']);
    p!.send('still here\n');
    await p!.waitFor('still here\n');
    expect(p!.text).toBe('still here\n');
  });

  it('lets a hook running at its turn end first: queued>readying, answered, then stopped>frozen>...', async () => {
    const h = await startMoveServer();
    const [p] = await h.connect(1);
    p!.send('wait:g\n');
    await h.srv.waitEvent('wait:g #1');

    const migration = h.migrate();
    await h.moves.waitState(1, 'readying');
    expect(h.moves.path(1)).toEqual(['queued', 'readying']);
    expect(h.channel.calls).toEqual(['state']);
    h.srv.open('g');
    const counts = await h.finish(migration);

    expect(counts).toMatchObject({ migrated: 1, drained: 0, failed: 0 });
    expect(h.moves.path(1)).toEqual(['queued', 'readying', ...MOVED.slice(1)]);
    // The hook's answer went out before the connection stopped.
    const trace = h.srv.events;
    expect(trace.indexOf('done:g #1')).toBeGreaterThan(-1);
    expect(trace.indexOf('done:g #1')).toBeLessThan(trace.indexOf('#1 readying>stopped'));
    await p!.waitClosed();
    expect(p!.text).toBe('done:g\n');
    expect(h.channel.frozen(1).output).toBeUndefined();
  });

  it('settles a readied connection that starts a hook while the window is full: stopped>settling>frozen', async () => {
    const h = await startMoveServer();
    const [, p2] = await h.connect(3);
    p2!.send('wait:a\n');
    await h.srv.waitEvent('wait:a #2');
    const window = deferred();
    h.channel.answer = (f) => (f.id === 2 ? Promise.resolve(true) : window.promise.then(() => true));

    const migration = h.migrate();
    await h.channel.waitConn(1);
    await h.channel.waitConn(3);
    expect(h.moves.path(2)).toEqual(['queued', 'readying']);
    // Its hook ends: readied, but the window (2) is full. Still served, it takes new input.
    h.srv.open('a');
    await p2!.waitFor('done:a\n');
    p2!.send('wait:b\n');
    await h.srv.waitEvent('wait:b #2');
    window.resolve();
    await h.moves.waitState(2, 'settling');
    expect(h.moves.path(2)).toEqual(['queued', 'readying', 'stopped', 'settling']);
    h.srv.open('b');
    const counts = await h.finish(migration);

    expect(counts).toMatchObject({ migrated: 3, drained: 0, failed: 0 });
    expect(h.moves.path(1)).toEqual(MOVED);
    expect(h.moves.path(3)).toEqual(MOVED);
    expect(h.moves.path(2)).toEqual([
      'queued',
      'readying',
      'stopped',
      'settling',
      'frozen',
      'capturing',
      'sent',
      'released',
    ]);
    // The hook that ran while settling answered before the connection froze.
    await p2!.waitClosed();
    expect(p2!.text).toBe('done:a\ndone:b\n');
    expect(h.channel.frozen(2).output).toBeUndefined();
    // It moved once the window had room again.
    const calls = h.channel.calls;
    expect(calls.slice(0, 3)).toEqual(['state', 'conn #1', 'conn #3']);
    expect(calls.indexOf('conn #2')).toBeGreaterThan(calls.indexOf('released #1'));
    expect(calls.at(-1)).toBe('released #2');
  });

  it(`lets a hook that does not end within SETTLE_MS (twice) stay: readying, then settling>unfrozen`, async () => {
    const h = await startMoveServer();
    const [p] = await h.connect(1);
    p!.send('wait:slow\n');
    await h.srv.waitEvent('wait:slow #1');

    const migration = h.migrate();
    await h.moves.waitState(1, 'readying');
    p!.send('queued behind\n');
    // ready() waits SETTLE_MS while it is served, then freeze() waits SETTLE_MS more, stopped.
    const counts = await h.finish(migration, 4 * SETTLE_MS);

    expect(counts).toMatchObject({ migrated: 0, drained: 1, failed: 0 });
    expect(h.moves.path(1)).toEqual(['queued', 'readying', 'stopped', 'settling', 'unfrozen']);
    expect(h.moves.since(1, 'readying', 'stopped')).toBeGreaterThanOrEqual(SETTLE_MS - 20);
    expect(h.moves.since(1, 'settling', 'unfrozen')).toBeGreaterThanOrEqual(SETTLE_MS - 20);
    expect(h.channel.calls).toEqual(['state']);
    h.srv.open('slow');
    await p!.waitFor('queued behind\n');
    p!.send('after\n');
    await p!.waitFor('after\n');
    expect(p!.text).toBe('done:slow\nqueued behind\nafter\n');
  });

  it('waits for output to reach the kernel while still served: readying, then moves once the client reads', async () => {
    const h = await startMoveServer(bigOptions);
    const [p] = await h.connect(1);
    p!.socket.pause();
    p!.send(`big:${BIG}\n`);
    await h.srv.waitEvent(/^big #1 /);
    expect(h.srv.client(1).outputLength).toBeGreaterThan(0);

    const migration = h.migrate();
    await h.moves.waitState(1, 'readying');
    expect(h.channel.calls).toEqual(['state']);
    p!.socket.resume();
    const counts = await h.finish(migration);

    expect(counts).toMatchObject({ migrated: 1, drained: 0, failed: 0 });
    expect(h.moves.path(1)).toEqual(['queued', 'readying', ...MOVED.slice(1)]);
    // Every byte reached the kernel before the socket was let go.
    await p!.waitClosed(10_000);
    expect(p!.received.equals(pattern(BIG))).toBe(true);
  });

  it('flushes a frozen connection whose output is not in the kernel: frozen>flushing>capturing once it reads', async () => {
    const h = await startMoveServer(bigOptions);
    const [p] = await h.connect(1);
    p!.socket.pause();
    // The hook runs at its turn (readying to settle), and writes more than the buffers hold as it ends.
    p!.send(`wait:w\nbig:${BIG}\n`);
    await h.srv.waitEvent('wait:w #1');

    const migration = h.migrate();
    await h.moves.waitState(1, 'readying');
    h.srv.open('w');
    await h.moves.waitState(1, 'flushing');
    expect(h.channel.calls).toEqual(['state']);
    p!.socket.resume();
    const counts = await h.finish(migration);

    expect(counts).toMatchObject({ migrated: 1, drained: 0, failed: 0 });
    expect(h.moves.path(1)).toEqual([
      'queued',
      'readying',
      'stopped',
      'frozen',
      'flushing',
      'capturing',
      'sent',
      'released',
    ]);
    expect(h.channel.frozen(1).output).toBeUndefined();
    await p!.waitClosed(10_000);
    expect(p!.received.equals(Buffer.concat([Buffer.from('done:w\n'), pattern(BIG)]))).toBe(true);
  });

  it('keeps a connection whose client does not read within FLUSH_MS: flushing>unfrozen, every byte in order', async () => {
    const h = await startMoveServer(bigOptions);
    const [p] = await h.connect(1);
    p!.socket.pause();
    p!.send(`wait:w\nbig:${BIG}\n`);
    await h.srv.waitEvent('wait:w #1');

    const migration = h.migrate();
    await h.moves.waitState(1, 'readying');
    h.srv.open('w');
    await h.moves.waitState(1, 'flushing');
    const counts = await h.finish(migration, 10_000);

    expect(counts).toMatchObject({ migrated: 0, drained: 1, failed: 0 });
    expect(h.moves.path(1)).toEqual(['queued', 'readying', 'stopped', 'frozen', 'flushing', 'unfrozen']);
    expect(h.moves.since(1, 'flushing', 'unfrozen')).toBeGreaterThanOrEqual(FLUSH_MS - 20);
    expect(h.channel.calls).toEqual(['state']);
    p!.send('ping\n');
    p!.socket.resume();
    const expected = Buffer.concat([Buffer.from('done:w\n'), pattern(BIG), Buffer.from('ping\n')]);
    await p!.waitBytes(expected.length, 10_000);
    expect(p!.received.equals(expected)).toBe(true);
  });

  it.each([
    [
      'throws',
      () => {
        throw new Error('cannot freeze this');
      },
    ],
    ['rejects', () => Promise.reject(new Error('cannot freeze this'))],
  ] as const)(
    'keeps a connection whose muxFreeze %s: capturing>unfrozen, logged, served after',
    async (_, fail) => {
      const h = await startMoveServer({}, (srv) => {
        srv.onFreeze = fail;
      });
      const [p] = await h.connect(1);

      const counts = await h.finish(h.migrate());

      expect(counts).toMatchObject({ migrated: 0, drained: 1, failed: 0 });
      expect(h.moves.path(1)).toEqual(['queued', 'stopped', 'frozen', 'capturing', 'unfrozen']);
      expect(h.channel.calls).toEqual(['state']);
      await h.logs.waitFor(
        (l) => String(l.msg).includes('muxFreeze') && String(l.msg).includes('cannot freeze this'),
        'the muxFreeze error line',
      );
      const line = h.logs.lines.find((l) => String(l.msg).includes('muxFreeze'))!;
      expect(line.msg).toContain('hook muxFreeze failed: cannot freeze this');
      expect(line.conn).toBe(1);
      p!.send('served\n');
      await p!.waitFor('served\n');
      expect(p!.text).toBe('served\n');
    },
  );

  it('keeps a connection closed here during an async muxFreeze: capturing>unfrozen, then the close runs once', async () => {
    const freezing = deferred<unknown>();
    const h = await startMoveServer({}, (srv) => {
      srv.pinOnConnect.add(2);
      srv.onFreeze = (client) => (client.id === 1 ? freezing.promise : client.state);
    });
    const [p, other] = await h.connect(2);

    const migration = h.migrate();
    await h.srv.waitEvent('muxFreeze #1');
    other!.send('kick:1\n');
    await other!.waitFor('kicked\n');
    expect(h.srv.events).not.toContain('muxClose #1');
    freezing.resolve({ n: 1 });
    const counts = await h.finish(migration);

    expect(counts).toMatchObject({ migrated: 0, drained: 2, failed: 0 });
    expect(h.moves.path(1)).toEqual(['queued', 'stopped', 'frozen', 'capturing', 'unfrozen']);
    expect(h.channel.calls).toEqual(['state']);
    await p!.waitClosed();
    await h.srv.waitEvent('muxClose #1');
    expect(h.srv.count('muxClose #1')).toBe(1);
  });

  it('sends a connection whose client closes during an async muxFreeze (reading has stopped, the close is not seen)', async () => {
    const freezing = deferred<unknown>();
    const h = await startMoveServer({}, (srv) => {
      srv.onFreeze = () => freezing.promise;
    });
    const [p] = await h.connect(1);
    h.channel.answer = async () => false;

    const migration = h.migrate();
    await h.srv.waitEvent('muxFreeze #1');
    p!.socket.destroy();
    await p!.waitClosed();
    expect(h.srv.events).not.toContain('muxClose #1');
    freezing.resolve({ n: 1 });
    const counts = await h.finish(migration);

    expect(h.moves.path(1)).toEqual(['queued', 'stopped', 'frozen', 'capturing', 'sent', 'unfrozen']);
    expect(counts).toMatchObject({ migrated: 0, drained: 0, failed: 1 });
    // Unfrozen, it reads again, sees the close, and closes once.
    await h.srv.waitEvent('muxClose #1');
    expect(h.srv.count('muxClose #1')).toBe(1);
  });

  it('writes here, first, what was written to a connection while it was frozen, when the new worker does not take it', async () => {
    const freezing = deferred<unknown>();
    const h = await startMoveServer({}, (srv) => {
      srv.onFreeze = (client) => (client.id === 1 ? freezing.promise : { n: client.state.n });
      srv.pinOnConnect.add(3);
    });
    // #3 is not movable: it stays, and is served here throughout.
    const [p1, , p3] = await h.connect(3);
    h.channel.answer = async (f) => f.id !== 1;

    const migration = h.migrate();
    await h.srv.waitEvent('muxFreeze #1');
    // Written while #1 is in its muxFreeze: held, and captured with it as frozen.output.
    p3!.send('tell:1:while frozen\n');
    await p3!.waitFor('told\n');
    freezing.resolve({ n: 1 });
    await h.finish(migration);

    expect(h.channel.frozen(1).output).toBe(Buffer.from('while frozen\n').toString('base64'));
    expect(h.moves.path(1)).toEqual(['queued', 'stopped', 'frozen', 'capturing', 'sent', 'unfrozen']);
    // Not taken: it is served here, and gets what was written to it first.
    await p1!.waitFor('while frozen\n');
    p1!.send('after\n');
    await p1!.waitFor('after\n');
    expect(p1!.text).toBe('while frozen\nafter\n');
  });

  it('skips a connection closed before its turn (the window full): queued>closed', async () => {
    const h = await startMoveServer();
    const [, , p3] = await h.connect(3);
    const window = deferred();
    h.channel.answer = () => window.promise.then(() => true);

    const migration = h.migrate();
    await h.channel.waitConn(1);
    await h.channel.waitConn(2);
    expect(h.moves.path(3)).toEqual(['queued']);
    p3!.socket.destroy();
    await h.srv.waitEvent('muxClose #3');
    window.resolve();
    const counts = await h.finish(migration);

    expect(counts).toMatchObject({ migrated: 2, drained: 0, failed: 0 });
    expect(h.moves.path(3)).toEqual(['queued', 'closed']);
    expect(h.channel.calls).not.toContain('conn #3');
    expect(h.srv.count('muxClose #3')).toBe(1);
  });

  it('skips a readied connection that closes while the window is full: readying>closed', async () => {
    const h = await startMoveServer();
    const [p1] = await h.connect(3);
    p1!.send('wait:r\n');
    await h.srv.waitEvent('wait:r #1');
    const window = deferred();
    h.channel.answer = () => window.promise.then(() => true);

    const migration = h.migrate();
    await h.channel.waitConn(2);
    await h.channel.waitConn(3);
    h.srv.open('r');
    await p1!.waitFor('done:r\n');
    p1!.socket.destroy();
    await h.srv.waitEvent('muxClose #1');
    window.resolve();
    const counts = await h.finish(migration);

    expect(counts).toMatchObject({ migrated: 2, drained: 0, failed: 0 });
    expect(h.moves.path(1)).toEqual(['queued', 'readying', 'closed']);
    expect(h.channel.calls).not.toContain('conn #1');
  });

  it('drains a connection its hook made unmovable while readying: readying>drained, served after', async () => {
    const h = await startMoveServer();
    const [p] = await h.connect(1);
    p!.send('wait:x\npin\n');
    await h.srv.waitEvent('wait:x #1');

    const migration = h.migrate();
    await h.moves.waitState(1, 'readying');
    h.srv.open('x');
    const counts = await h.finish(migration);

    expect(counts).toMatchObject({ migrated: 0, drained: 1, failed: 0 });
    expect(h.moves.path(1)).toEqual(['queued', 'readying', 'drained']);
    p!.send('after\n');
    await p!.waitFor('after\n');
    expect(p!.text).toBe('done:x\npinned\nafter\n');
  });

  it('holds what is written to a connection on its way and hands it to released() in order, with the close', async () => {
    const h = await startMoveServer({}, (srv) => srv.pinOnConnect.add(2));
    const [p, other] = await h.connect(2);
    const gate = deferred();
    h.channel.answer = (f) => gate.promise.then(() => f.id === 1);

    const migration = h.migrate();
    await h.channel.waitConn(1);
    other!.send('bcast:one\n');
    await other!.waitFor('one\n');
    other!.send('tell:1:two\n');
    await other!.waitFor('told\n');
    // And a write from a timer, outside any hook.
    const timerWrote = deferred();
    setTimeout(() => {
      h.srv.client(1).write('three\n');
      timerWrote.resolve();
    }, 1);
    await withTimeout(timerWrote.promise, 'the timer write');
    other!.send('kick:1\n');
    await other!.waitFor('kicked\n');
    // Written after the close asked for meanwhile: dropped, as a write after close is.
    expect(h.srv.client(1).write('four\n')).toBe(false);
    gate.resolve();
    const counts = await h.finish(migration);

    expect(counts).toMatchObject({ migrated: 1, drained: 1, failed: 0 });
    expect(h.moves.path(1)).toEqual(MOVED);
    expect(h.channel.releases).toEqual([{ id: 1, output: Buffer.from('one\ntwo\nthree\n'), end: 'close' }]);
    expect(h.channel.frozen(1).output).toBeUndefined();
    // None of it went to the socket.
    await p!.waitClosed();
    expect(p!.length).toBe(0);
    expect(h.srv.events).not.toContain('muxClose #1');
    expect(other!.text).toBe('one\n' + 'told\n' + 'kicked\n');
  });

  it('fires here, after unfreeze, a timeout that came due while the connection was on its way and stayed', async () => {
    const h = await startMoveServer();
    const [p] = await h.connect(1);
    p!.send('timeout:0.5\n');
    await p!.waitFor('armed\n');
    const gate = deferred();
    h.channel.answer = () => gate.promise.then(() => false);

    const migration = h.migrate();
    await h.channel.waitConn(1);
    const frozen = h.channel.frozen(1);
    expect(frozen.timeoutMs).toBeGreaterThan(0);
    expect(frozen.timeoutMs).toBeLessThanOrEqual(500);
    await h.logs.waitFor(
      (l) => String(l.msg).includes('came due while it was moving'),
      'the timeout to come due while moving',
    );
    expect(h.srv.events).not.toContain('muxTimeout #1');
    gate.resolve();
    const counts = await h.finish(migration);

    expect(counts).toMatchObject({ migrated: 0, drained: 0, failed: 1 });
    expect(h.moves.path(1)).toEqual(['queued', 'stopped', 'frozen', 'capturing', 'sent', 'unfrozen']);
    await p!.waitFor('timeout #1\n');
    expect(p!.text).toBe('armed\ntimeout #1\n');
    expect(h.srv.count('muxTimeout #1')).toBe(1);
  });

  it('sends a timeout pending when the connection moves as frozen.timeoutMs, and forgets it here', async () => {
    const h = await startMoveServer();
    const [p] = await h.connect(1);
    const asked = Date.now();
    p!.send('timeout:30\n');
    await p!.waitFor('armed\n');

    const counts = await h.finish(h.migrate());
    const sentBy = Date.now();

    expect(counts).toMatchObject({ migrated: 1, drained: 0, failed: 0 });
    expect(h.moves.path(1)).toEqual(MOVED);
    const { timeoutMs } = h.channel.frozen(1);
    // Armed after `asked`, frozen before `sentBy`: what was left of the 30 s then.
    expect(timeoutMs).toBeLessThanOrEqual(30_000);
    expect(timeoutMs).toBeGreaterThanOrEqual(30_000 - (sentBy - asked) - 1);
    expect(h.srv.client(1).phase).toBe('closed');
    expect(h.srv.mux.getTimeout(h.srv.client(1))).toBeUndefined();
  });

  it('sends with its release a timeout set, or cleared, here while the connection was on its way', async () => {
    const h = await startMoveServer();
    const [a, b, c] = await h.connect(3);
    for (const p of [a, b, c]) {
      p!.send('timeout:30\n');
      await p!.waitFor('armed\n');
    }
    const gate = deferred();
    h.channel.answer = () => gate.promise.then(() => true);

    const migration = h.migrate();
    await h.channel.waitConn(1);
    await h.channel.waitConn(2);
    // From outside any hook (a timer of the server's own), as the first two are on their way (the
    // window holds two): #1 gets a new time, #2 none; #3, which moves after them, is left alone.
    const { mux } = h.srv;
    const setAt = Date.now();
    mux.setTimeout(h.srv.client(1), 5);
    mux.setTimeout(h.srv.client(2), null);
    gate.resolve();
    const counts = await h.finish(migration);
    const releasedBy = Date.now();

    expect(counts).toMatchObject({ migrated: 3, drained: 0, failed: 0 });
    const release = (id: number) => h.channel.releases.find((r) => r.id === id)!;
    expect(release(1).timeoutMs).toBeLessThanOrEqual(5000);
    expect(release(1).timeoutMs).toBeGreaterThanOrEqual(5000 - (releasedBy - setAt) - 1);
    expect(release(2).timeoutMs).toBeNull();
    expect(release(3)).not.toHaveProperty('timeoutMs');
    // What was frozen still had the 30 s: the change went with the release.
    for (const id of [1, 2, 3]) expect(h.channel.frozen(id).timeoutMs).toBeGreaterThan(5000);
  });

  it('rejects migrateOut() on a server that is not running', async () => {
    const fresh = new MoveServer({ port: ['127.0.0.1:0'] });
    await expect(workerHost(fresh).migrateOut(new FakeChannel())).rejects.toThrow(
      'migrateOut() in state new',
    );

    const h = await startMoveServer();
    const first = h.migrate();
    await expect(workerHost(h.srv).migrateOut(new FakeChannel())).rejects.toThrow(
      'migrateOut() in state migrating',
    );
    await h.finish(first);
    await withTimeout(h.srv.close(), 'close');
    await expect(workerHost(h.srv).migrateOut(new FakeChannel())).rejects.toThrow(
      'migrateOut() in state closed',
    );
  });
});

describe('MoveTracker', () => {
  it('reports a change the table does not allow, and only those, and records it anyway', () => {
    const illegal: Array<[number, MoveState, MoveState]> = [];
    const seen: string[] = [];
    const tracker = new MoveTracker<{ client: { id: number } }>(
      (id, from, to) => illegal.push([id, from, to]),
      (id, from, to) => seen.push(`#${id} ${from}>${to}`),
    );
    const a = { client: { id: 7 } };
    const b = { client: { id: 8 } };
    expect(tracker.state(a)).toBe('queued');
    for (const to of ['stopped', 'frozen', 'capturing', 'sent', 'released'] as const) tracker.to(a, to);
    expect(illegal).toEqual([]);
    tracker.to(b, 'frozen');
    tracker.to(a, 'unfrozen');
    expect(illegal).toEqual([
      [8, 'queued', 'frozen'],
      [7, 'released', 'unfrozen'],
    ]);
    expect(tracker.state(a)).toBe('unfrozen');
    expect(tracker.state(b)).toBe('frozen');
    expect(seen).toEqual([
      '#7 queued>stopped',
      '#7 stopped>frozen',
      '#7 frozen>capturing',
      '#7 capturing>sent',
      '#7 sent>released',
      '#8 queued>frozen',
      '#7 released>unfrozen',
    ]);
  });

  it('allows every pair of the table and no other', () => {
    const states = Object.keys(moveTransitions) as MoveState[];
    for (const from of states) {
      for (const to of states) {
        const illegal: string[] = [];
        const tracker = new MoveTracker<{ client: { id: number } }>((id, f, t) =>
          illegal.push(`${id}:${f}>${t}`),
        );
        const key = { client: { id: 1 } };
        // Reach `from` by a path of the table (every state but queued is reached from queued).
        const path = pathTo(from);
        for (const s of path) tracker.to(key, s);
        expect(illegal, `reaching ${from}`).toEqual([]);
        tracker.to(key, to);
        expect(illegal.length, `${from}>${to}`).toBe(moveTransitions[from].includes(to) ? 0 : 1);
      }
    }
  });
});

/** pathTo is a path of the table from queued to `state` (queued itself: empty). */
function pathTo(state: MoveState): MoveState[] {
  const seen = new Map<MoveState, MoveState[]>([['queued', []]]);
  const todo: MoveState[] = ['queued'];
  while (todo.length > 0) {
    const from = todo.shift()!;
    for (const to of moveTransitions[from]) {
      if (seen.has(to)) continue;
      seen.set(to, [...seen.get(from)!, to]);
      todo.push(to);
    }
  }
  const path = seen.get(state);
  if (!path) throw new Error(`${state} cannot be reached from queued`);
  return path;
}

describe('MoveWindow', () => {
  it('sizes itself to floor(20 ms / interval), between 2 and 64, from connections taken at steady intervals', () => {
    for (const [interval, size] of [
      [0.25, 64],
      [0.5, 40],
      [1, 20],
      [3, 6],
      [4, 5],
      [7, 2],
      [15, 2],
      [100, 2],
    ] as const) {
      const w = new MoveWindow();
      expect(w.size).toBe(MIGRATION_WINDOW_MIN);
      let now = 1000;
      w.taken(now);
      expect(w.size, 'after one connection').toBe(MIGRATION_WINDOW_MIN);
      for (let i = 0; i < 50; i++) {
        now += interval;
        w.taken(now);
      }
      expect(w.size, `interval ${interval} ms`).toBe(size);
      expect(size).toBe(
        Math.max(MIGRATION_WINDOW_MIN, Math.min(MIGRATION_WINDOW_MAX, Math.floor(20 / interval))),
      );
    }
  });

  it('follows a change of pace gradually (each span of 5 ms or more counts for a quarter)', () => {
    const w = new MoveWindow();
    const clock = { now: 1000 };
    const take = (interval: number, times: number) => {
      for (let i = 0; i < times; i++) {
        clock.now += interval;
        w.taken(clock.now);
      }
    };
    w.taken(clock.now);
    take(1, 20);
    expect(w.size).toBe(20);
    take(10, 1);
    // One slow span (10 ms for one connection) moves the average by a quarter of the difference.
    expect(w.size).toBe(Math.floor(20 / (1 + 9 / 4)));
    take(10, 200);
    expect(w.size).toBe(MIGRATION_WINDOW_MIN);
  });

  it('measures connections taken in batches by the span between batches, not the instant inside one', () => {
    const w = new MoveWindow({ min: 64, max: 1024 });
    let now = 1000;
    // Batches of 64 taken at one instant each, every 4 ms: 16 connections a ms, 320 in 20 ms.
    for (let b = 0; b < 20; b++) {
      for (let i = 0; i < 64; i++) w.taken(now + i * 0.001);
      now += 4;
    }
    expect(w.size).toBeGreaterThanOrEqual(300);
    expect(w.size).toBeLessThanOrEqual(340);
    // Then one batch every 40 ms: 1.6 a ms, 32 in 20 ms, so the window goes down to its floor of 64.
    for (let b = 0; b < 20; b++) {
      for (let i = 0; i < 64; i++) w.taken(now + i * 0.001);
      now += 40;
    }
    expect(w.size).toBe(64);
  });
});

describe('coverage of the move states', () => {
  it('has seen every transition of the table, no other, and no netplex bug logged', () => {
    const table = new Set<string>();
    for (const [from, tos] of Object.entries(moveTransitions))
      for (const to of tos) table.add(`${from}>${to}`);
    expect([...observedPairs].sort()).toEqual([...table].sort());
    const bugs = allLogs.flatMap((l) => l.messages.filter((m) => m.includes('netplex bug')));
    expect(bugs).toEqual([]);
    expect(allLogs.length).toBeGreaterThan(10);
    expect(wrongChanges).toEqual([]);
  });
});
