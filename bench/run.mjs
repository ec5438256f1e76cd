#!/usr/bin/env node
/**
 * run — `pnpm bench`: netplex against raw node:net, node:http, Perl's Net::Server::Multiplex and the
 * usual Node restarters, side by side in one run. Writes bench/results.md and bench/results.json.
 *
 *   pnpm bench                 the full suite (about 10 minutes on 2 cores)
 *   pnpm bench --quick         a few seconds per scenario; checks every scenario ran and verified
 *                              its bytes (exit 1 otherwise); writes bench/build/quick-results.*
 *   pnpm bench --only=echo,reload   run some scenarios (echo lines http memory reload migrate startup);
 *                              a full run with --only replaces just those in bench/results.*, and the
 *                              table says which scenarios were run again, and when
 *
 * This machine is shared and noisy, so every comparison is a ratio measured in the same run: the
 * systems alternate within each round (the order rotates), and results are the median and min–max
 * over the rounds. Servers run pinned to CPU 0, the load (bench/loadgen.c, wrk) to CPU 1.
 *
 * Every child this starts is tracked by pid and ended (SIGTERM, then SIGKILL) when its scenario
 * ends, and again on any exit path, so that no server outlives the run. All traffic is loopback.
 * BENCH_IDLE_CONNS sets the idle-memory connection count (default 10000; 1000 with --quick).
 * BENCH_BUSY_CONNS sets the busy migration scenario's connections with --quick (default 100).
 *
 * The reload scenario's PM2 baselines need PM2, which is not a workspace dependency: a full run
 * installs a pinned version with npm into bench/build/pm2 when it is missing; --quick runs them only
 * if it is there. Without it (no network) those rows are left out and the table says why.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = join(ROOT, 'bench');
const BUILD = join(BENCH, 'build');
const LOADGEN = join(BUILD, 'loadgen');
const NETPLEX = join(ROOT, 'packages/supervisor/bin/netplex.js');
const EXAMPLES = join(ROOT, 'packages/examples');
const SERVERS = join(BENCH, 'servers');

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const ONLY = argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
const SCENARIOS = ['echo', 'lines', 'http', 'memory', 'reload', 'migrate', 'startup'];

const CFG = QUICK
  ? { rounds: 1, seconds: 1.5, warmup: 0.3, idleConns: 1000, reloads: 3, reloadEvery: 1.0, startupTrials: 2 }
  : { rounds: 3, seconds: 3, warmup: 1, idleConns: 10_000, reloads: 10, reloadEvery: 1.5, startupTrials: 7 };
const { BENCH_IDLE_CONNS, BENCH_BUSY_CONNS } = process.env;
if (BENCH_IDLE_CONNS) CFG.idleConns = Math.max(1, Math.min(50_000, Number(BENCH_IDLE_CONNS)));

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowNs = () => process.hrtime.bigint(); // CLOCK_MONOTONIC on Linux, the clock loadgen reports in

// ------------------------------------------------------------------ children, tracked by pid

/** Every process this run started and has not seen exit: ended on every exit path. */
const children = new Map(); // pid -> ChildProcess
/** Pids we learned of that are not our direct children (netplex workers, watch-mode children). */
const grandchildren = new Map(); // pid -> a string its /proc cmdline must contain before we kill it

function track(child) {
  if (child.pid === undefined) return child;
  children.set(child.pid, child);
  child.once('exit', () => children.delete(child.pid));
  return child;
}

function cmdlineOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/**
 * killStray ends known grandchildren (those whose mark is `only`, or all), but only when that pid
 * still runs what we started: a pid the kernel reused for something else is left alone.
 */
function killStray(signal, only) {
  for (const [pid, mark] of grandchildren) {
    if (only !== undefined && mark !== only) continue;
    const cmd = cmdlineOf(pid);
    if (cmd === undefined) grandchildren.delete(pid);
    else if (cmd.includes(mark)) {
      try {
        process.kill(pid, signal);
      } catch {}
    }
  }
}

/** stopChild sends SIGTERM, waits up to `ms`, then SIGKILL; resolves once it exited. */
async function stopChild(child, ms = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try {
    child.kill('SIGTERM');
  } catch {}
  const timer = setTimeout(() => {
    try {
      child.kill('SIGKILL');
    } catch {}
  }, ms);
  await exited;
  clearTimeout(timer);
}

/**
 * descendantsOf lists the live processes below `roots` (children, their children, ...), read from the
 * parent pids in /proc: a supervisor's workers, a PM2 daemon's apps.
 */
function descendantsOf(roots) {
  const below = new Map(); // parent pid -> child pids
  let names = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after its last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!below.has(ppid)) below.set(ppid, []);
    below.get(ppid).push(Number(name));
  }
  const out = [];
  const queue = [...roots];
  while (queue.length) {
    for (const pid of below.get(queue.shift()) ?? []) {
      if (out.includes(pid) || roots.includes(pid)) continue;
      out.push(pid);
      queue.push(pid);
    }
  }
  return out;
}

function killEverything() {
  // What runs below our processes is found before they die (their children are then re-parented).
  const ours = [...grandchildren].filter(([pid, mark]) => cmdlineOf(pid)?.includes(mark)).map(([pid]) => pid);
  const below = descendantsOf([...children.keys(), ...ours]);
  for (const child of children.values()) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
  killStray('SIGKILL');
  for (const pid of below) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}
