/**
 * Net::Server's options under the supervisor, as a user runs a server with a Perl conf file: the
 * notices are said once for the whole run (by the supervisor: not by each worker, not again at a
 * reload), leave_children_open_on_hup makes the reload drain, and sig_passthrough's signals reach
 * every worker with clients while the supervisor's own (HUP) are not passed on.
 */
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { fixture, type LogLine, Proc, tempDir } from '../helpers/proc.js';

/** Lines collects the lines a connection receives, and waits (bounded) for one. */
class Lines {
  readonly all: string[] = [];
  #partial = '';
  #waiters = new Set<() => void>();
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      const parts = (this.#partial + d.toString()).split('\n');
      this.#partial = parts.pop() ?? '';
      this.all.push(...parts);
      for (const w of [...this.#waiters]) w();
    });
  }

  static async open(port: number): Promise<Lines> {
    const socket = net.connect({ port, host: '127.0.0.1' });
    onTestFinished(() => {
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new Lines(socket);
  }

  /** waitFor resolves with the first line matching `re` after the first `after`, failing after `ms` with what came. */
  waitFor(re: RegExp, what: string, after = 0, ms = 10_000): Promise<string> {
    const found = () => this.all.slice(after).find((l) => re.test(l));
    const now = found();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = found();
        if (line === undefined) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(line);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no ${what} within ${ms} ms; got ${JSON.stringify(this.all)}`));
      }, ms);
      this.#waiters.add(check);
    });
  }
}

/** The notice lines: those naming the options they are about. */
const noticesIn = (lines: LogLine[]) => lines.filter((l) => Array.isArray(l.option));

describe('a Perl conf file under the supervisor', () => {
  it('says each notice once, drains on SIGHUP, and passes sig_passthrough on to every worker with clients', async () => {
    const dir = tempDir();
    const conf = join(dir, 'perl.conf');
    writeFileSync(
      conf,
      [
        'port 127.0.0.1:0',
        'ipv6_package IO::Socket::IP',
        'tie_client_stdout 1',
        'no_close_by_child 1',
        'SSL_cert_file /etc/ssl/server.crt',
        'leave_children_open_on_hup 1',
        'sig_passthrough HUP,USR2',
        'log_level 3',
        '',
      ].join('\n'),
    );
    const proc = new Proc(process.execPath, [
      '--import',
      'tsx',
      fixture('passthrough.ts'),
      `--conf_file=${conf}`,
    ]);
    const serving = await proc.waitLog(
      (l) => String(l.msg).includes('serving with worker'),
      'the supervisor to serve',
    );
    const port = (serving.ports as Array<{ port: number }>)[0]!.port;
    const firstWorker = serving.worker as number;

    const expected = [
      ['ipv6_package'],
      ['no_close_by_child'],
      ['sig_passthrough'],
      ['tie_client_stdout'],
      ['SSL_cert_file'],
    ];
    const notices = noticesIn(proc.lines);
    expect(notices.filter((l) => l.level === 35).map((l) => l.option)).toEqual(expected);
    // The supervisor says them, not the worker; and leave_children_open_on_hup's mapping, at info.
    for (const line of notices) expect(line.role, String(line.msg)).toBe('supervisor');
    expect(notices.find((l) => l.level === 30)?.msg).toBe(
      'leave_children_open_on_hup 1: set as reload_mode drain',
    );

    const old = await Lines.open(port);
    await old.waitFor(new RegExp(`^hello from ${firstWorker}$`), 'the greeting');

    // USR2 goes on to the worker.
    proc.child.kill('SIGUSR2');
    await old.waitFor(new RegExp(`^${firstWorker} got SIGUSR2$`), 'SIGUSR2 passed on to the worker');

    // HUP is the supervisor's: it reloads, and the old worker (not sent SIGHUP, which would end it)
    // drains its connection, as leave_children_open_on_hup asks.
    const reloaded = await proc.hup('the reload');
    expect(String(reloaded.msg)).toMatch(/^reloaded in/);
    old.socket.write('still here\n');
    await old.waitFor(/^still here$/, 'the old worker to answer after the reload');
    // The reload is over only once the old worker has stopped accepting: the next connection
    // reaches the new worker.
    const neu = await Lines.open(port);
    const greeting = await neu.waitFor(/^hello from \d+$/, 'the new worker to greet');
    const secondWorker = Number(greeting.split(' ').pop());
    expect(secondWorker).not.toBe(firstWorker);

    // Both workers with clients get the next USR2: the serving one and the one draining.
    const before = old.all.length;
    proc.child.kill('SIGUSR2');
    await neu.waitFor(new RegExp(`^${secondWorker} got SIGUSR2$`), 'SIGUSR2 passed on to the new worker');
    await old.waitFor(/ got SIGUSR2$/, 'SIGUSR2 passed on to the draining worker', before);
    expect(old.all.filter((l) => l.endsWith('got SIGUSR2'))).toEqual([
      `${firstWorker} got SIGUSR2`,
      `${firstWorker} got SIGUSR2`,
    ]);

    // The reload's configuration is the same: nothing said again, by the supervisor or a worker.
    expect(
      noticesIn(proc.lines)
        .filter((l) => l.level === 35)
        .map((l) => l.option),
    ).toEqual(expected);

    proc.child.kill('SIGTERM');
    expect((await proc.waitExit()).code).toBe(0);
  });
});
