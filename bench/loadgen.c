/*
 * loadgen — the benchmark's load client: one thread, one epoll loop, loopback only.
 *
 * It is C so that on a 2-core machine (server on one core, load on the other) the client is not
 * the bottleneck; its own CPU use is reported so that the headroom can be read from the results.
 * Every payload is sequence-numbered and every byte that comes back is compared with the byte that
 * was sent, so "no bytes lost" is measured, not assumed.
 *
 *   loadgen echo   --port P [--host H] --conns N --depth K --duration S [--warmup S] [--line]
 *   loadgen idle   --port P [--host H] --conns N [--hold S]
 *   loadgen reload --port P [--host H] --persist N --rate R --duration S
 *   loadgen serve  [--port P]                      (a minimal epoll echo server: the headroom check)
 *
 * echo:   N connections, K 64-byte messages in flight on each; reports msgs/s and round-trip p50/p99.
 *         SIGUSR1 or SIGTERM ends the measured window at once (the in-flight messages still come
 *         back and are verified) and the report follows, its msgs/s over the window as it ran.
 *         --line makes every message a printable line ending in \n (the server answers each line).
 * idle:   opens N connections, each proves it was accepted by one echoed byte, prints a JSON line,
 *         then holds them until stdin closes (or --hold seconds pass) and prints a final JSON line.
 * reload: the reload-under-load client. The server greets each connection with a 16-byte header
 *         "PID %011d\n" (the pid of the process serving it). N persistent connections stream one
 *         message every 10 ms each; R new connections per second each read the header, echo one
 *         message, close. Reports every new connection's outcome with timestamps, so the caller can
 *         match them against the reload signals it sent (both use CLOCK_MONOTONIC).
 *
 * Output is JSON on stdout. Every loop is bounded by a deadline.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64
#define HDR 16
#define HIST_US 1000000 /* latency histogram: 1 us buckets up to 1 s, then one overflow bucket (max_ns is exact) */
#define MAX_EVENTS 512

static const char *host = "127.0.0.1";
static int port = 0;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(2);
}

/* raise_nofile lifts the soft fd limit to the hard one: the idle test holds 10,000 sockets. */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---------------------------------------------------------------- payloads */

static int line_mode = 0;

/* Filler bytes: a fixed pseudo-random table, read from an offset that depends on the message. */
static unsigned char filler[256 + MSG];

static void init_filler(void) {
  uint64_t h = 0x2545F4914F6CDD1Dull;
  for (size_t i = 0; i < sizeof filler; i++) {
    h ^= h << 13;
    h ^= h >> 7;
    h ^= h << 17;
    filler[i] = line_mode ? (unsigned char)('!' + (h % 94)) : (unsigned char)(h >> 24);
  }
}

static const char hexd[] = "0123456789abcdef";

/*
 * gen_msg writes message `seq` of connection `conn`: 16 hex digits of seq, ':', 8 of conn, ':',
 * then filler read from an offset that depends on both, so a byte from another message or
 * connection does not pass for the right one. In line mode every byte is printable and the last
 * is \n. (Hand-rolled hex: snprintf here would cost the client more than the server spends.)
 */
static void gen_msg(uint32_t conn, uint64_t seq, unsigned char *out) {
  for (int i = 15; i >= 0; i--, seq >>= 4) out[i] = hexd[seq & 15];
  out[16] = ':';
  uint32_t c = conn;
  for (int i = 24; i >= 17; i--, c >>= 4) out[i] = hexd[c & 15];
  out[25] = ':';
  unsigned off = (unsigned)((out[14] * 31u + out[15] * 7u + conn * 13u) & 255u);
  memcpy(out + 26, filler + off, MSG - 26);
  if (line_mode) out[MSG - 1] = '\n';
}

/* ---------------------------------------------------------------- sockets */

static int resolve_addr(struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  /* Loopback only: this program is a load generator, never pointed at another machine. */
  if (strcmp(host, "127.0.0.1") == 0) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    inet_pton(AF_INET, host, &a4->sin_addr);
    *len = sizeof *a4;
    return 0;
  }
  if (strcmp(host, "::1") == 0) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    inet_pton(AF_INET6, host, &a6->sin6_addr);
    *len = sizeof *a6;
    return 0;
  }
  return -1;
}

static struct sockaddr_storage peer;
static socklen_t peer_len;

