/**
 * The supervisor as a user runs it: real processes, real signals, real sockets on loopback.
 */
import dgram from 'node:dgram';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { DIRECT_WINDOW, MIGRATION_WINDOW_MIN } from '@netplex/core/internal';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isAlive } from '../../src/pidfile.js';
import { checkInvariants } from '../helpers/invariants.js';
import { LineStreamer } from '../helpers/load.js';
import {
  ask,
  behaviour,
  cli,
  fixture,
  greet,
  netplexBin,
  Proc,
  startTagged,
  statusJson,
  tempDir,
  waitGone,
} from '../helpers/proc.js';
import { cmdline, connectionOwners } from '../helpers/procfs.js';
import {
  describeTransports,
  expectStatusTransport,
  expectTransport,
  fallbacks,
  type Transport,
  transportArg,
} from '../helpers/transports.js';

/**
 * askUntil sends `line` and waits (bounded) for the answer `expected`, passing over other lines that
 * may come first: a greeting a new worker writes on taking a connection races with the question.
 */
function askUntil(socket: net.Socket, line: string, expected: string, ms = 10_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      socket.off('data', onData);
      reject(
        new Error(
          `no ${JSON.stringify(expected)} after ${JSON.stringify(line)} within ${ms} ms; got ${JSON.stringify(buf)}`,
        ),
      );
    }, ms);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n').slice(0, -1);
      if (!lines.includes(expected)) return;
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(lines);
    };
    socket.on('data', onData);
    socket.write(`${line}\n`);
  });
}

/**
 * hear records everything a socket receives from now on; `until(line)` waits (bounded) for a line to
 * have come.
 */
function hear(socket: net.Socket) {
  let text = '';
  const waiting: Array<{ line: string; resolve: () => void }> = [];
  const has = (line: string) => text.split('\n').slice(0, -1).includes(line);
  socket.on('data', (d: Buffer) => {
    text += d.toString();
    for (const w of waiting.filter((x) => has(x.line))) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve();
    }
  });
  return {
    text: () => text,
    until: (line: string, ms = 10_000) =>
      has(line)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () =>
                reject(new Error(`no ${JSON.stringify(line)} within ${ms} ms; got ${JSON.stringify(text)}`)),
              ms,
            );
            waiting.push({
              line,
              resolve: () => {
                clearTimeout(timer);
                resolve();
              },
            });
          }),
  };
}

/** readUntilClosed resolves with everything a socket receives from now until it closes (bounded). */
function readUntilClosed(socket: net.Socket, ms = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(
      () => reject(new Error(`not closed within ${ms} ms; got ${JSON.stringify(got)}`)),
      ms,
    );
    socket.on('data', (d: Buffer) => {
      got += d.toString();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

/** freePrivilegedPort finds a port below 1024 that nothing listens on here. */
async function freePrivilegedPort(): Promise<number> {
  for (let port = 900; port < 1024; port++) {
    const free = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port between 900 and 1023');
}

/** greetUnix connects to a unix socket and returns the first line. */
function greetUnix(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path });
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no greeting on ${path} within 10 s`)), 10_000);
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) {
        clearTimeout(timer);
        s.destroy();
        resolve(buf.slice(0, buf.indexOf('\n')));
      }
    });
    s.on('error', reject);
  });
}

/** udpAsk sends one datagram and resolves with the reply. */
function udpAsk(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no udp reply from port ${port} within 10 s`));
    }, 10_000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m.toString());
    });
    s.send(text, port, '127.0.0.1');
  });
}

