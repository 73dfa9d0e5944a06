/*
 * pty_reader: reads PTY masters on a thread of its own and hands the bytes to the event loop
 * in batches.
 *
 * Why: a PTY's kernel buffer holds ~4 KiB (the n_tty buffer) — well under a millisecond of a
 * flood. Read on the event loop, every moment the loop spends on the previous output (the
 * log, frames, sockets) is a moment the producer is blocked on a full terminal, so the
 * gateway's work per byte is added to the producer's time instead of overlapping it
 * (docs/benchmarks.md, "PTY read throughput"). Here one thread waits on all masters with
 * epoll and reads each into its own queue of 64 KiB blocks (up to a limit per master); the
 * event loop is woken through a thread-safe function and copies the bytes out with take().
 *
 * Wake-ups: batched (see WAKE_BYTES), and at most one call is queued at a time: the next is
 * allowed only once JS has called rearm() from a later phase of the event loop (setImmediate),
 * which asks again at once only for what is urgent or overdue. Node runs queued calls
 * of a thread-safe function back to back (up to 1000) before it polls again, so a thread that
 * re-armed itself would let one flood hold the event loop for tens of milliseconds, with other
 * sessions' input and output waiting behind it (measured: echo p99 under a flood 15 → 60 ms).
 *
 * Locking: one mutex guards the entries and queues, never held across a syscall the thread
 * may block or be preempted in for long: read() runs unlocked, with the entry marked
 * `reading`, so take() on the event loop only ever waits for a few pointer updates or a
 * memcpy. stop()/release() wait for an ongoing read to finish before they return.
 *
 * Flow control: a master whose queue is full, or that JS paused, is taken out of epoll, so
 * the kernel's buffer fills and the producer blocks, as it would with a slow reader. It goes
 * back in when take() has made room or resume() is called.
 *
 * Ownership of the fd stays with JS: this module never closes it. Once stop() or release()
 * has returned the thread will not touch that fd again, and JS may close it.
 *
 * The end: read() returning 0 or failing with anything but EAGAIN/EINTR (EIO once no slave
 * is left: Linux returns everything buffered before that) ends the master's output; take()
 * returns -1 once the queue is empty.
 *
 * One reader (thread, epoll instance, JS callback) per Node environment, so worker threads
 * each get their own; it stops with the environment.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define BLOCK_BYTES (64 * 1024)
/* Reads of one master per epoll wake-up before the thread looks at the others. */
#define READS_PER_WAKE 16
#define EVENTS_PER_WAIT 64
/*
 * When the event loop is woken: at once when a master has WAKE_BYTES queued (a full piece of
 * output, see OUTPUT_COALESCE_MAX_BYTES), has ended or is full; otherwise WAKE_DELAY_MS after
 * the first bytes it has not been told of. A flood arrives ~4 KiB per read, and waking the loop
 * at the first bytes woke it about once per read only to add them to the coalescer, which
 * holds output until it has 64 KiB or for OUTPUT_COALESCE_MS (4 ms) anyway: measured on 50 MiB
 * to one viewer, the event loop's thread slept and woke 4,100-4,600 times per run before and
 * 650-740 times with this (voluntary context switches, /proc/self/task/TID/status).
 */
#define WAKE_BYTES (64 * 1024)
#define WAKE_DELAY_MS 1

typedef struct block {
  struct block *next;
  size_t start; /* first byte not yet taken */
  size_t end;   /* first byte not yet written */
  char data[BLOCK_BYTES];
} block;

typedef struct entry {
  int fd;
  uint32_t id;
  block *head, *tail;
  size_t bytes;    /* queued, not yet taken */
  size_t limit;    /* most bytes queued before the master is taken out of epoll */
  bool in_epoll;   /* the thread may read it */
  bool paused;     /* JS asked not to read */
  bool stopped;    /* never read again (stop/release) */
  bool ended;      /* read() reported the end */
  bool ready;      /* on the ready list */
  bool reading;    /* the thread is in read() on it, without the lock */
  struct entry *next_ready;
} entry;

typedef struct reader {
  int epfd;
  int wakefd; /* eventfd: tells the thread to exit */
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu; /* guards everything below and every entry */
  pthread_cond_t read_done; /* an entry's `reading` went false */
  entry **table;      /* id - 1 → entry (NULL when free) */
  uint32_t capacity;
  uint32_t open;      /* entries not yet released: the TSFN is referenced while > 0 */
  entry *ready_head, *ready_tail;
  /* A wake-up of the event loop is due at `due` (CLOCK_MONOTONIC) for bytes it was not told of. */
  bool due_set;
  struct timespec due;
  atomic_bool notify_pending;
  napi_threadsafe_function tsfn;
} reader;

