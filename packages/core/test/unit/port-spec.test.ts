import { describe, expect, it, vi } from 'vitest';
import { PortSpecError } from '../../src/errors.js';
import type { PortObject } from '../../src/options.js';
import {
  bindTargetKey,
  formatBindTarget,
  type HostLookup,
  lookupService,
  type PortSpec,
  type PortSpecDefaults,
  pairPortSpecs,
  parsePortSpec,
  resolveBindTargets,
} from '../../src/port-spec.js';

/** Net::Server's defaults for an unconfigured server: host *, proto tcp, ipv unset. */
const none: PortSpecDefaults = { host: '', proto: '', ipv: '' };
const d = (over: Partial<PortSpecDefaults>): PortSpecDefaults => ({ ...none, ...over });

/** A resolver whose localhost has both families, as the doc's examples assume. */
const dualLocalhost: HostLookup = async (host) => {
  if (host === 'localhost') {
    return [
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ];
  }
  if (host === 'v4only') return [{ address: '127.0.0.1', family: 4 }];
  if (host === 'v6only') return [{ address: '::1', family: 6 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};
const dualStack = { lookup: dualLocalhost, bindv6only: false, ipv6Available: true };

/** Names that have addresses of one family only, some of them two. */
const oneFamily: HostLookup = async (host) => {
  if (host === 'localhost' || host === 'v4only') return [{ address: '127.0.0.1', family: 4 }];
  if (host === 'twov4') {
    return [
      { address: '127.0.0.2', family: 4 },
      { address: '127.0.0.3', family: 4 },
    ];
  }
  if (host === 'v6only') return [{ address: 'fd00::10', family: 6 }];
  if (host === 'twov6') {
    return [
      { address: 'fd00::10', family: 6 },
      { address: 'fd00::11', family: 6 },
    ];
  }
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};

/** Strips `spec` so table rows stay short. */
const shape = (specs: PortSpec[]) => specs.map(({ spec: _spec, ...rest }) => rest);
type Shaped = ReturnType<typeof shape>[number];
const tcp = (host: string, port: number, ipv: '4' | '6' | '*'): Shaped => ({ proto: 'tcp', host, port, ipv });

type Input = string | number | PortObject;

function thrown(fn: () => unknown): PortSpecError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PortSpecError);
    return err as PortSpecError;
  }
  throw new Error('expected a PortSpecError');
}

async function rejected(p: Promise<unknown>): Promise<PortSpecError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PortSpecError);
    return err as PortSpecError;
  }
  throw new Error('expected a PortSpecError');
}

describe('parsePortSpec: Net::Server::Proto examples 1-16', () => {
  const rows: [string, Input, PortSpecDefaults, ReturnType<typeof shape>][] = [
    ['1 port only', '20203', d({ host: 'default-domain.com' }), [tcp('default-domain.com', 20203, '*')]],
    [
      '2 host and port',
      'someother.com:20203',
      d({ host: 'default-domain.com', proto: 'tcp' }),
      [tcp('someother.com', 20203, '*')],
    ],
    [
      '3 udp',
      'someother.com:20203/udp',
      d({ host: 'default-domain.com', proto: 'tcp' }),
      [{ proto: 'udp', host: 'someother.com', port: 20203, ipv: '*' }],
    ],
    [
      '4 Net::Server::Proto::UDP maps to udp',
      'someother.com:20203/Net::Server::Proto::UDP',
      d({ host: 'default-domain.com', proto: 'TCP', ipv: 4 }),
      [{ proto: 'udp', host: 'someother.com', port: 20203, ipv: '4' }],
    ],
    [
      '6 unix',
      '/tmp/mysock.file|unix',
      d({ host: 'default-domain.com', proto: 'tcp' }),
      [{ proto: 'unix', host: '*', port: '/tmp/mysock.file', ipv: '*' }],
    ],
    [
      '7 unixdgram',
      '/tmp/mysock.file|unixdgram',
      d({ host: 'default-domain.com', proto: 'tcp' }),
      [{ proto: 'unixdgram', host: '*', port: '/tmp/mysock.file', ipv: '*' }],
    ],
    [
      '8 legacy SOCK_STREAM',
      '/tmp/mysock.file|SOCK_STREAM|unix',
      d({ host: '', proto: 'tcp' }),
      [{ proto: 'unix', host: '*', port: '/tmp/mysock.file', ipv: '*' }],
    ],
    [
      '9 legacy SOCK_DGRAM is unixdgram',
      '/tmp/mysock.file|SOCK_DGRAM|unix',
      d({ host: '', proto: 'tcp' }),
      [{ proto: 'unixdgram', host: '*', port: '/tmp/mysock.file', ipv: '*' }],
    ],
    [
      '11 [::1] ipv6 tcp',
      '[::1]:20203 ipv6 tcp',
      d({ host: 'default-domain.com', proto: 'tcp' }),
      [tcp('::1', 20203, '6')],
    ],
    [
      '12 host ipv in the default host',
      '[::1]:20203 tcp',
      d({ host: 'default-domain.com/IPv6', proto: 'tcp' }),
      [tcp('::1', 20203, '6')],
    ],
    [
      '13 ipv6 ipv4 gives one spec per family',
      '[someother.com]:20203 ipv6 ipv4 tcp',
      d({ host: 'default-domain.com', proto: 'tcp' }),
      [tcp('someother.com', 20203, '4'), tcp('someother.com', 20203, '6')],
    ],
    [
      '14 localhost, resolved later',
      'localhost:20203',
      d({ host: 'default-domain.com', proto: 'tcp' }),
      [tcp('localhost', 20203, '*')],
    ],
    [
      '15 default host with IPv*',
      'localhost:20203',
      d({ host: 'default-domain.com IPv*', proto: 'tcp' }),
      [tcp('localhost', 20203, '*')],
    ],
    [
      '16 IPV=4 in the environment',
      'localhost:20203',
      d({ host: 'default-domain.com', proto: 'tcp', envIpv: '4' }),
      [tcp('localhost', 20203, '4')],
    ],
  ];
  it.each(rows)('example %s', (_name, spec, defaults, expected) => {
    expect(shape(parsePortSpec(spec, defaults))).toEqual(expected);
  });

  it('example 5: a custom proto class is refused', () => {
    expect(
      thrown(() =>
        parsePortSpec('someother.com:20203/MyObject::TCP', d({ host: 'default-domain.com', proto: 'tcp' })),
      ).message,
    ).toBe(
      'port "someother.com:20203/MyObject::TCP": proto class "MyObject::TCP" is not supported; netplex supports tcp, udp, unix and unixdgram',
    );
  });

  it('example 10: ssleay is refused', () => {
    expect(
      thrown(() =>
        parsePortSpec('someother.com:20203/ssleay', d({ host: 'default-domain.com', proto: 'tcp' })),
      ).message,
    ).toBe(
      'port "someother.com:20203/ssleay": proto "ssleay" is not supported (terminate TLS in front of netplex); netplex supports tcp, udp, unix and unixdgram',
    );
  });

  it('examples 14 and 15 resolve localhost to both of its addresses', async () => {
    for (const host of ['default-domain.com', 'default-domain.com IPv*']) {
      const specs = parsePortSpec('localhost:20203', d({ host, proto: 'tcp' }));
      const targets = await resolveBindTargets(specs, dualStack);
      expect(targets.map((t) => t.label)).toEqual(['127.0.0.1:20203/tcp', '[::1]:20203/tcp']);
    }
  });

  it('example 16 resolves localhost to its IPv4 address only', async () => {
    const specs = parsePortSpec(
      'localhost:20203',
      d({ host: 'default-domain.com', proto: 'tcp', envIpv: '4' }),
    );
    const targets = await resolveBindTargets(specs, dualStack);
    expect(targets.map((t) => t.label)).toEqual(['127.0.0.1:20203/tcp']);
  });
});

