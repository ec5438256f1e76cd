/**
 * The Net::Server options netplex accepts (net-server-options.ts): the documented list, read from
 * the installed pods with pod2text so that an option a newer Net::Server documents shows up here,
 * never stops a start as unknown; the forking personalities' own options still do, with the
 * suggestion any unknown key gets; and what loadConfig makes of each kind (notice, mapped, the two
 * schema values netplex cannot honour).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ConfigSources, loadConfig } from '../../src/config.js';
import { ConfigError, UnknownOptionError, UnsupportedOptionError } from '../../src/errors.js';
import {
  acceptedKeys,
  forkingOnlyOptions,
  type NetServerOption,
  netServerOptionOf,
  netServerOptions,
} from '../../src/net-server-options.js';
import { serverOptions } from '../../src/options.js';
import { suggestKey } from '../../src/suggest.js';

const schemaKeys = new Set(Object.keys(serverOptions));

/** rowOf is the table's row of any key: implemented ones by name, the others as loadConfig finds them. */
function rowOf(key: string): NetServerOption | undefined {
  return netServerOptions.find((o) => o.keys.includes(key)) ?? netServerOptionOf(key);
}

/** load reads `conf` as a conf_file (and any other sources) with netplex's own options. */
function load(conf: string, sources: ConfigSources = {}) {
  return loadConfig(serverOptions, { ...sources, defaults: { conf_file: 'perl.conf' }, confText: conf });
}

/** caught runs `fn` and returns what it threw. */
function caught(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error, but none was thrown');
}

// ------------------------------------------------------------------ the pods

/** perlLib is the directory of perl's @INC that holds Net/Server.pod, or undefined. */
function perlLib(): string | undefined {
  const found = spawnSync('perl', ['-e', 'for (@INC) { if (-e "$_/Net/Server.pod") { print; exit } }'], {
    encoding: 'utf8',
  });
  return found.error === undefined && found.status === 0 && found.stdout !== '' ? found.stdout : undefined;
}

const lib = perlLib();
const hasPod2text = spawnSync('pod2text', [], { input: '' }).error === undefined;
const missing =
  lib === undefined
    ? "Perl's Net::Server is not installed (no Net/Server.pod in perl's @INC)"
    : hasPod2text
      ? undefined
      : 'pod2text is not installed';
if (missing !== undefined) {
  // CI runs on a machine that has them: there a missing pod is a broken set-up, not a reason to skip.
  if (process.env.CI) throw new Error(`the documented Net::Server options cannot be read: ${missing}`);
  console.warn(`skipping the walk of Net::Server's documented options: ${missing}`);
}

/**
 * Where each page lists its options: the `=item`s and "Key Value Default" tables of these
 * sections, and names its text mentions in these forms.
 */
interface Page {
  file: string;
  sections: string[];
  mentions?: RegExp;
  forking?: boolean;
}

const pages: Page[] = [
  { file: 'Net/Server.pod', sections: ['DEFAULT ARGUMENTS FOR Net::Server'] },
  // Multiplex has no options section: run_dequeue "only gets called in conjunction with the
  // check_for_dequeue setting".
  { file: 'Net/Server/Multiplex.pm', sections: [], mentions: /in conjunction with the ([a-z]\w*) setting/g },
  // Proto's synopsis names ipv6_package ("listed in server config ipv6_package").
  { file: 'Net/Server/Proto.pm', sections: [], mentions: /server config ([a-z]\w*)/g },
  { file: 'Net/Server/Proto/TCP.pm', sections: ['PARAMETERS'] },
  { file: 'Net/Server/Proto/UDP.pm', sections: ['PARAMETERS', 'QUICK PARAMETER LIST'] },
  { file: 'Net/Server/Proto/UNIX.pm', sections: ['PARAMETERS', 'QUICK PARAMETER LIST'] },
  { file: 'Net/Server/Proto/UNIXDGRAM.pm', sections: ['PARAMETERS', 'QUICK PARAMETER LIST'] },
  // SSL's parameters are "any SSL_ argument"; its synopsis shows some, SSL_foo among them.
  { file: 'Net/Server/Proto/SSL.pm', sections: ['PARAMETERS'], mentions: /\b(SSL_\w+)\s*=>/g },
  { file: 'Net/Server/Proto/SSLEAY.pm', sections: ['PARAMETERS'], mentions: /\b(SSL_\w+)\s*=>/g },
  { file: 'Net/Server/Log/Sys/Syslog.pm', sections: ['CONFIGURATION', 'DEFAULT ARGUMENTS FOR Net::Server'] },
  {
    file: 'Net/Server/Log/Log/Log4perl.pm',
    sections: ['CONFIGURATION', 'DEFAULT ARGUMENTS FOR Net::Server'],
  },
  { file: 'Net/Server/Fork.pm', sections: ['ARGUMENTS'], forking: true },
  { file: 'Net/Server/PreForkSimple.pm', sections: ['COMMAND LINE ARGUMENTS'], forking: true },
  { file: 'Net/Server/PreFork.pm', sections: ['COMMAND LINE ARGUMENTS'], forking: true },
];