/* open_conn starts a non-blocking connect; returns the fd, or -errno when it failed at once. */
static int open_conn(void) {
  int fd = socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

static int sock_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

static int ep;

static void ep_set(int fd, uint32_t events, void *ptr, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  if (epoll_ctl(ep, op, fd, &ev) < 0) die("epoll_ctl");
}

/* watch_stdin lets stdin's EOF end a wait; when stdin cannot be polled (/dev/null) only time does. */
static void watch_stdin(void *ptr) {
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
}

/* ---------------------------------------------------------------- latency histogram */

static uint64_t *hist;
static uint64_t hist_n;
/* The longest round trip, kept apart from the histogram, whose last bucket holds everything >= 1 s. */
static uint64_t max_ns;

static void hist_add(uint64_t ns) {
  uint64_t us = ns / 1000;
  hist[us < HIST_US ? us : HIST_US]++;
  hist_n++;
  if (ns > max_ns) max_ns = ns;
}

static double hist_pct(double p) {
  if (hist_n == 0) return 0;
  uint64_t want = (uint64_t)(p * hist_n);
  if (want >= hist_n) want = hist_n - 1;
  uint64_t seen = 0;
  for (int i = 0; i <= HIST_US; i++) {
    seen += hist[i];
    if (seen > want) return i + 0.5; /* the middle of the 1 us bucket */
  }
  return HIST_US;
}

/* hist_max is the longest round trip in microseconds, exact (not capped at the histogram's range). */
static double hist_max(void) { return max_ns / 1000.0; }

/* ---------------------------------------------------------------- a verified echo stream */

/*
 * Stream is one connection's echo traffic: what was sent, what came back and was checked, and when
 * each in-flight message left. The outgoing queue never holds more than `depth` messages.
 */
typedef struct {
  int fd;
  uint32_t id;
  int depth;
  uint64_t next_seq;   /* messages generated so far */
  uint64_t recv_bytes; /* bytes received and verified */
  unsigned char *out;  /* unsent bytes */
  int out_len, out_cap;
  uint64_t *sent_at; /* send time by seq % depth */
  uint64_t exp_seq;  /* the message cached in exp */
  unsigned char exp[MSG];
  int want_out; /* EPOLLOUT registered */
  int dead;
} Stream;

static uint64_t mismatches;

static void stream_init(Stream *s, int fd, uint32_t id, int depth) {
  memset(s, 0, sizeof *s);
  s->fd = fd;
  s->id = id;
  s->depth = depth;
  s->out_cap = depth * MSG;
  s->out = malloc(s->out_cap);
  s->sent_at = calloc(depth, sizeof *s->sent_at);
  s->exp_seq = UINT64_MAX;
  if (!s->out || !s->sent_at) die("malloc");
}

static void stream_free(Stream *s) {
  free(s->out);
  free(s->sent_at);
  s->out = NULL;
  s->sent_at = NULL;
}

/* stream_flush writes queued bytes; returns -errno on a fatal error. */
static int stream_flush(Stream *s) {
  while (s->out_len > 0) {
    ssize_t n = send(s->fd, s->out, s->out_len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) break;
      return -errno;
    }
    memmove(s->out, s->out + n, s->out_len - n);
    s->out_len -= (int)n;
  }
  int want = s->out_len > 0;
  if (want != s->want_out) {
    ep_set(s->fd, EPOLLIN | (want ? EPOLLOUT : 0), s, EPOLL_CTL_MOD);
    s->want_out = want;
  }
  return 0;
}

/* stream_queue generates the next message and queues it. */
static void stream_queue(Stream *s, uint64_t t) {
  gen_msg(s->id, s->next_seq, s->out + s->out_len);
  s->out_len += MSG;
  s->sent_at[s->next_seq % s->depth] = t;
  s->next_seq++;
}

/*
 * stream_verify checks `n` received bytes against what was sent and calls `done(seq, t)` for each
 * message completed. Returns -1 on a mismatch (or bytes that were never sent).
 */
static int stream_verify(Stream *s, const unsigned char *buf, size_t n, uint64_t t,
                         void (*done)(Stream *, uint64_t, uint64_t)) {
  while (n > 0) {
    uint64_t seq = s->recv_bytes / MSG;
    size_t off = s->recv_bytes % MSG;
    if (seq >= s->next_seq) return -1;
    if (s->exp_seq != seq) {
      gen_msg(s->id, seq, s->exp);
      s->exp_seq = seq;
    }
    size_t take = MSG - off < n ? MSG - off : n;
    if (memcmp(buf, s->exp + off, take) != 0) return -1;
    buf += take;
    n -= take;
    s->recv_bytes += take;
    if (s->recv_bytes % MSG == 0) done(s, seq, t);
  }
  return 0;
}