describe('parsePortSpec: the HOST section', () => {
  const rows: [string, PortSpecDefaults, ReturnType<typeof shape>, string[]][] = [
    ['host 127.0.0.1', d({ host: '127.0.0.1' }), [tcp('127.0.0.1', 20203, '4')], ['127.0.0.1:20203/tcp']],
    ['host ::1', d({ host: '::1' }), [tcp('::1', 20203, '6')], ['[::1]:20203/tcp']],
    [
      'host localhost',
      d({ host: 'localhost' }),
      [tcp('localhost', 20203, '*')],
      ['127.0.0.1:20203/tcp', '[::1]:20203/tcp'],
    ],
    [
      'host localhost/IPv*',
      d({ host: 'localhost/IPv*' }),
      [tcp('localhost', 20203, '*')],
      ['127.0.0.1:20203/tcp', '[::1]:20203/tcp'],
    ],
    [
      'ipv * host localhost',
      d({ host: 'localhost', ipv: '*' }),
      [tcp('localhost', 20203, '*')],
      ['127.0.0.1:20203/tcp', '[::1]:20203/tcp'],
    ],
    [
      'ipv 6 host localhost',
      d({ host: 'localhost', ipv: 6 }),
      [tcp('localhost', 20203, '6')],
      ['[::1]:20203/tcp'],
    ],
    [
      'ipv 4 host localhost',
      d({ host: 'localhost', ipv: 4 }),
      [tcp('localhost', 20203, '4')],
      ['127.0.0.1:20203/tcp'],
    ],
    [
      'ipv "IPv4 IPv6" host localhost',
      d({ host: 'localhost', ipv: 'IPv4 IPv6' }),
      [tcp('localhost', 20203, '4'), tcp('localhost', 20203, '6')],
      ['127.0.0.1:20203/tcp', '[::1]:20203/tcp'],
    ],
    ['host *', d({ host: '*' }), [tcp('*', 20203, '*')], ['[::]:20203/tcp']],
    ['ipv * host *', d({ host: '*', ipv: '*' }), [tcp('*', 20203, '*')], ['[::]:20203/tcp']],
    ['host */IPv*', d({ host: '*/IPv*' }), [tcp('*', 20203, '*')], ['[::]:20203/tcp']],
    ['ipv 4 host *', d({ host: '*', ipv: 4 }), [tcp('*', 20203, '4')], ['0.0.0.0:20203/tcp']],
  ];
  it.each(rows)('%s', async (_name, defaults, specs, labels) => {
    const parsed = parsePortSpec(20203, defaults);
    expect(shape(parsed)).toEqual(specs);
    expect((await resolveBindTargets(parsed, dualStack)).map((t) => t.label)).toEqual(labels);
  });

  it('ipv "IPv4 IPv6" on a name with one IPv4 address binds it once (Net::Server binds it twice and stops)', async () => {
    // Net::Server binds both of its entries to the name's one address: "Address already in use".
    const specs = parsePortSpec(20203, d({ host: 'v4only', ipv: 'IPv4 IPv6' }));
    expect((await resolveBindTargets(specs, dualStack)).map((t) => t.label)).toEqual(['127.0.0.1:20203/tcp']);
  });

  it('ipv "IPv4 IPv6" on a name with two IPv4 addresses binds both, as Net::Server does', async () => {
    const specs = parsePortSpec(20203, d({ host: 'twov4', ipv: 'IPv4 IPv6' }));
    expect(
      (await resolveBindTargets(specs, { ...dualStack, lookup: oneFamily })).map((t) => t.label),
    ).toEqual(['127.0.0.2:20203/tcp', '127.0.0.3:20203/tcp']);
  });
});

describe('parsePortSpec: the port section of Net::Server', () => {
  const rows: [Input, ReturnType<typeof shape>][] = [
    ['20203', [tcp('*', 20203, '*')]],
    ['localhost:20203', [tcp('localhost', 20203, '*')]],
    ['localhost:http', [tcp('localhost', 80, '*')]],
    ['localhost:20203/tcp', [tcp('localhost', 20203, '*')]],
    ['localhost:20203/tcp/IPv*', [tcp('localhost', 20203, '*')]],
    ['localhost, 20203, tcp, IPv*', [tcp('localhost', 20203, '*')]],
    ['localhost | 20203 | tcp | IPv*', [tcp('localhost', 20203, '*')]],
    ['localhost:20203/IPv*', [tcp('localhost', 20203, '*')]],
    ['localhost:20203/IPv4/IPv6', [tcp('localhost', 20203, '4'), tcp('localhost', 20203, '6')]],
    ['*:20203', [tcp('*', 20203, '*')]],
    [
      { host: 'localhost', port: '20203', ipv: 6, proto: 'udp' },
      [{ proto: 'udp', host: 'localhost', port: 20203, ipv: '6' }],
    ],
    [{ host: '*', port: '20203', ipv: 4, proto: 'tcp' }, [tcp('*', 20203, '4')]],
    ['[::1]:80', [tcp('::1', 80, '6')]],
    ['::1, 80', [tcp('::1', 80, '6')]],
    ['/tmp/x.sock|SOCK_STREAM|unix', [{ proto: 'unix', host: '*', port: '/tmp/x.sock', ipv: '*' }]],
    ['/tmp/x.sock|SOCK_DGRAM|unix', [{ proto: 'unixdgram', host: '*', port: '/tmp/x.sock', ipv: '*' }]],
    ['0', [tcp('*', 0, '*')]],
  ];
  it.each(rows)('%j', (spec, expected) => {
    expect(shape(parsePortSpec(spec, d({ host: '*', proto: 'tcp', ipv: '*' })))).toEqual(expected);
  });

  it('the second hashref of the doc asks for ssleay, which netplex refuses', () => {
    expect(
      thrown(() => parsePortSpec({ host: 'localhost', port: '20204', ipv: '*', proto: 'ssleay' }, none))
        .message,
    ).toBe(
      `port "{ host: 'localhost', port: '20204', ipv: '*', proto: 'ssleay' }": proto "ssleay" is not supported (terminate TLS in front of netplex); netplex supports tcp, udp, unix and unixdgram`,
    );
  });

  it('localhost:20203/IPv4/IPv6 binds both families of localhost', async () => {
    const targets = await resolveBindTargets(parsePortSpec('localhost:20203/IPv4/IPv6', none), dualStack);
    expect(targets.map((t) => t.label)).toEqual(['127.0.0.1:20203/tcp', '[::1]:20203/tcp']);
  });

  it('localhost:20203/IPv4/IPv6 binds 127.0.0.1 once when localhost has only IPv4 (Net::Server binds it twice and stops)', async () => {
    const lookup: HostLookup = async () => [{ address: '127.0.0.1', family: 4 }];
    const targets = await resolveBindTargets(parsePortSpec('localhost:20203/IPv4/IPv6', none), {
      ...dualStack,
      lookup,
    });
    expect(targets.map((t) => t.label)).toEqual(['127.0.0.1:20203/tcp']);
  });

  it('*:20203 binds every interface with one dual-stack socket', async () => {
    const targets = await resolveBindTargets(parsePortSpec('*:20203', none), dualStack);
    expect(targets).toEqual([
      {
        proto: 'tcp',
        address: '::',
        port: 20203,
        family: 6,
        ipv6Only: false,
        key: 'tcp::::20203:6',
        label: '[::]:20203/tcp',
      },
    ]);
  });
});

