/** Running netplex as a user would: real processes, real signals, log lines parsed as JSON. */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, onTestFinished } from 'vitest';
import { isAlive } from '../../src/pidfile.js';

const here = dirname(fileURLToPath(import.meta.url));
export const fixture = (name: string) => join(here, '..', 'fixtures', name);
export const netplexBin = join(here, '..', '..', 'bin', 'netplex.js');

/** LogLine is one JSON log line, or a plain text line as { msg }. */
export type LogLine = Record<string, unknown> & { msg?: string };

/** Proc is one started process with its output collected. */
export class Proc {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stdout = '';
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters = new Set<() => void>();

  constructor(
    cmd: string,
    args: string[],
    opts: { env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean } = {},
  ) {
    this.child = spawn(cmd, args, {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
      // detached: its own process group, as a shell gives a foreground job (for group signals).
      detached: opts.detached ?? false,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        if (!line.trim()) continue;
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: line });
        }
      }
      this.#wake();
    });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      this.#wake();
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        this.#wake();
        resolve({ code, signal });
      });
    });
    onTestFinished(async () => {
      if (!this.exit) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** until waits for a condition, failing after `ms` with `what` and the last output in the message. */
  until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(`timed out after ${ms} ms waiting for ${what}; stderr tail: ${this.stderr.slice(-1500)}`),
        );
      }, ms);
      this.#waiters.add(check);
    });
  }

  /** waitLog waits for a log line matching `pred` (after the first `after` lines) and returns it. */
  async waitLog(pred: (l: LogLine) => boolean, what: string, ms = 15_000, after = 0): Promise<LogLine> {
    await this.until(() => this.lines.slice(after).some(pred), what, ms);
    return this.lines.slice(after).find(pred)!;
  }

  /**
   * hup reloads a supervisor with SIGHUP and resolves with its log line saying how the reload went
   * (`reloaded in N ms`, with the migration's counts, or `reload failed`).
   */
  async hup(what: string, ms = 30_000): Promise<LogLine> {
    const before = this.lines.length;
    this.child.kill('SIGHUP');
    return this.waitLog(
      (l) => String(l.msg).startsWith('reloaded in') || String(l.msg).startsWith('reload failed'),
      what,
      ms,
      before,
    );
  }

  /** waitExit waits for the process to exit. */
  async waitExit(ms = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await this.until(() => this.exit !== undefined, 'the process to exit', ms);
    return this.exit!;
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

/** tempDir makes a directory removed when the test ends. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'netplex-sup-'));
  // Readable by a worker that runs as another user (the privilege tests).
  chmodSync(dir, 0o755);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** behaviour writes the fixture's behaviour file. */
export function behaviour(path: string, b: Record<string, unknown>): void {
  writeFileSync(path, JSON.stringify(b));
}

/** startTagged starts the tagged fixture directly (tsx), as `tsx app.ts` would, and waits until it serves. */
export async function startTagged(
  args: string[],
  opts: {
    dir?: string;
    behaviour?: Record<string, unknown>;
    env?: NodeJS.ProcessEnv;
    via?: 'tsx' | 'netplex';
    detached?: boolean;
  } = {},
): Promise<{ proc: Proc; port: number; dir: string; behaviourFile: string; pidFile: string }> {
  const dir = opts.dir ?? tempDir();
  const behaviourFile = join(dir, 'behaviour.json');
  behaviour(behaviourFile, opts.behaviour ?? {});
  const pidFile = join(dir, 'server.pid');
  // {pid} and {dir} in the arguments stand for this test's pid file and directory.
  const expanded = args.map((a) => a.replaceAll('{pid}', pidFile).replaceAll('{dir}', dir));
  const entryArgs = [fixture('tagged.ts'), ...expanded];
  const proc =
    opts.via === 'netplex'
      ? new Proc(process.execPath, [netplexBin, 'run', ...entryArgs], {
          env: { NETPLEX_FIXTURE: behaviourFile, ...opts.env },
          detached: opts.detached ?? false,
        })
      : new Proc(process.execPath, ['--import', 'tsx', ...entryArgs], {
          env: { NETPLEX_FIXTURE: behaviourFile, ...opts.env },
          detached: opts.detached ?? false,
        });
  const serving = await proc.waitLog(
    (l) => String(l.msg).includes('serving with worker'),
    'the supervisor to serve',
  );
  const ports = serving.ports as Array<{ port?: number }>;
  return { proc, port: ports[0]?.port ?? 0, dir, behaviourFile, pidFile };
}

/** connectLine connects, waits for the first line (the greeting) and returns it with the socket. */
export function greet(
  port: number,
  host = '127.0.0.1',
  ms = 10_000,
): Promise<{ line: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host });
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no greeting from ${host}:${port} within ${ms} ms (got ${JSON.stringify(buf)})`));
    }, ms);
    socket.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl !== -1) {
        clearTimeout(timer);
        resolve({ line: buf.slice(0, nl), socket });
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** cli runs the netplex command with `args`. */
export function cli(args: string[]): Proc {
  return new Proc(process.execPath, [netplexBin, ...args]);
}

/** statusJson runs `netplex status --json` and returns what it printed. */
export async function statusJson(pidFile: string): Promise<Record<string, unknown>> {
  const p = cli(['status', `--pid_file=${pidFile}`, '--json']);
  const { code } = await p.waitExit();
  expect(code, p.stderr).toBe(0);
  return JSON.parse(p.stdout) as Record<string, unknown>;
}

/**
 * waitForRoles polls status (bounded) until its workers have exactly the roles `roles`, in any
 * order: e.g. the serving worker and the spare it starts shortly after it is ready.
 */
export async function waitForRoles(
  pidFile: string,
  roles: string[],
  what: string,
  ms = 30_000,
): Promise<Record<string, unknown>> {
  const want = [...roles].sort().join();
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await statusJson(pidFile);
    const got = (s.workers as Array<{ role: string }>).map((w) => w.role).sort();
    if (got.join() === want) return s;
    if (Date.now() > deadline)
      throw new Error(`${what}: status never showed ${want} within ${ms} ms; last: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** ask sends a line on an open connection and resolves with the next line received. */
export function ask(socket: net.Socket, line: string, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`no answer to ${JSON.stringify(line)} within ${ms} ms`)),
      ms,
    );
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(buf.slice(0, nl));
    };
    socket.on('data', onData);
    socket.write(`${line}\n`);
  });
}

/** waitGone waits (bounded) for a process we do not own an exit event for to disappear. */
export async function waitGone(pid: number, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`${what} (pid ${pid}) still alive after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
