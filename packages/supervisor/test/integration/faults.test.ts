/**
 * Reloads and restarts with faults at the awkward moments: start-up hooks that await while
 * connections arrive, a reload during a crash-restart's backoff or while the restarted worker is
 * still starting, a configuration error found on reload. After every step the process invariants
 * hold: the supervisor's children are exactly the workers `status` lists, and only they and the
 * supervisor hold the listen socket.
 */
import { rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../helpers/invariants.js';
import {
  ask,
  behaviour,
  cli,
  greet,
  startTagged,
  statusJson,
  tempDir,
  waitForRoles,
  waitGone,
} from '../helpers/proc.js';
import { mulberry32 } from '../helpers/random.js';

/**
 * trickle opens one connection every `everyMs` until `stop()`; each greets, is asked a line and
 * must answer it. The outcome lists every connection's greeting, or how it failed.
 */
function trickle(port: number, everyMs: number) {
  const outcomes: Array<Promise<string>> = [];
  const one = (i: number) =>
    new Promise<string>((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      let buf = '';
      let greeting: string | undefined;
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(`#${i} timed out (got ${JSON.stringify(buf)})`);
      }, 20_000);
      socket.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        if (greeting === undefined && lines.length > 1) {
          greeting = lines[0]!;
          socket.write(`ping ${i}\n`);
        }
        if (greeting !== undefined && lines.some((l) => l.endsWith(` ping ${i}`))) {
          clearTimeout(timer);
          socket.destroy();
          resolve(greeting);
        }
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(`#${i} ${err.code ?? err.message} (got ${JSON.stringify(buf)})`);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(`#${i} closed unanswered (got ${JSON.stringify(buf)})`);
      });
    });
  let i = 0;
  const timer = setInterval(() => outcomes.push(one(i++)), everyMs);
  return {
    /** stop ends the trickle and resolves with every connection's outcome. */
    async stop(): Promise<string[]> {
      clearInterval(timer);
      return Promise.all(outcomes);
    },
  };
}

const served = (o: string) => o.startsWith('hello from ');

describe('connections during async start-up hooks', () => {
  for (const mode of ['drain', 'migrate'] as const) {
    it(`are all served across a ${mode}-mode reload whose new worker awaits in postBindHook and preLoopHook`, async () => {
      const { proc, port, pidFile, behaviourFile } = await startTagged([
        '--port=127.0.0.1:0',
        '--pid_file={pid}',
        `--reload_mode=${mode}`,
      ]);
      await checkInvariants(pidFile, port, 'started');
      behaviour(behaviourFile, { tag: 'v2', slowBindMs: 400, slowStartMs: 1200 });
      const load = trickle(port, 80);
      const reload = await proc.hup('the reload');
      expect(reload.msg).toMatch(/^reloaded in/);
      const outcomes = await load.stop();
      expect(outcomes.filter((o) => !served(o))).toEqual([]);
      // The reload took the hooks' time, and the old worker served what came meanwhile.
      expect(outcomes.filter((o) => o === 'hello from v1').length).toBeGreaterThan(5);
      await checkInvariants(pidFile, port, 'reloaded');
    });
  }

  it('are all served by a crash replacement whose preLoopHook awaits, even one made while no worker is alive', async () => {
    const { proc, port, pidFile, behaviourFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--restart_backoff=0.3',
    ]);
    const first = (await checkInvariants(pidFile, port, 'started')).status.worker_pid as number;
    behaviour(behaviourFile, { tag: 'v2', slowBindMs: 300, slowStartMs: 1200 });
    const before = proc.lines.length;
    process.kill(first, 'SIGKILL');
    await waitGone(first, 'the killed worker');
    const load = trickle(port, 80);
    await proc.waitLog((l) => String(l.msg).includes('restarted'), 'the restart', 20_000, before);
    const outcomes = await load.stop();
    expect(outcomes.filter((o) => !served(o))).toEqual([]);
    expect(outcomes.length).toBeGreaterThan(10);
    await checkInvariants(pidFile, port, 'restarted');
  });

  const failedStarts = [
    {
      how: 'fails its start after awaiting',
      args: ['--reload_mode=drain'],
      behaviour: (marker: string) => ({ tag: 'v2', slowStartMs: 1000, throwWhile: marker }),
      code: 'MPX_ERR_HOOK',
    },
    {
      how: 'is still in its preLoopHook at ready_timeout',
      // The reload reads ready_timeout 1 from the conf file: the first worker starts without it.
      args: ['--conf_file={dir}/server.conf'],
      reloadConf: 'ready_timeout 1\n',
      behaviour: () => ({ tag: 'v2', slowStartMs: 5000 }),
      code: 'MPX_ERR_HOOK_TIMEOUT',
    },
  ];
  for (const failed of failedStarts) {
    it(`are left to the old worker when the new one ${failed.how}`, async () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'server.conf'), '');
      const { proc, port, pidFile, behaviourFile } = await startTagged(
        ['--port=127.0.0.1:0', '--pid_file={pid}', ...failed.args],
        { dir },
      );
      if (failed.reloadConf !== undefined) writeFileSync(join(dir, 'server.conf'), failed.reloadConf);
      const marker = join(tempDir(), 'broken');
      writeFileSync(marker, '');
      behaviour(behaviourFile, failed.behaviour(marker));
      const load = trickle(port, 80);
      const reload = await proc.hup('the reload');
      expect(reload.msg).toMatch(/^reload failed/);
      expect(reload.code).toBe(failed.code);
      const outcomes = await load.stop();
      expect(outcomes.filter((o) => o !== 'hello from v1')).toEqual([]);
      await checkInvariants(pidFile, port, 'after the failed reload');
    });
  }
});