describe('parsePortSpec: the IPV section', () => {
  const rows: [Input, ReturnType<typeof shape>, string[]][] = [
    ['localhost:20203', [tcp('localhost', 20203, '*')], ['127.0.0.1:20203/tcp', '[::1]:20203/tcp']],
    ['localhost:20203:IPv*', [tcp('localhost', 20203, '*')], ['127.0.0.1:20203/tcp', '[::1]:20203/tcp']],
    ['localhost:20203:IPv6', [tcp('localhost', 20203, '6')], ['[::1]:20203/tcp']],
    ['[::1]:20203', [tcp('::1', 20203, '6')], ['[::1]:20203/tcp']],
    ['localhost:20203:IPv4', [tcp('localhost', 20203, '4')], ['127.0.0.1:20203/tcp']],
    ['127.0.0.1:20203', [tcp('127.0.0.1', 20203, '4')], ['127.0.0.1:20203/tcp']],
    [
      'localhost:20203:IPv4:IPv6',
      [tcp('localhost', 20203, '4'), tcp('localhost', 20203, '6')],
      ['127.0.0.1:20203/tcp', '[::1]:20203/tcp'],
    ],
    // The doc's hashrefs omit the port, which Net::Server itself rejects; they are given one here.
    [{ host: 'localhost', ipv: 6, port: 20203 }, [tcp('localhost', 20203, '6')], ['[::1]:20203/tcp']],
    [{ host: 'localhost', ipv: 4, port: 20203 }, [tcp('localhost', 20203, '4')], ['127.0.0.1:20203/tcp']],
    [{ host: '::1', ipv: 'IPv6', port: 20203 }, [tcp('::1', 20203, '6')], ['[::1]:20203/tcp']],
    [
      { host: 'localhost/IPv*', port: 20203 },
      [tcp('localhost', 20203, '*')],
      ['127.0.0.1:20203/tcp', '[::1]:20203/tcp'],
    ],
    [
      { host: 'localhost IPv4 IPv6', port: 20203 },
      [tcp('localhost', 20203, '4'), tcp('localhost', 20203, '6')],
      ['127.0.0.1:20203/tcp', '[::1]:20203/tcp'],
    ],
    // "use a hostname of [::] instead of [*]": the address itself, bound as the OS sees fit.
    ['[::]:8080', [tcp('::', 8080, '6')], ['[::]:8080/tcp']],
  ];
  it.each(rows)('%j', async (spec, expected, labels) => {
    const parsed = parsePortSpec(spec, d({ host: '*', proto: 'tcp', ipv: '*' }));
    expect(shape(parsed)).toEqual(expected);
    expect((await resolveBindTargets(parsed, dualStack)).map((t) => t.label)).toEqual(labels);
  });

  it('a port object needs its port, as Net::Server says "Missing port in hashref"', () => {
    expect(thrown(() => parsePortSpec({ host: 'localhost', ipv: 6 } as PortObject, none)).message).toBe(
      `port "{ host: 'localhost', ipv: 6 }": a port object needs a port: a number, a service name or a socket path`,
    );
  });

  it('run(port => [20203, 20203], host => "localhost", ipv => [4, 6]) binds each family once', async () => {
    const specs = pairPortSpecs({ port: [20203, 20203], host: ['localhost'], ipv: [4, 6], proto: ['tcp'] });
    expect(shape(specs)).toEqual([tcp('localhost', 20203, '4'), tcp('localhost', 20203, '6')]);
    expect((await resolveBindTargets(specs, dualStack)).map((t) => t.label)).toEqual([
      '127.0.0.1:20203/tcp',
      '[::1]:20203/tcp',
    ]);
  });

  it('run(host => "*") binds one [::] when bindv6only is 0', async () => {
    const specs = pairPortSpecs({ port: [8080], host: ['*'], ipv: ['*'], proto: ['tcp'] });
    const targets = await resolveBindTargets(specs, { ...dualStack, bindv6only: false });
    expect(targets.map((t) => [t.label, 'ipv6Only' in t ? t.ipv6Only : undefined])).toEqual([
      ['[::]:8080/tcp', false],
    ]);
  });

  it('run(host => "*") binds 0.0.0.0 and a v6-only [::] when bindv6only is 1', async () => {
    const specs = pairPortSpecs({ port: [8080], host: ['*'], ipv: ['*'], proto: ['tcp'] });
    const targets = await resolveBindTargets(specs, { ...dualStack, bindv6only: true });
    expect(targets.map((t) => [t.label, 'ipv6Only' in t ? t.ipv6Only : undefined])).toEqual([
      ['0.0.0.0:8080/tcp', undefined],
      ['[::]:8080/tcp', true],
    ]);
  });

  it('an IPv4 address with ipv 6 only is one IPv4 socket, as Net::Server binds it', async () => {
    // Net::Server keeps ipv 6 for it (its log says "with IPv6") and binds the address over IPv4.
    for (const [spec, defaults] of [
      ['127.0.0.1:20203', d({ ipv: 6 })],
      ['127.0.0.1:20203/IPv6', none],
      [20203, d({ host: '127.0.0.1/IPv6' })],
    ] as const) {
      const parsed = parsePortSpec(spec, defaults);
      expect(shape(parsed)).toEqual([tcp('127.0.0.1', 20203, '6')]);
      expect(await resolveBindTargets(parsed, dualStack)).toEqual([
        {
          proto: 'tcp',
          address: '127.0.0.1',
          port: 20203,
          family: 4,
          key: 'tcp:127.0.0.1:20203:4',
          label: '127.0.0.1:20203/tcp',
        },
      ]);
    }
  });
});

