/**
 * The sample conf file of `perldoc Net::Server` (section CONFIGURATION FILE), run as a user runs it:
 * `netplex run ENTRY --conf_file=FILE`, and, when Perl's Net::Server is installed, a Net::Server
 * with the same file beside it. What each binds is read from the kernel (/proc/net/tcp, tcp6).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, watch, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, netplexBin, Proc, tempDir } from '../helpers/proc.js';
import { listening, socketInodes } from '../helpers/procfs.js';

/**
 * SAMPLE is the sample conf file, verbatim from Net/Server.pod (2.013) without the pod's four-space
 * indent. The sample's own port comment says 20205 is bound on IPv6; Net::Server 2.013 binds both
 * ports on 127.0.0.1 over IPv4 (an IPv4 address with ipv IPv6 is one IPv4 socket), and netplex too.
 * Every key on a line the sample leaves active is a netplex option. Its commented-out syslog lines
 * stay commented: netplex would accept them too (and send the lines to syslog, as Perl would), but
 * this test reads the log file (the syslog tests are in core's syslog tests).
 */
const SAMPLE = `#-------------- file test.conf --------------

### user and group to become
user        somebody
group       everybody

# logging ?
log_file    /var/log/server.log
log_level   3
pid_file    /tmp/server.pid

# optional syslog directive
# used in place of log_file above
#log_file       Sys::Syslog
#syslog_logsock unix
#syslog_ident   myserver
#syslog_logopt  pid|cons

# access control
allow       .+\\.(net|com)
allow       domain\\.com
deny        a.+
cidr_allow  127.0.0.0/8
cidr_allow  192.0.2.0/24
cidr_deny   192.0.2.4/30

# background the process?
background  1

# ports to bind (this should bind
# 127.0.0.1:20205 on IPv6 and
# localhost:20204 on IPv4)
# See Net::Server::Proto
host        127.0.0.1
ipv         IPv6
port        localhost:20204/IPv4
port        20205

# reverse lookups ?
# reverse_lookups on

#-------------- file test.conf --------------
`;

/**
 * sampleConf is SAMPLE with the only lines this test changes, each matched exactly once:
 * - user and group commented out: those accounts do not exist here, and as root both servers would
 *   try to become them;
 * - log_file and pid_file in the test's directory;
 * - background commented out: the test waits for the process it started, which must not detach;
 * - the two ports replaced by free ones.
 */
function sampleConf(dir: string, port1: number, port2: number): string {
  const edits: Array<[RegExp, string]> = [
    [/^user {8}somebody$/m, '#user        somebody'],
    [/^group {7}everybody$/m, '#group       everybody'],
    [/^log_file {4}\/var\/log\/server\.log$/m, `log_file    ${join(dir, 'server.log')}`],
    [/^pid_file {4}\/tmp\/server\.pid$/m, `pid_file    ${join(dir, 'server.pid')}`],
    [/^background {2}1$/m, '#background  1'],
    [/^port {8}localhost:20204\/IPv4$/m, `port        localhost:${port1}/IPv4`],
    [/^port {8}20205$/m, `port        ${port2}`],
  ];
  let text = SAMPLE;
  for (const [re, line] of edits) {
    expect(SAMPLE.match(new RegExp(re.source, 'gm')), `one line ${re} in the sample`).toHaveLength(1);
    text = text.replace(re, line);
  }
  return text;
}

/** perl tells whether Perl has Net::Server's Multiplex personality (and Net::CIDR, for cidr_allow). */
const perl = (() => {
  const r = spawnSync(
    'perl',
    [
      '-MNet::Server::Multiplex',
      '-MIO::Multiplex',
      '-MNet::CIDR',
      '-e',
      'print "$Net::Server::VERSION\\n$INC{q{Net/Server.pm}}\\n"',
    ],
    { encoding: 'utf8' },
  );
  if (r.error) return { ok: false, why: `perl cannot be run (${r.error.message})` } as const;
  if (r.status !== 0) {
    return {
      ok: false,
      why: `perl lacks Net::Server::Multiplex, IO::Multiplex or Net::CIDR: ${r.stderr.trim().split('\n')[0]}`,
    } as const;
  }
  const [version = '', pm = ''] = r.stdout.trim().split('\n');
  return { ok: true, version, pod: pm.replace(/\.pm$/, '.pod') } as const;
})();
if (!perl.ok) console.log(`perl-conf: skipping the comparison with Perl's Net::Server: ${perl.why}`);