/* ---- queue (caller holds mu) ---- */

static void mark_ready(reader *r, entry *e) {
  if (e->ready) return;
  e->ready = true;
  e->next_ready = NULL;
  if (r->ready_tail) r->ready_tail->next_ready = e;
  else r->ready_head = e;
  r->ready_tail = e;
}

static void epoll_out(reader *r, entry *e) {
  if (!e->in_epoll) return;
  epoll_ctl(r->epfd, EPOLL_CTL_DEL, e->fd, NULL);
  e->in_epoll = false;
}

/* Puts the master (back) into epoll if it may be read. Returns false if epoll refused it. */
static bool epoll_in(reader *r, entry *e) {
  if (e->in_epoll || e->paused || e->stopped || e->ended || e->bytes >= e->limit) return true;
  struct epoll_event ev = {.events = EPOLLIN, .data = {.u64 = e->id}};
  if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, e->fd, &ev) != 0) return false;
  e->in_epoll = true;
  return true;
}

/* Must the event loop hear of `e` now, rather than at the due time? (mu held) */
static bool urgent(const entry *e) {
  return e->ended || e->stopped || e->bytes >= WAKE_BYTES || e->bytes >= e->limit;
}

static struct timespec monotonic_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

/* Milliseconds from now until `t`, rounded up; 0 if it has passed. */
static int ms_until(struct timespec t) {
  struct timespec now = monotonic_now();
  long long ns = (long long)(t.tv_sec - now.tv_sec) * 1000000000LL + (t.tv_nsec - now.tv_nsec);
  return ns <= 0 ? 0 : (int)((ns + 999999) / 1000000);
}

/* Sets the due time for bytes the event loop was not told of, unless one is set (mu held). */
static void set_due(reader *r) {
  if (r->due_set) return;
  struct timespec t = monotonic_now();
  t.tv_nsec += WAKE_DELAY_MS * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec += 1;
    t.tv_nsec -= 1000000000L;
  }
  r->due = t;
  r->due_set = true;
}

static void free_blocks(entry *e) {
  block *b = e->head;
  while (b) {
    block *next = b->next;
    free(b);
    b = next;
  }
  e->head = e->tail = NULL;
  e->bytes = 0;
}

/*
 * One read into the tail block. Called and returns with mu held, but drops it for the read.
 * Returns 1 (read bytes), 0 (nothing now, or no longer to be read), -1 (the end).
 */
static int read_once(reader *r, entry *e) {
  block *b = e->tail;
  if (b == NULL || b->end == BLOCK_BYTES) {
    block *fresh = malloc(sizeof(block));
    if (fresh == NULL) return 0; /* try again on the next wake-up */
    fresh->next = NULL;
    fresh->start = fresh->end = 0;
    if (b) b->next = fresh;
    else e->head = fresh;
    e->tail = b = fresh;
  }
  /* take() never frees the tail block while `reading`, and only the thread appends blocks. */
  char *at = b->data + b->end;
  size_t room = BLOCK_BYTES - b->end;
  e->reading = true;
  pthread_mutex_unlock(&r->mu);
  ssize_t n;
  do n = read(e->fd, at, room);
  while (n < 0 && errno == EINTR);
  int code = errno;
  pthread_mutex_lock(&r->mu);
  e->reading = false;
  pthread_cond_broadcast(&r->read_done);
  if (n > 0) {
    /* Read before a stop(): still output, and abandon() takes it. */
    b->end += (size_t)n;
    e->bytes += (size_t)n;
    mark_ready(r, e);
    return 1;
  }
  if (n < 0 && (code == EAGAIN || code == EWOULDBLOCK)) return 0;
  if (e->stopped) return 0;
  e->ended = true;
  epoll_out(r, e);
  mark_ready(r, e);
  return -1;
}

/* Waits until the thread is not in read() on `e` (mu held). */
static void wait_read_done(reader *r, entry *e) {
  while (e->reading) pthread_cond_wait(&r->read_done, &r->mu);
}

/* ---- the thread ---- */

/* Wakes the event loop unless a wake-up is already on its way (or JS has not re-armed yet). */
static void notify(reader *r) {
  if (!atomic_exchange(&r->notify_pending, true)) {
    napi_call_threadsafe_function(r->tsfn, NULL, napi_tsfn_nonblocking);
  }
}

