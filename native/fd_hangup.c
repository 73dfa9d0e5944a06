/*
 * fd_hangup: whether the other end of a pipe or socket is gone, without writing to it.
 *
 * hangup(fd) polls `fd` for nothing but the conditions poll(2) always reports: POLLERR (the
 * write end of a pipe whose readers all closed it) and POLLHUP (a socket or terminal whose
 * peer hung up). It does not block.
 *
 * Why: a process learns that its stdout's reader went away only when it next writes (EPIPE).
 * `switchboard logs -f ID | grep -m1 ready` on a session that then goes quiet would wait for
 * the session's next output after grep had its line and exited; the CLI asks this once a
 * second while it follows (src/cli/reader-gone.ts), as `tail -f` does.
 */
#include <node_api.h>
#include <poll.h>

static napi_value js_hangup(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "fd_hangup: hangup(fd) takes a file descriptor");
    return NULL;
  }
  struct pollfd pfd = {.fd = fd, .events = 0, .revents = 0};
  int ready = poll(&pfd, 1, 0);
  int gone = ready > 0 && (pfd.revents & (POLLERR | POLLHUP)) != 0;
  if (napi_get_boolean(env, gone, &result) != napi_ok) return NULL;
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
      {"hangup", NULL, js_hangup, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) return NULL;
  return exports;
}