/**
 * freePorts asks the kernel for `n` distinct free TCP ports on 127.0.0.1: it binds port 0 `n` times
 * at once, reads the ports, and closes. Port 0 itself cannot go into the conf file: the test is that
 * netplex and Net::Server bind the same spec, and with port 0 each socket gets its own number from
 * the kernel, so a port no longer tells which conf line a socket came from (both lines would say
 * 0), nor are the sockets of one spec (one per family or address) under one port any more.
 */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen({ host: '127.0.0.1', port: 0 }, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * binds says, for each of the conf's two ports, which (address, family) pairs listen on it, after
 * checking that process `pid` holds every one of those sockets (no other process took the port).
 */
function binds(pid: number, ports: readonly [number, number], who: string): string[][] {
  const found = listening(ports);
  const held = socketInodes(pid);
  for (const s of found) {
    expect(held.has(s.inode), `${who} (pid ${pid}) holds ${s.address}:${s.port} IPv${s.family}`).toBe(true);
  }
  return ports.map((port) =>
    [...new Set(found.filter((s) => s.port === port).map((s) => `${s.address} IPv${s.family}`))].sort(),
  );
}

/**
 * waitFileLine waits until `file` has a line containing `needle` and returns that line: it rereads
 * the file on each change the kernel reports in its directory. It fails after `ms`, or as soon as
 * `proc` exits, with what the file and the process's stderr hold.
 */
function waitFileLine(file: string, needle: string, proc: Proc, what: string, ms = 20_000): Promise<string> {
  const text = () => (existsSync(file) ? readFileSync(file, 'utf8') : '');
  // Only whole lines: the last one may still be being written.
  const find = () =>
    text()
      .split('\n')
      .slice(0, -1)
      .find((l) => l.includes(needle));
  return new Promise((resolve, reject) => {
    const detail = () =>
      `; ${file}: ${JSON.stringify(text().slice(-1500))}; stderr: ${JSON.stringify(proc.stderr.slice(-1500))}`;
    let settled = false;
    const done = (err: Error | undefined, line?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve(line!);
    };
    const check = () => {
      const line = find();
      if (line !== undefined) done(undefined, line);
    };
    const timer = setTimeout(
      () => done(new Error(`timed out after ${ms} ms waiting for ${what}${detail()}`)),
      ms,
    );
    const watcher = watch(dirname(file), check);
    proc.exited.then((exit) => {
      if (find() === undefined)
        done(new Error(`${what}: the process exited (${JSON.stringify(exit)})${detail()}`));
    });
    check();
  });
}

/** echo sends one line on a new connection to host:port and resolves with the first line back. */
function echo(port: number, line: string, host = '127.0.0.1', ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host });
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no echo from ${host}:${port} within ${ms} ms (got ${JSON.stringify(buf)})`));
    }, ms);
    socket.once('connect', () => socket.write(`${line}\n`));
    socket.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(buf.slice(0, nl));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`echo on ${host}:${port}: ${err.message}`));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`${host}:${port} closed the connection before echoing (got ${JSON.stringify(buf)})`));
    });
  });
}

/** startNetplex runs `netplex run echo.ts --conf_file=FILE` and waits for its `serving` log line. */
async function startNetplex(
  conf: string,
  dir: string,
): Promise<{ proc: Proc; serving: Record<string, unknown> }> {
  const proc = new Proc(process.execPath, [netplexBin, 'run', fixture('echo.ts'), `--conf_file=${conf}`]);
  // The conf's log_file takes the log lines, so they are read there, not on stderr.
  const line = await waitFileLine(join(dir, 'server.log'), 'serving with worker', proc, 'netplex to serve');
  return { proc, serving: JSON.parse(line) as Record<string, unknown> };
}

/** stop sends SIGTERM to the process by its pid and waits for it to exit. */
async function stop(
  proc: Proc,
  what: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  process.kill(proc.pid, 'SIGTERM');
  await proc.waitExit(15_000).catch((err: Error) => {
    throw new Error(`${what} did not exit on SIGTERM: ${err.message}`);
  });
  return proc.exit!;
}

/** What Net::Server 2.013 binds for the sample's ports, each on its free port. */
const EXPECTED = [['127.0.0.1 IPv4'], ['127.0.0.1 IPv4']];

describe("perldoc Net::Server's sample conf file", () => {
  it('netplex run --conf_file takes every key, binds both ports on 127.0.0.1 over IPv4 and echoes on each', async () => {
    const dir = tempDir();
    const [port1, port2] = (await freePorts(2)) as [number, number];
    const conf = join(dir, 'test.conf');
    writeFileSync(conf, sampleConf(dir, port1, port2));

    const { proc, serving } = await startNetplex(conf, dir);
    const bound = binds(proc.pid, [port1, port2], 'the netplex supervisor');
    expect(bound, `what listens on ${port1} and ${port2}`).toEqual(EXPECTED);
    // The supervisor's own account agrees with the kernel's.
    expect(serving.ports).toEqual([
      { proto: 'tcp', address: '127.0.0.1', port: port1, family: 4 },
      { proto: 'tcp', address: '127.0.0.1', port: port2, family: 4 },
    ]);
    expect(readFileSync(join(dir, 'server.pid'), 'utf8').trim()).toBe(String(proc.pid));

    // 127.0.0.1 is served despite the sample's deny rule, by its cidr_allow 127.0.0.0/8.
    expect(await echo(port1, `ping ${port1}`)).toBe(`ping ${port1}`);
    expect(await echo(port2, `ping ${port2}`)).toBe(`ping ${port2}`);

    expect(await stop(proc, 'netplex')).toEqual({ code: 0, signal: null });
    expect(listening([port1, port2]), 'nothing listens once netplex stopped').toEqual([]);
    expect(existsSync(join(dir, 'server.pid')), 'the pid file is removed').toBe(false);
  });

  it.skipIf(!perl.ok)(
    "binds the same (address, family) on each port as Perl's Net::Server run with the same file",
    async () => {
      if (!perl.ok) return;
      // The sample is Net::Server's own, word for word (when its pod is installed beside it).
      if (existsSync(perl.pod)) {
        const pod = readFileSync(perl.pod, 'utf8');
        // The pod indents the block by four spaces, its closing line by two.
        const marker = '#-------------- file test\\.conf --------------';
        const block = new RegExp(`^ {4}${marker}\\n[\\s\\S]*?\\n {2}${marker}\\n`, 'm').exec(pod);
        expect(block, `the sample conf in ${perl.pod}`).not.toBeNull();
        expect(block![0].replace(/^ {1,4}/gm, '')).toBe(SAMPLE);
      }

      const [n1, n2, p1, p2] = (await freePorts(4)) as [number, number, number, number];
      const netplexDir = tempDir();
      const perlDir = tempDir();
      writeFileSync(join(netplexDir, 'test.conf'), sampleConf(netplexDir, n1, n2));
      writeFileSync(join(perlDir, 'test.conf'), sampleConf(perlDir, p1, p2));

      const perlProc = new Proc('perl', [
        fixture('net-server-echo.pl'),
        `--conf_file=${join(perlDir, 'test.conf')}`,
      ]);
      const [{ proc }] = await Promise.all([
        startNetplex(join(netplexDir, 'test.conf'), netplexDir),
        waitFileLine(join(perlDir, 'server.log'), 'NETPLEX-TEST-LOOPING', perlProc, 'Net::Server to bind'),
      ]);

      const theirs = binds(perlProc.pid, [p1, p2], `Net::Server ${perl.version}`);
      const ours = binds(proc.pid, [n1, n2], 'the netplex supervisor');
      const log = readFileSync(join(perlDir, 'server.log'), 'utf8');
      expect(ours, `netplex binds as Net::Server ${perl.version} does; its log:\n${log}`).toEqual(theirs);
      expect(theirs, `Net::Server ${perl.version} binds`).toEqual(EXPECTED);

      // Both serve 127.0.0.1 on both ports with the sample's access rules.
      for (const port of [n1, n2, p1, p2]) expect(await echo(port, `ping ${port}`)).toBe(`ping ${port}`);

      await Promise.all([stop(proc, 'netplex'), stop(perlProc, 'Net::Server')]);
      expect(listening([n1, n2, p1, p2]), 'nothing listens once both stopped').toEqual([]);
    },
  );
});
