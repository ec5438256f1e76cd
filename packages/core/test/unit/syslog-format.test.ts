/**
 * syslog-format: the bytes of one message per format and transport, as Sys::Syslog 0.36 builds
 * them (Net::Server::Log::Sys::Syslog's `syslog($level, '%s', $msg)`), the priority of each
 * Net::Server level, and the names syslog_facility and syslog_logopt take.
 */
import { describe, expect, it } from 'vitest';
import {
  formatSyslog,
  parseFacility,
  priorityOf,
  rfc3164Time,
  rfc5424Time,
  type SyslogHeader,
  type SyslogLogopt,
  splitLogopt,
} from '../../src/syslog-format.js';

const header = (over: Partial<SyslogHeader> = {}): SyslogHeader => ({
  format: 'rfc3164',
  facility: 'daemon',
  ident: 'net_server',
  logopt: new Set(['pid', 'nofatal']) as SyslogLogopt,
  pid: 4242,
  hostname: 'box',
  ...over,
});
// 2026-03-05 07:08:09.012 local time: a day below 10 shows Sys::Syslog's space-padded %e.
const time = new Date(2026, 2, 5, 7, 8, 9, 12).getTime();

describe('formatSyslog', () => {
  it.each([
    ['udp', '<29>Mar  5 07:08:09 net_server[4242]: hello\n\0'],
    // Over tcp the newline ends the frame, and a NUL would start the next one.
    ['tcp', '<29>Mar  5 07:08:09 net_server[4242]: hello\n'],
    ['unix', '<29>Mar  5 07:08:09 net_server[4242]: hello\n\0'],
    ['native', '<29>Mar  5 07:08:09 net_server[4242]: hello\n'],
  ] as const)('rfc3164 over %s: %j', (kind, bytes) => {
    expect(formatSyslog(header(), kind, { level: 2, message: 'hello', time }).toString()).toBe(bytes);
  });

  it('honours logopt: no pid, noeol, nonul', () => {
    const logopt = new Set(['noeol', 'nonul']) as SyslogLogopt;
    expect(
      formatSyslog(header({ logopt, ident: 'my app' }), 'udp', { level: 0, message: 'x', time }).toString(),
    ).toBe('<27>Mar  5 07:08:09 my app: x');
  });

  it('adds the newline even when the message has one, as the %s format does', () => {
    expect(formatSyslog(header(), 'native', { level: 3, message: 'a\n', time }).toString()).toBe(
      '<30>Mar  5 07:08:09 net_server[4242]: a\n\n',
    );
  });

  it('rfc5424: a full time, the hostname, the ident as APP-NAME, the pid as PROCID, octet counting over tcp', () => {
    const h = header({ format: 'rfc5424', facility: 'local3', ident: 'my app' });
    const body = `<156>1 ${rfc5424Time(time)} box my_app 4242 - - héllo`;
    expect(formatSyslog(h, 'udp', { level: 1, message: 'héllo', time }).toString()).toBe(body);
    expect(formatSyslog(h, 'tcp', { level: 1, message: 'héllo', time }).toString()).toBe(
      `${Buffer.byteLength(body)} ${body}`,
    );
    expect(
      formatSyslog({ ...h, logopt: new Set() as SyslogLogopt }, 'unix', {
        level: 1,
        message: 'x',
        time,
      }).toString(),
    ).toContain(' my_app - - - x');
  });
});

describe('priorities and times', () => {
  it.each([
    [0, 27],
    [1, 28],
    [2, 29],
    [3, 30],
    [4, 31],
  ] as const)('Net::Server level %i with facility daemon is priority %i', (level, pri) => {
    expect(priorityOf(header(), level)).toBe(pri);
  });

  it('local7 debug is 191, kern err is 3', () => {
    expect(priorityOf(header({ facility: 'local7' }), 4)).toBe(191);
    expect(priorityOf(header({ facility: 'kern' }), 0)).toBe(3);
  });

  it('stamps rfc3164 in the C locale with %e, and rfc5424 as RFC 3339 with the offset', () => {
    expect(rfc3164Time(new Date(2026, 11, 25, 23, 59, 1).getTime())).toBe('Dec 25 23:59:01');
    expect(rfc5424Time(time)).toMatch(/^2026-03-05T07:08:09\.012(?:Z|[+-]\d\d:\d\d)$/);
  });
});

describe('syslog_facility and syslog_logopt', () => {
  it.each([
    ['daemon', 'daemon'],
    ['LOG_LOCAL0', 'local0'],
    [' Mail ', 'mail'],
    ['nonesuch', undefined],
    ['toString', undefined],
  ])('parseFacility(%j) is %j', (text, facility) => {
    expect(parseFacility(text)).toBe(facility);
  });

  it.each([
    ['pid,nofatal', ['pid', 'nofatal']],
    ['pid|cons', ['pid', 'cons']],
    [' ndelay  pid ', ['ndelay', 'pid']],
    ['', []],
  ])('splitLogopt(%j) is %j', (text, words) => {
    expect(splitLogopt(text)).toEqual(words);
  });
});
