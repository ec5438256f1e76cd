/**
 * The kernel's own view of processes and sockets, read from /proc (what `ps` and `ss -ltnp` read):
 * a process's children, the TCP sockets listening on a port, and who holds them.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { endianness } from 'node:os';

/** readText reads a file, or undefined when it is gone (a process that exited meanwhile). */
export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function pids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** cmdline is a process's command line, for messages. */
export function cmdline(pid: number): string {
  return (readText(`/proc/${pid}/cmdline`) ?? '?').replaceAll('\0', ' ').slice(0, 200);
}

/** childrenOf lists the live node processes whose parent is `ppid` (a loader's helper binary is not one). */
export function childrenOf(ppid: number): number[] {
  return childStates(ppid).alive;
}

/**
 * childStates reads, in one pass over /proc, the children of `ppid` that live (as childrenOf) and
 * those that have exited and that the parent has not reaped yet (zombies).
 */
export function childStates(ppid: number): { alive: number[]; zombies: number[] } {
  const out: number[] = [];
  const zombies: number[] = [];
  for (const pid of pids()) {
    const stat = readText(`/proc/${pid}/stat`);
    if (!stat) continue;
    // The command name is in parentheses and may hold spaces: the fields after it are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) !== ppid) continue;
    if (fields[0] === 'Z') {
      zombies.push(pid);
      continue;
    }
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {}
    if (/esbuild/.test(exe)) continue;
    out.push(pid);
  }
  return { alive: out.sort((a, b) => a - b), zombies };
}

/** A listening TCP socket as /proc/net/tcp or /proc/net/tcp6 shows it. */
export interface Listening {
  address: string;
  port: number;
  family: 4 | 6;
  inode: string;
}

/** hexAddress reads /proc/net's address: 32-bit words in host byte order, each printed as %08X. */
function hexAddress(hex: string, family: 4 | 6): string {
  const bytes = Buffer.from(hex, 'hex');
  if (endianness() === 'LE') for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  if (family === 4) return [...bytes].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16));
  // The URL parser writes an IPv6 address in its canonical short form.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** listening lists the TCP sockets in state LISTEN on `ports`, from both of the kernel's tables. */
export function listening(ports: readonly number[]): Listening[] {
  const out: Listening[] = [];
  for (const [table, family] of [
    ['/proc/net/tcp', 4],
    ['/proc/net/tcp6', 6],
  ] as const) {
    if (!existsSync(table)) continue;
    for (const line of (readText(table) ?? '').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... inode; 0A is TCP_LISTEN.
      if (f.length < 10 || f[3] !== '0A') continue;
      const [addr = '', portHex = ''] = f[1]!.split(':');
      const port = Number.parseInt(portHex, 16);
      if (ports.includes(port)) out.push({ address: hexAddress(addr, family), port, family, inode: f[9]! });
    }
  }
  return out;
}

/** socketInodes gives the inodes of the sockets process `pid` holds (none once it is gone). */
export function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {}
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {}
  }
  return inodes;
}

/** listenOwners lists every process that holds a descriptor of a TCP socket listening on `port`. */
export function listenOwners(port: number): number[] {
  const inodes = new Set(listening([port]).map((s) => s.inode));
  if (inodes.size === 0) return [];
  return pids()
    .filter((pid) => [...socketInodes(pid)].some((i) => inodes.has(i)))
    .sort((a, b) => a - b);
}

/**
 * connectionOwners lists every process that holds the server's end of the TCP connection from
 * local port `clientPort` to `serverPort` on loopback (who keeps a connection open that should be closed).
 */
export function connectionOwners(serverPort: number, clientPort: number): number[] {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (readText(table) ?? '').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = Number.parseInt(f[1]!.split(':').at(-1) ?? '', 16);
      const remote = Number.parseInt(f[2]!.split(':').at(-1) ?? '', 16);
      if (local === serverPort && remote === clientPort && f[9] !== '0') inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return [];
  return pids()
    .filter((pid) => [...socketInodes(pid)].some((i) => inodes.has(i)))
    .sort((a, b) => a - b);
}