describe('parsePortSpec: ipv precedence (address > port > host > proto > default > IPV > *)', () => {
  const rows: [string, Input, PortSpecDefaults, ('4' | '6' | '*')[]][] = [
    ['an IPv6 address beats the port', '[::1]:80/IPv4', none, ['6']],
    ['an IPv4 address beats ipv "4 6"', '127.0.0.1:80', d({ ipv: '4 6' }), ['4']],
    ['port beats host', '80/IPv4', d({ host: 'localhost/IPv6' }), ['4']],
    ['port object ipv beats host', { host: 'localhost/IPv6', port: 80, ipv: 4 }, none, ['4']],
    ['host beats proto', '80', d({ host: 'localhost/IPv6', proto: 'tcp/IPv4' }), ['6']],
    ['proto beats default', '80', d({ host: 'localhost', proto: 'tcp/IPv4', ipv: 6 }), ['4']],
    ['proto in the port carries ipv', 'localhost:80 tcp IPv6', none, ['6']],
    ['default beats IPV', '80', d({ host: 'localhost', ipv: 6, envIpv: '4' }), ['6']],
    ['IPV beats *', '80', d({ host: 'localhost', envIpv: '4' }), ['4']],
    ['* when nothing is set', 'localhost:80', none, ['*']],
    ['* wins over 4 in one value', 'localhost:80/IPv4/IPv*', none, ['*']],
    ['stacked tokens without separators', 'localhost:80/IPv46', none, ['4', '6']],
    ['lower case ipv', 'localhost:80 ipv6', none, ['6']],
    ['three stacked tokens', 'localhost:80/IPv4/IPv6/IPv4', none, ['4', '6']],
    ['numeric default', 'localhost:80', d({ ipv: 4 }), ['4']],
    ['comma list default', 'localhost:80', d({ ipv: 'IPv6,IPv4' }), ['4', '6']],
    [
      'the default host is replaced, with its ipv, by a host in the port',
      'x:80',
      d({ host: 'y/IPv4' }),
      ['*'],
    ],
  ];
  it.each(rows)('%s', (_name, spec, defaults, ipvs) => {
    expect(parsePortSpec(spec, defaults).map((s) => s.ipv)).toEqual(ipvs);
  });
});

describe('parsePortSpec: other forms', () => {
  const rows: [Input, PortSpecDefaults, ReturnType<typeof shape>][] = [
    [20203, none, [tcp('*', 20203, '*')]],
    ['  20203  ', none, [tcp('*', 20203, '*')]],
    ['080', none, [tcp('*', 80, '*')]],
    ['65535', none, [tcp('*', 65535, '*')]],
    [':80', d({ host: 'h' }), [tcp('h', 80, '*')]],
    ['[]:80', d({ host: 'h' }), [tcp('*', 80, '*')]],
    ['[*]:80', none, [tcp('*', 80, '*')]],
    ['[host.example.com]:80', none, [tcp('host.example.com', 80, '*')]],
    ['::1:80', none, [tcp('::1', 80, '6')]],
    ['80', d({ host: '[::1]' }), [tcp('::1', 80, '6')]],
    ['80/udp', none, [{ proto: 'udp', host: '*', port: 80, ipv: '*' }]],
    ['80 UDP', none, [{ proto: 'udp', host: '*', port: 80, ipv: '*' }]],
    ['80', d({ proto: 'UDP' }), [{ proto: 'udp', host: '*', port: 80, ipv: '*' }]],
    ['80/Net::Server::Proto::TCP', none, [tcp('*', 80, '*')]],
    ['localhost:domain/udp', none, [{ proto: 'udp', host: 'localhost', port: 53, ipv: '*' }]],
    ['80', d({ host: 'localhost IPv4 IPv6' }), [tcp('localhost', 80, '4'), tcp('localhost', 80, '6')]],
    ['/tmp/x.sock', d({ proto: 'unix' }), [{ proto: 'unix', host: '*', port: '/tmp/x.sock', ipv: '*' }]],
    // Net::Server would take `mysock` for a legacy proto name and `/tmp` for the port.
    ['/tmp/mysock', d({ proto: 'unix' }), [{ proto: 'unix', host: '*', port: '/tmp/mysock', ipv: '*' }]],
    // Net::Server would split this into host `/tmp/my` and port `sock`.
    ['/tmp/my sock|unix', none, [{ proto: 'unix', host: '*', port: '/tmp/my sock', ipv: '*' }]],
    ['/tmp/x.sock, unix', none, [{ proto: 'unix', host: '*', port: '/tmp/x.sock', ipv: '*' }]],
    ['/tmp/x.sock|sock_dgram|unix', none, [{ proto: 'unixdgram', host: '*', port: '/tmp/x.sock', ipv: '*' }]],
    [
      '/tmp/x.sock|Net::Server::Proto::UNIX',
      none,
      [{ proto: 'unix', host: '*', port: '/tmp/x.sock', ipv: '*' }],
    ],
    ['run/x.sock|unix', none, [{ proto: 'unix', host: '*', port: 'run/x.sock', ipv: '*' }]],
    ['./x.sock', d({ proto: 'unixdgram' }), [{ proto: 'unixdgram', host: '*', port: './x.sock', ipv: '*' }]],
    // A unix socket ignores host and ipv altogether.
    [
      '/tmp/x.sock|unix',
      d({ host: 'localhost', ipv: 'nonsense' }),
      [{ proto: 'unix', host: '*', port: '/tmp/x.sock', ipv: '*' }],
    ],
    [
      { port: '/tmp/x.sock', proto: 'unix' },
      none,
      [{ proto: 'unix', host: '*', port: '/tmp/x.sock', ipv: '*' }],
    ],
    [{ port: 'http' }, none, [tcp('*', 80, '*')]],
    [{ port: 0, host: '127.0.0.1' }, none, [tcp('127.0.0.1', 0, '4')]],
  ];
  it.each(rows)('%j with %j', (spec, defaults, expected) => {
    expect(shape(parsePortSpec(spec, defaults))).toEqual(expected);
  });

  it('keeps the spec as written and freezes each entry', () => {
    const [spec] = parsePortSpec('localhost, 20203, tcp, IPv*', none);
    expect(spec?.spec).toBe('localhost, 20203, tcp, IPv*');
    expect(Object.isFrozen(spec)).toBe(true);
  });

  it('resolves service names through an injected table', () => {
    const services = vi.fn((name: string, proto: string) =>
      name === 'myservice' && proto === 'udp' ? 4242 : undefined,
    );
    expect(shape(parsePortSpec('localhost:myservice/udp', none, { services }))).toEqual([
      { proto: 'udp', host: 'localhost', port: 4242, ipv: '*' },
    ]);
    expect(services).toHaveBeenCalledWith('myservice', 'udp');
  });

  it('resolves common service names (/etc/services, or the built-in table without it)', () => {
    expect(lookupService('http', 'tcp')).toBe(80);
    expect(lookupService('https', 'tcp')).toBe(443);
    expect(lookupService('no-such-service', 'tcp')).toBeUndefined();
  });
});