describe('reloads and crash restarts', () => {
  it('a reload during a restart backoff cancels the pending restart: one worker serves, and status names it', async () => {
    const dir = tempDir();
    const marker = join(dir, 'broken');
    const { proc, port, pidFile, behaviourFile } = await startTagged(
      ['--port=127.0.0.1:0', '--pid_file={pid}', '--restart_backoff=1.5', '--log_level=3'],
      { dir },
    );
    const first = (await statusJson(pidFile)).worker_pid as number;
    writeFileSync(marker, '');
    behaviour(behaviourFile, { throwWhile: marker });
    const before = proc.lines.length;
    process.kill(first, 'SIGKILL');
    // The replacement fails its start: the next try waits for a backoff of 3 s.
    const backoff = await proc.waitLog(
      (l) => String(l.msg).includes('restarting in 3000 ms'),
      'the second backoff',
      20_000,
      before,
    );
    const dueAt = Date.now() + Number(backoff.delay);
    rmSync(marker);
    const reload = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await reload.waitExit(30_000)).code, reload.stderr).toBe(0);
    const pid = Number(/worker (\d+)/.exec(reload.stdout)?.[1]);
    await proc.waitLog((l) => String(l.msg).includes('pending restart is cancelled'), 'the cancel line');
    await checkInvariants(pidFile, port, 'after the reload');
    // Nothing signals a restart that does not happen: check again once it would have been due.
    while (Date.now() < dueAt + 500) await new Promise((r) => setTimeout(r, 100));
    const { workers } = await checkInvariants(pidFile, port, 'after the backoff would have ended');
    expect(workers.filter((w) => w.role !== 'spare').map((w) => w.pid)).toEqual([pid]);
    const pids = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const { line, socket } = await greet(port);
      expect(line).toBe('hello from v1');
      pids.add(/pid (\d+)/.exec(await ask(socket, 'whoami'))?.[1] ?? '?');
      socket.destroy();
    }
    expect([...pids]).toEqual([String(pid)]);
  });

  it('a backoff that ends during a reload leaves the restart to the reload: it succeeds, nothing restarts', async () => {
    const dir = tempDir();
    const marker = join(dir, 'broken');
    const { proc, port, pidFile, behaviourFile } = await startTagged(
      ['--port=127.0.0.1:0', '--pid_file={pid}', '--restart_backoff=0.8'],
      { dir },
    );
    const first = (await statusJson(pidFile)).worker_pid as number;
    writeFileSync(marker, '');
    behaviour(behaviourFile, { throwWhile: marker });
    const before = proc.lines.length;
    process.kill(first, 'SIGKILL');
    await proc.waitLog(
      (l) => String(l.msg).includes('restarting in 800 ms'),
      'the second backoff',
      20_000,
      before,
    );
    rmSync(marker);
    // The reload's worker takes longer to start than the backoff has left. SIGHUP, not the netplex
    // command: the reload must begin before the backoff ends, and a command takes a while to start.
    behaviour(behaviourFile, { slowStartMs: 3500 });
    expect((await proc.hup('the reload')).msg).toMatch(/^reloaded in/);
    const { workers } = await checkInvariants(pidFile, port, 'after the reload');
    expect(workers.filter((w) => w.role !== 'spare').map((w) => w.role)).toEqual(['serving']);
    expect(proc.lines.slice(before).filter((l) => String(l.msg).includes('restarted'))).toEqual([]);
  });

  it('a reload while a restarted worker is still starting waits for it, then replaces it', async () => {
    const { proc, port, pidFile, behaviourFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--restart_backoff=0.05',
    ]);
    const first = (await statusJson(pidFile)).worker_pid as number;
    behaviour(behaviourFile, { slowStartMs: 4000 });
    const before = proc.lines.length;
    process.kill(first, 'SIGKILL');
    await proc.waitLog((l) => String(l.msg).includes('restarting in'), 'the crash line', 10_000, before);
    // The restarted worker is in its preLoopHook: status says it starts.
    let starting: number | undefined;
    const deadline = Date.now() + 10_000;
    while (starting === undefined) {
      const { workers } = await checkInvariants(pidFile, port, 'while the restart starts');
      starting = workers.find((w) => w.role === 'starting')?.pid;
      if (Date.now() > deadline) throw new Error(`no starting worker in ${JSON.stringify(workers)}`);
    }
    behaviour(behaviourFile, { tag: 'v2' });
    const reload = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await reload.waitExit(30_000)).code, reload.stderr).toBe(0);
    const { status, workers } = await checkInvariants(pidFile, port, 'after the reload');
    expect(status.restarts).toBe(1);
    expect(workers.find((w) => w.role === 'serving')?.pid).not.toBe(starting);
    expect(proc.lines.slice(before).filter((l) => String(l.msg).includes('died'))).toHaveLength(1);
    expect(proc.stderr).not.toContain('migrateOut() in state');
    const { line, socket } = await greet(port);
    expect(line).toBe('hello from v2');
    socket.destroy();
    await waitGone(starting, 'the replaced worker');
    await checkInvariants(pidFile, port, 'once the replaced worker is gone');
  });

  it('restart backoff options set the delays, and are validated like every option', async () => {
    const { proc, pidFile, behaviourFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--restart_backoff=0.05',
      '--restart_backoff_max=0.2',
    ]);
    const first = (await statusJson(pidFile)).worker_pid as number;
    behaviour(behaviourFile, { exitAtLoad: 3 });
    process.kill(first, 'SIGKILL');
    const delays = () =>
      proc.lines.filter((l) => String(l.msg).includes('restarting in')).map((l) => l.delay);
    await proc.until(() => delays().length >= 5, 'five restarts', 20_000);
    expect(delays().slice(0, 5)).toEqual([50, 100, 200, 200, 200]);
    behaviour(behaviourFile, {});
    const bad = cli(['run', join(import.meta.dirname, '..', 'fixtures', 'tagged.ts'), '--restart_backoff=0']);
    expect((await bad.waitExit(30_000)).code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('restart_backoff');
  });
});