/** An `=item` as pod2text prints it: `conf_file`, `allow/deny`, `ipv (IPv4 and IPv6)`, `"SSL_cert_file"`. */
const ITEM = /^ {4}"?([A-Za-z]\w*)"?(?:\/"?([A-Za-z]\w*)"?)?(?: \(.*\))?$/;
/** A row of a "Key Value Default" table: the key, then blanks and the value (or nothing). */
const TABLE_ROW = /^ {6,}([A-Za-z]\w*)(?: {2,}\S.*)?$/;

/** optionsOf lists the option names one page documents, by running pod2text on it. */
function optionsOf(page: Page): string[] {
  const text = spawnSync('pod2text', [join(lib!, page.file)], { encoding: 'utf8' });
  if (text.status !== 0) throw new Error(`pod2text ${page.file} failed: ${text.stderr}`);
  const lines = text.stdout.split('\n');
  const names = new Set<string>();
  let inSection = false;
  let inTable = false;
  lines.forEach((line, i) => {
    if (/^\S/.test(line)) {
      inSection = page.sections.includes(line.trim());
      inTable = false;
      return;
    }
    if (!inSection) return;
    if (/^\s+Key\s+Value\s+Default\s*$/.test(line)) {
      inTable = true;
      return;
    }
    // A table ends where the text goes back to the paragraph's indent.
    if (/^ {0,4}\S/.test(line)) inTable = false;
    const row = inTable ? TABLE_ROW.exec(line) : null;
    if (row) names.add(row[1]!);
    // An item's body follows on the next line, indented further; a paragraph's last line does not.
    const item = ITEM.exec(line);
    if (item && /^ {8}\S/.test(lines[i + 1] ?? ''))
      for (const name of item.slice(1)) if (name) names.add(name);
  });
  if (page.mentions)
    for (const m of text.stdout.replace(/\s+/g, ' ').matchAll(page.mentions)) names.add(m[1]!);
  return [...names];
}