describe('parsePortSpec: bad input → its PortSpecError', () => {
  const rows: [Input, PortSpecDefaults, string][] = [
    ['', none, 'port "": empty port spec; expected PORT, HOST:PORT, HOST:PORT/PROTO/IPV or PATH|unix'],
    ['   ', none, 'port "   ": empty port spec; expected PORT, HOST:PORT, HOST:PORT/PROTO/IPV or PATH|unix'],
    [-1, none, 'port "-1": expected an integer port 0-65535'],
    [65536, none, 'port "65536": expected an integer port 0-65535'],
    [1.5, none, 'port "1.5": expected an integer port 0-65535'],
    ['65536', none, 'port "65536": port number 65536 is out of range 0-65535'],
    ['localhost:99999', none, 'port "localhost:99999": port number 99999 is out of range 0-65535'],
    ['-1', none, 'port "-1": expected a port number 0-65535 or a service name, got "-1"'],
    ['12ab', none, 'port "12ab": expected a port number 0-65535 or a service name, got "12ab"'],
    [
      'localhost:',
      none,
      'port "localhost:": expected a port number 0-65535 or a service name, got "localhost:"',
    ],
    ['localhost:nosuch', none, 'port "localhost:nosuch": unknown service name "nosuch" for tcp'],
    ['localhost', none, 'port "localhost": unknown service name "localhost" for tcp'],
    [
      'a:b:80',
      none,
      'port "a:b:80": cannot determine host from "a:b"; expected *, an IP address or a host name',
    ],
    [
      'bad!host:80',
      none,
      'port "bad!host:80": cannot determine host from "bad!host"; expected *, an IP address or a host name',
    ],
    ['999.1.1.1:80', none, 'port "999.1.1.1:80": "999.1.1.1" is not a valid IPv4 address'],
    [
      '80',
      d({ host: 'two words' }),
      'port "80": cannot determine host from "two words"; expected *, an IP address or a host name',
    ],
    [
      '80|IPv5',
      none,
      'port "80|IPv5": invalid ipv "IPv5"; expected 4, 6 or * (also IPv4, IPv6, IPv*, "IPv4 IPv6")',
    ],
    [
      '80',
      d({ ipv: 'v4' }),
      'port "80": invalid ipv "v4"; expected 4, 6 or * (also IPv4, IPv6, IPv*, "IPv4 IPv6")',
    ],
    [
      '80',
      d({ ipv: 5 }),
      'port "80": invalid ipv "5"; expected 4, 6 or * (also IPv4, IPv6, IPv*, "IPv4 IPv6")',
    ],
    [
      '80/ssl',
      none,
      'port "80/ssl": proto "ssl" is not supported (terminate TLS in front of netplex); netplex supports tcp, udp, unix and unixdgram',
    ],
    [
      '80/MyTcp',
      none,
      'port "80/MyTcp": proto "MyTcp" is not supported; netplex supports tcp, udp, unix and unixdgram',
    ],
    [
      '80/Net::Server::Proto::SSLEAY',
      none,
      'port "80/Net::Server::Proto::SSLEAY": proto class "Net::Server::Proto::SSLEAY" is not supported; netplex supports tcp, udp, unix and unixdgram',
    ],
    [
      '80',
      d({ proto: 'tcp udp' }),
      'port "80": cannot determine proto from "tcp udp"; netplex supports tcp, udp, unix and unixdgram',
    ],
    [
      '/tmp/x.sock',
      none,
      'port "/tmp/x.sock": "/tmp/x.sock" looks like a socket path, but proto is tcp; add |unix or |unixdgram',
    ],
    [
      '80|SOCK_DGRAM',
      none,
      'port "80|SOCK_DGRAM": SOCK_DGRAM does not go with proto tcp; it only selects the type of a unix socket',
    ],
    [
      '/tmp/x|SOCK_STREAM|unixdgram',
      none,
      'port "/tmp/x|SOCK_STREAM|unixdgram": SOCK_STREAM does not go with proto unixdgram; it only selects the type of a unix socket',
    ],
    // As in Net::Server, a separator needs a word before it, so `unix` here is the port.
    ['|unix', none, 'port "|unix": unknown service name "unix" for tcp'],
    [
      { port: '' },
      none,
      `port "{ port: '' }": a port object needs a port: a number, a service name or a socket path`,
    ],
    [{ port: 70000 }, none, 'port "{ port: 70000 }": port number 70000 is out of range 0-65535'],
    [
      { port: 'x:80' },
      none,
      `port "{ port: 'x:80' }": expected a port number 0-65535 or a service name, got "x:80"`,
    ],
    [
      { port: 80, path: '/x' } as unknown as PortObject,
      none,
      `port "{ port: 80, path: '/x' }": unknown key "path" in a port object; expected host, port, ipv, proto`,
    ],
    [
      { port: 80, host: 1 } as unknown as PortObject,
      none,
      'port "{ port: 80, host: 1 }": host in a port object must be a string',
    ],
    [
      [80] as unknown as PortObject,
      none,
      'port "[ 80 ]": expected a port number, a port string or { host, port, ipv, proto }',
    ],
    [
      null as unknown as PortObject,
      none,
      'port "null": expected a port number, a port string or { host, port, ipv, proto }',
    ],
    [
      { port: '/tmp/x\0y', proto: 'unix' },
      none,
      // inspect escapes the NUL as \x00, then the message's JSON escapes that backslash.
      `port "{ port: '/tmp/x\\\\x00y', proto: 'unix' }": socket path contains a NUL byte`,
    ],
  ];
  it.each(rows)('%j with %j', (spec, defaults, message) => {
    const err = thrown(() => parsePortSpec(spec, defaults));
    expect(err.code).toBe('MPX_ERR_PORT_SPEC');
    expect(err.message).toBe(message);
  });

  it('refuses absurdly long specs and defaults', () => {
    const long = `${'a'.repeat(1030)}:80`;
    expect(thrown(() => parsePortSpec(long, none)).message).toBe(
      `port "${long}": port spec is longer than 1024 characters`,
    );
    expect(thrown(() => parsePortSpec(80, d({ host: 'h'.repeat(1025) }))).message).toBe(
      'port "80": default host is longer than 1024 characters',
    );
    expect(thrown(() => parsePortSpec({ port: 80, host: 'h'.repeat(1025) }, none)).message).toMatch(
      /: host is longer than 1024 characters$/,
    );
  });

  it('names the spec in err.spec', () => {
    expect(thrown(() => parsePortSpec('80/ssl', none)).spec).toBe('80/ssl');
  });
});