process.on('exit', killEverything);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: stopping every server`);
    killEverything();
    process.exit(130);
  });
}

// ------------------------------------------------------------------ environment

const CORES = os.cpus().length;
const PINNED = CORES >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
if (!PINNED) log('taskset is missing or this machine has one core: server and load are not pinned');
else spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });

function pinned(cpu, cmd, args) {
  return PINNED ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
}
const onServerCpu = (cmd, args) => pinned(0, cmd, args);
const onLoadCpu = (cmd, args) => pinned(1, cmd, args);

const PERL =
  spawnSync('perl', ['-MNet::Server::Multiplex', '-MIO::Multiplex', '-e', '1'], { stdio: 'ignore' })
    .status === 0;
const WRK = spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
const skipped = [];
if (!PERL)
  skipped.push(
    'Perl baselines: Net::Server::Multiplex or IO::Multiplex is missing (apt-get install libnet-server-perl libio-multiplex-perl)',
  );
if (!WRK) skipped.push('HTTP scenario: wrk is missing (apt-get install wrk)');

function buildLoadgen() {
  mkdirSync(BUILD, { recursive: true });
  const src = join(BENCH, 'loadgen.c');
  if (existsSync(LOADGEN) && statSync(LOADGEN).mtimeMs > statSync(src).mtimeMs) return;
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', LOADGEN, src], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('could not compile bench/loadgen.c with cc');
}

/** ensureExamples builds packages/examples when its dist is missing or older than its sources. */
function ensureExamples() {
  const stale = ['echo', 'lines', 'httpd'].some((n) => {
    const js = join(EXAMPLES, 'dist', `${n}.js`);
    return !existsSync(js) || statSync(js).mtimeMs < statSync(join(EXAMPLES, 'src', `${n}.ts`)).mtimeMs;
  });
  if (!stale && existsSync(join(ROOT, 'packages/core/dist/index.js'))) return;
  log('building the examples (pnpm --filter @netplex/examples build)');
  const r = spawnSync('pnpm', ['--filter', '@netplex/examples', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('pnpm --filter @netplex/examples build failed; run pnpm build');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ------------------------------------------------------------------ servers

/**
 * Each start function resolves to a Server: `port`, `pid` (the process that serves, whose memory
 * counts), and `stop()`. Output is kept (the last lines) to explain a failure.
 */
function spawnServer(cmd, args, opts = {}) {
  const [c, a] = onServerCpu(cmd, args);
  const child = track(spawn(c, a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...opts }));
  const tail = [];
  const keep = (line) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
  };
  child.lines = [];
  child.onLine = new Set();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      keep(line);
      for (const f of child.onLine) f(line);
    });
  }
  child.tail = tail;
  return child;
}

/** waitLine resolves with the first line for which `pick` returns a value. */
function waitLine(child, pick, what, ms = 30_000) {
  return new Promise((resolve, reject) => {
    const done = (err, v) => {
      clearTimeout(timer);
      child.onLine.delete(onLine);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(v);
    };
    const onLine = (line) => {
      const v = pick(line);
      if (v !== undefined) done(null, v);
    };
    const onExit = (code) =>
      done(new Error(`${what} exited (code ${code}) before it was ready:\n${child.tail.join('\n')}`));
    const timer = setTimeout(
      () => done(new Error(`${what} not ready after ${ms} ms:\n${child.tail.join('\n')}`)),
      ms,
    );
    child.onLine.add(onLine);
    child.once('exit', onExit);
  });
}

function jsonLine(line) {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

/** startNetplex runs ENTRY under the supervisor (`netplex run`, or `netplex dev`). */
async function startNetplex(entry, { dev = false, port = 0 } = {}) {
  const pidFile = join(BUILD, `netplex-${process.pid}-${Math.random().toString(36).slice(2)}.pid`);
  const child = spawnServer(process.execPath, [
    NETPLEX,
    dev ? 'dev' : 'run',
    entry,
    `--port=127.0.0.1:${port}`,
    `--pid_file=${pidFile}`,
  ]);
  // The log format is the supervisor's to change (JSON, or pretty under `dev`): only the message is
  // relied on, and the port and worker come from `netplex status --json`.
  await waitLine(
    child,
    (line) => (/serving with worker \d+/.test(line) ? true : undefined),
    `netplex ${relative(ROOT, entry)}`,
  );
  const ready = await netplexStatus(pidFile);
  grandchildren.set(ready.worker, entry);
  return {
    pidFile,
    port: ready.port,
    pid: ready.worker,
    supervisorPid: child.pid,
    child,
    stop: async () => {
      await stopChild(child);
      killStray('SIGKILL', entry);
      rmSync(pidFile, { force: true });
    },
  };
}

/** netplexStatus asks the supervisor for its port and worker pid (its control socket may lag the log line). */
async function netplexStatus(pidFile) {
  for (let i = 0; i < 50; i++) {
    const r = spawnSync(process.execPath, [NETPLEX, 'status', `--pid_file=${pidFile}`, '--json'], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    const j = r.status === 0 ? jsonLine(r.stdout.trim()) : undefined;
    if (j?.worker_pid && j.ports?.[0]?.port) return { port: j.ports[0].port, worker: j.worker_pid };
    await sleep(100);
  }
  throw new Error(`netplex status --pid_file=${pidFile} gave no port and worker`);
}

/** startNode runs a node:net/node:http baseline that prints {"port":N}. */
async function startNode(script, args = [], nodeArgs = []) {
  const child = spawnServer(process.execPath, [...nodeArgs, script, ...args]);
  const port = await waitLine(child, (line) => jsonLine(line)?.port, relative(ROOT, script));
  return { port, pid: child.pid, child, stop: () => stopChild(child) };
}

/** startPerl runs bench/servers/echo.pl in `mode` and waits until it answers. */
async function startPerl(mode, port) {
  port ||= await freePort();
  // Started by its absolute path, not `perl echo.pl`: Net::Server's HUP re-execs $0.
  const child = spawnServer(join(SERVERS, 'echo.pl'), [String(port)], {
    env: { ...process.env, BENCH_MODE: mode },
  });
  await waitServing(port, child, 'perl echo.pl', mode === 'header' ? 16 : 0);
  return { port, pid: child.pid, child, stop: () => stopChild(child) };
}

/** startC runs loadgen's minimal epoll echo server: the client's headroom. */
async function startC() {
  const child = spawnServer(LOADGEN, ['serve']);
  const port = await waitLine(child, (line) => jsonLine(line)?.port, 'loadgen serve');
  return { port, pid: child.pid, child, stop: () => stopChild(child) };
}

/**
 * echoOnce connects, reads `header` bytes if asked, sends "x\n" and waits for it back: proof that
 * the application (not just the kernel's backlog) serves the port. A line is answered by echo and
 * line servers alike.
 */
function echoOnce(port, header = 0, ms = 2000) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let got = 0;
    const timer = setTimeout(() => finish(false), ms);
    const finish = (ok) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    s.on('connect', () => s.write('x\n'));
    s.on('data', (d) => {
      got += d.length;
      if (got >= header + 2) finish(true);
    });
    s.on('error', () => finish(false));
    s.on('close', () => finish(false));
  });
}

async function waitServing(port, child, what, header = 0, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited:\n${child.tail?.join('\n')}`);
    if (await echoOnce(port, header, 500)) return;
    await sleep(20);
  }
  throw new Error(`${what} did not serve port ${port} within ${ms} ms`);
}

// ------------------------------------------------------------------ load

/**
 * runCaptured runs a command to its end (SIGKILL after `ms`) and resolves with its exit and output;
 * a command that cannot start rejects.
 */
function runCaptured(cmd, args, options, ms) {
  const child = track(spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    });
  });
}

/** runLoadgen runs the C client on the load CPU and resolves with its last JSON line. */
async function runLoadgen(args, ms) {
  const [c, a] = onLoadCpu(LOADGEN, args);
  const { code, signal, out, err } = await runCaptured(c, a, {}, ms);
  const j = jsonLine(out.trim().split('\n').pop() ?? '');
  if (j) return j;
  throw new Error(`loadgen ${args.join(' ')} failed (${signal ?? code}): ${err.trim()}`);
}

// ------------------------------------------------------------------ statistics

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function percentile(xs, p) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  return v[Math.min(v.length - 1, Math.floor(p * v.length))];
}

function summary(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return v.length ? { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length } : null;
}

/** ratios pairs round r of `a` with round r of `b` (measured moments apart) and summarizes a/b. */
function ratios(a, b) {
  const out = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] > 0 && b[i] > 0) out.push(a[i] / b[i]);
  return summary(out);
}

/** push appends `value` to the list at `obj[key]`, starting the list when needed. */
function push(obj, key, value) {
  if (!obj[key]) obj[key] = [];
  obj[key].push(value);
}

const rotate = (xs, r) => xs.map((_, i) => xs[(i + r) % xs.length]);

// ------------------------------------------------------------------ results

const results = {
  date: new Date().toISOString(),
  mode: QUICK ? 'quick' : 'full',
  machine: {
    cores: CORES,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: os.release(),
    pinned: PINNED,
  },
  config: CFG,
  skipped,
  scenarios: {},
};
const failures = [];
function fail(scenario, msg) {
  failures.push(`${scenario}: ${msg}`);
  log(`FAIL ${scenario}: ${msg}`);
}

// ------------------------------------------------------------------ 1 + 2: echo and lines

/**
 * throughput runs the C client at each load point against every system, alternating the order
 * each round. `line` sends \n-terminated lines (each answered by the server).
 */
