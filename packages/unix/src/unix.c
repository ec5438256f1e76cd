/*
 * unix.c — the native half of @netplex/unix: AF_UNIX sockets for Node through Node-API.
 *
 * Gives JavaScript plain-number descriptors for SOCK_SEQPACKET pairs (records carrying up to
 * MAX_FDS descriptors as SCM_RIGHTS, used to hand many connections from one worker to the next
 * in one message) and SOCK_DGRAM sockets (datagrams to a path or an abstract name, as syslog's
 * /dev/log and systemd's NOTIFY_SOCKET expect), plus a libuv poll watcher that reports
 * readiness on the event loop. Every call is non-blocking; failures come back as negative errno
 * numbers and only arguments of the wrong type throw (TypeError). src/index.ts loads the built
 * module and declares its types; scripts/build.mjs compiles this file against the running
 * Node's headers. Linux only: elsewhere the module loads but its initialisation throws.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8

#include <node_api.h>

#ifndef __linux__

NAPI_MODULE_INIT() {
  (void)exports;
  napi_throw_error(env, "ERR_NETPLEX_UNIX_PLATFORM", "@netplex/unix supports Linux only");
  return NULL;
}

#else

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

/* The most descriptors one SCM_RIGHTS message may carry on Linux (SCM_MAX_FD). */
#define MAX_FDS 253
#define CONTROL_SIZE CMSG_SPACE(MAX_FDS * sizeof(int))
#define WATCH_EVENTS (UV_READABLE | UV_WRITABLE | UV_DISCONNECT)

/* Returns from a function when a Node-API call fails (an exception is then pending or the
 * engine is going away). */
#define CHECK(call)                                                                              \
  do {                                                                                           \
    if ((call) != napi_ok) return NULL;                                                          \
  } while (0)

/* Per-environment state: the Watcher class, so that watch() can make instances. */
typedef struct {
  napi_ref watcher_class;
} addon_t;

/* One uv_poll handle and the JavaScript callback it calls. Freed once both the handle has
 * closed and the JavaScript wrapper has been collected, whichever comes last. */
typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  napi_async_cleanup_hook_handle cleanup;
  bool closing;
  bool handle_gone;
  bool wrapper_gone;
} watcher_t;

/* ---- arguments ---- */

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

/* Reads a non-negative int32 (a descriptor or an event mask); throws TypeError otherwise. */
static bool get_uint(napi_env env, napi_value value, const char *message, int *out) {
  napi_valuetype type;
  double number;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type != napi_number || napi_get_value_double(env, value, &number) != napi_ok ||
      number != (double)(int32_t)number || number < 0) {
    throw_type(env, message);
    return false;
  }
  *out = (int)number;
  return true;
}

/* Reads a Uint8Array (a Buffer is one); throws TypeError otherwise. */
static bool get_bytes(napi_env env, napi_value value, const char *message, uint8_t **data, size_t *length) {
  bool is_typed;
  napi_typedarray_type type;
  void *raw;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok) return false;
  if (!is_typed) {
    throw_type(env, message);
    return false;
  }
  if (napi_get_typedarray_info(env, value, &type, length, &raw, NULL, NULL) != napi_ok) return false;
  if (type != napi_uint8_array) {
    throw_type(env, message);
    return false;
  }
  *data = raw;
  return true;
}

static napi_value make_int(napi_env env, int value) {
  napi_value result;
  CHECK(napi_create_int32(env, value, &result));
  return result;
}

/* Builds the sockaddr_un for `path`; a leading '@' or NUL names an abstract socket. Returns the
 * address length, or -ENAMETOOLONG / -EINVAL. */