/** waitForFileLine waits (bounded) until a JSON log file has a line whose msg contains `needle`. */
async function waitForFileLine(file: string, needle: string, ms = 15_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (existsSync(file)) {
      const line = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => String(l.msg).includes(needle));
      if (line) return line;
    }
    if (Date.now() > deadline)
      throw new Error(`no ${JSON.stringify(needle)} line in ${file} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function refused(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

describe('netplex run', () => {
  it('serves through a worker, reports status as JSON, and stops on SIGTERM removing its pid file', async () => {
    const { proc, port, pidFile } = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}'], {
      via: 'netplex',
    });
    const { line, socket } = await greet(port);
    expect(line).toBe('hello from v1');
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(proc.pid));

    const s = await statusJson(pidFile);
    expect(s).toMatchObject({
      state: 'running',
      supervisor_pid: proc.pid,
      reloads: 0,
      last_reload_ms: null,
      connections: 1,
      ports: [{ proto: 'tcp', address: '127.0.0.1', port, family: 4 }],
    });
    expect(typeof s.worker_pid).toBe('number');
    expect(s.worker_pid).not.toBe(proc.pid);
    expect(Number.isNaN(Date.parse(String(s.started_at)))).toBe(false);

    const human = cli(['status', `--pid_file=${pidFile}`]);
    await human.waitExit();
    expect(human.stdout).toContain(`worker pid      ${s.worker_pid}`);

    proc.child.kill('SIGTERM');
    expect((await proc.waitExit()).code).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
    expect(existsSync(`${pidFile}.sock`)).toBe(false);
    await waitGone(s.worker_pid as number, 'the worker');
    socket.destroy();
  });

  it('starts the supervisor when the entry is run directly with tsx', async () => {
    const { proc, port } = await startTagged(['--port=127.0.0.1:0']);
    const { line, socket } = await greet(port);
    expect(line).toBe('hello from v1');
    socket.destroy();
    proc.child.kill('SIGINT');
    expect((await proc.waitExit()).code).toBe(0);
  });

  it('exits 2 with one readable line on a bad option, before binding anything', async () => {
    const p = cli([
      'run',
      join(import.meta.dirname, '..', 'fixtures', 'tagged.ts'),
      '--port=127.0.0.1:0',
      '--log_level=9',
    ]);
    const { code } = await p.waitExit();
    expect(code).toBe(2);
    expect(p.stderr.trim().split('\n')).toHaveLength(1);
    expect(p.stderr).toMatch(/^netplex: command line \(--log_level=9\): log_level: /);
    expect(p.stderr).not.toContain('    at ');
  });

  it('refuses a pid file naming a live process, and replaces one naming a dead process', async () => {
    const { proc, pidFile, dir } = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}']);
    const second = new Proc(process.execPath, [
      '--import',
      'tsx',
      join(import.meta.dirname, '..', 'fixtures', 'tagged.ts'),
      '--port=127.0.0.1:0',
      `--pid_file=${pidFile}`,
    ]);
    const { code } = await second.waitExit();
    expect(code).toBe(1);
    expect(second.stderr).toContain(`already running, pid ${proc.pid}`);
    proc.child.kill('SIGTERM');
    await proc.waitExit();

    writeFileSync(pidFile, '999999\n');
    const third = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}'], { dir });
    expect(
      third.proc.lines.some((l) => String(l.msg).includes('999999, which is not running: replacing it')),
    ).toBe(true);
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(third.proc.pid));
    third.proc.child.kill('SIGTERM');
    await third.proc.waitExit();
  });

  it('stops the whole server when the server calls endloop()', async () => {
    const { proc, port } = await startTagged(['--port=127.0.0.1:0']);
    const { socket } = await greet(port);
    socket.write('endloop\n');
    expect((await proc.waitExit()).code).toBe(0);
  });
});

describe('reload', () => {
  it('migrates live connections by default: the same connection goes on in the new code', async () => {
    const { proc, port, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
    ]);
    const old = await greet(port);
    expect(old.line).toBe('hello from v1');
    let extra = '';
    old.socket.on('data', (d: Buffer) => {
      extra += d.toString();
    });
    behaviour(behaviourFile, { tag: 'v2' });
    const done = await proc.hup('the reload');
    expect(done).toMatchObject({ mode: 'migrate', migrated: 1, drained: 0, failed: 0 });
    expect(await ask(old.socket, 'moved?')).toBe('v2 moved?');
    // muxConnection ran once, in the old worker: no second greeting on the moved connection.
    expect(extra).toBe('v2 moved?\n');
    expect((await statusJson(pidFile)).last_migration).toMatchObject({ migrated: 1, drained: 0, failed: 0 });
    old.socket.destroy();
  });

  it('with reload_mode drain, serves new connections with the new code while old connections stay on the old', async () => {
    const { proc, port, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--reload_mode=drain',
    ]);
    const old = await greet(port);
    expect(old.line).toBe('hello from v1');
    behaviour(behaviourFile, { tag: 'v2' });
    const before = proc.lines.length;
    expect((await proc.hup('the reload')).msg).toMatch(/^reloaded in/);
    const fresh = await greet(port);
    expect(fresh.line).toBe('hello from v2');
    expect(await ask(old.socket, 'still there?')).toBe('v1 still there?');
    const logged = proc.lines.slice(before).map((l) => String(l.msg));
    expect(logged).toContain('restartOpenHook ran');
    expect(logged).toContain('restartCloseHook ran');
    expect((await statusJson(pidFile)).reloads).toBe(1);
    old.socket.destroy();
    fresh.socket.destroy();
  });

  it('with reload_mode drain, the first connection after each reload reaches the new worker', async () => {
    // NETPLEX_RELOAD_ROUNDS reloads (default 6), each followed at once by a connection: the reload
    // is over only once the old worker has said it stopped accepting, so none of them may reach it.
    const rounds = Number(process.env.NETPLEX_RELOAD_ROUNDS ?? 6);
    const { proc, port, behaviourFile } = await startTagged(['--port=127.0.0.1:0', '--reload_mode=drain']);
    const kept: net.Socket[] = [];
    onTestFinished(() => {
      for (const s of kept) s.destroy();
    });
    for (let round = 2; round <= rounds + 1; round++) {
      // A connection stays on each old worker, so that it drains (and accepts, were it still listening).
      kept.push((await greet(port)).socket);
      behaviour(behaviourFile, { tag: `v${round}` });
      expect((await proc.hup(`reload ${round - 1}`)).msg).toMatch(/^reloaded in/);
      const fresh = await greet(port);
      expect(fresh.line, `the first connection after reload ${round - 1}`).toBe(`hello from v${round}`);
      fresh.socket.destroy();
    }
  });

  it('netplex reload --wait reports success, and failure when the new worker throws at start', async () => {
    const { port, behaviourFile, pidFile } = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}']);
    behaviour(behaviourFile, { tag: 'v2' });
    const ok = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await ok.waitExit(30_000)).code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^netplex: reloaded in \d+ ms, worker \d+/);

    behaviour(behaviourFile, { tag: 'v3', throwAtStart: true });
    const bad = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await bad.waitExit(30_000)).code).toBe(1);
    expect(bad.stderr).toContain('v3 refuses to start');
    const { line, socket } = await greet(port);
    expect(line).toBe('hello from v2');
    socket.destroy();
    expect((await statusJson(pidFile)).last_reload_error).toContain('v3 refuses to start');
  });

  it('fails a reload with an invalid conf file, naming the file and line; the old worker keeps serving', async () => {
    const dir = tempDir();
    const conf = join(dir, 'server.conf');
    writeFileSync(conf, 'port 127.0.0.1:0\nlog_level 2\n');
    const { port, pidFile } = await startTagged(['--conf_file', conf, '--pid_file={pid}'], { dir });
    writeFileSync(conf, 'port 127.0.0.1:0\nlog_level 9\n');
    const bad = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await bad.waitExit(30_000)).code).toBe(1);
    expect(bad.stderr).toContain(`${conf}:2: log_level`);
    const { line, socket } = await greet(port);
    expect(line).toBe('hello from v1');
    socket.destroy();
  });

  it('reloads into code that adds an option set in the conf file; the new worker validates it', async () => {
    const dir = tempDir();
    const conf = join(dir, 'server.conf');
    writeFileSync(conf, 'port 127.0.0.1:0\n');
    const { port, pidFile, behaviourFile } = await startTagged(['--conf_file', conf, '--pid_file={pid}'], {
      dir,
    });
    // The new code declares `motto`, and the conf file sets it in the same reload.
    behaviour(behaviourFile, { tag: 'v2', motto: true });
    writeFileSync(conf, 'port 127.0.0.1:0\nmotto carry on\n');
    const ok = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await ok.waitExit(30_000)).code, ok.stderr).toBe(0);
    const v2 = await greet(port);
    expect(v2.line).toBe('hello from v2: carry on');
    v2.socket.destroy();
    // A key that the new code does not know either is still refused, by the new worker, with file and line.
    writeFileSync(conf, 'port 127.0.0.1:0\nmotto carry on\nmottto typo\n');
    const bad = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await bad.waitExit(30_000)).code).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`${conf}:3.*mottto.*motto`));
    const still = await greet(port);
    expect(still.line).toBe('hello from v2: carry on');
    still.socket.destroy();
  });

  it('binds ports added to the configuration and closes removed ones after the old worker retires', async () => {
    const dir = tempDir();
    const conf = join(dir, 'server.conf');
    writeFileSync(conf, 'port 127.0.0.1:0\n');
    const { port, pidFile } = await startTagged(
      ['--conf_file', conf, '--pid_file={pid}', '--drain_timeout=0'],
      { dir },
    );
    writeFileSync(conf, 'port 127.0.0.1:0\nport [::1]:0\n');
    const add = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await add.waitExit(30_000)).code, add.stderr).toBe(0);
    const ports = (await statusJson(pidFile)).ports as Array<{ port: number; address: string }>;
    expect(ports.map((p) => p.address)).toEqual(['127.0.0.1', '::1']);
    expect(ports[0]!.port).toBe(port);
    const v6 = ports[1]!.port;
    const viaV6 = await greet(v6, '::1');
    expect(viaV6.line).toBe('hello from v1');
    viaV6.socket.destroy();

    writeFileSync(conf, 'port [::1]:0\n');
    const remove = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await remove.waitExit(30_000)).code, remove.stderr).toBe(0);
    const after = (await statusJson(pidFile)).ports as Array<{ port: number; address: string }>;
    expect(after).toEqual([expect.objectContaining({ address: '::1', port: v6 })]);
    // The removed port closes once the old worker has gone (drain_timeout=0: at once).
    const deadline = Date.now() + 10_000;
    while (!(await refused(port))) {
      if (Date.now() > deadline) throw new Error(`port ${port} still accepts 10 s after it was removed`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});

/** poll waits (bounded) for a condition no event of ours announces, checking every 10 ms. */
async function poll(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * FIRST_WINDOW is how many connections a migration puts on their way at once when it begins: core's
 * MIGRATION_WINDOW_MIN over the relay, DIRECT_WINDOW.min (a batch) over a direct link.
 */
const FIRST_WINDOW: Record<Transport, number> = {
  direct: DIRECT_WINDOW.min,
  relay: MIGRATION_WINDOW_MIN,
};

/**
 * fillers opens, before the connections a test watches, the idle connections that fill the first
 * window but two (none over the relay), so that the next two are the last to go at once and the
 * one after them waits its turn. They are closed when the test ends.
 */
async function fillers(port: number, t: Transport): Promise<number> {
  const n = FIRST_WINDOW[t] - 2;
  const open = await Promise.all(Array.from({ length: n }, () => greet(port)));
  onTestFinished(() => {
    for (const c of open) c.socket.destroy();
  });
  return n;
}

/**
 * migratedOver asserts that the last migration (`netplex status --json`) went over `t`, with no
 * worker saying it fell back, and returns its counts.
 */
async function migratedOver(pidFile: string, t: Transport, proc: Proc): Promise<unknown> {
  const status = await statusJson(pidFile);
  expectStatusTransport(status, t);
  expect(fallbacks(proc), `no fallback from ${t}`).toEqual([]);
  return status.last_migration;
}

/**
 * reloadsAgainOver checks, after a failed migrating reload, that the old worker, serving again,
 * migrates `conns` over `t` in the next reload (to `tag`): a failed reload's line names no transport.
 */
async function reloadsAgainOver(
  t: Transport,
  started: { proc: Proc; behaviourFile: string },
  conns: Array<{ socket: net.Socket }>,
  tag = 'v3',
): Promise<void> {
  behaviour(started.behaviourFile, { tag });
  const mark = started.proc.lines.length;
  const line = await started.proc.hup('the reload after the failed one');
  expect(String(line.msg), JSON.stringify(line)).toMatch(/^reloaded in/);
  expectTransport(line, t, started.proc, mark);
  expect(line.migrated, JSON.stringify(line)).toBe(conns.length);
  for (const [i, c] of conns.entries()) await askUntil(c.socket, `again ${i}`, `${tag} again ${i}`);
}

describeTransports('migration', (t) => {
  it('keeps every connection with the old worker when the new one dies mid-migration', async () => {
    const started = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}', transportArg(t)]);
    const { proc, port, behaviourFile, pidFile } = started;
    const conns = [await greet(port), await greet(port), await greet(port)];
    behaviour(behaviourFile, { tag: 'v2', dieOnThaw: 1 });
    const bad = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await bad.waitExit(30_000)).code).toBe(1);
    expect(bad.stderr).toContain('failed during the migration');
    expect(fallbacks(proc), `no fallback from ${t}`).toEqual([]);
    for (const [i, c] of conns.entries()) expect(await ask(c.socket, `still ${i}`)).toBe(`v1 still ${i}`);
    // The old worker accepts again.
    const fresh = await greet(port);
    expect(fresh.line).toBe('hello from v1');
    await reloadsAgainOver(t, started, [...conns, fresh]);
    for (const c of [...conns, fresh]) c.socket.destroy();
  });

  it('fails the reload when the new worker is killed (SIGKILL) while it takes connections; all stay with the old worker', async () => {
    const started = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}', transportArg(t)]);
    const { proc, port, dir, behaviourFile, pidFile } = started;
    const conns = [await greet(port), await greet(port), await greet(port)];
    // The new worker stops in its first muxThaw: the connections sent are on their way, not taken.
    behaviour(behaviourFile, { tag: 'v2', holdThaw: join(dir, 'never') });
    const mark = proc.lines.length;
    proc.child.kill('SIGHUP');
    await proc.waitLog((l) => l.msg === 'thaw held', 'the new worker to take a connection', 20_000, mark);
    const workers = (await statusJson(pidFile)).workers as Array<{ pid: number; role: string }>;
    const neu = workers.find((w) => w.role === 'migrating-in');
    expect(neu, `a worker migrating in: ${JSON.stringify(workers)}`).toBeDefined();
    process.kill(neu!.pid, 'SIGKILL');
    const out = await proc.waitLog(
      (l) => String(l.msg).startsWith('reloaded in') || String(l.msg).startsWith('reload failed'),
      'the reload whose new worker is killed',
      30_000,
      mark,
    );
    await waitGone(neu!.pid, 'the killed new worker');
    expect(
      String(out.msg),
      `the reload whose new worker ${neu!.pid} was killed fails (it said ${JSON.stringify(out)})`,
    ).toMatch(/^reload failed/);
    for (const [i, c] of conns.entries()) expect(await ask(c.socket, `still ${i}`)).toBe(`v1 still ${i}`);
    expect(fallbacks(proc), `no fallback from ${t}`).toEqual([]);
    await reloadsAgainOver(t, started, conns);
    for (const c of conns) c.socket.destroy();
  });

  it('lets a hook in progress finish in the old worker before its connection moves', async () => {
    const { proc, port, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      transportArg(t),
    ]);
    const { socket } = await greet(port);
    const slow = ask(socket, 'slow 500');
    behaviour(behaviourFile, { tag: 'v2' });
    const ok = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect(await slow).toBe('v1 slow done');
    expect((await ok.waitExit(30_000)).code, ok.stderr).toBe(0);
    expect(await migratedOver(pidFile, t, proc)).toMatchObject({ migrated: 1, drained: 0, failed: 0 });
    expect(await ask(socket, 'after')).toBe('v2 after');
    socket.destroy();
  });

  it('serves a connection until its own turn; output and a timeout due while one is on its way follow it, once and first', async () => {
    const { proc, port, dir, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      transportArg(t),
      '--log_level=4',
    ]);
    // The first window goes at once; the one after it waits its turn, served by v1.
    const filled = await fillers(port, t);
    const moving = [await greet(port), await greet(port)];
    const waiting = await greet(port);
    let got = ['', ''];
    const shouted = moving.map(
      (c, i) =>
        new Promise<void>((resolve) => {
          c.socket.on('data', (d: Buffer) => {
            got[i] += d.toString();
            const all = ['v1 shout hi\n', 'v1 bcast hey\n', 'timeout\n', 'v2 thawed\n'].every((t) =>
              got[i]!.includes(t),
            );
            if (all) resolve();
          });
        }),
    );
    // Armed (0.3 s) as the migration begins, before the connection is frozen: due while on its way.
    expect(await ask(moving[0]!.socket, 'reload-timeout 0.3')).toBe('v1 armed at reload');
    got = ['', ''];
    const release = join(dir, 'release');
    behaviour(behaviourFile, { tag: 'v2', holdThaw: release, sayOnThaw: true });
    const before = proc.lines.length;
    const reload = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    // The new worker stops in muxThaw of the first connection: both are on their way, and stay so.
    await proc.waitLog((l) => l.msg === 'thaw held', 'the new worker to take a connection', 20_000, before);
    expect(await ask(waiting.socket, 'where?')).toBe('v1 where?');
    expect(await ask(waiting.socket, 'shout hi')).toBe('v1 shout hi');
    // mux.broadcast also goes to the new worker meanwhile, which must not write it to these two again.
    expect(await ask(waiting.socket, 'bcast hey')).toBe('v1 sent');
    moving[1]!.socket.write('timeout 0\n');
    // The first connection's timeout comes due while it is on its way.
    await proc.waitLog(
      (l) => String(l.msg).includes('came due while it was moving'),
      'the timeout of a connection on its way to come due',
      20_000,
      before,
    );
    writeFileSync(release, '');
    expect((await reload.waitExit(30_000)).code, reload.stderr).toBe(0);
    await Promise.all(shouted);
    // The broadcast written while they were on their way, exactly once; each timeout fired once,
    // in the new worker (the second connection's `timeout 0` was read there, as input that waited).
    for (const text of got) {
      expect(text.split('\n').filter((l) => l === 'v1 shout hi')).toHaveLength(1);
      expect(text.split('\n').filter((l) => l === 'v1 bcast hey')).toHaveLength(1);
      expect(text.split('\n').filter((l) => l === 'v2 thawed')).toHaveLength(1);
      if (t === 'relay') {
        // What the old worker wrote while the connection was on its way comes before the new worker's
        // first words (muxThaw writes at once; its output waits until the old worker lets go).
        expect(text.indexOf('v1 bcast hey\n')).toBeLessThan(text.indexOf('v2 thawed\n'));
        expect(text.indexOf('v1 shout hi\n')).toBeLessThan(text.indexOf('v2 thawed\n'));
      }
      // Over the direct link the new worker writes at once, and the old worker's output follows the
      // connection over the link: muxThaw's greeting may come first (docs/guides/reload.md).
      expect(text.indexOf('v1 shout hi\n')).toBeLessThan(text.indexOf('v1 bcast hey\n'));
      expect(text.split('\n').filter((l) => l.endsWith('timeout'))).toEqual(['v2 timeout']);
    }
    for (const c of [...moving, waiting]) await askUntil(c.socket, 'where?', 'v2 where?');
    expect(await migratedOver(pidFile, t, proc)).toMatchObject({
      migrated: 3 + filled,
      drained: 0,
      failed: 0,
    });
    for (const c of [...moving, waiting]) c.socket.destroy();
  });

  /**
   * kickWhileMoving holds two connections on their way to the new worker (its first muxThaw waits
   * for a file), has v1 close both meanwhile (`kick` from a third connection, still v1's), then lets
   * the new worker go on, with `v2` as its behaviour. It resolves with what each of the two received
   * before it closed, and the reload's exit code.
   */
  async function kickWhileMoving(v2: Record<string, unknown>) {
    const started = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}', transportArg(t)]);
    const { proc, port, dir, behaviourFile, pidFile } = started;
    // The first window goes at once; the one after it waits its turn, served by v1.
    const filled = await fillers(port, t);
    const moving = [await greet(port), await greet(port)];
    const waiting = await greet(port);
    const ended = moving.map((c) => readUntilClosed(c.socket));
    const release = join(dir, 'release');
    behaviour(behaviourFile, { tag: 'v2', holdThaw: release, sayOnThaw: true, ...v2 });
    const before = proc.lines.length;
    const reload = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    await proc.waitLog((l) => l.msg === 'thaw held', 'the new worker to take a connection', 20_000, before);
    expect(await ask(waiting.socket, 'kick')).toBe(`v1 kicked ${2 + filled}`);
    writeFileSync(release, '');
    const code = (await reload.waitExit(30_000)).code;
    return {
      code,
      reloadErr: reload.stderr,
      got: await Promise.all(ended),
      waiting,
      pidFile,
      started,
      filled,
    };
  }

  it('closes a connection that the old worker closed while it was on its way, after what it wrote first', async () => {
    const { code, reloadErr, got, waiting, pidFile, started, filled } = await kickWhileMoving({});
    expect(code, reloadErr).toBe(0);
    // Each hears v1's last words exactly once, then the connection closes: the new worker carried out
    // the close after sending them. Over the relay, what it wrote itself (muxThaw's greeting) came
    // after the close and was dropped; over the direct link it went out at once, before them.
    const expected = t === 'relay' ? 'v1 kicked\n' : 'v2 thawed\nv1 kicked\n';
    expect(got).toEqual([expected, expected]);
    await askUntil(waiting.socket, 'where?', 'v2 where?');
    expect(await migratedOver(pidFile, t, started.proc)).toMatchObject({
      migrated: 3 + filled,
      drained: 0,
      failed: 0,
    });
    waiting.socket.destroy();
  });

  it('closes a connection closed on its way in the old worker when the new worker dies before taking it', async () => {
    const { code, got, waiting, started } = await kickWhileMoving({ dieOnThaw: 1 });
    expect(code).toBe(1);
    expect(fallbacks(started.proc), `no fallback from ${t}`).toEqual([]);
    expect(got).toEqual(['v1 kicked\n', 'v1 kicked\n']);
    expect(await ask(waiting.socket, 'where?')).toBe('v1 where?');
    await reloadsAgainOver(t, started, [waiting]);
    waiting.socket.destroy();
  });

  it('does not move a connection closed while it is being frozen: it closes where it is', async () => {
    const dir = tempDir();
    const release = join(dir, 'release');
    const { proc, port, behaviourFile, pidFile } = await startTagged(
      ['--port=127.0.0.1:0', '--pid_file={pid}', transportArg(t)],
      {
        dir,
        behaviour: { holdFreeze: release },
      },
    );
    const filled = await fillers(port, t);
    const moving = [await greet(port), await greet(port)];
    const waiting = await greet(port);
    const ended = moving.map((c) => readUntilClosed(c.socket));
    behaviour(behaviourFile, { tag: 'v2' });
    const before = proc.lines.length;
    const reload = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    await proc.waitLog((l) => l.msg === 'freezing', 'the old worker to freeze a connection', 20_000, before);
    // The first window is in muxFreeze and stays there until the file exists.
    expect(await ask(waiting.socket, 'kick')).toBe(`v1 kicked ${2 + filled}`);
    writeFileSync(release, '');
    expect((await reload.waitExit(30_000)).code, reload.stderr).toBe(0);
    expect(await Promise.all(ended)).toEqual(['v1 kicked\n', 'v1 kicked\n']);
    expect(await ask(waiting.socket, 'where?')).toBe('v2 where?');
    expect(await migratedOver(pidFile, t, proc)).toMatchObject({ migrated: 1, failed: 0 });
    waiting.socket.destroy();
  });

  it('carries mux.broadcast across the two workers while a migration is under way, once to each client', async () => {
    const { proc, port, dir, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      transportArg(t),
    ]);
    // a and b move first; p stays with v1 (pinned); w is held in its muxFreeze until `release` exists.
    const [a, b, p, w] = [await greet(port), await greet(port), await greet(port), await greet(port)];
    expect(await ask(p.socket, 'pin')).toBe('v1 pinned');
    const release = join(dir, 'release');
    expect(await ask(w.socket, `freeze-wait ${release}`)).toBe('v1 will wait');
    const heard = [a, b, p, w].map((c) => hear(c.socket));
    behaviour(behaviourFile, { tag: 'v2' });
    const before = proc.lines.length;
    const reload = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    await proc.waitLog((l) => l.msg === 'freezing', 'the old worker to freeze w', 20_000, before);
    // a and b are in the new worker now (their answers come from v2); the migration is still on.
    await askUntil(a.socket, 'where?', 'v2 where?');
    await askUntil(b.socket, 'where?', 'v2 where?');
    // From the old worker to clients in the new one (and to w, on its way: it carries it along)...
    await askUntil(p.socket, 'bcast hello', 'v1 sent');
    // ...and from the new worker to clients still in the old one (a may hear 'hello' first).
    await askUntil(a.socket, 'bcast world', 'v2 sent');
    await askUntil(b.socket, 'where?', 'v2 where?');
    await askUntil(p.socket, 'where?', 'v1 where?');
    writeFileSync(release, '');
    expect((await reload.waitExit(30_000)).code, reload.stderr).toBe(0);
    expect(await migratedOver(pidFile, t, proc)).toMatchObject({ migrated: 3, drained: 1, failed: 0 });
    await askUntil(w.socket, 'where?', 'v2 where?');
    await Promise.all([
      ...[0, 1, 3].map((i) => heard[i]!.until('v1 bcast hello')),
      ...[1, 2, 3].map((i) => heard[i]!.until('v2 bcast world')),
    ]);
    const lines = heard.map((h) => h.text().split('\n'));
    const count = (i: number, line: string) => lines[i]!.filter((l) => l === line).length;
    // Every client but the sender hears each broadcast exactly once.
    expect([count(0, 'v1 bcast hello'), count(1, 'v1 bcast hello'), count(3, 'v1 bcast hello')]).toEqual([
      1, 1, 1,
    ]);
    expect([count(1, 'v2 bcast world'), count(2, 'v2 bcast world'), count(3, 'v2 bcast world')]).toEqual([
      1, 1, 1,
    ]);
    expect([count(2, 'v1 bcast hello'), count(0, 'v2 bcast world')]).toEqual([0, 0]);
    // w, held on its way, hears both in the order they were made.
    expect(lines[3]!.indexOf('v1 bcast hello')).toBeLessThan(lines[3]!.indexOf('v2 bcast world'));
    // After the migration, p drains in the old worker, still in the same room.
    await askUntil(w.socket, 'bcast again', 'v2 sent');
    await askUntil(p.socket, 'bcast still', 'v1 sent');
    await Promise.all([heard[2]!.until('v2 bcast again'), heard[3]!.until('v1 bcast still')]);
    for (const c of [a, b, p, w]) c.socket.destroy();
  });

  it('drains a connection marked not movable while the others migrate', async () => {
    const { proc, port, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      transportArg(t),
    ]);
    const pinned = await greet(port);
    expect(await ask(pinned.socket, 'pin')).toBe('v1 pinned');
    const free = await greet(port);
    behaviour(behaviourFile, { tag: 'v2' });
    const ok = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await ok.waitExit(30_000)).code, ok.stderr).toBe(0);
    expect(await ask(pinned.socket, 'where?')).toBe('v1 where?');
    expect(await ask(free.socket, 'where?')).toBe('v2 where?');
    expect(await migratedOver(pidFile, t, proc)).toMatchObject({ migrated: 1, drained: 1, failed: 0 });
    pinned.socket.destroy();
    free.socket.destroy();
  });

  it('moves a connection with a large unsent output once the old worker has handed it to the kernel', async () => {
    const { proc, port, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      transportArg(t),
    ]);
    const { socket } = await greet(port);
    const size = 4 * 1024 * 1024;
    let got = Buffer.alloc(0);
    const received = new Promise<void>((resolve) => {
      socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= size) resolve();
      });
    });
    socket.pause();
    socket.write(`big ${size}\n`);
    behaviour(behaviourFile, { tag: 'v2' });
    const reload = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    // The client reads again a little later: the old worker's output drains and the socket moves.
    setTimeout(() => socket.resume(), 300);
    expect((await reload.waitExit(30_000)).code, reload.stderr).toBe(0);
    await received;
    const expected = Buffer.alloc(size);
    for (let i = 0; i < size; i++) expected[i] = i % 251;
    expect(got.subarray(0, size).equals(expected)).toBe(true);
    expect(await migratedOver(pidFile, t, proc)).toMatchObject({ migrated: 1, failed: 0 });
    got = Buffer.alloc(0);
    socket.write('after\n');
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    expect(got.toString()).toBe('v2 after\n');
    socket.destroy();
  });

  it('serves every connection that had moved when the old worker is killed mid-migration; no process is left over', async () => {
    const dir = tempDir();
    const gate = join(dir, 'gate');
    const { proc, port, pidFile } = await startTagged(
      ['--port=127.0.0.1:0', '--pid_file={pid}', transportArg(t), '--ready_timeout=10'],
      { dir },
    );
    const old = (await statusJson(pidFile)).worker_pid as number;
    // Four byte-verifying streams move first; then a connection whose muxFreeze waits for `gate`
    // holds the old worker in the migration, and one opened after it never gets its turn.
    const streamers = Array.from({ length: 4 }, () => new LineStreamer(port));
    for (const [i, s] of streamers.entries())
      await poll(() => s.verified > 200 || !s.alive, `streamer ${i} to be served`);
    expect(streamers.map((s) => s.failure)).toEqual([undefined, undefined, undefined, undefined]);
    const holder = await greet(port);
    expect(await ask(holder.socket, `freeze-wait ${gate}`)).toBe('v1 will wait');
    const behind = await greet(port);
    const holderClosed = readUntilClosed(holder.socket, 10_000);
    const mark = proc.lines.length;
    const stderrMark = proc.stderr.length;
    proc.child.kill('SIGHUP');
    await proc.until(() => proc.stderr.slice(stderrMark).includes('freezing'), 'the held freeze');
    // The streams were frozen before the holder: each going on now is served by the new worker.
    const at = streamers.map((s) => s.verified);
    await poll(
      () => streamers.every((s, i) => !s.alive || s.verified > at[i]! + 100),
      'the streams to go on while the old worker is held',
    ).catch(() => {});
    expect(
      streamers.map((s, i) => (s.alive && s.verified > at[i]! + 100 ? 'served' : `${s.failure ?? 'stuck'}`)),
      'every stream is served again, in the new worker, while the old one is held',
    ).toEqual(['served', 'served', 'served', 'served']);
    process.kill(old, 'SIGKILL');
    const out = await proc.waitLog(
      (l) => String(l.msg).startsWith('reloaded in') || String(l.msg).startsWith('reload failed'),
      'the reload whose old worker is killed',
      30_000,
      mark,
    );
    writeFileSync(gate, '');
    await waitGone(old, 'the killed old worker');
    expect(String(out.msg), JSON.stringify(out)).toMatch(/^reloaded in/);
    expectTransport(out, t, proc, mark);
    // The held connection was still in the old worker: it went with it. The one behind it either
    // went too, or had moved (its freeze did not wait) and is served by the new worker.
    const stillOpen = (c: { socket: net.Socket }) => {
      const owners = connectionOwners(port, c.socket.localPort!).map((pid) => `${pid} (${cmdline(pid)})`);
      return `still open after the old worker ${old} was killed, held by: ${owners.join('; ') || 'nobody'} (new worker ${String(out.worker)})`;
    };
    expect(await holderClosed.catch(() => stillOpen(holder)), 'the held connection').toBe('');
    const behindFate = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve(stillOpen(behind)), 10_000);
      let buf = '';
      behind.socket.on('data', (d: Buffer) => {
        buf += d.toString();
        if (!buf.includes('\n')) return;
        clearTimeout(timer);
        resolve(buf.slice(0, buf.indexOf('\n')));
      });
      behind.socket.once('close', () => {
        clearTimeout(timer);
        resolve('closed');
      });
      if (!behind.socket.destroyed) behind.socket.write('whoami\n');
    });
    if (behindFate !== 'closed')
      expect(behindFate, 'the connection behind').toContain(`pid ${String(out.worker)}`);
    // Every stream that had moved is whole: each byte back once, in order.
    for (const s of streamers) s.stop();
    await Promise.all(
      streamers.map((s, i) => s.drained(`streamer ${i} after the old worker was killed`, 10_000)),
    );
    const { workers } = await checkInvariants(pidFile, port, 'after the old worker was killed');
    expect(workers.map((w) => w.pid)).not.toContain(old);
    expect(workers.find((w) => w.role === 'serving')?.pid).toBe(out.worker);
    const fresh = await greet(port);
    expect(fresh.line).toBe('hello from v1');
    expect(await ask(fresh.socket, 'whoami')).toContain(`pid ${out.worker}`);
    // The reload line counts the connections that moved before the old worker died.
    // (the streams at least, and the connection behind the held one if it was served here).
    expect(out.migrated, `the connections that moved, in ${JSON.stringify(out)}`).toBeGreaterThanOrEqual(
      streamers.length,
    );
    for (const s of streamers) s.end();
    fresh.socket.destroy();
  }, 60_000);
});

describe('broadcasts while draining', () => {
  it('carries mux.broadcast between a draining worker and its replacement (reload_mode drain)', async () => {
    const { port, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--reload_mode=drain',
    ]);
    const old = await greet(port);
    behaviour(behaviourFile, { tag: 'v2' });
    const ok = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await ok.waitExit(30_000)).code, ok.stderr).toBe(0);
    const neu = await greet(port);
    expect(neu.line).toBe('hello from v2');
    const [hearOld, hearNew] = [hear(old.socket), hear(neu.socket)];
    await askUntil(old.socket, 'where?', 'v1 where?');
    await askUntil(neu.socket, 'bcast from new', 'v2 sent');
    await askUntil(old.socket, 'bcast from old', 'v1 sent');
    await Promise.all([hearOld.until('v2 bcast from new'), hearNew.until('v1 bcast from old')]);
    // Once the old worker is gone, the new one's broadcasts stay with it (and still reach its clients).
    old.socket.destroy();
    const other = await greet(port);
    const hearOther = hear(other.socket);
    await askUntil(neu.socket, 'bcast alone', 'v2 sent');
    await hearOther.until('v2 bcast alone');
    expect(
      hearNew
        .text()
        .split('\n')
        .filter((l) => l === 'v1 bcast from old'),
    ).toHaveLength(1);
    expect(
      hearOld
        .text()
        .split('\n')
        .filter((l) => l === 'v2 bcast from new'),
    ).toHaveLength(1);
    neu.socket.destroy();
    other.socket.destroy();
  });

  it('shares broadcasts between a draining worker and a worker restarted after a crash', async () => {
    const { proc, port, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--reload_mode=drain',
    ]);
    const old = await greet(port);
    behaviour(behaviourFile, { tag: 'v2' });
    const ok = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await ok.waitExit(30_000)).code, ok.stderr).toBe(0);
    const worker = (await statusJson(pidFile)).worker_pid as number;
    const before = proc.lines.length;
    process.kill(worker, 'SIGKILL');
    await proc.waitLog(
      (l) => String(l.msg).includes('restarted'),
      'the worker to be restarted',
      20_000,
      before,
    );
    const fresh = await greet(port);
    expect(fresh.line).toBe('hello from v2');
    const [hearOld, hearFresh] = [hear(old.socket), hear(fresh.socket)];
    await askUntil(fresh.socket, 'bcast after crash', 'v2 sent');
    await askUntil(old.socket, 'bcast still here', 'v1 sent');
    await Promise.all([hearOld.until('v2 bcast after crash'), hearFresh.until('v1 bcast still here')]);
    old.socket.destroy();
    fresh.socket.destroy();
  });
});

describe('unix and udp listeners', () => {
  it('replaces a stale unix socket, reports every listener, and reloads unix and udp ports', async () => {
    const dir = tempDir();
    const path = join(dir, 'chat.sock');
    // A server killed with SIGKILL leaves its socket file behind.
    const dead = new Proc(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
    ]);
    await dead.until(() => dead.stdout.includes('up'), 'the doomed server to listen');
    dead.child.kill('SIGKILL');
    await dead.waitExit();
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
    const udpPort = probe.address().port;
    probe.close();

    const { behaviourFile, pidFile } = await startTagged(
      ['--port=127.0.0.1:0', `--port=${path}|unix`, `--port=127.0.0.1:${udpPort}/udp`, '--pid_file={pid}'],
      { dir },
    );
    const ports = (await statusJson(pidFile)).ports as Array<Record<string, unknown>>;
    expect(ports).toContainEqual({ proto: 'unix', path });
    expect(ports).toContainEqual({ proto: 'udp', address: '127.0.0.1', port: udpPort, family: 4 });

    const viaUnix = await greetUnix(path);
    expect(viaUnix).toBe('hello from v1');
    expect(await udpAsk(udpPort, 'ping\n')).toBe('v1 ping\n');

    behaviour(behaviourFile, { tag: 'v2' });
    const ok = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await ok.waitExit(30_000)).code, ok.stderr).toBe(0);
    expect(await greetUnix(path)).toBe('hello from v2');
    expect(await udpAsk(udpPort, 'ping\n')).toBe('v2 ping\n');
  });
});

describe('udp port 0', () => {
  it('keeps the port the first worker got, across reloads and restarts', async () => {
    const { proc, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--port=127.0.0.1:0/udp',
      '--pid_file={pid}',
    ]);
    const udpPort = async () => {
      const ports = (await statusJson(pidFile)).ports as Array<{ proto: string; port: number }>;
      return ports.find((p) => p.proto === 'udp')!.port;
    };
    const first = await udpPort();
    expect(first).toBeGreaterThan(0);
    expect(await udpAsk(first, 'ping\n')).toBe('v1 ping\n');
    behaviour(behaviourFile, { tag: 'v2' });
    const ok = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await ok.waitExit(30_000)).code, ok.stderr).toBe(0);
    expect(await udpPort()).toBe(first);
    expect(await udpAsk(first, 'ping\n')).toBe('v2 ping\n');
    // A worker that dies is restarted on the same port too.
    const worker = (await statusJson(pidFile)).worker_pid as number;
    const before = proc.lines.length;
    process.kill(worker, 'SIGKILL');
    await proc.waitLog(
      (l) => String(l.msg).includes('restarted'),
      'the worker to be restarted',
      20_000,
      before,
    );
    expect(await udpPort()).toBe(first);
    expect(await udpAsk(first, 'ping\n')).toBe('v2 ping\n');
  });
});

describe('reload limits', () => {
  it('ends a new worker not ready within ready_timeout, naming the hook it hangs in; the old one keeps serving', async () => {
    const { proc, port, behaviourFile, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--ready_timeout=3',
    ]);
    behaviour(behaviourFile, { tag: 'v2', slowStartMs: 60_000 });
    const bad = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await bad.waitExit(30_000)).code).toBe(1);
    // The worker reported the hook it entered, so the failure names it rather than a blind timeout.
    expect(bad.stderr).toMatch(
      /reload failed \(MPX_ERR_HOOK_TIMEOUT\): hook preLoopHook did not settle within 3000 ms/,
    );
    const { line, socket } = await greet(port);
    expect(line).toBe('hello from v1');
    socket.destroy();
    expect(proc.lines.some((l) => String(l.msg).includes('hook preLoopHook did not settle'))).toBe(true);

    // A worker stuck before any hook (loading its entry) gets the plain timeout.
    behaviour(behaviourFile, { tag: 'v3', slowLoadMs: 60_000 });
    const stuck = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await stuck.waitExit(30_000)).code).toBe(1);
    expect(stuck.stderr).toMatch(
      /reload failed \(SUP_ERR_READY_TIMEOUT\): worker \d+ was not ready within 3000 ms/,
    );
    const again = await greet(port);
    expect(again.line).toBe('hello from v1');
    again.socket.destroy();
  });

  it('coalesces reload requests that arrive during a reload into one more', async () => {
    const { proc, pidFile } = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}']);
    const before = proc.lines.length;
    for (let i = 0; i < 5; i++) proc.child.kill('SIGHUP');
    await proc.until(
      () => proc.lines.slice(before).filter((l) => String(l.msg).startsWith('reloaded in')).length >= 1,
      'the first reload',
    );
    // Each later request finds a reload in progress or just done; at most one more runs after the first.
    const ok = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await ok.waitExit(30_000)).code).toBe(0);
    const reloads = (await statusJson(pidFile)).reloads as number;
    expect(reloads).toBeGreaterThanOrEqual(2);
    expect(reloads).toBeLessThanOrEqual(3);
  });
});

describe('logs', () => {
  it('reopens log_file on SIGUSR1, after logrotate renamed it', async () => {
    const dir = tempDir();
    const log = join(dir, 'server.log');
    const proc = new Proc(process.execPath, [
      '--import',
      'tsx',
      fixture('tagged.ts'),
      '--port=127.0.0.1:0',
      `--log_file=${log}`,
      '--log_level=3',
    ]);
    const serving = await waitForFileLine(log, 'serving with worker');
    const port = (serving.ports as Array<{ port: number }>)[0]!.port;
    renameSync(log, `${log}.1`);
    proc.child.kill('SIGUSR1');
    // Wait until both processes have reopened: a new connection is logged by the worker in the new file.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { socket } = await greet(port);
      socket.destroy();
      if (existsSync(log) && readFileSync(log, 'utf8').includes('CONNECT TCP')) break;
      if (Date.now() > deadline) throw new Error('no CONNECT line in the reopened log_file within 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(readFileSync(`${log}.1`, 'utf8')).toContain('serving with worker');
  });
});

describe('crashes', () => {
  it('restarts a killed worker; a connection made while no worker is alive waits and is served', async () => {
    const { proc, port, pidFile } = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}']);
    const workerPid = (await statusJson(pidFile)).worker_pid as number;
    process.kill(workerPid, 'SIGKILL');
    await waitGone(workerPid, 'the killed worker');
    // No worker is alive now: the connection completes into the backlog and is served by the next one.
    const { line, socket } = await greet(port);
    expect(line).toBe('hello from v1');
    socket.destroy();
    const died = await proc.waitLog(
      (l) => String(l.msg).includes(`worker ${workerPid} died`),
      'the crash log line',
    );
    expect(died).toMatchObject({ signal: 'SIGKILL', worker: workerPid });
    expect((await statusJson(pidFile)).worker_pid).not.toBe(workerPid);
  });

  // The whole backoff sequence (doubling, its cap, its reset) is in test/unit/state-machine.test.ts;
  // here, real workers that crash while loading are restarted, backing off, until one serves.
  it('backs off exponentially while the worker keeps crashing, and recovers', async () => {
    const { proc, port, pidFile, behaviourFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
    ]);
    const workerPid = (await statusJson(pidFile)).worker_pid as number;
    behaviour(behaviourFile, { exitAtLoad: 3 });
    process.kill(workerPid, 'SIGKILL');
    const delays = () =>
      proc.lines.filter((l) => String(l.msg).includes('restarting in')).map((l) => l.delay);
    await proc.until(() => delays().length >= 2, 'two restarts', 20_000);
    expect(delays().slice(0, 2)).toEqual([100, 200]);
    expect(proc.lines.some((l) => l.code === 3)).toBe(true);
    behaviour(behaviourFile, {});
    const { line, socket } = await greet(port, '127.0.0.1', 20_000);
    expect(line).toBe('hello from v1');
    socket.destroy();
  });

  it('leaves no process behind when the supervisor is killed with SIGKILL', async () => {
    const { proc, pidFile } = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}']);
    const workerPid = (await statusJson(pidFile)).worker_pid as number;
    proc.child.kill('SIGKILL');
    await proc.waitExit();
    await waitGone(workerPid, 'the orphaned worker');
  });
});

describe('signals', () => {
  it('Ctrl-C (SIGINT to the process group) stops the worker in order: its close hooks run', async () => {
    const { proc, port, pidFile } = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}'], {
      detached: true,
    });
    const workerPid = (await statusJson(pidFile)).worker_pid as number;
    const { socket } = await greet(port);
    process.kill(-proc.pid, 'SIGINT');
    expect((await proc.waitExit()).code).toBe(0);
    expect(proc.lines.some((l) => l.pid === workerPid && l.msg === 'Server closing!')).toBe(true);
    await waitGone(workerPid, 'the worker');
    socket.destroy();
  });

  it('SIGQUIT stops accepting, serves live connections until they close, then exits', async () => {
    const { proc, port } = await startTagged(['--port=127.0.0.1:0', '--drain_timeout=30']);
    const live = await greet(port);
    proc.child.kill('SIGQUIT');
    const deadline = Date.now() + 10_000;
    while (!(await refused(port))) {
      if (Date.now() > deadline) throw new Error('still accepting 10 s after SIGQUIT');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await ask(live.socket, 'draining?')).toBe('v1 draining?');
    expect(proc.exit).toBeUndefined();
    live.socket.end();
    expect((await proc.waitExit()).code).toBe(0);
  });

  it('netplex stop --graceful exits 1 when connections outlive --timeout, and the server goes on draining', async () => {
    const { proc, port, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--drain_timeout=30',
    ]);
    const live = await greet(port);
    const stop = cli(['stop', `--pid_file=${pidFile}`, '--graceful', '--timeout=0.5']);
    expect((await stop.waitExit(30_000)).code).toBe(1);
    expect(stop.stderr).toMatch(/still serving its open connections 0.5 s after SIGQUIT/);
    expect(await ask(live.socket, 'draining?')).toBe('v1 draining?');
    live.socket.end();
    expect((await proc.waitExit()).code).toBe(0);
    const bad = cli(['stop', `--pid_file=${pidFile}`, '--timeout=soon']);
    expect((await bad.waitExit(30_000)).code).toBe(2);
    expect(bad.stderr).toContain('--timeout must be a number of seconds');
  });
});

describe('background', () => {
  it('returns once the server is bound and the pid file written, and netplex stop ends it', async () => {
    const dir = tempDir();
    const pidFile = join(dir, 'bg.pid');
    const log = join(dir, 'bg.log');
    const p = new Proc(process.execPath, [
      netplexBin,
      'run',
      join(import.meta.dirname, '..', 'fixtures', 'tagged.ts'),
      '--port=127.0.0.1:0',
      '--background',
      `--pid_file=${pidFile}`,
      `--log_file=${log}`,
    ]);
    const { code } = await p.waitExit(30_000);
    expect(code, p.stderr).toBe(0);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(p.stdout).toContain(`running in the background, pid ${pid}`);
    expect(isAlive(pid)).toBe(true);
    const serving = await waitForFileLine(log, 'serving with worker');
    const { line, socket } = await greet((serving.ports as Array<{ port: number }>)[0]!.port);
    expect(line).toBe('hello from v1');
    socket.destroy();
    const stop = cli(['stop', `--pid_file=${pidFile}`]);
    expect((await stop.waitExit(30_000)).code).toBe(0);
    await waitGone(pid, 'the background server');
    expect(existsSync(pidFile)).toBe(false);
  });

  it('prints the reason and exits non-zero when the background server cannot start', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    const dir = tempDir();
    const p = new Proc(process.execPath, [
      netplexBin,
      'run',
      join(import.meta.dirname, '..', 'fixtures', 'tagged.ts'),
      `--port=127.0.0.1:${port}`,
      '--setsid',
      `--pid_file=${join(dir, 'x.pid')}`,
      `--log_file=${join(dir, 'x.log')}`,
    ]);
    const { code } = await p.waitExit(30_000);
    taken.close();
    expect(code).not.toBe(0);
    expect(p.stderr).toContain(`127.0.0.1:${port}/tcp: address already in use`);
    expect(existsSync(join(dir, 'x.pid'))).toBe(false);
  });
});

describe.runIf(process.getuid?.() === 0)('privileges (as root)', () => {
  it('runs the worker as user and group, on a privileged port the supervisor bound', async () => {
    const port = await freePrivilegedPort();
    await startTagged([`--port=127.0.0.1:${port}`, '--user=nobody', '--group=nogroup']);
    const { socket } = await greet(port);
    const answer = await ask(socket, 'whoami');
    const nobody = readFileSync('/etc/passwd', 'utf8').match(/^nobody:[^:]*:(\d+):(\d+):/m)!;
    expect(answer).toMatch(new RegExp(`^uid ${nobody[1]} gid \\d+ pid \\d+$`));
    socket.destroy();
  });
});
if (process.getuid?.() !== 0)
  console.warn('privilege tests skipped: they need root to change user and group');
