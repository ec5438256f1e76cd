import { describe, expect, it } from 'vitest';
import type { PortObject } from '../../src/options.js';
import { type PortSpec, pairPortSpecs, parsePortSpec } from '../../src/port-spec.js';
import { mulberry32, fuzzRuns as runs, fuzzSeed as seed } from '../helpers/fuzz.js';

// Every input either parses into well-formed specs or throws a coded netplex error: never a
// TypeError, a RangeError from a regex, or a result that would fail later at bind time.

const fragments = [
  '[',
  ']',
  ':',
  '::',
  '/',
  '|',
  ',',
  ' ',
  '\t',
  '\n',
  '*',
  '.',
  '-',
  '_',
  '\0',
  '%',
  'IPv',
  'IPv4',
  'IPv6',
  'IPv*',
  'ipv46',
  'IPv5',
  'IPv',
  '4',
  '6',
  '0',
  '80',
  '20203',
  '65535',
  '65536',
  '99999999999',
  '-1',
  '1e3',
  '0x50',
  'unix',
  'unixdgram',
  'tcp',
  'udp',
  'TCP',
  'ssl',
  'ssleay',
  'sock_stream',
  'SOCK_DGRAM',
  'Net::Server::Proto::UDP',
  'MyObject::TCP',
  '::1',
  '127.0.0.1',
  '999.1.1.1',
  '0.0.0.0',
  'fe80::1%eth0',
  'localhost',
  'http',
  'nosuchservice',
  '/tmp/x.sock',
  './x',
  'é',
  'ü',
  '日本',
  '🙂',
  '\u200b',
  '\u00a0',
  '\ud800',
  'constructor',
  '__proto__',
  'toString',
  '$&',
  '\\',
  '(',
  '?',
  '+',
];

function makeInput(rand: () => number) {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;
  const text = (): string => {
    switch (int(3)) {
      case 0: {
        // Random code units, including lone surrogates and control characters.
        let s = '';
        for (let i = int(24); i > 0; i--) s += String.fromCharCode(int(rand() < 0.7 ? 128 : 0x10000));
        return s;
      }
      default: {
        let s = '';
        for (let i = int(8); i > 0; i--) s += pick(fragments);
        return s;
      }
    }
  };
  const scalar = (): unknown => {
    const r = rand();
    if (r < 0.7) return text();
    if (r < 0.8) return pick([0, 1, 80, 65535, 65536, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 4, 6]);
    if (r < 0.85) return pick([undefined, null, true, {}, [], Symbol.iterator]);
    const o: Record<string, unknown> = {};
    for (const key of ['port', 'host', 'ipv', 'proto', 'path'])
      if (rand() < 0.6) o[key] = rand() < 0.8 ? text() : scalar();
    return o;
  };
  const list = (): unknown[] => Array.from({ length: int(4) }, scalar);
  return { text, scalar, list, int };
}

function checkSpec(s: PortSpec, where: string): void {
  expect(Object.isFrozen(s), where).toBe(true);
  if (s.proto === 'unix' || s.proto === 'unixdgram') {
    expect(typeof s.port === 'string' && s.port.length > 0 && !s.port.includes('\0'), where).toBe(true);
    expect([s.host, s.ipv], where).toEqual(['*', '*']);
    return;
  }
  expect(['tcp', 'udp'], where).toContain(s.proto);
  expect(Number.isInteger(s.port) && s.port >= 0 && s.port <= 65535, where).toBe(true);
  expect(['4', '6', '*'], where).toContain(s.ipv);
  expect(typeof s.host === 'string' && s.host.length > 0, where).toBe(true);
}

function expectCoded(err: unknown, where: string): void {
  const code = (err as { code?: unknown } | null)?.code;
  expect(typeof code === 'string' && code.startsWith('MPX_ERR_'), `${where}: ${String(err)}`).toBe(true);
}

describe(`port-spec fuzz (seed ${seed}, ${runs} runs; replay with NETPLEX_FUZZ_SEED=${seed})`, () => {
  it('parsePortSpec returns specs or throws a coded error', () => {
    const rand = mulberry32(seed);
    const g = makeInput(rand);
    for (let i = 0; i < runs; i++) {
      const spec = g.scalar();
      const defaults = {
        host: rand() < 0.5 ? '*' : g.scalar(),
        proto: rand() < 0.5 ? 'tcp' : g.scalar(),
        ipv: rand() < 0.5 ? '*' : g.scalar(),
        envIpv: rand() < 0.8 ? undefined : g.scalar(),
      };
      const where = `seed ${seed} run ${i}: parsePortSpec(${JSON.stringify(String(spec))})`;
      try {
        const out = parsePortSpec(spec as PortObject, defaults as never);
        expect(out.length, where).toBeGreaterThan(0);
        for (const s of out) checkSpec(s, where);
      } catch (err) {
        expectCoded(err, where);
      }
    }
  });

  it('pairPortSpecs returns specs or throws a coded error', () => {
    const rand = mulberry32(seed ^ 0x9e3779b9);
    const g = makeInput(rand);
    for (let i = 0; i < runs; i++) {
      const config = {
        port: rand() < 0.9 ? g.list() : g.scalar(),
        host: rand() < 0.9 ? g.list() : g.scalar(),
        ipv: rand() < 0.9 ? g.list() : g.scalar(),
        proto: rand() < 0.9 ? g.list() : g.scalar(),
      };
      const where = `seed ${seed} run ${i}: pairPortSpecs`;
      try {
        for (const s of pairPortSpecs(config as never)) checkSpec(s, where);
      } catch (err) {
        expectCoded(err, where);
      }
    }
  });

  it('a valid spec with fuzz around it still parses the same way', () => {
    // Separators and case that Net::Server accepts must not change the meaning.
    const rand = mulberry32(seed ^ 0x85ebca6b);
    const g = makeInput(rand);
    const seps = [':', ' ', ', ', ' | ', '|'];
    for (let i = 0; i < runs / 10; i++) {
      const port = g.int(65536);
      const sep = () => seps[g.int(seps.length)]!;
      const proto = rand() < 0.5 ? 'tcp' : 'UDP';
      const spec = `127.0.0.1${sep()}${port}${sep()}${proto}${sep()}IPv${rand() < 0.5 ? '4' : '*'}`;
      const where = `seed ${seed} run ${i}: ${spec}`;
      const out = parsePortSpec(spec, { host: '*', proto: 'tcp', ipv: '*' });
      expect(
        out.map(({ spec: _s, ...rest }) => rest),
        where,
      ).toEqual([{ proto: proto.toLowerCase(), host: '127.0.0.1', port, ipv: '4' }]);
    }
  });
});