static void *run(void *arg) {
  reader *r = arg;
  struct epoll_event events[EVENTS_PER_WAIT];
  for (;;) {
    pthread_mutex_lock(&r->mu);
    int timeout = r->due_set ? ms_until(r->due) : -1;
    pthread_mutex_unlock(&r->mu);
    int n = timeout == 0 ? 0 : epoll_wait(r->epfd, events, EVENTS_PER_WAIT, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    bool wake = false;
    for (int i = 0; i < n; i++) {
      uint32_t id = (uint32_t)events[i].data.u64;
      if (id == 0) return NULL; /* the wake fd: the environment is going away */
      for (int reads = 0; reads < READS_PER_WAKE; reads++) {
        pthread_mutex_lock(&r->mu);
        entry *e = id <= r->capacity ? r->table[id - 1] : NULL;
        int result = 0;
        bool full = false;
        if (e != NULL && e->in_epoll) {
          result = read_once(r, e);
          full = result > 0 && e->bytes >= e->limit;
          if (full) epoll_out(r, e);
          if (result != 0 && urgent(e)) wake = true;
          else if (result > 0) set_due(r);
        }
        pthread_mutex_unlock(&r->mu);
        if (result <= 0 || full) break;
      }
    }
    pthread_mutex_lock(&r->mu);
    if (r->due_set && ms_until(r->due) == 0) wake = true;
    /* Whatever is ready goes with this wake-up, so nothing stays due. */
    if (wake) r->due_set = false;
    pthread_mutex_unlock(&r->mu);
    if (wake) notify(r);
  }
}

/* ---- calls into JS ---- */

/*
 * On the event loop: hands JS the ids of masters with news. Always calls JS, with an empty
 * list if need be, because JS answers every call with rearm().
 */
static void call_js(napi_env env, napi_value callback, void *context, void *data) {
  (void)data;
  reader *r = context;
  if (env == NULL) return;
  pthread_mutex_lock(&r->mu);
  uint32_t count = 0;
  for (entry *e = r->ready_head; e; e = e->next_ready) count++;
  /* Without memory for the list the masters stay ready, and rearm() wakes JS again. */
  uint32_t *ids = count ? malloc(count * sizeof(uint32_t)) : NULL;
  if (ids == NULL) count = 0;
  for (uint32_t i = 0; i < count; i++) {
    entry *e = r->ready_head;
    r->ready_head = e->next_ready;
    e->ready = false;
    ids[i] = e->id;
  }
  if (r->ready_head == NULL) r->ready_tail = NULL;
  pthread_mutex_unlock(&r->mu);
  napi_value array, undefined;
  napi_create_array_with_length(env, count, &array);
  for (uint32_t k = 0; k < count; k++) {
    napi_value v;
    napi_create_uint32(env, ids[k], &v);
    napi_set_element(env, array, k, v);
  }
  free(ids);
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, callback, 1, &array, NULL);
}

static void cleanup(void *arg) {
  reader *r = arg;
  if (r->thread_started) {
    uint64_t one = 1;
    ssize_t ignored = write(r->wakefd, &one, sizeof one);
    (void)ignored;
    pthread_join(r->thread, NULL);
  }
  if (r->tsfn) napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
  for (uint32_t i = 0; i < r->capacity; i++) {
    if (r->table[i]) {
      free_blocks(r->table[i]);
      free(r->table[i]);
    }
  }
  free(r->table);
  close(r->epfd);
  close(r->wakefd);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->read_done);
  free(r);
}

/* ---- JS API ---- */

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) return throw_last(env);                                                 \
  } while (0)

static napi_value throw_last(napi_env env) {
  const napi_extended_error_info *info;
  napi_get_last_error_info(env, &info);
  bool pending;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "pty_reader: N-API call failed");
  return NULL;
}

static napi_value throw_errno(napi_env env, const char *what, int code) {
  char message[160];
  snprintf(message, sizeof message, "pty_reader: %s: %s", what, strerror(code));
  napi_throw_error(env, NULL, message);
  return NULL;
}

static reader *get_reader(napi_env env) {
  reader *r = NULL;
  napi_get_instance_data(env, (void **)&r);
  return r;
}