static int make_address(napi_env env, napi_value value, struct sockaddr_un *address, bool *threw) {
  char path[sizeof(address->sun_path) + 2];
  size_t length;
  napi_valuetype type;
  *threw = true;
  if (napi_typeof(env, value, &type) != napi_ok) return -EINVAL;
  if (type != napi_string) {
    throw_type(env, "path must be a string");
    return -EINVAL;
  }
  if (napi_get_value_string_utf8(env, value, path, sizeof(path), &length) != napi_ok) return -EINVAL;
  *threw = false;
  if (length == 0) return -EINVAL;
  bool abstract = path[0] == '@' || path[0] == '\0';
  /* A path needs room for its terminating NUL; an abstract name does not use one. */
  if (length > sizeof(address->sun_path) - (abstract ? 0 : 1)) return -ENAMETOOLONG;
  memset(address, 0, sizeof(*address));
  address->sun_family = AF_UNIX;
  memcpy(address->sun_path, path, length);
  if (abstract) {
    address->sun_path[0] = '\0';
    return (int)(offsetof(struct sockaddr_un, sun_path) + length);
  }
  if (memchr(path, '\0', length) != NULL) return -EINVAL;
  return (int)(offsetof(struct sockaddr_un, sun_path) + length + 1);
}

/* ---- sockets ---- */

static napi_value seqpacket_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int pair[2];
  napi_value result;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0)
    return make_int(env, -errno);
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_set_element(env, result, 0, make_int(env, pair[0])));
  CHECK(napi_set_element(env, result, 1, make_int(env, pair[1])));
  return result;
}

static napi_value datagram_socket(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return make_int(env, fd < 0 ? -errno : fd);
}

static napi_value bind_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un address;
  bool threw;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "bindDatagram(path) needs a path");
  int length = make_address(env, argv[0], &address, &threw);
  if (threw) return NULL;
  if (length < 0) return make_int(env, length);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_int(env, -errno);
  if (bind(fd, (struct sockaddr *)&address, (socklen_t)length) < 0) {
    int error = errno;
    close(fd);
    return make_int(env, -error);
  }
  return make_int(env, fd);
}