static unsigned char rbuf[65536];

/* ---------------------------------------------------------------- echo mode */

static uint64_t win_start, win_end, completed;
static int sending = 1;
/* Set by SIGUSR1 or SIGTERM: the window ends now, whatever --duration said. */
static volatile sig_atomic_t stop_asked = 0;

static void on_stop(int sig) {
  (void)sig;
  stop_asked = 1;
}

static void echo_done(Stream *s, uint64_t seq, uint64_t t) {
  uint64_t sent = s->sent_at[seq % s->depth];
  if (sent >= win_start && t <= win_end) {
    hist_add(t - sent);
    completed++;
  } else if (sent >= win_start && t - sent > max_ns) {
    /* Sent in the window, back after it: not a sample, but a pause all the same. */
    max_ns = t - sent;
  }
  if (sending) stream_queue(s, t);
}

static int run_echo(int conns, int depth, double duration, double warmup) {
  Stream *ss = calloc(conns, sizeof *ss);
  if (!ss) die("calloc");
  uint64_t errors = 0, connect_errors = 0;
  uint64_t t0 = now_ns();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop; /* no SA_RESTART: epoll_wait returns EINTR and the loop sees the flag */
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  /* Connect everything first, so that the measured window is steady state. */
  int pending = 0;
  for (int i = 0; i < conns; i++) {
    int fd = open_conn();
    if (fd < 0) {
      connect_errors++;
      ss[i].dead = 1;
      continue;
    }
    stream_init(&ss[i], fd, (uint32_t)i, depth);
    ss[i].want_out = 1;
    ep_set(fd, EPOLLOUT, &ss[i], EPOLL_CTL_ADD);
    pending++;
  }
  struct epoll_event evs[MAX_EVENTS];
  uint64_t connect_deadline = now_ns() + 30ull * 1000000000ull;
  while (pending > 0 && now_ns() < connect_deadline) {
    int n = epoll_wait(ep, evs, MAX_EVENTS, 100);
    for (int i = 0; i < n; i++) {
      Stream *s = evs[i].data.ptr;
      if (sock_error(s->fd) != 0) {
        connect_errors++;
        s->dead = 1;
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
      } else {
        ep_set(s->fd, EPOLLIN, s, EPOLL_CTL_MOD);
        s->want_out = 0;
      }
      pending--;
    }
  }
  if (pending > 0) connect_errors += pending;
  double connect_s = (now_ns() - t0) / 1e9;

  double cpu0 = cpu_seconds();
  uint64_t start = now_ns();
  win_start = start + (uint64_t)(warmup * 1e9);
  win_end = win_start + (uint64_t)(duration * 1e9);
  for (int i = 0; i < conns; i++) {
    if (ss[i].dead) continue;
    for (int k = 0; k < depth; k++) stream_queue(&ss[i], start);
    if (stream_flush(&ss[i]) < 0) {
      errors++;
      ss[i].dead = 1;
    }
  }

  /* Run the window, then stop sending and give the in-flight messages up to 3 s to come back. */
  uint64_t drain_deadline = win_end + 3ull * 1000000000ull;
  for (;;) {
    uint64_t t = now_ns();
    if (stop_asked && t < win_end) {
      win_end = t > win_start ? t : win_start;
      drain_deadline = t + 3ull * 1000000000ull;
    }
    if (t >= win_end) sending = 0;
    if (t >= drain_deadline) break;
    if (!sending) {
      int outstanding = 0;
      for (int i = 0; i < conns && !outstanding; i++)
        if (!ss[i].dead && ss[i].recv_bytes < ss[i].next_seq * MSG) outstanding = 1;
      if (!outstanding) break;
    }
    int n = epoll_wait(ep, evs, MAX_EVENTS, 10);
    t = now_ns();
    for (int i = 0; i < n; i++) {
      Stream *s = evs[i].data.ptr;
      if (s->dead) continue;
      int bad = 0;
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        /* Bounded reads per event keep one busy connection from starving the rest. */
        for (int r = 0; r < 4; r++) {
          ssize_t got = recv(s->fd, rbuf, sizeof rbuf, 0);
          if (got > 0) {
            if (stream_verify(s, rbuf, (size_t)got, t, echo_done) < 0) {
              mismatches++;
              bad = 1;
              break;
            }
            if ((size_t)got < sizeof rbuf) break;
          } else if (got == 0 || errno != EAGAIN) {
            bad = 1; /* the server closed or reset a connection mid-test */
            break;
          } else {
            break;
          }
        }
      }
      if (!bad && stream_flush(s) < 0) bad = 1;
      if (bad) {
        errors++;
        s->dead = 1;
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
      }
    }
  }
  double cpu = cpu_seconds() - cpu0;
  double wall = (now_ns() - start) / 1e9;
  duration = (win_end - win_start) / 1e9; /* shorter than --duration when stopped by a signal */

  uint64_t sent_bytes = 0, verified = 0, unanswered = 0;
  for (int i = 0; i < conns; i++) {
    if (!ss[i].out && !ss[i].dead) continue;
    sent_bytes += ss[i].next_seq * MSG;
    verified += ss[i].recv_bytes;
    if (!ss[i].dead) unanswered += ss[i].next_seq * MSG - ss[i].recv_bytes;
    if (ss[i].out) {
      close(ss[i].fd);
      stream_free(&ss[i]);
    }
  }
  int ok = errors == 0 && connect_errors == 0 && mismatches == 0 && unanswered == 0 && completed > 0;
  if (duration <= 0) duration = 1e-9;
  printf("{\"mode\":\"%s\",\"conns\":%d,\"depth\":%d,\"duration_s\":%.3f,\"msgs\":%llu,"
         "\"msgs_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"bytes_sent\":%llu,"
         "\"bytes_verified\":%llu,\"unanswered_bytes\":%llu,\"mismatches\":%llu,\"errors\":%llu,"
         "\"connect_errors\":%llu,\"connect_s\":%.3f,\"client_cpu_pct\":%.1f,\"ok\":%s}\n",
         line_mode ? "line" : "echo", conns, depth, duration, (unsigned long long)completed,
         completed / duration, hist_pct(0.50), hist_pct(0.99), hist_max(), (unsigned long long)sent_bytes,
         (unsigned long long)verified, (unsigned long long)unanswered, (unsigned long long)mismatches,
         (unsigned long long)errors, (unsigned long long)connect_errors, connect_s, 100.0 * cpu / wall,
         ok ? "true" : "false");
  free(ss);
  return ok ? 0 : 1;
}