describe('status', () => {
  it('lists every process with its role and generation, through a drain', async () => {
    const { proc, port, pidFile, behaviourFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--reload_mode=drain',
    ]);
    // The spare starts shortly after the first worker is ready.
    await waitForRoles(pidFile, ['serving', 'spare'], 'the spare');
    const { workers: before } = await checkInvariants(pidFile, port, 'started');
    expect(before.map((w) => [w.role, w.generation])).toEqual([
      ['serving', 1],
      ['spare', null],
    ]);
    const live = await greet(port);
    behaviour(behaviourFile, { tag: 'v2' });
    expect((await proc.hup('the reload')).msg).toMatch(/^reloaded in/);
    await waitForRoles(pidFile, ['serving', 'draining', 'spare'], 'the next spare');
    const { workers } = await checkInvariants(pidFile, port, 'draining');
    expect(workers.map((w) => [w.role, w.generation, w.connections])).toEqual([
      ['serving', 2, 0],
      ['draining', 1, 1],
      ['spare', null, null],
    ]);
    const human = cli(['status', `--pid_file=${pidFile}`]);
    expect((await human.waitExit()).code).toBe(0);
    const row = human.stdout.split('\n').find((l) => l.startsWith(String(workers[1]!.pid)));
    expect(row).toMatch(new RegExp(`^${workers[1]!.pid}\\s+draining\\s+1\\s+1\\s+\\d{4}-`));
    live.socket.destroy();
    await waitGone(workers[1]!.pid, 'the drained worker');
    await checkInvariants(pidFile, port, 'drained');
  });
});