static napi_value send_record(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int fd;
  uint8_t *data;
  size_t length;
  uint32_t count = 0;
  int fds[MAX_FDS];
  union {
    char buffer[CONTROL_SIZE];
    struct cmsghdr align;
  } control;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "send(fd, data, fds?) needs fd and data");
  if (!get_uint(env, argv[0], "fd must be a non-negative integer", &fd)) return NULL;
  if (!get_bytes(env, argv[1], "data must be a Uint8Array", &data, &length)) return NULL;
  if (argc > 2) {
    napi_valuetype type;
    CHECK(napi_typeof(env, argv[2], &type));
    if (type != napi_undefined && type != napi_null) {
      bool is_array;
      CHECK(napi_is_array(env, argv[2], &is_array));
      if (!is_array) return throw_type(env, "fds must be an array of descriptors");
      CHECK(napi_get_array_length(env, argv[2], &count));
      if (count > MAX_FDS) return throw_type(env, "fds may hold at most MAX_FDS (253) descriptors");
      for (uint32_t i = 0; i < count; i++) {
        napi_value element;
        CHECK(napi_get_element(env, argv[2], i, &element));
        if (!get_uint(env, element, "each fd must be a non-negative integer", &fds[i])) return NULL;
      }
    }
  }
  struct iovec iov = {.iov_base = data, .iov_len = length};
  struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
  if (count > 0) {
    memset(&control, 0, sizeof(control));
    message.msg_control = control.buffer;
    message.msg_controllen = CMSG_SPACE(count * sizeof(int));
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(count * sizeof(int));
    memcpy(CMSG_DATA(header), fds, count * sizeof(int));
  }
  ssize_t sent;
  do {
    sent = sendmsg(fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  return make_int(env, sent < 0 ? -errno : (int)sent);
}

static napi_value receive_record(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd;
  uint8_t *data;
  size_t length;
  union {
    char buffer[CONTROL_SIZE];
    struct cmsghdr align;
  } control;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "receive(fd, buffer) needs fd and buffer");
  if (!get_uint(env, argv[0], "fd must be a non-negative integer", &fd)) return NULL;
  if (!get_bytes(env, argv[1], "buffer must be a Uint8Array", &data, &length)) return NULL;
  struct iovec iov = {.iov_base = data, .iov_len = length};
  struct sockaddr_un sender;
  memset(&sender, 0, sizeof(sender));
  struct msghdr message = {.msg_name = &sender,
                           .msg_namelen = sizeof(sender),
                           .msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = control.buffer,
                           .msg_controllen = sizeof(control)};
  ssize_t received;
  do {
    received = recvmsg(fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (received < 0 && errno == EINTR);
  if (received < 0) return make_int(env, -errno);

  napi_value result, fd_list;
  uint32_t count = 0;
  CHECK(napi_create_array(env, &fd_list));
  for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL;
       header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char *cursor = CMSG_DATA(header);
    for (size_t i = 0; i < n; i++) {
      int received_fd;
      memcpy(&received_fd, cursor + i * sizeof(int), sizeof(int));
      CHECK(napi_set_element(env, fd_list, count++, make_int(env, received_fd)));
    }
  }
  CHECK(napi_create_object(env, &result));
  /* For a record longer than the buffer, bytes is what was copied; the kernel drops the rest and
   * sets MSG_TRUNC. */
  CHECK(napi_set_named_property(env, result, "bytes", make_int(env, (int)received)));
  CHECK(napi_set_named_property(env, result, "fds", fd_list));
  CHECK(napi_set_named_property(env, result, "flags",
                                make_int(env, message.msg_flags & (MSG_TRUNC | MSG_CTRUNC))));
  /* The sender's address, for a datagram socket: its path, '@' and the name for an abstract one.
   * An unbound sender (and a connected stream or seqpacket peer) has none, and `from` is absent. */
  size_t offset = offsetof(struct sockaddr_un, sun_path);
  if (message.msg_namelen > offset && sender.sun_family == AF_UNIX) {
    size_t name_length = message.msg_namelen - offset;
    if (name_length > sizeof(sender.sun_path)) name_length = sizeof(sender.sun_path);
    napi_value from;
    if (sender.sun_path[0] == '\0') {
      char name[sizeof(sender.sun_path) + 1];
      name[0] = '@';
      memcpy(name + 1, sender.sun_path + 1, name_length - 1);
      CHECK(napi_create_string_utf8(env, name, name_length, &from));
      CHECK(napi_set_named_property(env, result, "from", from));
    } else {
      size_t path_length = strnlen(sender.sun_path, name_length);
      if (path_length > 0) {
        CHECK(napi_create_string_utf8(env, sender.sun_path, path_length, &from));
        CHECK(napi_set_named_property(env, result, "from", from));
      }
    }
  }
  return result;
}

static napi_value send_to(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int fd;
  uint8_t *data;
  size_t length;
  struct sockaddr_un address;
  bool threw;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "sendTo(fd, path, data) needs fd, path and data");
  if (!get_uint(env, argv[0], "fd must be a non-negative integer", &fd)) return NULL;
  int address_length = make_address(env, argv[1], &address, &threw);
  if (threw) return NULL;
  if (!get_bytes(env, argv[2], "data must be a Uint8Array", &data, &length)) return NULL;
  if (address_length < 0) return make_int(env, address_length);
  ssize_t sent;
  do {
    sent = sendto(fd, data, length, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&address,
                  (socklen_t)address_length);
  } while (sent < 0 && errno == EINTR);
  return make_int(env, sent < 0 ? -errno : (int)sent);
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "close(fd) needs fd");
  if (!get_uint(env, argv[0], "fd must be a non-negative integer", &fd)) return NULL;
  /* On Linux the descriptor is released even when close() reports EINTR: never retry. */
  if (close(fd) < 0 && errno != EINTR) return make_int(env, -errno);
  return make_int(env, 0);
}

/* ---- watchers ---- */

static void watcher_free_if_done(watcher_t *watcher) {
  if (watcher->handle_gone && watcher->wrapper_gone) free(watcher);
}

static void on_handle_closed(uv_handle_t *handle) {
  watcher_t *watcher = handle->data;
  watcher->handle_gone = true;
  if (watcher->cleanup != NULL) {
    napi_remove_async_cleanup_hook(watcher->cleanup);
    watcher->cleanup = NULL;
  }
  watcher_free_if_done(watcher);
}

/* Stops the poll handle and drops the callback; the memory goes in on_handle_closed. */
static void watcher_stop(watcher_t *watcher) {
  if (watcher->closing) return;
  watcher->closing = true;
  napi_delete_reference(watcher->env, watcher->callback);
  napi_async_destroy(watcher->env, watcher->context);
  uv_close((uv_handle_t *)&watcher->poll, on_handle_closed);
}