async function throughput(name, systems, points, { line = false, baseline }) {
  const servers = new Map();
  const samples = {}; // point -> system -> [result per round]
  try {
    for (const sys of systems) servers.set(sys.id, await sys.start());
    for (let r = 0; r < CFG.rounds; r++) {
      for (const [conns, depth] of points) {
        const key = `${conns}x${depth}`;
        samples[key] ??= {};
        for (const sys of rotate(systems, r)) {
          const { port } = servers.get(sys.id);
          const args = ['echo', '--port', String(port), '--conns', String(conns), '--depth', String(depth)];
          args.push('--duration', String(CFG.seconds), '--warmup', String(CFG.warmup));
          if (line) args.push('--line');
          const res = await runLoadgen(args, (CFG.seconds + CFG.warmup + 90) * 1000);
          push(samples[key], sys.id, res);
          log(
            `${name} ${key} ${sys.id} round ${r + 1}: ${Math.round(res.msgs_per_s)} msg/s p50 ${res.p50_us} us p99 ${res.p99_us} us client cpu ${res.client_cpu_pct}%${res.ok ? '' : ' NOT VERIFIED'}`,
          );
          if (!res.ok)
            fail(
              name,
              `${sys.id} at ${key}: ${res.mismatches} mismatches, ${res.errors} errors, ${res.connect_errors} connect errors, ${res.unanswered_bytes} bytes unanswered`,
            );
        }
      }
    }
  } finally {
    for (const s of servers.values()) await s.stop();
  }
  const out = { systems: systems.map(({ id, label }) => ({ id, label })), baseline, points: {} };
  for (const [key, bySys] of Object.entries(samples)) {
    const point = {};
    for (const [id, rs] of Object.entries(bySys)) {
      point[id] = {
        msgs_per_s: summary(rs.map((r) => r.msgs_per_s)),
        p50_us: summary(rs.map((r) => r.p50_us)),
        p99_us: summary(rs.map((r) => r.p99_us)),
        client_cpu_pct: summary(rs.map((r) => r.client_cpu_pct)),
        verified: rs.every((r) => r.ok),
        bytes_verified: rs.reduce((a, r) => a + r.bytes_verified, 0),
      };
    }
    const base = bySys[baseline]?.map((r) => r.msgs_per_s) ?? [];
    for (const [id, rs] of Object.entries(bySys)) {
      if (bySys.perl && id !== 'perl')
        point[id].ratio_vs_perl = ratios(
          rs.map((r) => r.msgs_per_s),
          bySys.perl.map((r) => r.msgs_per_s),
        );
      if (id === baseline) continue;
      point[id].ratio_vs_baseline = ratios(
        rs.map((r) => r.msgs_per_s),
        base,
      );
    }
    out.points[key] = point;
  }
  return out;
}

async function scenarioEcho() {
  const systems = [
    {
      id: 'netplex',
      label: 'netplex echo.js under the supervisor',
      start: () => startNetplex(join(EXAMPLES, 'dist/echo.js')),
    },
    { id: 'raw', label: 'raw node:net echo', start: () => startNode(join(SERVERS, 'raw-echo.mjs')) },
  ];
  if (PERL)
    systems.push({ id: 'perl', label: 'Perl Net::Server::Multiplex', start: () => startPerl('echo') });
  systems.push({ id: 'c', label: 'C epoll echo (the client’s headroom)', start: startC });
  return throughput(
    'echo',
    systems,
    [
      [1, 1],
      [100, 8],
      [1000, 8],
    ],
    { baseline: 'raw' },
  );
}

async function scenarioLines() {
  const systems = [
    {
      id: 'netplex',
      label: 'netplex lines.js (input.lineBuffers)',
      start: () => startNetplex(join(EXAMPLES, 'dist/lines.js')),
    },
    {
      id: 'raw',
      label: 'hand-written node:net line server',
      start: () => startNode(join(SERVERS, 'raw-lines.mjs')),
    },
  ];
  if (PERL)
    systems.push({
      id: 'perl',
      label: 'Perl Net::Server::Multiplex regex loop',
      start: () => startPerl('lines'),
    });
  return throughput(
    'lines',
    systems,
    [
      [1, 1],
      [100, 8],
    ],
    { line: true, baseline: 'raw' },
  );
}

// ------------------------------------------------------------------ 6: HTTP with wrk

function httpGetTwice(port) {
  // Two requests on one keep-alive connection: the answer and keep-alive both work.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 3000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  return get()
    .then((a) => get().then((b) => [a, b]))
    .finally(() => agent.destroy());
}

function parseWrk(text) {
  const num = (re) => {
    const m = text.match(re);
    return m ? Number(m[1]) : null;
  };
  const lat = (p) => {
    const m = text.match(new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm'));
    if (!m) return null;
    return Number(m[1]) * { us: 1, ms: 1000, s: 1e6 }[m[2]];
  };
  const sock = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    requests_per_s: num(/Requests\/sec:\s+([\d.]+)/),
    p50_us: lat(50),
    p99_us: lat(99),
    socket_errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non_2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0,
  };
}

function runWrk(port, seconds) {
  const [c, a] = onLoadCpu('wrk', [
    '-t1',
    '-c100',
    `-d${seconds}s`,
    '--latency',
    `http://127.0.0.1:${port}/`,
  ]);
  const child = track(spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
  return new Promise((resolve) =>
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(parseWrk(out));
    }),
  );
}

async function scenarioHttp() {
  if (!WRK) return { skipped: 'wrk is missing' };
  const systems = [
    {
      id: 'netplex',
      label: 'netplex httpd.js under the supervisor',
      start: () => startNetplex(join(EXAMPLES, 'dist/httpd.js')),
    },
    { id: 'node_http', label: 'node:http', start: () => startNode(join(SERVERS, 'node-http.mjs')) },
    { id: 'raw', label: 'raw node:net responder', start: () => startNode(join(SERVERS, 'raw-http.mjs')) },
  ];
  const servers = new Map();
  const samples = {};
  const seconds = Math.max(1, Math.round(CFG.seconds + CFG.warmup));
  try {
    for (const sys of systems) {
      const s = await sys.start();
      servers.set(sys.id, s);
      const answers = await httpGetTwice(s.port).catch((e) => [{ status: 0, body: String(e) }]);
      if (!answers.every((x) => x.status === 200 && x.body === 'Hello, world!\n'))
        fail('http', `${sys.id} answered ${JSON.stringify(answers)}`);
      // Unmeasured warm-up: otherwise whichever system goes first pays for the JIT in round 1.
      await runWrk(s.port, 1);
    }
    for (let r = 0; r < CFG.rounds; r++) {
      for (const sys of rotate(systems, r)) {
        const res = await runWrk(servers.get(sys.id).port, seconds);
        push(samples, sys.id, res);
        log(
          `http ${sys.id} round ${r + 1}: ${res.requests_per_s} req/s p50 ${res.p50_us} us p99 ${res.p99_us} us`,
        );
        if (!res.requests_per_s) fail('http', `${sys.id}: wrk reported no requests`);
        if (res.socket_errors || res.non_2xx)
          fail('http', `${sys.id}: ${res.socket_errors} socket errors, ${res.non_2xx} non-2xx answers`);
      }
    }
  } finally {
    for (const s of servers.values()) await s.stop();
  }
  const out = {
    systems: systems.map(({ id, label }) => ({ id, label })),
    baseline: 'node_http',
    load: 'wrk -t1 -c100',
    results: {},
  };
  for (const [id, rs] of Object.entries(samples)) {
    out.results[id] = {
      requests_per_s: summary(rs.map((r) => r.requests_per_s)),
      p50_us: summary(rs.map((r) => r.p50_us)),
      p99_us: summary(rs.map((r) => r.p99_us)),
      errors: rs.reduce((a, r) => a + r.socket_errors + r.non_2xx, 0),
    };
    if (id !== 'node_http')
      out.results[id].ratio_vs_baseline = ratios(
        rs.map((r) => r.requests_per_s),
        samples.node_http.map((r) => r.requests_per_s),
      );
    if (id === 'netplex')
      out.results[id].ratio_vs_raw = ratios(
        rs.map((r) => r.requests_per_s),
        samples.raw.map((r) => r.requests_per_s),
      );
  }
  return out;
}

// ------------------------------------------------------------------ 3: idle memory

