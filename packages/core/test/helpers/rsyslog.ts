/**
 * An rsyslogd of the test's own: udp and tcp inputs on free loopback ports, every message written
 * to a file in a temp dir as tab-separated fields, no /dev/log (imuxsock is not loaded), in the
 * foreground with its own pid file. Stopped by its pid when the test ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { closedTcpPort, closedUdpPort } from './syslog.js';

/** rsyslogdPath is the rsyslogd binary, or undefined when rsyslog is not installed. */
export const rsyslogdPath = ['/usr/sbin/rsyslogd', '/sbin/rsyslogd'].find((p) => existsSync(p));

/** RsyslogLine is one message as rsyslogd parsed it. */
export interface RsyslogLine {
  pri: number;
  facility: string;
  severity: string;
  programname: string;
  procid: string;
  msg: string;
}

/** Rsyslogd is one running rsyslogd. */
export interface Rsyslogd {
  udpPort: number;
  tcpPort: number;
  pid: number;
  /** lines reads what it wrote so far. */
  lines(): RsyslogLine[];
  /** waitFor polls its output file (bounded) until a line matches `pred`. */
  waitFor(pred: (l: RsyslogLine) => boolean, what: string, ms?: number): Promise<RsyslogLine>;
}

/** startRsyslogd starts one and resolves once it has logged its own start (its inputs are open then). */
export async function startRsyslogd(): Promise<Rsyslogd> {
  if (!rsyslogdPath) throw new Error('rsyslogd is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'netplex-rsyslog-'));
  const out = join(dir, 'messages');
  // Free ports: bound by the OS with port 0 and closed again, then given to rsyslogd.
  const udpPort = await closedUdpPort();
  const tcpPort = await closedTcpPort();
  const conf = join(dir, 'rsyslog.conf');
  writeFileSync(
    conf,
    `global(workDirectory="${dir}" processInternalMessages="on")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="${udpPort}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="${tcpPort}")
template(name="fields" type="string"
  string="%pri%\\t%syslogfacility-text%\\t%syslogseverity-text%\\t%programname%\\t%procid%\\t%msg%\\n")
*.* action(type="omfile" file="${out}" template="fields")
`,
  );
  const child: ChildProcess = spawn(rsyslogdPath, ['-n', '-f', conf, '-i', join(dir, 'rsyslogd.pid')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const lines = (): RsyslogLine[] => {
    if (!existsSync(out)) return [];
    return readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [pri, facility, severity, programname, procid, ...msg] = l.split('\t');
        return {
          pri: Number(pri),
          facility: facility!,
          severity: severity!,
          programname: programname!,
          procid: procid!,
          msg: msg.join('\t'),
        };
      });
  };
  const waitFor = async (pred: (l: RsyslogLine) => boolean, what: string, ms = 15_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = lines().find(pred);
      if (found) return found;
      if (child.exitCode !== null)
        throw new Error(`rsyslogd exited (${child.exitCode}) waiting for ${what}: ${output}`);
      if (Date.now() > deadline)
        throw new Error(
          `timed out after ${ms} ms waiting for ${what} from rsyslogd; it wrote: ${JSON.stringify(lines().slice(-10))}; output: ${output}`,
        );
      // rsyslogd tells no one when it writes: its file is read again shortly.
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  await waitFor((l) => l.programname === 'rsyslogd' && l.msg.includes('start'), 'its start message');
  return { udpPort, tcpPort, pid: child.pid!, lines, waitFor };
}