/* init(callback): the function called on the event loop with the ids of masters that have news. */
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (get_reader(env) != NULL) {
    napi_throw_error(env, NULL, "pty_reader: already initialized");
    return NULL;
  }
  reader *r = calloc(1, sizeof(reader));
  if (r == NULL) return throw_errno(env, "calloc", ENOMEM);
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  r->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (r->epfd < 0 || r->wakefd < 0) {
    int code = errno;
    if (r->epfd >= 0) close(r->epfd);
    if (r->wakefd >= 0) close(r->wakefd);
    free(r);
    return throw_errno(env, "epoll/eventfd", code);
  }
  struct epoll_event ev = {.events = EPOLLIN, .data = {.u64 = 0}};
  epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &ev);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->read_done, NULL);
  atomic_init(&r->notify_pending, false);
  napi_value name;
  CHECK(napi_create_string_utf8(env, "pty_reader", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, r, call_js, &r->tsfn));
  /* Nothing to read yet: do not keep the process alive. */
  napi_unref_threadsafe_function(env, r->tsfn);
  if (pthread_create(&r->thread, NULL, run, r) != 0) {
    int code = errno;
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
    close(r->epfd);
    close(r->wakefd);
    free(r);
    return throw_errno(env, "pthread_create", code);
  }
  r->thread_started = true;
  napi_set_instance_data(env, r, NULL, NULL);
  napi_add_env_cleanup_hook(env, cleanup, r);
  return NULL;
}

static bool arg_uint32(napi_env env, napi_callback_info info, size_t want, napi_value *argv, uint32_t *out) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "pty_reader: missing argument");
    return false;
  }
  if (napi_get_value_uint32(env, argv[0], out) != napi_ok) {
    napi_throw_type_error(env, NULL, "pty_reader: expected a number");
    return false;
  }
  return true;
}

/* The reader of this environment, or NULL with an exception pending. */
static reader *require_reader(napi_env env) {
  reader *r = get_reader(env);
  if (r == NULL) napi_throw_error(env, NULL, "pty_reader: init() first");
  return r;
}

static entry *lookup(reader *r, uint32_t id) {
  return id >= 1 && id <= r->capacity ? r->table[id - 1] : NULL;
}

/*
 * The preamble of the calls on one master: its id (the first of `argc` arguments), the
 * reader, the lock taken and the entry (NULL once released). False with an exception pending
 * and the lock not taken. The caller unlocks.
 */
static bool lock_entry(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, reader **r, entry **e) {
  uint32_t id;
  if (!arg_uint32(env, info, argc, argv, &id)) return false;
  *r = require_reader(env);
  if (*r == NULL) return false;
  pthread_mutex_lock(&(*r)->mu);
  *e = lookup(*r, id);
  return true;
}

/* After this the thread does not read the master again (mu held). */
static void stop_reading(reader *r, entry *e) {
  e->stopped = true;
  epoll_out(r, e);
  wait_read_done(r, e);
}

/* open(fd, limit) → id: starts reading a (non-blocking) master, queueing at most about `limit` bytes. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t fd, limit;
  if (!arg_uint32(env, info, 2, argv, &fd)) return NULL;
  if (napi_get_value_uint32(env, argv[1], &limit) != napi_ok || limit == 0) {
    napi_throw_type_error(env, NULL, "pty_reader: expected a queue limit > 0");
    return NULL;
  }
  reader *r = require_reader(env);
  if (r == NULL) return NULL;
  entry *e = calloc(1, sizeof(entry));
  if (e == NULL) return throw_errno(env, "calloc", ENOMEM);
  e->fd = (int)fd;
  e->limit = limit;
  pthread_mutex_lock(&r->mu);
  uint32_t slot = 0;
  while (slot < r->capacity && r->table[slot] != NULL) slot++;
  if (slot == r->capacity) {
    uint32_t grown = r->capacity ? r->capacity * 2 : 16;
    entry **table = realloc(r->table, grown * sizeof(entry *));
    if (table == NULL) {
      pthread_mutex_unlock(&r->mu);
      free(e);
      return throw_errno(env, "realloc", ENOMEM);
    }
    memset(table + r->capacity, 0, (grown - r->capacity) * sizeof(entry *));
    r->table = table;
    r->capacity = grown;
  }
  e->id = slot + 1;
  r->table[slot] = e;
  bool ok = epoll_in(r, e);
  int code = errno;
  if (!ok) r->table[slot] = NULL;
  pthread_mutex_unlock(&r->mu);
  if (!ok) {
    free(e);
    return throw_errno(env, "epoll_ctl", code);
  }
  if (r->open++ == 0) napi_ref_threadsafe_function(env, r->tsfn);
  napi_value id;
  CHECK(napi_create_uint32(env, e->id, &id));
  return id;
}

/* take(id, buffer) → bytes copied into buffer (> 0), 0 if none are queued now, -1 at the end. */
static napi_value js_take(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  reader *r;
  entry *e;
  if (!lock_entry(env, info, 2, argv, &r, &e)) return NULL;
  void *target;
  size_t capacity;
  if (napi_get_buffer_info(env, argv[1], &target, &capacity) != napi_ok) {
    pthread_mutex_unlock(&r->mu);
    return throw_last(env);
  }
  int32_t result = 0;
  if (e == NULL) result = -1;
  else {
    size_t copied = 0;
    while (copied < capacity && e->head != NULL) {
      block *b = e->head;
      size_t n = b->end - b->start;
      if (n > capacity - copied) n = capacity - copied;
      memcpy((char *)target + copied, b->data + b->start, n);
      b->start += n;
      copied += n;
      e->bytes -= n;
      if (b->start < b->end) break;
      /* A drained block is freed, but not the one the thread is reading into right now. */
      if (b == e->tail && e->reading) break;
      e->head = b->next;
      if (e->head == NULL) e->tail = NULL;
      free(b);
    }
    if (copied > 0) result = (int32_t)copied;
    else if (e->ended || e->stopped) result = -1;
    epoll_in(r, e);
  }
  pthread_mutex_unlock(&r->mu);
  napi_value out;
  CHECK(napi_create_int32(env, result, &out));
  return out;
}