/* Runs when the environment is torn down (process exit, worker thread end). */
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  watcher_t *watcher = arg;
  watcher->cleanup = handle;
  if (watcher->closing) return; /* on_handle_closed is pending and removes the hook */
  watcher_stop(watcher);
}

static void on_wrapper_collected(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  watcher_t *watcher = data;
  watcher->wrapper_gone = true;
  watcher_free_if_done(watcher);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  watcher_t *watcher = handle->data;
  napi_env env = watcher->env;
  napi_handle_scope scope;
  napi_value callback, global, argument;
  if (watcher->closing) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, watcher->callback, &callback) == napi_ok && callback != NULL &&
      napi_get_global(env, &global) == napi_ok &&
      napi_create_int32(env, status < 0 ? status : events, &argument) == napi_ok) {
    napi_status result = napi_make_callback(env, watcher->context, global, callback, 1, &argument, NULL);
    if (result == napi_pending_exception) {
      /* Nothing JavaScript is below a libuv callback to catch it: report it the way Node reports
       * an exception thrown by any event callback ('uncaughtException', else exit). */
      napi_value error;
      if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

static watcher_t *this_watcher(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    throw_type(env, "not a Watcher");
    return NULL;
  }
  return data;
}

static napi_value throw_uv(napi_env env, int status) {
  napi_throw_error(env, uv_err_name(status), uv_strerror(status));
  return NULL;
}

static napi_value watcher_update(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {NULL};
  int events;
  watcher_t *watcher = this_watcher(env, info, &argc, argv);
  if (watcher == NULL) return NULL;
  if (argc < 1 || !get_uint(env, argv[0], "events must be a non-negative integer", &events)) {
    if (argc < 1) throw_type(env, "update(events) needs events");
    return NULL;
  }
  if ((events & ~WATCH_EVENTS) != 0) return throw_type(env, "events may hold READABLE, WRITABLE, DISCONNECT");
  if (watcher->closing) return NULL;
  int status = events == 0 ? uv_poll_stop(&watcher->poll) : uv_poll_start(&watcher->poll, events, on_poll);
  if (status < 0) return throw_uv(env, status);
  return NULL;
}

static napi_value watcher_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  watcher_t *watcher = this_watcher(env, info, &argc, NULL);
  if (watcher != NULL) watcher_stop(watcher);
  return NULL;
}

static napi_value watcher_ref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  watcher_t *watcher = this_watcher(env, info, &argc, NULL);
  if (watcher != NULL && !watcher->closing) uv_ref((uv_handle_t *)&watcher->poll);
  return NULL;
}

static napi_value watcher_unref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  watcher_t *watcher = this_watcher(env, info, &argc, NULL);
  if (watcher != NULL && !watcher->closing) uv_unref((uv_handle_t *)&watcher->poll);
  return NULL;
}