describe.skipIf(missing !== undefined)("the options Net::Server's pods document", () => {
  const documented = new Map<string, string[]>();
  const forking = new Map<string, string[]>();
  if (missing === undefined)
    for (const page of pages)
      for (const name of optionsOf(page)) {
        const into = page.forking ? forking : documented;
        into.set(name, [...(into.get(name) ?? []), page.file]);
      }
  // What a forking personality documents that the base class, Multiplex or Proto documents too is
  // theirs as well (sig_passthrough, check_for_dequeue).
  const forkingOnly = [...forking.keys()].filter((name) => !documented.has(name)).sort();

  it('are read from every page (the pages still have the sections this test reads)', () => {
    for (const page of pages.filter((p) => p.file !== 'Net/Server/Proto/TCP.pm'))
      expect(optionsOf(page).length, `${page.file}: no option found`).toBeGreaterThan(0);
    for (const key of ['conf_file', 'tied_stdout_callback', 'udp_broadcast', 'unix_type', 'SSL_cert_file'])
      expect(documented.has(key), key).toBe(true);
    expect(forkingOnly).toContain('max_servers');
  });

  it('each have a row in the table, which says what netplex does', () => {
    for (const [name, files] of documented)
      expect(rowOf(name), `${name} (${files.join(', ')}) is not in net-server-options.ts`).toBeDefined();
  });

  it('none stops a start as unknown: a conf file with every one of them loads', () => {
    // A value each option takes; '1' for the rest.
    const sample: Record<string, string> = {
      conf_file: 'other.conf',
      log_file: '/tmp/netplex-perl.log',
      log_function: 'log',
      port: '127.0.0.1:0',
      host: '127.0.0.1',
      ipv: '4',
      proto: 'tcp',
      listen: '16',
      pid_file: '/tmp/netplex-perl.pid',
      user: 'nobody',
      group: 'nogroup',
      allow: '^127\\.',
      deny: '^10\\.',
      cidr_allow: '127.0.0.0/8',
      cidr_deny: '10.0.0.0/8',
      reverse_lookups: 'double',
      double_reverse_lookups: 'debug',
      sig_passthrough: 'USR2,TTIN',
      unix_type: 'SOCK_STREAM',
      udp_recv_len: '512',
      check_for_dequeue: '5',
      syslog_logsock: 'unix',
      syslog_ident: 'myserver',
      syslog_logopt: 'pid',
      syslog_facility: 'daemon',
    };
    const names = [...documented.keys()].filter((name) => name !== 'chroot');
    const conf = names.map((name) => `${name} ${sample[name] ?? '1'}`).join('\n');
    const { config, notices } = load(conf);
    expect(config.udp_recv_len).toBe(512);
    // Every option this table does not implement said what it does instead.
    const noticed = new Set(notices.flatMap((n) => n.keys));
    for (const name of names)
      if (rowOf(name)!.treatment !== 'implemented') expect(noticed.has(name), name).toBe(true);
  });

  it('chroot stays an error: netplex cannot chroot on Node.js', () => {
    expect(documented.has('chroot')).toBe(true);
    const err = caught(() => load('chroot /var/empty'));
    expect(err).toBeInstanceOf(UnsupportedOptionError);
    expect(err.message).toContain('there is no chroot(2) binding');
  });

  it("the forking personalities' own options are unknown, with the closest key as the suggestion", () => {
    expect(forkingOnly).toEqual([...forkingOnlyOptions].sort());
    const candidates = acceptedKeys(schemaKeys);
    for (const name of forkingOnly) {
      const err = caught(() => load(`\n${name} 1`));
      expect(err, name).toBeInstanceOf(UnknownOptionError);
      const suggestion = suggestKey(name, candidates);
      expect(err.message, name).toBe(
        `perl.conf:2: unknown option ${name}${suggestion === undefined ? '' : `; did you mean ${suggestion}?`}`,
      );
    }
    // As before there was a table: only lock_file is close to a netplex option.
    expect(forkingOnly.map((name) => suggestKey(name, candidates)).filter(Boolean)).toEqual(['log_file']);
  });
});

// ------------------------------------------------------------------ the table

describe('the table of Net::Server options', () => {
  it('has each key once, and an implemented key is an option of the schema, the others are not', () => {
    const keys = netServerOptions.flatMap((o) => o.keys);
    expect(new Set(keys).size).toBe(keys.length);
    for (const option of netServerOptions)
      for (const key of option.keys)
        expect(schemaKeys.has(key), `${key} (${option.treatment})`).toBe(
          option.treatment === 'implemented' || option.treatment === 'refused',
        );
  });

  it('leaves the forking options out, and they are no option of the schema', () => {
    for (const key of forkingOnlyOptions) {
      expect(rowOf(key), key).toBeUndefined();
      expect(schemaKeys.has(key), key).toBe(false);
      expect(acceptedKeys(schemaKeys).has(key), key).toBe(false);
    }
  });

  it('takes every key of a prefix family, named or not', () => {
    const accepted = acceptedKeys(schemaKeys);
    for (const key of ['SSL_cert_file', 'SSL_foo', 'log4perl_category'])
      expect(accepted.has(key), key).toBe(true);
    expect(accepted.has('ssl_cert_file')).toBe(false);
    // The syslog_ keys are options of the schema now, so a misspelt one is unknown.
    expect(accepted.has('syslog_whatever')).toBe(false);
    // The named keys are suggestion candidates, after the schema's.
    expect([...accepted].slice(0, schemaKeys.size)).toEqual([...schemaKeys]);
    expect([...accepted]).toContain('tie_client_stdout');
  });
});

// ------------------------------------------------------------------ loadConfig