/* ---------------------------------------------------------------- idle mode */

typedef struct {
  int fd;
  int state; /* 0 connecting, 1 waiting for the echoed byte, 2 accepted, 3 failed */
} Idle;

static int run_idle(int conns, double hold) {
  Idle *cs = calloc(conns, sizeof *cs);
  if (!cs) die("calloc");
  struct epoll_event evs[MAX_EVENTS];
  const int window = 256; /* connects in progress at once: a burst beyond the backlog only retries SYNs */
  int opened = 0, in_progress = 0, accepted = 0, failed = 0;
  uint64_t t0 = now_ns();
  uint64_t deadline = t0 + 120ull * 1000000000ull;
  while (accepted + failed < conns && now_ns() < deadline) {
    while (opened < conns && in_progress < window) {
      Idle *c = &cs[opened++];
      c->fd = open_conn();
      if (c->fd < 0) {
        c->state = 3;
        failed++;
        continue;
      }
      ep_set(c->fd, EPOLLOUT, c, EPOLL_CTL_ADD);
      in_progress++;
    }
    int n = epoll_wait(ep, evs, MAX_EVENTS, 100);
    for (int i = 0; i < n; i++) {
      Idle *c = evs[i].data.ptr;
      if (c->state == 0) {
        if (sock_error(c->fd) != 0 || send(c->fd, "x", 1, MSG_NOSIGNAL) != 1) {
          c->state = 3;
        } else {
          c->state = 1;
          ep_set(c->fd, EPOLLIN, c, EPOLL_CTL_MOD);
          continue;
        }
      } else if (c->state == 1) {
        char b;
        ssize_t got = recv(c->fd, &b, 1, 0);
        if (got < 0 && errno == EAGAIN) continue;
        c->state = got == 1 && b == 'x' ? 2 : 3;
      }
      in_progress--;
      if (c->state == 2) {
        accepted++;
        ep_set(c->fd, EPOLLIN, c, EPOLL_CTL_MOD); /* watch for the server dropping it */
      } else {
        failed++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      }
    }
  }
  double accept_s = (now_ns() - t0) / 1e9;
  printf("{\"mode\":\"idle\",\"phase\":\"held\",\"conns\":%d,\"accepted\":%d,\"failed\":%d,"
         "\"accept_s\":%.3f}\n",
         conns, accepted, failed, accept_s);
  fflush(stdout);

  /* Hold until stdin closes (the caller has measured) or the hold time passes. */
  int dropped = 0;
  watch_stdin(NULL);
  uint64_t until = now_ns() + (uint64_t)(hold * 1e9);
  int done = 0;
  while (!done && now_ns() < until) {
    int n = epoll_wait(ep, evs, MAX_EVENTS, 100);
    for (int i = 0; i < n; i++) {
      Idle *c = evs[i].data.ptr;
      if (c == NULL) {
        char b[64];
        if (read(0, b, sizeof b) <= 0) done = 1;
        continue;
      }
      if (c->state == 2) {
        c->state = 3;
        dropped++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      }
    }
  }
  for (int i = 0; i < opened; i++)
    if (cs[i].fd >= 0) close(cs[i].fd);
  int ok = accepted == conns && dropped == 0;
  printf("{\"mode\":\"idle\",\"phase\":\"done\",\"conns\":%d,\"accepted\":%d,\"failed\":%d,"
         "\"dropped_while_held\":%d,\"accept_s\":%.3f,\"ok\":%s}\n",
         conns, accepted, failed, dropped, accept_s, ok ? "true" : "false");
  free(cs);
  return ok ? 0 : 1;
}