static napi_value set_paused(napi_env env, napi_callback_info info, bool paused) {
  napi_value argv[1];
  reader *r;
  entry *e;
  if (!lock_entry(env, info, 1, argv, &r, &e)) return NULL;
  if (e != NULL) {
    e->paused = paused;
    if (paused) epoll_out(r, e);
    else epoll_in(r, e);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static napi_value js_pause(napi_env env, napi_callback_info info) { return set_paused(env, info, true); }
static napi_value js_resume(napi_env env, napi_callback_info info) { return set_paused(env, info, false); }

/* stop(id): never read this master again; what is queued can still be taken. */
static napi_value js_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  reader *r;
  entry *e;
  if (!lock_entry(env, info, 1, argv, &r, &e)) return NULL;
  if (e != NULL) stop_reading(r, e);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* release(id): stop and drop what is queued; the id is free for reuse. */
static napi_value js_release(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  reader *r;
  entry *e;
  if (!lock_entry(env, info, 1, argv, &r, &e)) return NULL;
  if (e != NULL) {
    stop_reading(r, e);
    r->table[e->id - 1] = NULL;
    /* Off the ready list, so the next call does not report a released (or reused) id. */
    entry **link = &r->ready_head;
    entry *previous = NULL;
    while (*link != NULL && *link != e) {
      previous = *link;
      link = &(*link)->next_ready;
    }
    if (*link == e) {
      *link = e->next_ready;
      if (r->ready_tail == e) r->ready_tail = previous;
    }
    free_blocks(e);
    free(e);
  }
  pthread_mutex_unlock(&r->mu);
  if (e != NULL && --r->open == 0) napi_unref_threadsafe_function(env, r->tsfn);
  return NULL;
}

/*
 * rearm(): JS has handled the last wake-up (called from setImmediate, i.e. after Node's loop
 * over queued calls): wake it again if masters became ready meanwhile, else let the thread do.
 */
static napi_value js_rearm(napi_env env, napi_callback_info info) {
  (void)info;
  reader *r = get_reader(env);
  if (r == NULL) return NULL;
  pthread_mutex_lock(&r->mu);
  /*
   * Masters that became ready meanwhile: JS hears of them now if one is urgent or their due
   * time has passed (or a wake-up the thread sent while this one was pending was dropped, which
   * cleared the due time); otherwise the thread wakes JS at the due time.
   */
  bool waiting = false;
  if (r->ready_head != NULL) {
    waiting = !r->due_set || ms_until(r->due) == 0;
    for (entry *e = r->ready_head; e && !waiting; e = e->next_ready) waiting = urgent(e);
    if (waiting) r->due_set = false;
  }
  /* Cleared under the lock: a master made ready after this sees it cleared and notifies. */
  if (!waiting) atomic_store(&r->notify_pending, false);
  pthread_mutex_unlock(&r->mu);
  if (waiting) napi_call_threadsafe_function(r->tsfn, NULL, napi_tsfn_nonblocking);
  return NULL;
}

static napi_value init_module(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"take", NULL, js_take, NULL, NULL, NULL, napi_default, NULL},
      {"pause", NULL, js_pause, NULL, NULL, NULL, napi_default, NULL},
      {"resume", NULL, js_resume, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, js_stop, NULL, NULL, NULL, napi_default, NULL},
      {"release", NULL, js_release, NULL, NULL, NULL, napi_default, NULL},
      {"rearm", NULL, js_rearm, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)