describe('pairPortSpecs', () => {
  it('--port=P --host=127.0.0.1 --port=P --host=::1 binds both', () => {
    const specs = pairPortSpecs({
      port: [8000, 8000],
      host: ['127.0.0.1', '::1'],
      ipv: ['*'],
      proto: ['tcp'],
    });
    expect(shape(specs)).toEqual([tcp('127.0.0.1', 8000, '4'), tcp('::1', 8000, '6')]);
  });

  it('reuses the last entry of a shorter list', () => {
    const specs = pairPortSpecs({
      port: [1, 2, 3],
      host: ['a', 'b'],
      ipv: ['4', '*'],
      proto: ['tcp', 'udp'],
    });
    expect(shape(specs)).toEqual([
      { proto: 'tcp', host: 'a', port: 1, ipv: '4' },
      { proto: 'udp', host: 'b', port: 2, ipv: '*' },
      { proto: 'udp', host: 'b', port: 3, ipv: '*' },
    ]);
  });

  it('lets a host, proto or ipv inside a port win over its paired entry', () => {
    const specs = pairPortSpecs({ port: ['x:1/udp/IPv6', 2], host: ['a'], ipv: [4], proto: ['tcp'] });
    expect(shape(specs)).toEqual([
      { proto: 'udp', host: 'x', port: 1, ipv: '6' },
      { proto: 'tcp', host: 'a', port: 2, ipv: '4' },
    ]);
  });

  it('takes single values as Net::Server takes scalars', () => {
    expect(shape(pairPortSpecs({ port: 80, host: 'localhost', ipv: 4, proto: 'tcp' }))).toEqual([
      tcp('localhost', 80, '4'),
    ]);
  });

  it('falls back to *, tcp and * on empty lists, then to IPV', () => {
    expect(shape(pairPortSpecs({ port: [80], host: [], ipv: [], proto: [], envIpv: undefined }))).toEqual([
      tcp('*', 80, '*'),
    ]);
    expect(shape(pairPortSpecs({ port: [80], host: [], ipv: [''], proto: [], envIpv: '4' }))).toEqual([
      tcp('*', 80, '4'),
    ]);
  });

  it('reads the IPV environment variable when no ipv is set, as Net::Server::Proto does', () => {
    const saved = process.env.IPV;
    try {
      process.env.IPV = '6';
      expect(shape(pairPortSpecs({ port: [80], host: ['localhost'], ipv: [], proto: [] }))).toEqual([
        tcp('localhost', 80, '6'),
      ]);
      // Any ipv setting (here in the port spec, then the ipv option) beats the environment.
      expect(shape(pairPortSpecs({ port: ['80/IPv4'], host: ['localhost'], ipv: [], proto: [] }))).toEqual([
        tcp('localhost', 80, '4'),
      ]);
      expect(shape(pairPortSpecs({ port: [80], host: ['localhost'], ipv: ['*'], proto: [] }))).toEqual([
        tcp('localhost', 80, '*'),
      ]);
      process.env.IPV = 'seven';
      expect(() => pairPortSpecs({ port: [80], host: ['localhost'], ipv: [], proto: [] })).toThrow(/IPV|ipv/);
    } finally {
      if (saved === undefined) delete process.env.IPV;
      else process.env.IPV = saved;
    }
  });

  it('skips duplicates, except port 0 which is a new port each time', () => {
    const specs = pairPortSpecs({ port: [80, '*:80', 80, 0, 0], host: ['*'], ipv: ['*'], proto: ['tcp'] });
    expect(shape(specs)).toEqual([tcp('*', 80, '*'), tcp('*', 0, '*'), tcp('*', 0, '*')]);
  });

  it('returns nothing for no ports', () => {
    expect(pairPortSpecs({ port: [], host: ['*'], ipv: ['*'], proto: ['tcp'] })).toEqual([]);
  });

  it('throws the first bad port', () => {
    const err = thrown(() =>
      pairPortSpecs({ port: [80, '80/ssl', 'x'], host: ['*'], ipv: ['*'], proto: ['tcp'] }),
    );
    expect(err.spec).toBe('80/ssl');
  });

  it('throws for a bad host paired with a good port', () => {
    expect(
      thrown(() => pairPortSpecs({ port: [80, 81], host: ['a', 'b c'], ipv: ['*'], proto: ['tcp'] })).message,
    ).toBe('port "81": cannot determine host from "b c"; expected *, an IP address or a host name');
  });

  it("gives unix ports that name no type unix_type's, as Net::Server::Proto::UNIX does", () => {
    const protos = (unix_type: string | undefined) =>
      pairPortSpecs({
        port: ['/tmp/a.sock|unix', '/tmp/b.sock|SOCK_STREAM|unix', '/tmp/c.sock|unixdgram', 80],
        host: ['*'],
        ipv: ['*'],
        proto: ['tcp'],
        unix_type,
      }).map((spec) => spec.proto);
    expect(protos(undefined)).toEqual(['unix', 'unix', 'unixdgram', 'tcp']);
    expect(protos('SOCK_STREAM')).toEqual(['unix', 'unix', 'unixdgram', 'tcp']);
    // A port's own type wins; a tcp port has none to change.
    expect(protos('sock_dgram')).toEqual(['unixdgram', 'unix', 'unixdgram', 'tcp']);
  });
});