/* ---------------------------------------------------------------- reload mode */

enum { K_PERSIST = 1, K_NEW = 2 };
enum { NEW_CONNECTING, NEW_HEADER, NEW_ECHO, NEW_DONE };
enum { OUT_OK, OUT_REFUSED, OUT_RESET, OUT_FAILED };

typedef struct {
  int kind;
  Stream s;
  int state;
  unsigned char hdr[HDR];
  int hdr_len;
  long pid;
  uint64_t t_start, t_served, t_done;
  int outcome;
  /* persistent connections only */
  uint64_t next_send;
  uint64_t max_rtt;
  int closed_how; /* 0 alive, 1 closed by the server, 2 reset */
} RConn;

static void rel_done(Stream *s, uint64_t seq, uint64_t t) {
  RConn *c = (RConn *)((char *)s - offsetof(RConn, s));
  uint64_t rtt = t - s->sent_at[seq % s->depth];
  if (rtt > c->max_rtt) c->max_rtt = rtt;
}

/* read_header collects the 16-byte "PID %011d\n" greeting; returns 1 once complete, 0 for more, -1 bad. */
static int read_header(RConn *c) {
  ssize_t got = recv(c->s.fd, c->hdr + c->hdr_len, HDR - c->hdr_len, 0);
  if (got == 0) return -1;
  if (got < 0) return errno == EAGAIN ? 0 : -errno;
  c->hdr_len += (int)got;
  if (c->hdr_len < HDR) return 0;
  if (memcmp(c->hdr, "PID ", 4) != 0 || c->hdr[HDR - 1] != '\n') return -1;
  c->pid = strtol((char *)c->hdr + 4, NULL, 10);
  return 1;
}