static napi_value watcher_construct(napi_env env, napi_callback_info info) {
  napi_value self;
  CHECK(napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  return self;
}

static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int fd, events;
  napi_valuetype type;
  addon_t *addon;
  napi_value klass, instance, name;
  uv_loop_t *loop;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&addon));
  if (argc < 3) return throw_type(env, "watch(fd, events, onReady) needs fd, events and onReady");
  if (!get_uint(env, argv[0], "fd must be a non-negative integer", &fd)) return NULL;
  if (!get_uint(env, argv[1], "events must be a non-negative integer", &events)) return NULL;
  if ((events & ~WATCH_EVENTS) != 0) return throw_type(env, "events may hold READABLE, WRITABLE, DISCONNECT");
  CHECK(napi_typeof(env, argv[2], &type));
  if (type != napi_function) return throw_type(env, "onReady must be a function");
  CHECK(napi_get_uv_event_loop(env, &loop));

  watcher_t *watcher = calloc(1, sizeof(*watcher));
  if (watcher == NULL) return throw_uv(env, UV_ENOMEM);
  int status = uv_poll_init(loop, &watcher->poll, fd);
  if (status < 0) {
    free(watcher);
    return throw_uv(env, status);
  }
  watcher->poll.data = watcher;
  watcher->env = env;
  /* From here on the handle exists and the memory goes in on_handle_closed. */
  if (napi_create_reference(env, argv[2], 1, &watcher->callback) != napi_ok ||
      napi_create_string_utf8(env, "NetplexUnixWatcher", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &watcher->context) != napi_ok) {
    watcher->wrapper_gone = true;
    watcher->closing = true;
    if (watcher->callback != NULL) napi_delete_reference(env, watcher->callback);
    uv_close((uv_handle_t *)&watcher->poll, on_handle_closed);
    return NULL;
  }
  if (napi_get_reference_value(env, addon->watcher_class, &klass) != napi_ok ||
      napi_new_instance(env, klass, 0, NULL, &instance) != napi_ok ||
      napi_wrap(env, instance, watcher, on_wrapper_collected, NULL, NULL) != napi_ok) {
    watcher->wrapper_gone = true;
    watcher_stop(watcher);
    return NULL;
  }
  napi_add_async_cleanup_hook(env, on_env_cleanup, watcher, &watcher->cleanup);
  if (events != 0) {
    status = uv_poll_start(&watcher->poll, events, on_poll);
    if (status < 0) {
      watcher_stop(watcher);
      return throw_uv(env, status);
    }
  }
  return instance;
}

/* ---- module ---- */

static void addon_free(napi_env env, void *data, void *hint) {
  (void)hint;
  addon_t *addon = data;
  napi_delete_reference(env, addon->watcher_class);
  free(addon);
}

static bool set_int(napi_env env, napi_value object, const char *name, int value) {
  return napi_set_named_property(env, object, name, make_int(env, value)) == napi_ok;
}

NAPI_MODULE_INIT() {
  addon_t *addon = calloc(1, sizeof(*addon));
  napi_value klass, constants;
  if (addon == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (napi_set_instance_data(env, addon, addon_free, NULL) != napi_ok) {
    free(addon);
    return NULL;
  }
  napi_property_descriptor methods[] = {
      {"update", NULL, watcher_update, NULL, NULL, NULL, napi_default_method, NULL},
      {"close", NULL, watcher_close, NULL, NULL, NULL, napi_default_method, NULL},
      {"ref", NULL, watcher_ref, NULL, NULL, NULL, napi_default_method, NULL},
      {"unref", NULL, watcher_unref, NULL, NULL, NULL, napi_default_method, NULL},
  };
  CHECK(napi_define_class(env, "Watcher", NAPI_AUTO_LENGTH, watcher_construct, NULL,
                          sizeof(methods) / sizeof(methods[0]), methods, &klass));
  CHECK(napi_create_reference(env, klass, 1, &addon->watcher_class));

  CHECK(napi_create_object(env, &constants));
  if (!set_int(env, constants, "MAX_FDS", MAX_FDS) || !set_int(env, constants, "EAGAIN", EAGAIN) ||
      !set_int(env, constants, "EPIPE", EPIPE) || !set_int(env, constants, "ECONNRESET", ECONNRESET) ||
      !set_int(env, constants, "EMFILE", EMFILE) || !set_int(env, constants, "MSG_TRUNC", MSG_TRUNC) ||
      !set_int(env, constants, "MSG_CTRUNC", MSG_CTRUNC) || !set_int(env, constants, "READABLE", UV_READABLE) ||
      !set_int(env, constants, "WRITABLE", UV_WRITABLE) || !set_int(env, constants, "DISCONNECT", UV_DISCONNECT))
    return NULL;
  CHECK(napi_object_freeze(env, constants));

  napi_property_descriptor exported[] = {
      {"seqpacketPair", NULL, seqpacket_pair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"datagramSocket", NULL, datagram_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindDatagram", NULL, bind_datagram, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, send_record, NULL, NULL, NULL, napi_enumerable, NULL},
      {"receive", NULL, receive_record, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendTo", NULL, send_to, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, watch, NULL, NULL, NULL, napi_enumerable, addon},
      {"constants", NULL, NULL, NULL, NULL, constants, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof(exported) / sizeof(exported[0]), exported));
  return exports;
}

#endif
