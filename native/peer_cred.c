/*
 * peer_cred: who is at the other end of a connected Unix socket, as the kernel saw it connect.
 *
 * peer(fd) returns {pid, uid, gid} from getsockopt(SO_PEERCRED) on `fd` (Node has no API for
 * it). The gateway checks with it that the process answering on a session holder's socket is
 * the holder it started (pid and start time on record), before it logs a byte of its output
 * or gives it input: src/sessions/holder-peer.ts, docs/architecture.md "Session holders".
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <string.h>
#include <sys/socket.h>

static int set_number(napi_env env, napi_value object, const char *name, double value) {
  napi_value v;
  return napi_create_double(env, value, &v) == napi_ok && napi_set_named_property(env, object, name, v) == napi_ok;
}

static napi_value js_peer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "peer_cred: peer(fd) takes a file descriptor");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    napi_get_null(env, &result); /* not a connected Unix socket: the caller says what it could not check */
    return result;
  }
  if (napi_create_object(env, &result) != napi_ok) return NULL;
  if (!set_number(env, result, "pid", cred.pid) || !set_number(env, result, "uid", cred.uid) ||
      !set_number(env, result, "gid", cred.gid))
    return NULL;
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
      {"peer", NULL, js_peer, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) return NULL;
  return exports;
}