static int run_reload(int persist, int rate, double duration) {
  const uint64_t period = 10ull * 1000000ull; /* a persistent connection sends every 10 ms */
  const uint64_t new_timeout = 5ull * 1000000000ull;
  int max_new = (int)(rate * (duration + 1)) + 16;
  RConn *pc = calloc(persist, sizeof *pc);
  RConn *nc = calloc(max_new, sizeof *nc);
  if (!pc || !nc) die("calloc");
  struct epoll_event evs[MAX_EVENTS];
  uint64_t t0 = now_ns();
  uint64_t end = t0 + (uint64_t)(duration * 1e9);
  int persist_failed = 0;

  for (int i = 0; i < persist; i++) {
    RConn *c = &pc[i];
    c->kind = K_PERSIST;
    int fd = open_conn();
    if (fd < 0) {
      persist_failed++;
      c->closed_how = 2;
      c->state = NEW_DONE;
      continue;
    }
    stream_init(&c->s, fd, (uint32_t)i, 4);
    c->state = NEW_CONNECTING;
    c->t_start = t0;
    c->s.want_out = 1;
    ep_set(fd, EPOLLIN | EPOLLOUT, c, EPOLL_CTL_ADD);
  }

  int started = 0, live_new = 0, first_live = 0;
  uint64_t interval = 1000000000ull / (uint64_t)rate;
  uint64_t next_new = t0 + 500ull * 1000000ull; /* let the persistent connections settle first */
  uint64_t hard_end = end + new_timeout + 2ull * 1000000000ull;

  for (;;) {
    uint64_t t = now_ns();
    if (t >= hard_end) break;
    if (t >= end && live_new == 0) {
      int outstanding = 0;
      for (int i = 0; i < persist; i++)
        if (pc[i].closed_how == 0 && pc[i].state == NEW_ECHO && pc[i].s.recv_bytes < pc[i].s.next_seq * MSG)
          outstanding = 1;
      if (!outstanding) break;
    }
    /* Start the new connections that are due (bounded by max_new). */
    while (t < end && t >= next_new && started < max_new) {
      RConn *c = &nc[started];
      c->kind = K_NEW;
      c->t_start = t;
      next_new += interval;
      int fd = open_conn();
      if (fd < 0) {
        c->state = NEW_DONE;
        c->outcome = fd == -ECONNREFUSED ? OUT_REFUSED : OUT_FAILED;
        started++;
        continue;
      }
      stream_init(&c->s, fd, (uint32_t)(1000000 + started), 1);
      c->state = NEW_CONNECTING;
      c->s.want_out = 1;
      ep_set(fd, EPOLLIN | EPOLLOUT, c, EPOLL_CTL_ADD);
      started++;
      live_new++;
    }
    /* Persistent connections: one message each per period while the test runs. */
    for (int i = 0; i < persist; i++) {
      RConn *c = &pc[i];
      if (c->state != NEW_ECHO || c->closed_how || t >= end || t < c->next_send) continue;
      if (c->s.next_seq - c->s.recv_bytes / MSG >= (uint64_t)c->s.depth) continue;
      stream_queue(&c->s, t);
      c->next_send = t + period;
      if (stream_flush(&c->s) < 0) c->closed_how = 2;
    }
    /* Time out new connections that hang; they finish roughly in start order, so skip the done prefix. */
    while (first_live < started && nc[first_live].state == NEW_DONE) first_live++;
    for (int i = first_live; i < started; i++) {
      RConn *c = &nc[i];
      if (c->state != NEW_DONE && t - c->t_start > new_timeout) {
        c->state = NEW_DONE;
        c->outcome = OUT_FAILED;
        close(c->s.fd);
        stream_free(&c->s);
        live_new--;
      }
    }

    int n = epoll_wait(ep, evs, MAX_EVENTS, 1);
    t = now_ns();
    for (int i = 0; i < n; i++) {
      RConn *c = evs[i].data.ptr;
      if (c->state == NEW_DONE || c->closed_how) continue;
      int err = 0; /* 0 fine, -1 failed, -ECONNRESET etc. */
      if (c->state == NEW_CONNECTING) {
        int se = sock_error(c->s.fd);
        if (se) {
          err = -se;
        } else if (evs[i].events & (EPOLLOUT | EPOLLIN)) {
          c->state = NEW_HEADER;
          ep_set(c->s.fd, EPOLLIN, c, EPOLL_CTL_MOD);
          c->s.want_out = 0;
        }
      }
      if (!err && c->state == NEW_HEADER && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        int r = read_header(c);
        if (r < 0) err = r;
        if (r == 1) {
          c->t_served = t;
          c->state = NEW_ECHO;
          if (c->kind == K_NEW) {
            stream_queue(&c->s, t);
            if (stream_flush(&c->s) < 0) err = -ECONNRESET;
          }
        }
      } else if (!err && c->state == NEW_ECHO && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        for (int r = 0; r < 4; r++) {
          ssize_t got = recv(c->s.fd, rbuf, sizeof rbuf, 0);
          if (got > 0) {
            if (stream_verify(&c->s, rbuf, (size_t)got, t, rel_done) < 0) {
              mismatches++;
              err = -1;
              break;
            }
            if ((size_t)got < sizeof rbuf) break;
          } else if (got == 0) {
            err = -1;
            break;
          } else {
            if (errno != EAGAIN) err = -errno;
            break;
          }
        }
        if (!err && c->kind == K_NEW && c->s.recv_bytes == MSG) {
          c->t_done = t;
          c->state = NEW_DONE;
          c->outcome = OUT_OK;
          close(c->s.fd);
          stream_free(&c->s);
          live_new--;
          continue;
        }
      }
      if (!err && (evs[i].events & EPOLLOUT) && c->state == NEW_ECHO && stream_flush(&c->s) < 0)
        err = -ECONNRESET;
      if (err) {
        int reset = err == -ECONNRESET || err == -EPIPE;
        if (c->kind == K_NEW) {
          c->outcome = err == -ECONNREFUSED ? OUT_REFUSED : reset ? OUT_RESET : OUT_FAILED;
          c->state = NEW_DONE;
          close(c->s.fd);
          stream_free(&c->s);
          live_new--;
        } else {
          c->closed_how = reset ? 2 : 1;
          c->t_done = t;
          epoll_ctl(ep, EPOLL_CTL_DEL, c->s.fd, NULL);
        }
      }
    }
  }

  /* Persistent connections: what survived, what was lost, the longest wait for an echo. */
  int alive = 0, closed = 0, reset = 0;
  uint64_t lost = 0, sent_bytes = 0, verified = 0, max_rtt = 0;
  for (int i = 0; i < persist; i++) {
    RConn *c = &pc[i];
    if (c->s.out) {
      sent_bytes += c->s.next_seq * MSG;
      verified += c->s.recv_bytes;
      lost += c->s.next_seq * MSG - c->s.recv_bytes;
    }
    if (c->max_rtt > max_rtt) max_rtt = c->max_rtt;
    if (c->closed_how == 0 && c->state == NEW_ECHO) alive++;
    else if (c->closed_how == 2) reset++;
    else closed++;
  }
  int counts[4] = {0, 0, 0, 0};
  uint64_t max_new_wait = 0;
  for (int i = 0; i < started; i++) {
    if (nc[i].state != NEW_DONE) nc[i].outcome = OUT_FAILED;
    counts[nc[i].outcome]++;
    if (nc[i].outcome == OUT_OK && nc[i].t_done - nc[i].t_start > max_new_wait)
      max_new_wait = nc[i].t_done - nc[i].t_start;
  }
  printf("{\"mode\":\"reload\",\"t0_ns\":%llu,\"duration_s\":%.3f,\"persistent\":%d,\"persistent_alive\":%d,"
         "\"persistent_closed\":%d,\"persistent_reset\":%d,\"bytes_sent\":%llu,\"bytes_verified\":%llu,"
         "\"bytes_lost\":%llu,\"mismatches\":%llu,\"max_persistent_rtt_ms\":%.3f,\"new_started\":%d,"
         "\"new_ok\":%d,\"new_refused\":%d,\"new_reset\":%d,\"new_failed\":%d,\"max_new_conn_ms\":%.3f,"
         "\"persistent_alive_pids\":[",
         (unsigned long long)t0, duration, persist, alive, closed, reset, (unsigned long long)sent_bytes,
         (unsigned long long)verified, (unsigned long long)lost, (unsigned long long)mismatches,
         max_rtt / 1e6, started, counts[OUT_OK], counts[OUT_REFUSED], counts[OUT_RESET], counts[OUT_FAILED],
         max_new_wait / 1e6);
  /* The serving pid of each persistent connection still alive, 0 for the others. */
  for (int i = 0; i < persist; i++)
    printf("%s%ld", i ? "," : "", pc[i].closed_how == 0 && pc[i].state == NEW_ECHO ? pc[i].pid : 0);
  /* Each new connection: [start ns, served ns (0 if never), pid, outcome 0 ok 1 refused 2 reset 3 failed]. */
  printf("],\"new\":[");
  for (int i = 0; i < started; i++)
    printf("%s[%llu,%llu,%ld,%d]", i ? "," : "", (unsigned long long)nc[i].t_start,
           (unsigned long long)nc[i].t_served, nc[i].pid, nc[i].outcome);
  printf("]}\n");
  return mismatches == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- serve mode */

/* A minimal epoll echo server: what the load client can drive when the server costs almost nothing. */
static int run_serve(void) {
  int lfd = socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&peer, peer_len) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(lfd, (struct sockaddr *)&ss, &sl);
  int bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  printf("{\"port\":%d}\n", bound);
  fflush(stdout);
  ep_set(lfd, EPOLLIN, NULL, EPOLL_CTL_ADD);
  struct epoll_event evs[MAX_EVENTS];
  /* Runs until killed by the caller (SIGTERM); the read loop below ends at stdin EOF as well. */
  watch_stdin((void *)1);
  for (;;) {
    int n = epoll_wait(ep, evs, MAX_EVENTS, 1000);
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == NULL) {
        for (int k = 0; k < 64; k++) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          ep_set(fd, EPOLLIN, (void *)(intptr_t)(fd + 2), EPOLL_CTL_ADD);
        }
      } else if (p == (void *)1) {
        char b[64];
        if (read(0, b, sizeof b) <= 0) return 0;
      } else {
        int fd = (int)(intptr_t)p - 2;
        ssize_t got = recv(fd, rbuf, sizeof rbuf, 0);
        if (got <= 0) {
          if (got < 0 && errno == EAGAIN) continue;
          close(fd);
          continue;
        }
        /* Echo replies are small and the peer reads them; a blocking-style loop is enough here. */
        for (ssize_t off = 0; off < got;) {
          ssize_t w = send(fd, rbuf + off, got - off, MSG_NOSIGNAL);
          if (w < 0 && errno != EAGAIN) break;
          if (w > 0) off += w;
        }
      }
    }
  }
}

