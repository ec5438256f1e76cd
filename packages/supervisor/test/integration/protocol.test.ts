/**
 * The IPC protocol check, for real: netplex is upgraded on disk while the supervisor runs, so a
 * reload starts a worker whose netplex speaks another protocol version. The entry lives in a
 * directory of its own whose node_modules/@netplex/core is a symlink, to the repository's core at
 * first and then to a copy of it whose protocolVersion differs; nothing in netplex knows it is a test.
 */
import {
  cpSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../helpers/invariants.js';
import { ask, cli, fixture, netplexBin, Proc, statusJson, tempDir, waitGone } from '../helpers/proc.js';
import { childrenOf } from '../helpers/procfs.js';

const packages = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const coreDir = join(packages, 'core');
const supervisorDir = join(packages, 'supervisor');

/** pointAt makes `link` a symlink to `target`, replacing what it was in one rename. */
function pointAt(link: string, target: string): void {
  const next = `${link}.next`;
  symlinkSync(target, next);
  renameSync(next, link);
}

/** upgradedCore copies core (package.json, dist, its dependencies) into `dir`, speaking another protocol. */
function upgradedCore(dir: string): { dir: string; from: number; to: number } {
  const copy = join(dir, 'upgraded', 'core');
  mkdirSync(copy, { recursive: true });
  cpSync(join(coreDir, 'package.json'), join(copy, 'package.json'));
  cpSync(join(coreDir, 'dist'), join(copy, 'dist'), { recursive: true });
  // pino and zod, as core resolves them.
  symlinkSync(realpathSync(join(coreDir, 'node_modules')), join(copy, 'node_modules'));
  // The runtime the worker loads: the bundle (see scripts/bundle.mjs).
  const runtime = join(copy, 'dist', 'bundle', 'runtime.cjs');
  const source = readFileSync(runtime, 'utf8');
  const declared = /var protocolVersion = (\d+);/.exec(source);
  expect(declared, `protocolVersion in ${runtime}`).not.toBeNull();
  const from = Number(declared![1]);
  const to = from + 1;
  writeFileSync(runtime, source.replace(declared![0], `var protocolVersion = ${to};`));
  return { dir: copy, from, to };
}

/** connect opens a TCP connection to 127.0.0.1:`port`. */
function connect(port: number, ms = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`could not connect to 127.0.0.1:${port} within ${ms} ms`));
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

describe('IPC protocol version', () => {
  it('a reload into a netplex upgraded on disk fails with SUP_ERR_PROTOCOL while the old worker keeps serving', async () => {
    // The real path: the entry's import.meta.url is one, and isMain compares it with the entry named.
    const dir = realpathSync(tempDir());
    const modules = join(dir, 'node_modules', '@netplex');
    mkdirSync(modules, { recursive: true });
    const coreLink = join(modules, 'core');
    symlinkSync(coreDir, coreLink);
    symlinkSync(supervisorDir, join(modules, 'supervisor'));
    const entry = join(dir, 'echo.mjs');
    cpSync(fixture('plain-echo.mjs'), entry);
    const pidFile = join(dir, 'server.pid');

    const proc = new Proc(
      process.execPath,
      [netplexBin, 'run', entry, '--port=127.0.0.1:0', `--pid_file=${pidFile}`],
      {
        cwd: dir,
      },
    );
    const serving = await proc.waitLog(
      (l) => String(l.msg).includes('serving with worker'),
      'the supervisor to serve',
    );
    const port = (serving.ports as Array<{ port: number }>)[0]!.port;
    const before = await statusJson(pidFile);
    expect(before.supervisor_pid).toBe(proc.pid);
    const oldWorker = before.worker_pid as number;
    const client = await connect(port);
    expect(await ask(client, 'before the upgrade')).toBe('before the upgrade');

    const upgraded = upgradedCore(dir);
    pointAt(coreLink, upgraded.dir);
    const logged = proc.lines.length;
    const bad = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await bad.waitExit(30_000)).code, bad.stderr).toBe(1);
    expect(bad.stderr).toMatch(/^netplex: reload failed \(SUP_ERR_PROTOCOL\): worker \d+ runs a netplex/);
    expect(bad.stderr).toContain(
      `speaks IPC protocol ${upgraded.to}, and this supervisor speaks ${upgraded.from}: netplex was upgraded while the supervisor ran; stop and start it`,
    );
    const newWorker = Number(/worker (\d+) runs a netplex/.exec(bad.stderr)![1]);
    expect(newWorker).not.toBe(oldWorker);
    const failed = await proc.waitLog(
      (l) => String(l.msg).startsWith('reload failed, the old worker keeps serving: '),
      'the reload failure in the log',
      10_000,
      logged,
    );
    expect(failed.code).toBe('SUP_ERR_PROTOCOL');
    expect(failed.msg).toContain(
      `worker ${newWorker} runs a netplex that speaks IPC protocol ${upgraded.to}`,
    );

    // The old worker serves the connection it had, and new ones.
    expect(await ask(client, 'after the failed reload')).toBe('after the failed reload');
    const fresh = await connect(port);
    expect(await ask(fresh, 'a new client')).toBe('a new client');
    fresh.destroy();
    const after = await statusJson(pidFile);
    expect(after).toMatchObject({ worker_pid: oldWorker, reloads: 0 });
    expect(after.last_reload_error).toContain(`speaks IPC protocol ${upgraded.to}`);
    // The worker of the other protocol is not left behind.
    await waitGone(newWorker, 'the worker of the other protocol');
    expect(childrenOf(proc.pid)).not.toContain(newWorker);
    await checkInvariants(pidFile, port, 'after the failed reload');

    // With the netplex the supervisor speaks on disk again, a reload goes through.
    pointAt(coreLink, coreDir);
    const good = cli(['reload', `--pid_file=${pidFile}`, '--wait']);
    expect((await good.waitExit(30_000)).code, good.stderr).toBe(0);
    const reloaded = /^netplex: reloaded in \d+ ms, worker (\d+)/.exec(good.stdout);
    expect(reloaded, good.stdout).not.toBeNull();
    const nextWorker = Number(reloaded![1]);
    expect(nextWorker).not.toBe(oldWorker);
    expect((await statusJson(pidFile)).worker_pid).toBe(nextWorker);
    expect(await ask(client, 'after the good reload')).toBe('after the good reload');
    const last = await connect(port);
    expect(await ask(last, 'served by the new worker')).toBe('served by the new worker');
    last.destroy();
    client.destroy();
    await checkInvariants(pidFile, port, 'after the good reload');

    process.kill(proc.pid, 'SIGTERM');
    expect((await proc.waitExit()).code).toBe(0);
    await waitGone(nextWorker, 'the worker after the supervisor stopped');
    await waitGone(oldWorker, 'the retired worker');
  });
});