describe('resolveBindTargets', () => {
  const resolve = (specs: (string | number)[], opts: Parameters<typeof resolveBindTargets>[1] = dualStack) =>
    resolveBindTargets(
      specs.flatMap((s) => parsePortSpec(s, none)),
      opts,
    );

  it('resolves localhost to each of its addresses', async () => {
    expect(await resolve(['localhost:20203'])).toEqual([
      {
        proto: 'tcp',
        address: '127.0.0.1',
        port: 20203,
        family: 4,
        key: 'tcp:127.0.0.1:20203:4',
        label: '127.0.0.1:20203/tcp',
      },
      {
        proto: 'tcp',
        address: '::1',
        port: 20203,
        family: 6,
        key: 'tcp:::1:20203:6',
        label: '[::1]:20203/tcp',
      },
    ]);
  });

  it('resolves localhost:P/IPv4 to one target', async () => {
    expect((await resolve(['localhost:20203/IPv4'])).map((t) => t.key)).toEqual(['tcp:127.0.0.1:20203:4']);
  });

  it('accepts lookups that name families as IPv4/IPv6 and ignores nonsense rows', async () => {
    const lookup: HostLookup = async () => [
      { address: '10.0.0.1', family: 'IPv4' },
      { address: 'fe80::1', family: 'IPv6' },
      { address: 'nonsense', family: 4 },
      { address: '10.0.0.2', family: 6 },
    ];
    expect((await resolve(['name:1'], { ...dualStack, lookup })).map((t) => t.label)).toEqual([
      '10.0.0.1:1/tcp',
      '[fe80::1]:1/tcp',
    ]);
  });

  it('resolves * to one dual-stack ::', async () => {
    const targets = await resolve(['*:20203']);
    expect(targets).toHaveLength(1);
    expect(targets[0]).toMatchObject({ address: '::', family: 6, ipv6Only: false });
  });

  it('resolves * with ipv 4 to 0.0.0.0', async () => {
    expect(await resolve(['*:20203/IPv4'])).toEqual([
      {
        proto: 'tcp',
        address: '0.0.0.0',
        port: 20203,
        family: 4,
        key: 'tcp:0.0.0.0:20203:4',
        label: '0.0.0.0:20203/tcp',
      },
    ]);
  });

  it('resolves * with ipv 6 to one :: that takes IPv4 too unless bindv6only is set, as Net::Server binds it', async () => {
    expect(await resolve(['*:20203/IPv6'])).toEqual([
      {
        proto: 'tcp',
        address: '::',
        port: 20203,
        family: 6,
        ipv6Only: false,
        key: 'tcp::::20203:6',
        label: '[::]:20203/tcp',
      },
    ]);
    const v6only = await resolve(['*:20203/IPv6'], { ...dualStack, bindv6only: true });
    expect(v6only.map((t) => [t.label, 'ipv6Only' in t ? t.ipv6Only : undefined])).toEqual([
      ['[::]:20203/tcp', true],
    ]);
  });

  it('resolves *:P/IPv4/IPv6 to 0.0.0.0 and a v6-only ::', async () => {
    const targets = await resolve(['*:20203/IPv4/IPv6']);
    expect(targets.map((t) => [t.label, 'ipv6Only' in t ? t.ipv6Only : undefined])).toEqual([
      ['0.0.0.0:20203/tcp', undefined],
      ['[::]:20203/tcp', true],
    ]);
  });

  it('resolves * to 0.0.0.0 alone without IPv6', async () => {
    expect((await resolve(['*:20203'], { ...dualStack, ipv6Available: false })).map((t) => t.label)).toEqual([
      '0.0.0.0:20203/tcp',
    ]);
  });

  it('makes :: v6-only when 0.0.0.0 is bound on the same port too', async () => {
    const targets = await resolve(['*:80', '0.0.0.0:80', '0.0.0.0:81/udp', '[::]:81/udp', '*:82/udp']);
    expect(targets.map((t) => [t.label, 'ipv6Only' in t ? t.ipv6Only : undefined])).toEqual([
      ['[::]:80/tcp', true],
      ['0.0.0.0:80/tcp', undefined],
      ['0.0.0.0:81/udp', undefined],
      ['[::]:81/udp', true],
      ['[::]:82/udp', false],
    ]);
  });

  it('drops an IPv4 address that a dual-stack IPv6 one covers, unless bindv6only', async () => {
    const lookup: HostLookup = async () => [
      { address: '::', family: 6 },
      { address: '0.0.0.0', family: 4 },
      { address: '::ffff:10.0.0.1', family: 6 },
      { address: '10.0.0.1', family: 4 },
      { address: '10.0.0.2', family: 4 },
    ];
    expect((await resolve(['any:1'], { ...dualStack, lookup })).map((t) => t.label)).toEqual([
      '[::]:1/tcp',
      '[::ffff:10.0.0.1]:1/tcp',
      '10.0.0.2:1/tcp',
    ]);
    expect(
      (await resolve(['any:1'], { ...dualStack, lookup, bindv6only: true })).map((t) => t.label),
    ).toEqual(['[::]:1/tcp', '0.0.0.0:1/tcp', '[::ffff:10.0.0.1]:1/tcp', '10.0.0.1:1/tcp', '10.0.0.2:1/tcp']);
  });

  it('deduplicates targets that several specs resolve to', async () => {
    expect(
      (await resolve(['localhost:80', '127.0.0.1:80', '[::1]:80', '127.0.0.1:80/udp'])).map((t) => t.key),
    ).toEqual(['tcp:127.0.0.1:80:4', 'tcp:::1:80:6', 'udp:127.0.0.1:80:4']);
  });

  it('keeps every port 0 apart, with a unique key', async () => {
    expect((await resolve(['127.0.0.1:0', '127.0.0.1:0', '127.0.0.1:0'])).map((t) => t.key)).toEqual([
      'tcp:127.0.0.1:0:4',
      'tcp:127.0.0.1:0:4#2',
      'tcp:127.0.0.1:0:4#3',
    ]);
  });

  it('passes unix sockets through, deduplicated', async () => {
    expect(await resolve(['/tmp/a.sock|unix', '/tmp/a.sock|unix', '/tmp/a.sock|unixdgram'])).toEqual([
      { proto: 'unix', path: '/tmp/a.sock', key: 'unix:/tmp/a.sock', label: '/tmp/a.sock|unix' },
      {
        proto: 'unixdgram',
        path: '/tmp/a.sock',
        key: 'unixdgram:/tmp/a.sock',
        label: '/tmp/a.sock|unixdgram',
      },
    ]);
  });

  it('looks each name up once', async () => {
    const lookup = vi.fn(dualLocalhost);
    await resolve(['localhost:1', 'localhost:2/IPv4', 'localhost:3/udp'], { ...dualStack, lookup });
    expect(lookup).toHaveBeenCalledTimes(1);
  });

  it('does not look up addresses or *', async () => {
    const lookup = vi.fn(dualLocalhost);
    await resolve(['127.0.0.1:1', '[::1]:1', '*:1'], { ...dualStack, lookup });
    expect(lookup).not.toHaveBeenCalled();
  });

  it('fails with the lookup error as cause when a name does not resolve', async () => {
    const err = await rejected(resolve(['nowhere.invalid:80']));
    expect(err.message).toBe(
      'port "nowhere.invalid:80": cannot resolve host "nowhere.invalid": getaddrinfo ENOTFOUND nowhere.invalid',
    );
    expect((err.cause as { code?: string }).code).toBe('ENOTFOUND');
  });

  it('fails when ipv 4 is asked of a name with only IPv6 and no port uses IPv6, as Net::Server does', async () => {
    // Without such a port Net::Server binds with its IPv4 socket class, which cannot bind the name.
    for (const specs of [
      ['v6only:80/IPv4'],
      ['v6only:80/IPv4', '127.0.0.1:81', 'localhost:82', '*:83/IPv4'],
    ]) {
      expect((await rejected(resolve(specs, { ...dualStack, lookup: oneFamily }))).message).toBe(
        'port "v6only:80/IPv4": host "v6only" has no IPv4 address, and ipv 4 was asked for',
      );
    }
  });

  it('fails when a name resolves to no address at all, whatever ipv asks for', async () => {
    const lookup: HostLookup = async () => [];
    expect((await rejected(resolve(['empty:80/IPv6'], { ...dualStack, lookup }))).message).toBe(
      'port "empty:80/IPv6": host "empty" has no IPv6 address, and ipv 6 was asked for',
    );
  });

  it('fails when a name resolves to nothing', async () => {
    const lookup: HostLookup = async () => [];
    expect((await rejected(resolve(['empty:80'], { ...dualStack, lookup }))).message).toBe(
      'port "empty:80": host "empty" resolved to no IPv4 or IPv6 address',
    );
  });

  it('reports the first failing spec in configuration order', async () => {
    const lookup: HostLookup = (host) =>
      new Promise((_resolve, reject) =>
        setTimeout(() => reject(new Error(`no ${host}`)), host === 'slow' ? 20 : 0),
      );
    const err = await rejected(resolve(['slow:1', 'fast:2'], { ...dualStack, lookup }));
    expect(err.spec).toBe('slow:1');
  });

  it('reads bindv6only and IPv6 availability from the system by default', async () => {
    const [target] = await resolveBindTargets(parsePortSpec('*:0', none));
    expect(target && 'address' in target && ['::', '0.0.0.0'].includes(target.address)).toBe(true);
  });

  it('freezes targets', async () => {
    const [target] = await resolve(['127.0.0.1:1']);
    expect(Object.isFrozen(target)).toBe(true);
  });
});