/* ---------------------------------------------------------------- main */

static const char *opt(int argc, char **argv, const char *name, const char *def) {
  size_t len = strlen(name);
  for (int i = 2; i < argc; i++) {
    if (strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') return argv[i] + len + 1;
    if (strcmp(argv[i], name) == 0 && i + 1 < argc) return argv[i + 1];
  }
  return def;
}

static int flag(int argc, char **argv, const char *name) {
  for (int i = 2; i < argc; i++)
    if (strcmp(argv[i], name) == 0) return 1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: loadgen echo|idle|reload|serve --port P [options]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  const char *mode = argv[1];
  host = opt(argc, argv, "--host", "127.0.0.1");
  port = atoi(opt(argc, argv, "--port", "0"));
  if (resolve_addr(&peer, &peer_len) < 0) {
    fprintf(stderr, "loadgen: --host must be 127.0.0.1 or ::1 (loopback only), got %s\n", host);
    return 2;
  }
  if (strcmp(mode, "serve") != 0 && (port <= 0 || port > 65535)) {
    fprintf(stderr, "loadgen: --port is required\n");
    return 2;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  line_mode = flag(argc, argv, "--line");
  init_filler();

  if (strcmp(mode, "echo") == 0) {
    hist = calloc(HIST_US + 1, sizeof *hist);
    if (!hist) die("calloc");
    int conns = atoi(opt(argc, argv, "--conns", "1"));
    int depth = atoi(opt(argc, argv, "--depth", "1"));
    double duration = atof(opt(argc, argv, "--duration", "5"));
    double warmup = atof(opt(argc, argv, "--warmup", "1"));
    if (conns < 1 || conns > 20000 || depth < 1 || depth > 1024 || duration <= 0 || duration > 600 ||
        warmup < 0 || warmup > 60) {
      fprintf(stderr, "loadgen: echo needs 1<=conns<=20000, 1<=depth<=1024, 0<duration<=600\n");
      return 2;
    }
    return run_echo(conns, depth, duration, warmup);
  }
  if (strcmp(mode, "idle") == 0) {
    int conns = atoi(opt(argc, argv, "--conns", "1000"));
    double hold = atof(opt(argc, argv, "--hold", "120"));
    if (conns < 1 || conns > 60000 || hold < 0 || hold > 3600) {
      fprintf(stderr, "loadgen: idle needs 1<=conns<=60000, 0<=hold<=3600\n");
      return 2;
    }
    return run_idle(conns, hold);
  }
  if (strcmp(mode, "reload") == 0) {
    int persist = atoi(opt(argc, argv, "--persist", "50"));
    int rate = atoi(opt(argc, argv, "--rate", "200"));
    double duration = atof(opt(argc, argv, "--duration", "10"));
    if (persist < 0 || persist > 10000 || rate < 1 || rate > 10000 || duration <= 0 || duration > 600) {
      fprintf(stderr, "loadgen: reload needs 0<=persist<=10000, 1<=rate<=10000, 0<duration<=600\n");
      return 2;
    }
    return run_reload(persist, rate, duration);
  }
  if (strcmp(mode, "serve") == 0) return run_serve();
  fprintf(stderr, "loadgen: unknown mode %s\n", mode);
  return 2;
}