describe('draining workers', () => {
  it("are bounded by max_draining: a reload past it closes the oldest drainer's connections, and everyone else is served", async () => {
    const { proc, port, pidFile, behaviourFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--reload_mode=drain',
      '--max_draining=1',
    ]);
    /** closed resolves once the server has closed `socket`. */
    const closed = (socket: net.Socket) =>
      new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const live: Array<{ socket: net.Socket; gone: Promise<void> }> = [];
    const hold = async (tag: string) => {
      const { line, socket } = await greet(port);
      expect(line).toBe(`hello from ${tag}`);
      live.push({ socket, gone: closed(socket) });
    };
    await hold('v1');
    const first = (await statusJson(pidFile)).worker_pid as number;
    behaviour(behaviourFile, { tag: 'v2' });
    expect((await proc.hup('the first reload')).msg).toMatch(/^reloaded in/);
    await hold('v2');
    const before = proc.lines.length;
    behaviour(behaviourFile, { tag: 'v3' });
    expect((await proc.hup('the second reload')).msg).toMatch(/^reloaded in/);
    const cut = await proc.waitLog(
      (l) => String(l.msg).startsWith('max_draining'),
      'the cap',
      10_000,
      before,
    );
    expect(cut).toMatchObject({ worker: first, generation: 1, draining: 2 });
    // The oldest drainer's connection is closed by the server; the other drainer's is still served.
    await live[0]!.gone;
    await waitGone(first, 'the oldest drainer');
    expect(await ask(live[1]!.socket, 'still here')).toBe('v2 still here');
    const { workers } = await checkInvariants(pidFile, port, 'after the cap');
    expect(workers.filter((w) => w.role !== 'spare').map((w) => [w.role, w.generation])).toEqual([
      ['serving', 3],
      ['draining', 2],
    ]);
    const { line, socket } = await greet(port);
    expect(line).toBe('hello from v3');
    socket.destroy();
    live[1]!.socket.destroy();
  });
});

describe('crash restarts and the conf file', () => {
  it('a restart runs the configuration in force, not the conf file as edited since: only a reload takes that up', async () => {
    const dir = tempDir();
    const conf = join(dir, 'server.conf');
    writeFileSync(conf, 'port 127.0.0.1:0\nmotto first\n');
    const { proc, port, pidFile } = await startTagged(
      ['--conf_file', conf, '--pid_file={pid}', '--restart_backoff=0.05'],
      { dir, behaviour: { motto: true } },
    );
    const greeting = async () => {
      const { line, socket } = await greet(port);
      socket.destroy();
      return line;
    };
    expect(await greeting()).toBe('hello from v1: first');
    const restart = async (what: string) => {
      const pid = (await statusJson(pidFile)).worker_pid as number;
      const before = proc.lines.length;
      process.kill(pid, 'SIGKILL');
      await proc.waitLog((l) => String(l.msg).includes('restarted'), what, 20_000, before);
      await checkInvariants(pidFile, port, what);
    };
    writeFileSync(conf, 'port 127.0.0.1:0\nmotto second\n');
    await restart('a restart after the conf file changed');
    expect(await greeting()).toBe('hello from v1: first');
    writeFileSync(conf, 'port 127.0.0.1:0\nmotto second\nmax_input_bufer 4096\n');
    expect((await proc.hup('the failed reload')).code).toBe('MPX_ERR_CONFIG_UNKNOWN_OPTION');
    await restart('a restart while the conf file is invalid');
    expect(await greeting()).toBe('hello from v1: first');
    writeFileSync(conf, 'port 127.0.0.1:0\nmotto second\n');
    expect((await proc.hup('the reload')).msg).toMatch(/^reloaded in/);
    expect(await greeting()).toBe('hello from v1: second');
    await restart('a restart after the reload');
    expect(await greeting()).toBe('hello from v1: second');
  });
});