describe('a host whose family ipv does not ask for binds what Net::Server binds', () => {
  const labels = async (specs: PortSpec[], lookup: HostLookup = oneFamily) =>
    (await resolveBindTargets(specs, { ...dualStack, lookup })).map((t) => [
      t.label,
      'family' in t ? t.family : undefined,
    ]);

  it("perldoc Net::Server's sample conf (host 127.0.0.1, ipv IPv6) binds both ports on 127.0.0.1 over IPv4, as Net::Server does", async () => {
    // host 127.0.0.1 / ipv IPv6 / port localhost:20204/IPv4 / port 20205, as loadConfig reads them.
    const specs = pairPortSpecs({
      port: ['localhost:20204/IPv4', '20205'],
      host: ['127.0.0.1'],
      ipv: ['IPv6'],
      proto: ['tcp'],
      envIpv: undefined,
    });
    for (const lookup of [oneFamily, dualLocalhost]) {
      expect(await resolveBindTargets(specs, { ...dualStack, lookup })).toEqual([
        {
          proto: 'tcp',
          address: '127.0.0.1',
          port: 20204,
          family: 4,
          key: 'tcp:127.0.0.1:20204:4',
          label: '127.0.0.1:20204/tcp',
        },
        {
          proto: 'tcp',
          address: '127.0.0.1',
          port: 20205,
          family: 4,
          key: 'tcp:127.0.0.1:20205:4',
          label: '127.0.0.1:20205/tcp',
        },
      ]);
    }
  });

  it('its mirror (host [::1], ipv IPv4, a name with only IPv6) binds both ports over IPv6, as Net::Server does', async () => {
    const specs = pairPortSpecs({
      port: ['v6only:20206', '20207'],
      host: ['[::1]'],
      ipv: ['IPv4'],
      proto: ['tcp'],
      envIpv: undefined,
    });
    expect(await labels(specs)).toEqual([
      ['[fd00::10]:20206/tcp', 6],
      ['[::1]:20207/tcp', 6],
    ]);
  });

  it('a name with only IPv4 and ipv 6 binds its first address over IPv4, as Net::Server does', async () => {
    const rows: [string, string, string][] = [
      ['v4only:20208/IPv6', '*', '127.0.0.1:20208/udp'],
      ['20208', 'v4only', '127.0.0.1:20208/udp'],
      // Only the first of its addresses, as Net::Server binds one socket for it.
      ['twov4:20208/IPv6', '*', '127.0.0.2:20208/udp'],
      ['20208', 'twov4', '127.0.0.2:20208/udp'],
    ];
    for (const [port, host, label] of rows) {
      const specs = pairPortSpecs({
        port: [port],
        host: [host],
        ipv: ['6'],
        proto: ['udp'],
        envIpv: undefined,
      });
      expect(await labels(specs), `${port} host ${host}`).toEqual([[label, 4]]);
    }
  });

  it('a name with only IPv6 and ipv 4 binds its first address when another port uses IPv6, as Net::Server does', async () => {
    // Any port with ipv 6 or an IPv6 address, or one that ipv * resolves to IPv6, does.
    for (const other of ['[::1]:81', '127.0.0.1:81/IPv6', '*:81', 'localhost:81/IPv6', 'v6only:81/IPv*']) {
      const specs = [...parsePortSpec('twov6:80', d({ ipv: 4 })), ...parsePortSpec(other, none)];
      expect((await labels(specs, oneFamily)).slice(0, 1), other).toEqual([['[fd00::10]:80/tcp', 6]]);
    }
  });

  it('ipv "IPv4 IPv6" on a name with two IPv6 addresses binds both, as Net::Server does', async () => {
    expect(await labels(parsePortSpec('twov6:20209/IPv4/IPv6', none))).toEqual([
      ['[fd00::10]:20209/tcp', 6],
      ['[fd00::11]:20209/tcp', 6],
    ]);
  });

  it('ipv * binds what the host has, as Net::Server does', async () => {
    const specs = pairPortSpecs({
      port: ['127.0.0.1:20210', '[::1]:20211', 'localhost:20212', 'v6only:20213'],
      host: ['*'],
      ipv: ['*'],
      proto: ['tcp'],
      envIpv: undefined,
    });
    expect(await labels(specs)).toEqual([
      ['127.0.0.1:20210/tcp', 4],
      ['[::1]:20211/tcp', 6],
      ['127.0.0.1:20212/tcp', 4],
      ['[fd00::10]:20213/tcp', 6],
    ]);
  });
});

describe('formatBindTarget and bindTargetKey', () => {
  const rows: [Parameters<typeof formatBindTarget>[0], string, string][] = [
    [
      { proto: 'tcp', address: '127.0.0.1', port: 20203, family: 4 },
      '127.0.0.1:20203/tcp',
      'tcp:127.0.0.1:20203:4',
    ],
    [{ proto: 'tcp', address: '::1', port: 20203, family: 6 }, '[::1]:20203/tcp', 'tcp:::1:20203:6'],
    [{ proto: 'udp', address: '0.0.0.0', port: 53, family: 4 }, '0.0.0.0:53/udp', 'udp:0.0.0.0:53:4'],
    [{ proto: 'unix', path: '/tmp/x.sock' }, '/tmp/x.sock|unix', 'unix:/tmp/x.sock'],
    [{ proto: 'unixdgram', path: '/tmp/x.sock' }, '/tmp/x.sock|unixdgram', 'unixdgram:/tmp/x.sock'],
  ];
  it.each(rows)('%j → %s, %s', (target, label, key) => {
    expect(formatBindTarget(target)).toBe(label);
    expect(bindTargetKey(target)).toBe(key);
  });
});
