/*
 * json_text: the JSON string literal of UTF-8 text, written from its bytes into a buffer.
 *
 * escape(text, out, at) writes exactly the UTF-8 of JSON.stringify(decoded text), less its
 * quotes, when `text` is valid UTF-8 (the caller's promise: output the log has checked).
 * JSON.stringify escapes only the quote, the backslash and control characters below U+0020 (all
 * ASCII, so never part of a multi-byte character); valid UTF-8 has no lone surrogates, the one
 * other thing it escapes.
 * So the bytes are copied as they are, with those escaped the way V8 writes them (\b \t \n
 * \f \r \" \\ and \u00XX in lower-case hex). growth(text) says how many bytes the escapes add,
 * so that JS can allocate the frame at its size (src/log/json-text.ts).
 *
 * Why: every JSON viewer of a terminal gets its output this way, and on Node 20 the fastest
 * route in JS (read the bytes as latin1, JSON.stringify, write back as latin1) takes 2–4
 * times as long per 64 KiB of terminal output on the event loop, and makes strings
 * (docs/benchmarks.md, "Real-time delivery").
 *
 * The copy goes eight bytes at a time while none of them needs an escape.
 */
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* How a control character is written (as V8's JSON.stringify writes it), padded to 8 bytes. */
static const char CONTROL[0x20][8] = {
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
    "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
    "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
    "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
};

/* The controls with a two-byte escape: \b \t \n \f \r (bits 8, 9, 10, 12, 13). */
#define SHORT_CONTROLS 0x3700u

static inline unsigned is_short_control(uint8_t c) {
  return c < 0x20 ? (SHORT_CONTROLS >> c) & 1 : 0;
}

/* True if any of the eight bytes in `x` needs an escape: below 0x20, a quote or a backslash. */
static inline bool any_escaped(uint64_t x) {
  uint64_t below = (x - ONES * 0x20) & ~x;
  uint64_t quote = x ^ (ONES * '"');
  uint64_t backslash = x ^ (ONES * '\\');
  quote = (quote - ONES) & ~quote;
  backslash = (backslash - ONES) & ~backslash;
  return ((below | quote | backslash) & HIGHS) != 0;
}

/*
 * Bytes the escapes add to `n` bytes of text. Counted in blocks of 255 bytes into byte-wide
 * counters (they cannot overflow there), which the compiler turns into vector code.
 */
static size_t escape_growth(const uint8_t *text, size_t n) {
  size_t growth = 0;
  for (size_t at = 0; at < n; at += 255) {
    size_t block = n - at < 255 ? n - at : 255;
    uint8_t controls = 0, shorts = 0, others = 0;
    for (size_t i = 0; i < block; i++) {
      uint8_t c = text[at + i];
      controls += c < 0x20;
      shorts += (c == '\b') | (c == '\t') | (c == '\n') | (c == '\f') | (c == '\r');
      others += (c == '"') | (c == '\\');
    }
    growth += (size_t)controls * 5 - (size_t)shorts * 4 + others;
  }
  return growth;
}

/* Bytes `c` takes in a JSON string. */
static inline size_t escaped_length(uint8_t c) {
  if (c >= 0x20) return c == '"' || c == '\\' ? 2 : 1;
  return is_short_control(c) ? 2 : 6;
}

/* Writes `c` as it appears in a JSON string at `o`, which has room for 8 more bytes than it takes. */
static inline uint8_t *put_fast(uint8_t *o, uint8_t c) {
  if (c >= 0x20) {
    if (c == '"' || c == '\\') *o++ = '\\';
    *o = c;
    return o + 1;
  }
  memcpy(o, CONTROL[c], 8); /* one store; the bytes past the escape are overwritten next */
  return o + escaped_length(c);
}

/*
 * Writes the escaped `text` from `o`, never past `end`; returns the end of what it wrote, or NULL
 * if it did not fit (what it wrote up to then is left there). Bytes past the returned end, up to
 * `end`, may have been written too: JS writes what follows over them.
 */
static uint8_t *escape_into(uint8_t *o, const uint8_t *text, size_t n, const uint8_t *end) {
  size_t i = 0;
  /* Eight bytes at a time while the worst case (8 escapes of 6 bytes, and the 8-byte store) fits. */
  for (; n - i >= 8 && end - o >= 56; i += 8) {
    uint64_t x;
    memcpy(&x, text + i, 8);
    if (!any_escaped(x)) {
      memcpy(o, &x, 8);
      o += 8;
    } else {
      for (size_t k = 0; k < 8; k++) o = put_fast(o, text[i + k]);
    }
  }
  for (; i < n; i++) {
    uint8_t c = text[i];
    size_t length = escaped_length(c);
    if ((size_t)(end - o) < length) return NULL;
    if (length == 1) {
      *o = c;
    } else if (c >= 0x20) {
      o[0] = '\\';
      o[1] = c;
    } else {
      memcpy(o, CONTROL[c], length);
    }
    o += length;
  }
  return o;
}

static bool arg_bytes(napi_env env, napi_value value, const uint8_t **data, size_t *length) {
  bool is_typedarray = false;
  napi_typedarray_type type;
  void *at;
  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray ||
      napi_get_typedarray_info(env, value, &type, length, &at, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "json_text: expected a Uint8Array");
    return false;
  }
  *data = at;
  return true;
}

static bool arg_count(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "json_text: missing argument");
    return false;
  }
  return true;
}

/* growth(text: Uint8Array): number — bytes the escapes add to `text` in a JSON string. */
static napi_value js_growth(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  const uint8_t *text;
  size_t text_n;
  if (!arg_count(env, info, 1, argv) || !arg_bytes(env, argv[0], &text, &text_n)) return NULL;
  if (napi_create_double(env, (double)escape_growth(text, text_n), &result) != napi_ok) return NULL;
  return result;
}

/*
 * escape(text: Uint8Array, out: Uint8Array, at: number): number — writes `text` as it appears
 * inside a JSON string (escaped, without the quotes: a literal may be written in pieces) into
 * `out` from `at`; returns the offset after it. Throws a RangeError if it does not fit.
 */
static napi_value js_escape(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  const uint8_t *text, *out_c;
  size_t text_n, out_n;
  uint32_t at;
  if (!arg_count(env, info, 3, argv) || !arg_bytes(env, argv[0], &text, &text_n) ||
      !arg_bytes(env, argv[1], &out_c, &out_n))
    return NULL;
  if (napi_get_value_uint32(env, argv[2], &at) != napi_ok) {
    napi_throw_type_error(env, NULL, "json_text: expected an offset");
    return NULL;
  }
  /* Not counted again here: escape_into checks its room as it writes. */
  uint8_t *o = at > out_n ? NULL : escape_into((uint8_t *)out_c + at, text, text_n, out_c + out_n);
  if (o == NULL) {
    napi_throw_range_error(env, NULL, "json_text: the output buffer is too small");
    return NULL;
  }
  if (napi_create_uint32(env, (uint32_t)(o - (uint8_t *)out_c), &result) != napi_ok) return NULL;
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
      {"growth", NULL, js_growth, NULL, NULL, NULL, napi_default, NULL},
      {"escape", NULL, js_escape, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) return NULL;
  return exports;
}