describe('configuration errors found on reload', () => {
  it('report the configuration code with file and line only, as at start', async () => {
    const dir = tempDir();
    const conf = join(dir, 'server.conf');
    writeFileSync(conf, 'port 127.0.0.1:0\nlog_level 2\n');
    const { port, pidFile } = await startTagged(['--conf_file', conf, '--pid_file={pid}'], { dir });
    writeFileSync(conf, 'port 127.0.0.1:0\nlog_level 2\nmax_input_bufer 4096\n');
    const bad = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await bad.waitExit(30_000)).code).toBe(1);
    expect(bad.stderr.trim()).toBe(
      `netplex: reload failed (MPX_ERR_CONFIG_UNKNOWN_OPTION): ${conf}:3: unknown option max_input_bufer; did you mean max_input_buffer?`,
    );
    expect((await statusJson(pidFile)).last_reload_error).toBe(
      `${conf}:3: unknown option max_input_bufer; did you mean max_input_buffer?`,
    );
    await checkInvariants(pidFile, port, 'after the failed reload');
  });
});

describe('random faults', () => {
  const rounds = Number(process.env.NETPLEX_FAULT_ROUNDS ?? 4);
  const seed = Number(process.env.NETPLEX_FAULT_SEED ?? Date.now() % 100_000);
  it(`SIGHUP and kill -9 of a random worker at a random moment, ${rounds} rounds (NETPLEX_FAULT_ROUNDS, seed ${seed} from NETPLEX_FAULT_SEED)`, async () => {
    const random = mulberry32(seed);
    const { proc, port, pidFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--pid_file={pid}',
      '--restart_backoff=0.05',
      '--restart_backoff_max=0.2',
    ]);
    const history: string[] = [];
    const fail = (err: unknown): never => {
      throw new Error(`seed ${seed}, after ${history.join(' → ')}: ${(err as Error).message}`);
    };
    /** settled waits until one worker serves and none starts: the supervisor is at rest. */
    const settled = async () => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const { workers } = await checkInvariants(pidFile, port, history.at(-1));
        if (workers.some((w) => w.role === 'serving') && !workers.some((w) => w.role === 'starting'))
          return workers;
        if (Date.now() > deadline) throw new Error(`not at rest within 20 s: ${JSON.stringify(workers)}`);
      }
    };
    try {
      for (let round = 0; round < rounds; round++) {
        const before = proc.lines.length;
        const { workers } = await checkInvariants(pidFile, port, history.at(-1));
        const targets = workers.filter((w) => w.role !== 'spare');
        const victim = targets[Math.floor(random() * targets.length)]!;
        const delayMs = Math.floor(random() * 400);
        history.push(`SIGHUP, kill -9 ${victim.role} after ${delayMs} ms`);
        proc.child.kill('SIGHUP');
        await new Promise((r) => setTimeout(r, delayMs));
        try {
          process.kill(victim.pid, 'SIGKILL');
        } catch {}
        await proc.waitLog(
          (l) => String(l.msg).startsWith('reloaded in') || String(l.msg).startsWith('reload failed'),
          'the reload outcome',
          30_000,
          before,
        );
        await waitGone(victim.pid, `the killed ${victim.role} worker`);
        const rest = await settled();
        expect(rest.filter((w) => w.role === 'serving')).toHaveLength(1);
        const { line, socket } = await greet(port);
        expect(line).toBe('hello from v1');
        socket.destroy();
      }
    } catch (err) {
      fail(err);
    }
  });
});