function rssKb(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/**
 * holdIdle opens `conns` idle connections with loadgen and holds them: `held` is loadgen's report once
 * they are all open, `release()` lets them go and resolves with its final report (ok: every one was
 * still there).
 */
async function holdIdle(port, conns) {
  const [c, a] = onLoadCpu(LOADGEN, [
    'idle',
    '--port',
    String(port),
    '--conns',
    String(conns),
    '--hold',
    '120',
  ]);
  const child = track(spawn(c, a, { stdio: ['pipe', 'pipe', 'inherit'] }));
  const rl = createInterface({ input: child.stdout });
  const lines = [];
  const waiting = [];
  rl.on('line', (l) => (waiting.length ? waiting.shift()(l) : lines.push(l)));
  const next = (ms) =>
    lines.length
      ? Promise.resolve(lines.shift())
      : new Promise((resolve) => {
          const timer = setTimeout(() => resolve(undefined), ms);
          waiting.push((l) => {
            clearTimeout(timer);
            resolve(l);
          });
        });
  const held = jsonLine((await next(150_000)) ?? '');
  if (!held) throw new Error('loadgen idle printed nothing');
  return {
    held,
    release: async () => {
      child.stdin.end();
      const done = jsonLine((await next(60_000)) ?? '') ?? { ok: false };
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      return done;
    },
  };
}

/** How many bursts of idle connections a memory round opens: the first is on a fresh process. */
const IDLE_BURSTS = 3;

/**
 * idleOnce opens `conns` idle connections to a fresh server and measures the serving process's RSS;
 * then, after they close, opens them again (IDLE_BURSTS in all) on the same process, whose code is
 * compiled and whose heap has grown by then: the last burst's accept time is the warm one.
 */
async function idleOnce(start, conns) {
  const server = await start();
  try {
    await waitServing(server.port, server.child, 'server');
    await sleep(500);
    const before = rssKb(server.pid);
    const { held, release } = await holdIdle(server.port, conns);
    await sleep(1000); // let the server settle after the burst of accepts
    const after = rssKb(server.pid);
    const done = await release();
    let warm = { accepted: conns, accept_s: held.accept_s, ok: true };
    for (let b = 1; b < IDLE_BURSTS; b++) {
      await sleep(1000); // the server closes the last burst's connections meanwhile
      const again = await holdIdle(server.port, conns);
      const ended = await again.release();
      warm = { ...again.held, ok: ended.ok === true && again.held.accepted === conns };
    }
    return {
      accepted: held.accepted,
      failed: held.failed,
      accept_s: held.accept_s,
      accept_warm_s: warm.accept_s,
      rss_before_kb: before,
      rss_after_kb: after,
      kb_per_conn: held.accepted ? (after - before) / held.accepted : null,
      ok: done.ok === true && held.accepted === conns && warm.ok,
    };
  } finally {
    await server.stop();
  }
}

async function scenarioMemory() {
  const systems = [
    {
      id: 'netplex',
      label: 'netplex echo.js worker',
      start: () => startNetplex(join(EXAMPLES, 'dist/echo.js')),
    },
    { id: 'raw', label: 'raw node:net echo', start: () => startNode(join(SERVERS, 'raw-echo.mjs')) },
  ];
  const samples = {};
  for (let r = 0; r < CFG.rounds; r++) {
    for (const sys of rotate(systems, r)) {
      const res = await idleOnce(sys.start, CFG.idleConns);
      push(samples, sys.id, res);
      log(
        `memory ${sys.id} round ${r + 1}: ${res.accepted}/${CFG.idleConns} accepted in ${res.accept_s} s (burst ${IDLE_BURSTS}: ${res.accept_warm_s} s), ${res.kb_per_conn?.toFixed(2)} KB/conn (RSS ${res.rss_before_kb} -> ${res.rss_after_kb} KB)`,
      );
      if (!res.ok)
        fail(
          'memory',
          `${sys.id}: ${res.accepted} of ${CFG.idleConns} accepted, ${res.failed} failed or dropped`,
        );
    }
  }
  const out = {
    systems: systems.map(({ id, label }) => ({ id, label })),
    conns: CFG.idleConns,
    bursts: IDLE_BURSTS,
    baseline: 'raw',
    results: {},
  };
  for (const [id, rs] of Object.entries(samples)) {
    out.results[id] = {
      kb_per_conn: summary(rs.map((r) => r.kb_per_conn)),
      accept_s: summary(rs.map((r) => r.accept_s)),
      accept_warm_s: summary(rs.map((r) => r.accept_warm_s)),
      rss_after_kb: summary(rs.map((r) => r.rss_after_kb)),
      all_accepted: rs.every((r) => r.ok),
    };
  }
  if (samples.netplex && samples.raw) {
    out.results.netplex.ratio_vs_baseline = ratios(
      samples.netplex.map((r) => r.kb_per_conn),
      samples.raw.map((r) => r.kb_per_conn),
    );
    out.results.netplex.accept_ratio_vs_baseline = ratios(
      samples.netplex.map((r) => r.accept_s),
      samples.raw.map((r) => r.accept_s),
    );
    out.results.netplex.accept_warm_ratio_vs_baseline = ratios(
      samples.netplex.map((r) => r.accept_warm_s),
      samples.raw.map((r) => r.accept_warm_s),
    );
  }
  return out;
}

// ------------------------------------------------------------------ 4: reload under load

/**
 * PM2, a reload baseline, is not a dependency of the workspace: a full run installs this version into
 * bench/build/pm2 (gitignored) unless it is there already, and --quick uses it only if it is there.
 * Every PM2 kind runs its own daemon under a private PM2_HOME, so a user's PM2 is never touched.
 */
const PM2_VERSION = '7.0.4';
const PM2_DIR = join(BUILD, 'pm2');
const PM2_CLI = join(PM2_DIR, 'node_modules/pm2/bin/pm2');

/** ensurePm2 resolves to undefined when PM2_VERSION is ready to use, or to why the PM2 rows are missing. */
function ensurePm2() {
  const installed = () => {
    try {
      const pkg = JSON.parse(readFileSync(join(PM2_DIR, 'node_modules/pm2/package.json'), 'utf8'));
      return pkg.version === PM2_VERSION;
    } catch {
      return false;
    }
  };
  if (installed()) return undefined;
  if (QUICK)
    return `pm2@${PM2_VERSION} is not in bench/build/pm2, and --quick does not install it (a full run does)`;
  log(`installing pm2@${PM2_VERSION} into ${relative(ROOT, PM2_DIR)} (for the bench only)`);
  mkdirSync(PM2_DIR, { recursive: true });
  const r = spawnSync(
    'npm',
    [
      'install',
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      '--fetch-retries=1',
      '--prefix',
      PM2_DIR,
      `pm2@${PM2_VERSION}`,
    ],
    { cwd: PM2_DIR, encoding: 'utf8', timeout: 300_000 },
  );
  const lines = (r.stderr ?? '').split('\n');
  const why = (
    lines.find((l) => l.includes('reason:')) ??
    lines.find((l) => l.startsWith('npm error code')) ??
    lines.find((l) => l.trim()) ??
    ''
  )
    .replace(/^npm error (network )?/, '')
    .trim();
  if (r.error) return `npm install pm2@${PM2_VERSION} failed: ${r.error.message}`;
  if (r.status !== 0)
    return `npm install pm2@${PM2_VERSION} failed (exit ${r.status})${why ? `: ${why}` : ''}`;
  return installed()
    ? undefined
    : `npm install pm2@${PM2_VERSION} ran but bench/build/pm2 has no pm2 ${PM2_VERSION}`;
}

/** pm2Env is the environment of PM2's CLI and daemon: its own home, no update check, no PM2 Plus agent. */
const pm2Env = (home) => ({
  ...process.env,
  PM2_HOME: home,
  PM2_DISABLE_VERSION_CHECK: 'true',
  PM2_NO_INTERACTION: 'true',
  PM2_DISCRETE_MODE: 'true',
  FORCE_COLOR: '0',
});

/**
 * runPm2 runs PM2's CLI on the server CPU (the daemon it may start inherits the pinning) and resolves
 * with its output once it exits 0.
 */
async function runPm2(args, home, ms = 60_000) {
  const [c, a] = onServerCpu(process.execPath, [PM2_CLI, ...args]);
  const { code, signal, out, err } = await runCaptured(c, a, { cwd: ROOT, env: pm2Env(home) }, ms);
  if (code === 0) return out + err;
  const last = (out + err)
    .replace(/\x1b\[[0-9;]*m/g, '')
    .trim()
    .split('\n')
    .slice(-3)
    .join(' / ');
  throw new Error(`pm2 ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${last}`);
}

/**
 * pm2Daemon is the pid of the PM2 daemon of `home` while it runs, else undefined. Its title names its
 * home, but cut to the length of its original command line, so only PM2_DIR is certain to be in it.
 */
function pm2Daemon(home) {
  let pid;
  try {
    pid = Number(readFileSync(join(home, 'pm2.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
  return pid > 0 && cmdlineOf(pid)?.includes(PM2_DIR) ? pid : undefined;
}

/**
 * A reload kind: how to start the server (it must greet with "PID %011d\n"), and how to reload it
 * (a signal to a pid, a save of a watched file, or a command: `reload()` then returns its promise).
 */
function reloadKinds({ pm2 = false } = {}) {
  const kinds = [];
  const watchDir = join(BUILD, 'watch');
  /** A private copy of a server in its own package, so a watcher sees only it (and saving it is harmless). */
  const copyServer = (sub, from, name) => {
    const dir = join(watchDir, sub);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{ "private": true, "type": "module" }\n');
    const to = join(dir, name);
    const core = pathToFileURL(join(ROOT, 'packages/core/dist/index.js')).href;
    writeFileSync(to, readFileSync(from, 'utf8').replace('../../packages/core/dist/index.js', core));
    return to;
  };
  const save = (file) => () => appendFileSync(file, `// saved at ${Date.now()}\n`);
  const hup = (pid) => () => process.kill(pid, 'SIGHUP');

  /**
   * The raw echo server under PM2, set up for reloads the way PM2's users do it: `pm2 start` (with
   * `modeArgs`), then `pm2 reload NAME` from PM2's CLI, issued when the latency clock starts and not
   * awaited. Everything of PM2's (CLI, daemon, apps) runs in PM2_DIR, which is the mark of its pids.
   */
  const pm2Kind = (id, label, modeArgs) => ({
    id,
    label,
    start: async () => {
      const dir = join(PM2_DIR, 'apps', id);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'raw-echo.mjs');
      writeFileSync(file, readFileSync(join(SERVERS, 'raw-echo.mjs')));
      const home = join(PM2_DIR, `home-${process.pid}-${id}`);
      rmSync(home, { recursive: true, force: true });
      const port = await freePort();
      const stop = async () => {
        const daemon = pm2Daemon(home);
        if (daemon !== undefined) {
          grandchildren.set(daemon, PM2_DIR);
          for (const pid of descendantsOf([daemon])) grandchildren.set(pid, PM2_DIR);
          await runPm2(['kill'], home, 30_000).catch((err) => log(`${id}: ${err.message}`));
        }
        killStray('SIGKILL', PM2_DIR);
        rmSync(home, { recursive: true, force: true });
      };
      try {
        await runPm2(['start', file, '--name', id, ...modeArgs, '--', String(port), '--header'], home);
      } catch (err) {
        await stop();
        throw err;
      }
      const daemon = pm2Daemon(home);
      if (daemon === undefined) {
        await stop();
        throw new Error(`pm2 start gave no daemon in ${relative(ROOT, home)}`);
      }
      grandchildren.set(daemon, PM2_DIR);
      for (const pid of descendantsOf([daemon])) grandchildren.set(pid, PM2_DIR);
      return { port, pid: daemon, reload: () => runPm2(['reload', id], home), stop, mark: PM2_DIR };
    },
  });
  const pm2Kinds = pm2
    ? [
        // 2 instances is what `-i max` gives on this 2-core machine, fixed so that the row means the
        // same elsewhere; PM2 reloads cluster instances one at a time, each replaced once its successor listens.
        pm2Kind('pm2_cluster', 'pm2 reload, cluster mode, 2 instances', ['-i', '2']),
        // In fork mode `pm2 reload` restarts the one process: stop, then start.
        pm2Kind('pm2_fork', 'pm2 reload, fork mode, 1 instance', []),
      ]
    : [];

  kinds.push({
    id: 'netplex_hup_js',
    label: 'netplex run .js, SIGHUP',
    start: async () => {
      const s = await startNetplex(join(SERVERS, 'pid-echo.mjs'));
      return { ...s, reload: hup(s.supervisorPid) };
    },
  });
  kinds.push({
    id: 'netplex_hup_ts',
    label: 'netplex run .ts (tsx), SIGHUP',
    start: async () => {
      const s = await startNetplex(join(SERVERS, 'pid-echo.ts'));
      return { ...s, reload: hup(s.supervisorPid) };
    },
  });
  if (QUICK) return [...kinds, ...pm2Kinds];
  kinds.push({
    id: 'netplex_dev_save',
    label: 'netplex dev .js, file save',
    start: async () => {
      const file = copyServer('netplex-dev', join(SERVERS, 'pid-echo.mjs'), 'pid-echo.mjs');
      const s = await startNetplex(file, { dev: true });
      await sleep(500); // the watcher starts after the first worker serves
      return { ...s, reload: save(file) };
    },
  });
  const rawWatch = (id, label, cmd) => ({
    id,
    label,
    start: async () => {
      const file = copyServer(id, join(SERVERS, 'raw-echo.mjs'), 'raw-echo.mjs');
      const port = await freePort();
      const [c, a] = cmd(file, port);
      const child = spawnServer(c, a);
      await waitLine(child, (line) => jsonLine(line)?.port, label);
      await sleep(300);
      return {
        port,
        pid: child.pid,
        child,
        reload: save(file),
        stop: async () => {
          await stopChild(child);
          killStray('SIGKILL', file);
        },
        mark: file,
      };
    },
  });
  kinds.push(
    rawWatch('node_watch', 'node --watch, file save', (f, p) => [
      process.execPath,
      ['--watch', f, String(p), '--header'],
    ]),
  );
  kinds.push(
    rawWatch('tsx_watch', 'tsx watch, file save', (f, p) => [
      process.execPath,
      [
        join(ROOT, 'node_modules/tsx/dist/cli.mjs'),
        'watch',
        '--clear-screen=false',
        f,
        String(p),
        '--header',
      ],
    ]),
  );
  if (PERL) {
    kinds.push({
      id: 'perl_hup',
      label: 'Perl Net::Server::Multiplex, SIGHUP',
      start: async () => {
        const s = await startPerl('header');
        // Perl's HUP re-execs in the same pid, so its greeting carries an instance id, not a pid.
        return { ...s, reload: hup(s.pid), mark: null };
      },
    });
  }
  return [...kinds, ...pm2Kinds];
}

/** reloadOnce runs the reload-under-load client against one kind while reloading it CFG.reloads times. */
async function reloadOnce(kind) {
  const server = await kind.start();
  let load;
  try {
    await waitServing(server.port, server.child, kind.label, 16);
    const duration = 1.0 + CFG.reloads * CFG.reloadEvery + 1.5;
    load = runLoadgen(
      [
        'reload',
        '--port',
        String(server.port),
        '--persist',
        '50',
        '--rate',
        '200',
        '--duration',
        String(duration),
      ],
      (duration + 60) * 1000,
    );
    load.catch(() => {}); // awaited below; this only keeps an early failure from being unhandled
    await sleep(1000);
    const signals = [];
    const reloadErrors = [];
    const pending = []; // reloads that are commands (pm2 reload): their outcome comes later
    for (let i = 0; i < CFG.reloads; i++) {
      signals.push(nowNs());
      const what = `reload ${i + 1}`;
      try {
        const p = server.reload();
        if (p instanceof Promise)
          pending.push(p.catch((err) => reloadErrors.push(`${what}: ${err.message ?? err}`)));
      } catch (err) {
        reloadErrors.push(`${what}: ${err.message ?? err}`);
      }
      await sleep(CFG.reloadEvery * 1000);
    }
    const res = await load;
    await Promise.all(pending);
    // Every pid the client saw is ours: remember them so that none outlives the run.
    const mark = server.mark === undefined ? 'pid-echo' : server.mark;
    if (mark) for (const [, , pid] of res.new) if (pid > 0 && pid < 2 ** 22) grandchildren.set(pid, mark);
    return { res, signals, reloadErrors };
  } finally {
    await server.stop();
    // If anything above threw, the client may still run: it is ours to end.
    for (const child of children.values()) if (child.spawnargs.includes('reload')) child.kill('SIGKILL');
  }
}

/**
 * analyzeReload matches each reload signal with the first new connection, started after it, that
 * was served by a process not seen before it: the reload's latency (signal to new code serving).
 */
function analyzeReload({ res, signals, reloadErrors }) {
  const events = res.new.map(([start, served, pid, outcome]) => ({
    start: BigInt(start),
    served: BigInt(served),
    pid,
    outcome,
  }));
  const latencies = [];
  for (const t of signals) {
    const seen = new Set(events.filter((e) => e.outcome === 0 && e.served < t).map((e) => e.pid));
    const first = events.find((e) => e.outcome === 0 && e.start >= t && !seen.has(e.pid));
    latencies.push(first ? Number(first.served - t) / 1e6 : null);
  }
  const observed = latencies.filter((x) => x !== null);
  const lastPid = events.filter((e) => e.outcome === 0).at(-1)?.pid;
  return {
    reloads: signals.length,
    reloads_observed: observed.length,
    reload_ms: {
      p50: percentile(observed, 0.5),
      p99: percentile(observed, 0.99),
      max: observed.length ? Math.max(...observed) : null,
    },
    new_started: res.new_started,
    new_ok: res.new_ok,
    refused: res.new_refused,
    reset: res.new_reset,
    failed: res.new_failed,
    persistent_alive: res.persistent_alive,
    persistent: res.persistent,
    persistent_on_old_code: res.persistent_alive_pids.filter((p) => p !== 0 && p !== lastPid).length,
    reload_errors: reloadErrors,
    bytes_lost: res.bytes_lost,
    bytes_verified: res.bytes_verified,
    mismatches: res.mismatches,
    longest_stall_ms: Math.max(res.max_persistent_rtt_ms, res.max_new_conn_ms),
  };
}

async function scenarioReload() {
  const out = {
    load: '50 persistent connections (a 64-byte message each per 10 ms) + 200 new connections/s',
    reloads: CFG.reloads,
    every_s: CFG.reloadEvery,
    kinds: {},
  };
  const pm2Missing = ensurePm2();
  out.pm2 = pm2Missing ? { version: PM2_VERSION, skipped: pm2Missing } : { version: PM2_VERSION };
  if (pm2Missing) log(`skipped: the PM2 reload baselines: ${pm2Missing}`);
  for (const kind of reloadKinds({ pm2: !pm2Missing })) {
    try {
      const a = analyzeReload(await reloadOnce(kind));
      out.kinds[kind.id] = { label: kind.label, ...a };
      log(
        `reload ${kind.id}: ${a.reloads_observed}/${a.reloads} reloads seen, p50 ${a.reload_ms.p50?.toFixed(1)} ms; new ${a.new_ok}/${a.new_started} ok, ${a.refused} refused, ${a.reset} reset, ${a.failed} failed; persistent ${a.persistent_alive}/${a.persistent} alive, ${a.bytes_lost} bytes lost, stall ${a.longest_stall_ms.toFixed(1)} ms`,
      );
      if (a.mismatches)
        fail('reload', `${kind.id}: ${a.mismatches} echoed bytes differed from what was sent`);
      if (a.new_started === 0) fail('reload', `${kind.id}: no new connection was made`);
      if (a.reload_errors.length) fail('reload', `${kind.id}: ${a.reload_errors.join('; ')}`);
    } catch (err) {
      out.kinds[kind.id] = { label: kind.label, error: String(err.message ?? err) };
      fail('reload', `${kind.id}: ${err.message ?? err}`);
    }
  }
  return out;
}

// ------------------------------------------------------------------ 5: startup

/**
 * startupOnce times spawn to the first echoed line (an accepted connection, not the backlog), with
 * the server pinned to one core, or free to use both (`both`: the supervisor and its first worker
 * then load side by side, as on any multi-core machine).
 */
async function startupOnce(cmd, args, both = false) {
  const port = await freePort();
  // This process runs on the load CPU and its children inherit that: both cores must be asked for.
  const everyCpu = PINNED ? ['taskset', ['-c', `0-${CORES - 1}`, cmd, ...args(port)]] : [cmd, args(port)];
  const [c, a] = both ? everyCpu : onServerCpu(cmd, args(port));
  const t0 = nowNs();
  const child = track(spawn(c, a, { cwd: ROOT, stdio: 'ignore' }));
  try {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await echoOnce(port, 0, 1000)) return Number(nowNs() - t0) / 1e6;
      await sleep(2);
    }
    return null;
  } finally {
    await stopChild(child);
  }
}

async function scenarioStartup() {
  const npx = (entry) => (port) => [NETPLEX, 'run', entry, `--port=127.0.0.1:${port}`];
  const systems = [
    { id: 'netplex_js', label: 'netplex run echo.js (built)', args: npx(join(EXAMPLES, 'dist/echo.js')) },
    { id: 'netplex_ts', label: 'netplex run echo.ts (tsx)', args: npx(join(EXAMPLES, 'src/echo.ts')) },
    { id: 'raw', label: 'node raw-echo.mjs', args: (port) => [join(SERVERS, 'raw-echo.mjs'), String(port)] },
    {
      id: 'netplex_js_both',
      label: 'netplex run echo.js (built), both cores',
      args: npx(join(EXAMPLES, 'dist/echo.js')),
      both: true,
      baseline: 'raw_both',
    },
    {
      id: 'raw_both',
      label: 'node raw-echo.mjs, both cores',
      args: (port) => [join(SERVERS, 'raw-echo.mjs'), String(port)],
      both: true,
    },
  ];
  const samples = {};
  for (let r = 0; r < CFG.startupTrials; r++) {
    for (const sys of rotate(systems, r)) {
      const ms = await startupOnce(process.execPath, sys.args, sys.both);
      push(samples, sys.id, ms);
      if (ms === null) fail('startup', `${sys.id} never served`);
    }
  }
  const out = {
    systems: systems.map(({ id, label }) => ({ id, label })),
    baseline: 'raw',
    baselines: ['raw', 'raw_both'],
    trials: CFG.startupTrials,
    results: {},
  };
  for (const [id, xs] of Object.entries(samples)) {
    out.results[id] = { ms: summary(xs) };
    const base = systems.find((sys) => sys.id === id)?.baseline ?? 'raw';
    if (!out.baselines.includes(id)) out.results[id].ratio_vs_baseline = ratios(xs, samples[base]);
    log(`startup ${id}: median ${out.results[id].ms?.median?.toFixed(1)} ms`);
  }
  return out;
}

// ------------------------------------------------------------------ 7: live migration

/** statusJson reads `netplex status --json` (the whole object). */
function statusJson(pidFile) {
  const r = spawnSync(process.execPath, [NETPLEX, 'status', `--pid_file=${pidFile}`, '--json'], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  return r.status === 0 ? jsonLine(r.stdout.trim()) : undefined;
}

/** waitReloads polls the status until `n` reloads are done (bounded), and returns it. */
async function waitReloads(pidFile, n, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const st = statusJson(pidFile);
    if (st && st.reloads >= n) return st;
    await sleep(100);
  }
  throw new Error(`no reload ${n} within ${ms} ms`);
}

/**
 * migrateIdle holds `conns` idle connections to netplex echo.js, reloads (migrate) and reads how
 * long the migration took and how many moved; then checks that every connection is still there.
 */
async function migrateIdle(conns) {
  const server = await startNetplex(join(EXAMPLES, 'dist/echo.js'));
  try {
    const { held, release } = await holdIdle(server.port, conns);
    process.kill(server.supervisorPid, 'SIGHUP');
    const st = await waitReloads(server.pidFile, 1);
    const done = await release();
    return {
      conns,
      migrated: st.last_migration?.migrated ?? 0,
      failed: st.last_migration?.failed ?? 0,
      migrate_ms: st.last_migration?.ms ?? null,
      reload_ms: st.last_reload_ms,
      ok: done.ok === true && held.accepted === conns && st.last_migration?.migrated === conns,
    };
  } finally {
    await server.stop();
  }
}

/**
 * migrateBusy runs the echo load (`conns` x 1, every byte verified) against netplex echo.js and
 * reloads (migrate) in the middle: the longest round trip any client saw is the longest pause the
 * migration caused; p99 covers the whole run.
 */
async function migrateBusy(conns, seconds) {
  const server = await startNetplex(join(EXAMPLES, 'dist/echo.js'));
  try {
    const args = ['echo', '--port', String(server.port), '--conns', String(conns), '--depth', '1'];
    args.push('--duration', String(seconds), '--warmup', '0.5');
    const load = runLoadgen(args, (seconds + 90) * 1000);
    load.catch(() => {}); // awaited below; this only keeps an early failure from being unhandled
    await sleep((0.5 + seconds / 2) * 1000);
    process.kill(server.supervisorPid, 'SIGHUP');
    const res = await load;
    const st = await waitReloads(server.pidFile, 1);
    return {
      conns,
      migrated: st.last_migration?.migrated ?? 0,
      migrate_ms: st.last_migration?.ms ?? null,
      max_pause_ms: res.max_us / 1000,
      p99_ms: res.p99_us / 1000,
      msgs_per_s: res.msgs_per_s,
      // Verification is about bytes; how many moved (rather than drained) is a result, reported.
      ok: res.ok === true,
    };
  } finally {
    await server.stop();
  }
}

async function scenarioMigrate() {
  const idleConns = QUICK ? 1000 : CFG.idleConns;
  const busyConns = QUICK ? Number(BENCH_BUSY_CONNS ?? 100) : 1000;
  const idle = [];
  const busy = [];
  for (let r = 0; r < CFG.rounds; r++) {
    const i = await migrateIdle(idleConns);
    idle.push(i);
    log(
      `migrate idle round ${r + 1}: ${i.migrated}/${idleConns} moved in ${i.migrate_ms} ms${i.ok ? '' : ' NOT ALL'}`,
    );
    if (!i.ok) fail('migrate', `idle: ${i.migrated} of ${idleConns} moved, ${i.failed} failed`);
    const b = await migrateBusy(busyConns, QUICK ? 2 : 6);
    busy.push(b);
    log(
      `migrate busy round ${r + 1}: ${b.migrated}/${busyConns} moved in ${b.migrate_ms} ms, longest pause ${b.max_pause_ms} ms, p99 ${b.p99_ms} ms${b.ok ? '' : ' NOT VERIFIED'}`,
    );
    if (!b.ok) fail('migrate', `busy: bytes not verified (${b.migrated} of ${busyConns} moved)`);
  }
  return {
    idle: {
      conns: idleConns,
      migrate_ms: summary(idle.map((x) => x.migrate_ms)),
      ok: idle.every((x) => x.ok),
    },
    busy: {
      conns: busyConns,
      migrated: summary(busy.map((x) => x.migrated)),
      migrate_ms: summary(busy.map((x) => x.migrate_ms)),
      max_pause_ms: summary(busy.map((x) => x.max_pause_ms)),
      p99_ms: summary(busy.map((x) => x.p99_ms)),
      ok: busy.every((x) => x.ok),
    },
  };
}

// ------------------------------------------------------------------ report

const fmtInt = (x) => (x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
const fmt1 = (x) => (x === null || x === undefined ? '–' : x.toFixed(1));
const fmt2 = (x) => (x === null || x === undefined ? '–' : x.toFixed(2));
const range = (s, f) => (s ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : '–');

function markdown(r) {
  const L = [];
  const m = r.machine;
  L.push('# netplex benchmarks', '');
  L.push(
    `${r.date.slice(0, 10)} · ${m.cores} cores (${m.cpu}) · ${m.memory_gb} GB · Node ${m.node} · Linux ${m.kernel} · ${r.mode} run`,
  );
  L.push('');
  L.push(
    `Server pinned to CPU 0, load to CPU 1: ${m.pinned ? 'yes' : 'no (taskset missing)'}. ${r.config.rounds} round(s), systems alternating; each cell is the median (min–max). Ratios pair each round with the baseline's same round. Regenerate with \`pnpm bench\`.`,
  );
  for (const x of r.reran ?? [])
    L.push(
      '',
      `${x.scenario}: run again on its own (\`pnpm bench --only=${x.scenario}\`) on ${x.date.slice(0, 10)} at ${x.date.slice(11, 16)} UTC; the other scenarios are from the full run above.`,
    );
  for (const s of r.skipped) L.push('', `Skipped: ${s}`);
  const sc = r.scenarios;

  for (const [key, title] of [
    ['echo', 'Echo, 64-byte messages (bench/loadgen.c, every byte verified)'],
    ['lines', 'Line protocol, 64-byte lines, each answered'],
  ]) {
    const s = sc[key];
    if (!s) continue;
    L.push('', `## ${title}`, '');
    if (s.error) {
      L.push(`Failed: ${s.error}`);
      continue;
    }
    L.push('| load | system | msgs/s | p50 µs | p99 µs | vs raw node | vs Perl | client CPU % | verified |');
    L.push('|---|---|---|---|---|---|---|---|---|');
    for (const [point, bySys] of Object.entries(s.points)) {
      for (const { id, label } of s.systems) {
        const v = bySys[id];
        if (!v) continue;
        L.push(
          `| ${point.replace('x', ' × ')} | ${label} | ${range(v.msgs_per_s, fmtInt)} | ${range(v.p50_us, fmt1)} | ${range(v.p99_us, fmt1)} | ${id === s.baseline ? '1' : range(v.ratio_vs_baseline, fmt2)} | ${id === 'perl' ? '1' : range(v.ratio_vs_perl, fmt2)} | ${fmt1(v.client_cpu_pct?.median)} | ${v.verified ? 'yes' : '**NO**'} |`,
        );
      }
    }
  }

  const h = sc.http;
  if (h) {
    L.push('', '## HTTP/1.1 keep-alive, fixed small answer (wrk -t1 -c100)', '');
    if (h.error || h.skipped) L.push(h.error ? `Failed: ${h.error}` : `Skipped: ${h.skipped}`);
    else {
      L.push(
        '| system | requests/s | p50 µs | p99 µs | vs node:http | errors |',
        '|---|---|---|---|---|---|',
      );
      for (const { id, label } of h.systems) {
        const v = h.results[id];
        if (v)
          L.push(
            `| ${label} | ${range(v.requests_per_s, fmtInt)} | ${range(v.p50_us, fmt1)} | ${range(v.p99_us, fmt1)} | ${id === h.baseline ? '1' : range(v.ratio_vs_baseline, fmt2)} | ${v.errors} |`,
          );
      }
      if (h.results.netplex?.ratio_vs_raw)
        L.push('', `netplex vs the raw node:net responder: ${range(h.results.netplex.ratio_vs_raw, fmt2)}`);
    }
  }

  const mem = sc.memory;
  if (mem) {
    L.push(
      '',
      `## Idle memory, ${mem.conns?.toLocaleString('en-US')} idle connections (VmRSS of the serving process)`,
      '',
    );
    if (mem.error) L.push(`Failed: ${mem.error}`);
    else {
      L.push(
        `| system | KB per connection | vs raw node | time to accept all, s (fresh process) | vs raw | burst ${mem.bursts ?? IDLE_BURSTS} on the same process, s | vs raw | all accepted |`,
        '|---|---|---|---|---|---|---|---|',
      );
      const base = (id, v) => (id === mem.baseline ? '1' : range(v, fmt2));
      for (const { id, label } of mem.systems) {
        const v = mem.results[id];
        if (v)
          L.push(
            `| ${label} | ${range(v.kb_per_conn, fmt2)} | ${base(id, v.ratio_vs_baseline)} | ${range(v.accept_s, fmt2)} | ${base(id, v.accept_ratio_vs_baseline)} | ${v.accept_warm_s ? range(v.accept_warm_s, fmt2) : '–'} | ${v.accept_warm_s ? base(id, v.accept_warm_ratio_vs_baseline) : '–'} | ${v.all_accepted ? 'yes' : '**NO**'} |`,
          );
      }
      L.push(
        '',
        `Each round starts a fresh server and opens the connections ${mem.bursts ?? IDLE_BURSTS} times, each burst closed before the next; memory is measured in the first. A fresh process's first burst also pays for compiling its code and growing its heap, which the last burst no longer does.`,
      );
    }
  }

  const rel = sc.reload;
  if (rel) {
    L.push('', `## Reload under load: ${rel.load}, ${rel.reloads} reloads ${rel.every_s} s apart`, '');
    if (rel.error) L.push(`Failed: ${rel.error}`);
    else {
      L.push(
        '| reload kind | refused | reset | failed | new ok | persistent alive | on old code | bytes lost | longest stall ms | reload p50 ms | reload p99 ms | reloads seen |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
      );
      for (const v of Object.values(rel.kinds)) {
        if (v.error) {
          L.push(`| ${v.label} | failed to run: ${v.error.split('\n')[0]} |||||||||||`);
          continue;
        }
        L.push(
          `| ${v.label} | ${v.refused} | ${v.reset} | ${v.failed} | ${v.new_ok}/${v.new_started} | ${v.persistent_alive}/${v.persistent} | ${v.persistent_on_old_code} | ${fmtInt(v.bytes_lost)} | ${fmt1(v.longest_stall_ms)} | ${fmt1(v.reload_ms.p50)} | ${fmt1(v.reload_ms.p99)} | ${v.reloads_observed}/${v.reloads} |`,
        );
      }
      L.push(
        '',
        'Reload latency is signal (or save) to the first new connection served by a process not seen before it. "On old code" counts persistent connections alive at the end whose greeting came from a process that has since been replaced. With netplex\'s default reload_mode migrate those connections have in fact moved to the new worker (the greeting is not sent again); with reload_mode drain they stay on the retired worker for drain_timeout.',
      );
      if (rel.pm2?.skipped) L.push('', `No PM2 rows: ${rel.pm2.skipped}.`);
      else if (rel.pm2)
        L.push(
          '',
          `PM2 ${rel.pm2.version} (installed for the bench only, in bench/build/pm2) runs the same raw node:net echo server; a reload is the \`pm2 reload\` command, its latency counted from when the command is issued.`,
        );
    }
  }

  const mg = sc.migrate;
  if (mg) {
    L.push('', '## Live migration (reload_mode migrate): netplex echo.js, SIGHUP', '');
    if (mg.error) L.push(`Failed: ${mg.error}`);
    else {
      L.push(
        '| load | connections | moved | migration ms | longest pause ms | p99 round trip ms | bytes verified |',
        '|---|---|---|---|---|---|---|',
        `| idle | ${fmtInt(mg.idle.conns)} | all | ${range(mg.idle.migrate_ms, fmtInt)} | – | – | ${mg.idle.ok ? 'yes' : 'no'} |`,
        `| busy (each echoing, 1 in flight) | ${fmtInt(mg.busy.conns)} | ${range(mg.busy.migrated, fmtInt)} | ${range(mg.busy.migrate_ms, fmtInt)} | ${range(mg.busy.max_pause_ms, fmt1)} | ${range(mg.busy.p99_ms, fmt1)} | ${mg.busy.ok ? 'yes' : 'no'} |`,
        '',
        'Longest pause is the longest round trip any client saw during the run, which the migration falls in the middle of. Busy: the load runs 3 s after the reload and then closes its connections; "moved" counts those that moved by then. Each connection is stopped only at its own turn, and the old worker goes on serving the rest meanwhile, so under this load about one connection moves per event-loop turn of the old worker; the migration ends when the load closes the others.',
      );
    }
  }

  const st = sc.startup;
  if (st) {
    L.push('', '## Startup: command to first accepted connection (an echoed line)', '');
    if (st.error) L.push(`Failed: ${st.error}`);
    else {
      L.push('| system | ms | vs raw node |', '|---|---|---|');
      for (const { id, label } of st.systems) {
        const v = st.results[id];
        if (v)
          L.push(
            `| ${label} | ${range(v.ms, fmt1)} | ${(st.baselines ?? [st.baseline]).includes(id) ? '1' : range(v.ratio_vs_baseline, fmt2)} |`,
          );
      }
      L.push(
        '',
        "Unless a row says both cores, the server runs on CPU 0 only, so netplex's supervisor and its first worker (two Node processes) load one after the other; a row on both cores compares with raw node on both cores.",
      );
    }
  }
  if (r.failures.length) L.push('', '## Failures', '', ...r.failures.map((f) => `- ${f}`));
  return `${L.join('\n')}\n`;
}

// ------------------------------------------------------------------ main

const RUNNERS = {
  echo: scenarioEcho,
  lines: scenarioLines,
  http: scenarioHttp,
  memory: scenarioMemory,
  reload: scenarioReload,
  migrate: scenarioMigrate,
  startup: scenarioStartup,
};

/**
 * mergeInto keeps the scenarios of an earlier full run that this one (--only) did not run again: the
 * earlier date, machine and failures stay, and `reran` records which scenarios are newer, and when.
 */
function mergeInto(file) {
  let earlier;
  try {
    earlier = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return;
  }
  if (earlier?.mode !== 'full' || typeof earlier.scenarios !== 'object') return;
  const ran = Object.keys(results.scenarios);
  const reran = (earlier.reran ?? []).filter((x) => !ran.includes(x.scenario));
  for (const scenario of ran) reran.push({ scenario, date: results.date, machine: results.machine });
  const failures = (earlier.failures ?? []).filter((f) => !ran.some((s) => f.startsWith(`${s}:`)));
  Object.assign(results, {
    date: earlier.date,
    machine: earlier.machine,
    config: earlier.config,
    scenarios: { ...earlier.scenarios, ...results.scenarios },
    failures: [...failures, ...results.failures],
    reran,
  });
}

async function main() {
  const began = Date.now();
  buildLoadgen();
  ensureExamples();
  log(
    `${QUICK ? 'quick' : 'full'} run on ${CORES} cores, Node ${process.version}${PINNED ? ', pinned' : ''}`,
  );
  for (const s of skipped) log(`skipped: ${s}`);
  for (const name of SCENARIOS) {
    if (ONLY && !ONLY.includes(name)) continue;
    log(`--- ${name}`);
    try {
      results.scenarios[name] = await RUNNERS[name]();
    } catch (err) {
      results.scenarios[name] = { error: String(err.message ?? err) };
      fail(name, err.message ?? String(err));
    }
  }
  results.failures = failures;
  results.seconds = Math.round((Date.now() - began) / 1000);
  const base = QUICK ? join(BUILD, 'quick-results') : join(BENCH, 'results');
  if (ONLY && !QUICK) mergeInto(`${base}.json`);
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(`${base}.md`, markdown(results));
  log(`wrote ${relative(ROOT, base)}.md and .json in ${results.seconds} s`);
  if (failures.length) {
    log(`${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

try {
  await main();
} finally {
  killEverything();
}