describe('loadConfig with Net::Server options', () => {
  it('accepts them from every source, and says once what netplex does instead', () => {
    const { config, notices } = load('tie_client_stdout 1\nSSL_key_file /k.pem', {
      argv: ['--SSL-cert-file=/c.pem', '--ipv6_package', 'IO::Socket::IP'],
      run: { syslog_ident: 'myserver' },
      constructor: { tied_stdout_callback: () => {} },
    });
    expect(Object.keys(config)).not.toContain('tie_client_stdout');
    expect(Object.keys(config).filter((k) => !schemaKeys.has(k))).toEqual([]);
    // One line per row of the table, in its order.
    expect(notices.map((n) => [n.level, n.keys])).toEqual([
      [2, ['ipv6_package']],
      [2, ['tie_client_stdout', 'tied_stdout_callback']],
      [2, ['SSL_key_file', 'SSL_cert_file']],
    ]);
    // syslog_ident is an option: no notice, and its value in the config.
    expect(config.syslog_ident).toBe('myserver');
    expect(notices[2]!.message).toBe(
      'SSL_key_file, SSL_cert_file: ignored: TLS is not supported yet; terminate it in front of netplex. ' +
        'A port with proto ssl or ssleay is refused (MPX_ERR_PORT_SPEC), so that no port meant for TLS serves clear text',
    );
  });

  it('says nothing of a value that asks for what netplex does anyway', () => {
    const { notices } = load(
      'no_close_by_child 0\ntie_client_stdout off\nudp_recv_flags 0\nunix_type SOCK_STREAM',
    );
    expect(notices).toEqual([]);
    expect(load('udp_recv_flags 2').notices.map((n) => n.message)).toEqual([
      "udp_recv_flags: ignored: Node's datagram sockets take no recv(2) flags; datagrams are read with none (0, the default, is quiet)",
    ]);
  });

  it('suggests them for typos, as it does netplex options', () => {
    expect(caught(() => load('tie_client_stdot 1')).message).toBe(
      'perl.conf:1: unknown option tie_client_stdot; did you mean tie_client_stdout?',
    );
  });

  describe('leave_children_open_on_hup, mapped to reload_mode drain', () => {
    it('sets reload_mode drain in its own source, and says so at info level', () => {
      const { config, notices, sources } = load('leave_children_open_on_hup 1');
      expect(config.reload_mode).toBe('drain');
      expect(sources.get('reload_mode')).toEqual({ kind: 'conf_file', file: 'perl.conf', line: 1 });
      expect(notices).toEqual([
        {
          level: 3,
          keys: ['leave_children_open_on_hup'],
          message: 'leave_children_open_on_hup 1: set as reload_mode drain',
        },
      ]);
      expect(load('leave_children_open_on_hup 0').config.reload_mode).toBe('migrate');
    });

    it('loses to a reload_mode of a higher source, or of its own, with a notice', () => {
      const above = load('leave_children_open_on_hup yes', { argv: ['--reload_mode=migrate'] });
      expect(above.config.reload_mode).toBe('migrate');
      expect(above.notices.map((n) => [n.level, n.message])).toEqual([
        [
          2,
          'leave_children_open_on_hup yes (perl.conf:1) would be reload_mode drain, but reload_mode migrate is set (command line (--reload_mode=migrate)) and wins',
        ],
      ]);
      expect(load('reload_mode migrate\nleave_children_open_on_hup 1').config.reload_mode).toBe('migrate');
      // The same value from both says nothing.
      expect(load('reload_mode drain\nleave_children_open_on_hup 1').notices).toEqual([]);
    });

    it('wins over a lower source, and its off in a higher source wins over its on in a lower one', () => {
      expect(
        load('leave_children_open_on_hup 1', { defaults: { reload_mode: 'migrate' } }).config.reload_mode,
      ).toBe('drain');
      expect(
        load('leave_children_open_on_hup 1', { argv: ['--leave_children_open_on_hup=0'] }).config.reload_mode,
      ).toBe('migrate');
    });

    it('takes a Net::Server boolean only', () => {
      const err = caught(() => load('leave_children_open_on_hup sometimes'));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toBe(
        'perl.conf:1: leave_children_open_on_hup: expected bool (1/0, yes/no, on/off, true/false), got "sometimes"',
      );
    });
  });

  it('logs to stderr, with a notice, when log_file names a Perl logging module other than Sys::Syslog', () => {
    for (const module of ['Log::Log4perl', 'Log::Dispatch']) {
      const { config, notices } = load(`log_file ${module}`);
      expect(config.log_file).toBeUndefined();
      expect(notices.map((n) => n.message)).toEqual([
        `log_file ${module} names a Perl logging module, which netplex cannot load: logging to stderr instead (under systemd the journal takes it; log_file Sys::Syslog, log_function or writeToLogHook take every line)`,
      ]);
    }
    expect(load('log_file logs/server.log').config.log_file).toBe('logs/server.log');
  });

  it("keeps log_file Sys::Syslog, with Net::Server's syslog defaults and no notice", () => {
    const { config, notices } = load('log_file Sys::Syslog');
    expect(notices).toEqual([]);
    expect(config).toMatchObject({
      log_file: 'Sys::Syslog',
      syslog_logsock: 'native',
      syslog_ident: 'net_server',
      syslog_logopt: 'pid,nofatal',
      syslog_facility: 'daemon',
      syslog_format: 'rfc3164',
      syslog_host: '127.0.0.1',
      syslog_port: 514,
      syslog_path: '/dev/log',
    });
    expect(load('syslog_facility LOG_LOCAL3\nsyslog_logsock UDP').config).toMatchObject({
      syslog_facility: 'local3',
      syslog_logsock: 'udp',
    });
  });

  it.each([
    [
      'syslog_logsock stream',
      'syslog_logsock: expected native, unix, inet, udp or tcp (stream: a STREAMS device',
    ],
    ['syslog_logsock console', 'Node cannot fork(2)'],
    [
      'syslog_logsock carrier-pigeon',
      'syslog_logsock: expected native, unix, inet, udp or tcp, got "carrier-pigeon"',
    ],
    ['syslog_facility nonesuch', 'syslog_facility: expected a facility: kern, user, mail, daemon'],
    ['syslog_logopt pid,verbose', 'verbose is none of them'],
    ['syslog_ident tab\there', 'syslog_ident: expected string (printable ASCII text)'],
    ['syslog_port 0', 'syslog_port'],
    ['syslog_format json', 'syslog_format'],
  ])('refuses %j with a ConfigError saying what it takes', (line, message) => {
    const err = caught(() => load(line));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(message);
  });

  describe('sig_passthrough', () => {
    it("takes Net::Server's forms: a name, a comma-separated list, an array; with or without SIG", () => {
      expect(load('sig_passthrough usr2, TTIN\nsig_passthrough SIGTTOU,').config.sig_passthrough).toEqual([
        'SIGUSR2',
        'SIGTTIN',
        'SIGTTOU',
      ]);
      expect(
        loadConfig(serverOptions, { run: { sig_passthrough: ['USR2', 'WINCH'] } }).config.sig_passthrough,
      ).toEqual(['SIGUSR2', 'SIGWINCH']);
      expect(loadConfig(serverOptions, { run: { sig_passthrough: 'USR2' } }).config.sig_passthrough).toEqual([
        'SIGUSR2',
      ]);
    });

    it("leaves out the supervisor's own signals, with a notice", () => {
      const { config, notices } = load('sig_passthrough HUP,USR2,TERM');
      expect(config.sig_passthrough).toEqual(['SIGUSR2']);
      expect(notices.map((n) => n.message)).toEqual([
        'sig_passthrough SIGHUP, SIGTERM: not passed on: the supervisor acts on its own signals itself (HUP reloads; INT and TERM stop; QUIT stops gracefully; USR1 reopens the logs), for its workers too',
      ]);
    });

    it.each([
      ['NOPE', 'signal names such as USR2 or TTIN, comma-separated ("NOPE" is no signal here), got "NOPE"'],
      [
        'USR2,KILL',
        'signal names such as USR2 or TTIN (SIGKILL cannot be caught, so it cannot be passed on), got "USR2,KILL"',
      ],
    ])('refuses %s', (value, expected) => {
      const err = caught(() => load(`sig_passthrough ${value}`));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toBe(`perl.conf:1: sig_passthrough: expected ${expected}`);
    });
  });

  it('reads unix_type in any case, and udp_recv_len as a number of bytes', () => {
    expect(load('unix_type sock_dgram').config.unix_type).toBe('SOCK_DGRAM');
    expect(caught(() => load('unix_type SOCK_SEQPACKET')).message).toBe(
      'perl.conf:1: unix_type: expected SOCK_STREAM|SOCK_DGRAM, got "SOCK_SEQPACKET"',
    );
    expect(caught(() => load('udp_recv_len lots')).message).toBe(
      'perl.conf:1: udp_recv_len: expected bytes, got "lots"',
    );
  });

  it('takes log_function as a function in code, or as a method name from any source', () => {
    const fn = () => {};
    expect(loadConfig(serverOptions, { run: { log_function: fn } }).config.log_function).toBe(fn);
    expect(load('log_function my_log').config.log_function).toBe('my_log');
    expect(caught(() => load('log_function not-a-name')).message).toBe(
      'perl.conf:1: log_function: expected a function, or the name of a method, got "not-a-name"',
    );
  });
});
