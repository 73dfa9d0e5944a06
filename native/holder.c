/*
 * holder: keeps one terminal session's process (in a PTY or pipes) running while gateways come
 * and go (docs/architecture.md, "Session holders"; the protocol: src/sessions/holder-protocol.ts).
 *
 * Start: `holder NAME` in the holders directory, the spec on stdin (NUL-separated, below). It
 * binds NAME (a Unix socket, 0600), forks a daemon in a session of its own (setsid: a signal to
 * the gateway's process group does not reach it), which listens again (so that SO_PEERCRED names
 * it to the gateways that connect) and starts the program, and prints
 * "ok HOLDER_PID CHILD_PID" (or "err ERRNO STEP") once the program runs, then exits: the gateway
 * waits for that line, and the daemon is nobody's child but init's (no zombie in the gateway).
 *
 * The daemon is the only reader of the program's output. Output is kept until a gateway
 * acknowledges it as committed (ACK, by byte offset) and resent from the offset a new gateway
 * names (HELLO); past HOLD_MAX_BYTES unacknowledged it stops reading, so the program blocks
 * (flow control, never a drop). One gateway at a time, of this uid only (SO_PEERCRED); a newer
 * connection replaces an older one. It exits once a gateway has recorded the exit (DONE).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef PROTO_MAJOR
#define PROTO_MAJOR 1
#endif
#ifndef PROTO_MINOR
#define PROTO_MINOR 2
#endif
/* Unacknowledged output kept; past it the program's output is not read until a gateway acks. */
#define HOLD_MAX_BYTES (8 * 1024 * 1024)
/* After the child's exit, output is read past HOLD_MAX_BYTES by at most this much (the kernel's buffers). */
#define HOLD_TAIL_BYTES (1024 * 1024)
#define READ_BYTES (64 * 1024)
/* Output bytes in one OUTPUT frame. */
#define FRAME_DATA_MAX (256 * 1024)
/* Largest frame a gateway may send (INPUT: the gateway's MAX_PENDING_INPUT_BYTES). */
#define IN_FRAME_MAX (1024 * 1024 + 16)
/* Input taken from the gateway but not yet by the program; more is a protocol violation. */
#define INPUT_QUEUE_MAX (2 * 1024 * 1024)
/* Held input chunks told apart (a gateway's marks); past it, a new chunk joins the newest. */
#define HELD_INPUT_MAX 1024
/* 1.2: input written at once whose record the holder keeps until the gateway's log has it (INPUT_NOW). */
#define RECORDS_MAX 64
#define RECORD_ACTOR_MAX 256
/* A record's mark before a gateway placed it in its log's seqs (REMARK): never taken as recorded. */
#define UNPLACED UINT64_MAX
/* Changes of stream (stdout/stderr) held at once; past it, reading waits as for a full hold. */
#define SEGMENTS_MAX 4096
#define SPEC_MAX_BYTES (4 * 1024 * 1024)
/* Without a gateway: how often the holder checks that its socket is still there. */
#define ORPHAN_CHECK_MS 2000
/* An orphan's program gets TERM and HUP, then KILL after this grace. */
#define ORPHAN_GRACE_MS 3000

enum {
  H_HELLO = 1, H_OUTPUT = 2, H_CHILD_EXIT = 3, H_END = 4, H_INPUT_TAKEN = 5, H_INPUT_CLOSED = 6, H_ERROR = 7,
  G_HELLO = 0x41, G_ACK = 0x42, G_INPUT = 0x43, G_INPUT_END = 0x44, G_RESIZE = 0x45, G_ABANDON = 0x46, G_DONE = 0x47,
  /* 1.1: input held until the gateway has its `input` event on record (mark = that event's seq) */
  G_INPUT_HELD = 0x48, G_INPUT_COMMIT = 0x49,
  /* 1.2: input written at once, its record kept until committed; the seq given to records reported at HELLO */
  G_INPUT_NOW = 0x4A, G_INPUT_REMARK = 0x4B,
};

struct segment { uint64_t end; uint8_t stream; };
struct held_input { uint64_t mark; size_t bytes; };
/* Input written before its `input` event was committed: who sent it (the actor's JSON) and how much. */
struct input_record { uint64_t mark; uint32_t bytes; uint16_t len; unsigned char actor[RECORD_ACTOR_MAX]; };

static struct {
  int pty;
  int out_fd[2];        /* PTY: master in [0]; pipes: stdout, stderr (-1 once ended) */
  int in_fd;            /* PTY: the master; pipes: stdin (-1 once closed) */
  int slave_fd;         /* PTY: held until the child exits, so no tail is lost */
  pid_t child;
  int child_exited, exit_code, exit_signal;
  int output_ended;
  long drain_ms;
  struct timespec drain_deadline;
  int input_end_requested;
  /* held output: offsets [base, base + len) are bytes hold[head .. head + len) */
  unsigned char *hold;
  size_t hold_cap, head, len;
  uint64_t base, sent;
  struct segment segs[SEGMENTS_MAX];
  size_t seg_first, seg_count;
  /* the program's pending input */
  unsigned char *inq;
  size_t inq_off, inq_len;
  /* The first inq_ready bytes may be written; the rest is held, chunk by chunk, until committed. */
  size_t inq_ready;
  struct held_input held[HELD_INPUT_MAX];
  size_t held_first, held_count;
  uint64_t input_taken; /* since the last INPUT_TAKEN frame */
  /* Records of input written at once, oldest first: kept until a commit reaches their mark. */
  struct input_record records[RECORDS_MAX];
  size_t record_count;
  int input_closed_told;
  /* the gateway's connection */
  int cfd;
  int ready, end_sent, exit_sent;
  unsigned char *obuf, *ibuf;
  size_t oo, ol, il;
  char path[4096];
  /* The socket was removed (its data directory deleted): no gateway can ever adopt this session. */
  int orphaned;
  struct timespec orphan_kill_at;
} h = {.out_fd = {-1, -1}, .in_fd = -1, .slave_fd = -1, .cfd = -1};

static int sigchld_pipe[2] = {-1, -1};

static void on_sigchld(int sig) {
  (void)sig;
  int saved = errno;
  ssize_t ignored = write(sigchld_pipe[1], "c", 1);
  (void)ignored;
  errno = saved;
}

static void put16(unsigned char *p, uint16_t v) { p[0] = v & 0xff; p[1] = v >> 8; }
static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (v >> (8 * i)) & 0xff; }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (v >> (8 * i)) & 0xff; }
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }

static long ms_until(struct timespec t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long ms = (t.tv_sec - now.tv_sec) * 1000 + (t.tv_nsec - now.tv_nsec) / 1000000;
  return ms < 0 ? 0 : ms;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* Room in obuf for a small frame (control frames are never dropped: obuf keeps FRAME_DATA_MAX + 4 KiB). */
static unsigned char *frame(uint8_t type, uint32_t payload) {
  unsigned char *p = h.obuf + h.ol;
  p[0] = type;
  put32(p + 1, payload);
  h.ol += 5 + payload;
  return p + 5;
}

static void drop_connection(void) {
  if (h.cfd >= 0) close(h.cfd);
  h.cfd = -1;
  h.ready = h.end_sent = h.exit_sent = 0;
  h.oo = h.ol = h.il = 0;
}

static void send_error(const char *text) {
  size_t n = strlen(text);
  if (n > 1024) n = 1024;
  memcpy(frame(H_ERROR, (uint32_t)n), text, n);
}

/* Drops held output below `offset` (acknowledged as committed, or named by a new gateway's HELLO). */
static void release_to(uint64_t offset) {
  if (offset <= h.base) return;
  uint64_t n = offset - h.base;
  if (n > h.len) n = h.len;
  h.head += n;
  h.len -= n;
  h.base += n;
  if (h.len == 0) h.head = 0;
  while (h.seg_count > 0 && h.segs[h.seg_first].end <= h.base) {
    h.seg_first = (h.seg_first + 1) % SEGMENTS_MAX;
    h.seg_count--;
  }
}

static size_t hold_limit(void) { return h.child_exited ? HOLD_MAX_BYTES + HOLD_TAIL_BYTES : HOLD_MAX_BYTES; }

static int may_read(void) { return h.len < hold_limit() && h.seg_count < SEGMENTS_MAX; }

/* Reads one chunk of stream `s`; returns 0 on EAGAIN, 1 on data, -1 when the stream ended. */
static int read_output(int s) {
  if (h.head + h.len + READ_BYTES > h.hold_cap) {
    memmove(h.hold, h.hold + h.head, h.len);
    h.head = 0;
  }
  ssize_t n = read(h.out_fd[s], h.hold + h.head + h.len, READ_BYTES);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  if (n <= 0) return -1; /* EOF, or EIO once no slave is left (Linux: after everything buffered) */
  h.len += (size_t)n;
  uint64_t end = h.base + h.len;
  if (h.seg_count > 0) {
    struct segment *last = &h.segs[(h.seg_first + h.seg_count - 1) % SEGMENTS_MAX];
    if (last->stream == s) { last->end = end; return 1; }
  }
  h.segs[(h.seg_first + h.seg_count) % SEGMENTS_MAX] = (struct segment){end, (uint8_t)s};
  h.seg_count++;
  return 1;
}

static void end_stream(int s) {
  if (h.out_fd[s] < 0) return;
  /* The PTY master stays open for input and resizes while in_fd names it; it is closed at the end. */
  if (!(h.pty && h.out_fd[s] == h.in_fd)) close(h.out_fd[s]);
  h.out_fd[s] = -1;
  if (h.out_fd[0] < 0 && h.out_fd[1] < 0) {
    h.output_ended = 1;
    if (h.pty && h.in_fd >= 0) { close(h.in_fd); h.in_fd = -1; }
  }
}

/* Stops waiting for EOF (a grandchild holds the output): reads what is buffered, then ends it. */
static void abandon_output(void) {
  for (int s = 0; s < 2; s++) {
    if (h.out_fd[s] < 0) continue;
    while (h.len < HOLD_MAX_BYTES + HOLD_TAIL_BYTES && h.seg_count < SEGMENTS_MAX && read_output(s) == 1) {}
    end_stream(s);
  }
}

static void reap(void) {
  char drain[64];
  while (read(sigchld_pipe[0], drain, sizeof drain) > 0) {}
  int status;
  if (h.child_exited || waitpid(h.child, &status, WNOHANG) != h.child) return;
  h.child_exited = 1;
  if (WIFSIGNALED(status)) { h.exit_code = -1; h.exit_signal = WTERMSIG(status); }
  else { h.exit_code = WEXITSTATUS(status); h.exit_signal = 0; }
  if (h.slave_fd >= 0) { close(h.slave_fd); h.slave_fd = -1; }
  clock_gettime(CLOCK_MONOTONIC, &h.drain_deadline);
  h.drain_deadline.tv_sec += h.drain_ms / 1000;
  h.drain_deadline.tv_nsec += (h.drain_ms % 1000) * 1000000;
  if (h.drain_deadline.tv_nsec >= 1000000000) { h.drain_deadline.tv_sec++; h.drain_deadline.tv_nsec -= 1000000000; }
}

/* Queues what the gateway should hear next, while obuf has room. */
static void fill_output(void) {
  if (h.cfd < 0 || !h.ready) return;
  if (h.child_exited && !h.exit_sent && h.ol + 32 < FRAME_DATA_MAX) {
    unsigned char *p = frame(H_CHILD_EXIT, 8);
    put32(p, (uint32_t)h.exit_code);
    put32(p + 4, (uint32_t)h.exit_signal);
    h.exit_sent = 1;
  }
  if (h.input_taken > 0 && h.ol + 32 < FRAME_DATA_MAX) {
    put64(frame(H_INPUT_TAKEN, 8), h.input_taken);
    h.input_taken = 0;
  }
  if (h.in_fd < 0 && !h.pty && !h.input_closed_told && h.ol + 32 < FRAME_DATA_MAX) {
    frame(H_INPUT_CLOSED, 0);
    h.input_closed_told = 1;
  }
  uint64_t end = h.base + h.len;
  if (h.ol == 0 && h.sent < end) {
    /* One stream per frame: the segment holding `sent`. */
    uint64_t seg_end = end;
    uint8_t stream = 0;
    for (size_t i = 0; i < h.seg_count; i++) {
      struct segment *s = &h.segs[(h.seg_first + i) % SEGMENTS_MAX];
      if (s->end > h.sent) { seg_end = s->end; stream = s->stream; break; }
    }
    uint64_t n = seg_end - h.sent;
    if (n > FRAME_DATA_MAX) n = FRAME_DATA_MAX;
    unsigned char *p = frame(H_OUTPUT, (uint32_t)(9 + n));
    p[0] = stream;
    put64(p + 1, h.sent);
    memcpy(p + 9, h.hold + h.head + (h.sent - h.base), n);
    h.sent += n;
  }
  if (h.output_ended && !h.end_sent && h.sent == end && h.exit_sent && h.ol + 32 < FRAME_DATA_MAX) {
    frame(H_END, 0);
    h.end_sent = 1;
  }
}

static void flush_output(void) {
  while (h.cfd >= 0 && h.oo < h.ol) {
    ssize_t n = send(h.cfd, h.obuf + h.oo, h.ol - h.oo, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      drop_connection();
      return;
    }
    h.oo += (size_t)n;
  }
  h.oo = h.ol = 0;
}

/*
 * Queues and sends until the socket is full (POLLOUT wakes the loop) or nothing is left: a control
 * frame queued first (INPUT_TAKEN) must not leave held output unsent until the next event.
 */
static void pump_output(void) {
  for (;;) {
    fill_output();
    if (h.ol == 0) return;
    flush_output();
    if (h.ol != 0) return;
  }
}

/* Queues input behind what is queued; 1 when it was queued. */
static int queue_input(const unsigned char *data, size_t n) {
  if (h.in_fd < 0) return 0; /* the program closed its input: INPUT_CLOSED tells the gateway */
  if (h.inq_off + h.inq_len + n > INPUT_QUEUE_MAX + IN_FRAME_MAX) {
    memmove(h.inq, h.inq + h.inq_off, h.inq_len);
    h.inq_off = 0;
  }
  if (h.inq_len + n > INPUT_QUEUE_MAX) {
    send_error("input queue full: the gateway sent more than its pending-input limit");
    return 0;
  }
  memcpy(h.inq + h.inq_off + h.inq_len, data, n);
  h.inq_len += n;
  return 1;
}

/* Input the gateway has not on record yet: written only once committed (commit_input). */
static void hold_input(uint64_t mark, const unsigned char *data, size_t n) {
  if (!queue_input(data, n)) return;
  if (h.held_count == HELD_INPUT_MAX) {
    /* Joined to the newest chunk: released with it, never before its own record. */
    struct held_input *last = &h.held[(h.held_first + h.held_count - 1) % HELD_INPUT_MAX];
    last->mark = mark;
    last->bytes += n;
    return;
  }
  h.held[(h.held_first + h.held_count) % HELD_INPUT_MAX] = (struct held_input){mark, n};
  h.held_count++;
}

/* The gateway's events up to `mark` are on record: their input may be written. */
static void commit_input(uint64_t mark) {
  while (h.held_count > 0 && h.held[h.held_first].mark <= mark) {
    h.inq_ready += h.held[h.held_first].bytes;
    h.held_first = (h.held_first + 1) % HELD_INPUT_MAX;
    h.held_count--;
  }
}

/* The gateway's log has its events up to `mark`: their records are no longer needed. */
static void drop_records_to(uint64_t mark) {
  size_t kept = 0;
  for (size_t i = 0; i < h.record_count; i++)
    if (h.records[i].mark > mark) {
      if (kept != i) h.records[kept] = h.records[i];
      kept++;
    }
  h.record_count = kept;
}

/* A new gateway: records its log lacks have no seq of its log yet (REMARK gives them one). */
static void unplace_records(void) {
  for (size_t i = 0; i < h.record_count; i++) h.records[i].mark = UNPLACED;
}

static void record_input(uint64_t mark, const unsigned char *actor, uint16_t len, uint32_t bytes) {
  struct input_record *r = &h.records[h.record_count++];
  r->mark = mark;
  r->bytes = bytes;
  r->len = len;
  memcpy(r->actor, actor, len);
}

/* A new gateway: input still held was never recorded (the last gateway died first), so nobody gets it. */
static void drop_held_input(void) {
  for (size_t i = 0; i < h.held_count; i++) h.inq_len -= h.held[(h.held_first + i) % HELD_INPUT_MAX].bytes;
  h.held_first = h.held_count = 0;
}

static void write_input(void) {
  while (h.in_fd >= 0 && h.inq_ready > 0) {
    ssize_t n = write(h.in_fd, h.inq + h.inq_off, h.inq_ready);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      /* EPIPE: the program closed its input; EIO: the terminal is gone. Nobody reads this input. */
      h.inq_len = h.inq_ready = 0;
      h.held_first = h.held_count = 0;
      if (!h.pty) { close(h.in_fd); h.in_fd = -1; }
      return;
    }
    h.inq_off += (size_t)n;
    h.inq_len -= (size_t)n;
    h.inq_ready -= (size_t)n;
    h.input_taken += (uint64_t)n;
  }
  if (h.inq_len == 0) h.inq_off = 0;
  if (h.inq_len == 0 && h.input_end_requested && !h.pty && h.in_fd >= 0) { close(h.in_fd); h.in_fd = -1; h.input_closed_told = 1; }
}

static void handle_frame(uint8_t type, const unsigned char *p, uint32_t n) {
  if (!h.ready && type != G_HELLO) { send_error("HELLO first"); return; }
  switch (type) {
    case G_HELLO: {
      if (n < 12) { send_error("short HELLO"); return; }
      uint16_t major = get16(p);
      uint16_t minor = get16(p + 2);
      uint64_t from = get64(p + 4);
      char text[200];
      if (major != PROTO_MAJOR) {
        snprintf(text, sizeof text, "holder protocol %d.x, gateway %u.x", PROTO_MAJOR, major);
        send_error(text);
        return;
      }
      if (from < h.base || from > h.base + h.len) {
        snprintf(text, sizeof text, "resume at byte %llu: this holder keeps bytes %llu to %llu",
                 (unsigned long long)from, (unsigned long long)h.base, (unsigned long long)(h.base + h.len));
        send_error(text);
        return;
      }
      release_to(from);
      h.sent = from;
      h.ready = 1;
      /* 1.1: the newest seq the gateway has on record; held input after it was never recorded. */
      if (minor >= 1 && n >= 20) {
        commit_input(get64(p + 12));
        drop_records_to(get64(p + 12));
      }
      drop_held_input();
      unplace_records();
      return;
    }
    case G_ACK:
      if (n >= 8) { uint64_t off = get64(p); release_to(off < h.sent ? off : h.sent); }
      return;
    case G_INPUT:
      if (h.held_count > 0) { send_error("INPUT after held input"); return; }
      if (queue_input(p, n)) h.inq_ready += n;
      return;
    case G_INPUT_HELD:
      if (n < 8) { send_error("short INPUT_HELD"); return; }
      hold_input(get64(p), p + 8, n - 8);
      return;
    case G_INPUT_COMMIT:
      if (n >= 8) {
        commit_input(get64(p));
        drop_records_to(get64(p));
      }
      return;
    case G_INPUT_NOW: {
      /* [mark u64][actor length u16][actor][data]: written at once, its record kept until committed. */
      if (n < 10 || n < 10 + (uint32_t)get16(p + 8)) { send_error("short INPUT_NOW"); return; }
      uint16_t len = get16(p + 8);
      if (h.held_count > 0) { send_error("INPUT_NOW after held input"); return; }
      if (len > RECORD_ACTOR_MAX || h.record_count == RECORDS_MAX) { send_error("INPUT_NOW past the holder's records"); return; }
      uint32_t bytes = n - 10 - len;
      if (queue_input(p + 10 + len, bytes)) {
        h.inq_ready += bytes;
        record_input(get64(p), p + 10, len, bytes);
      }
      return;
    }
    case G_INPUT_REMARK: {
      /* The gateway appends the records it was told at HELLO from seq `first` on, in order. */
      if (n < 8) { send_error("short INPUT_REMARK"); return; }
      uint64_t next = get64(p);
      for (size_t i = 0; i < h.record_count; i++)
        if (h.records[i].mark == UNPLACED) h.records[i].mark = next++;
      return;
    }
    case G_INPUT_END:
      h.input_end_requested = 1;
      return;
    case G_RESIZE:
      if (n >= 4 && h.pty && h.in_fd >= 0) {
        struct winsize ws = {.ws_col = get16(p), .ws_row = get16(p + 2)};
        ioctl(h.in_fd, TIOCSWINSZ, &ws);
      }
      return;
    case G_ABANDON:
      if (h.child_exited) abandon_output();
      return;
    case G_DONE:
      if (h.output_ended && h.child_exited) {
        unlink(h.path);
        exit(0);
      }
      return;
    default:
      send_error("unknown frame type");
  }
}

/* Reads and handles what the gateway sent; 1 when it read bytes (more may wait). */
static int read_connection(void) {
  ssize_t n = recv(h.cfd, h.ibuf + h.il, IN_FRAME_MAX + 5 - h.il, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  if (n <= 0) { drop_connection(); return 0; }
  h.il += (size_t)n;
  size_t at = 0;
  while (h.cfd >= 0 && h.il - at >= 5) {
    uint32_t len = get32(h.ibuf + at + 1);
    if (len > IN_FRAME_MAX) { drop_connection(); return 0; }
    if (h.il - at < 5 + (size_t)len) break;
    handle_frame(h.ibuf[at], h.ibuf + at + 5, len);
    at += 5 + len;
  }
  if (h.cfd < 0) return 0;
  memmove(h.ibuf, h.ibuf + at, h.il - at);
  h.il -= at;
  return 1;
}

static void accept_connection(int lfd) {
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != getuid()) {
    close(fd); /* only the gateway's uid may steer this session */
    return;
  }
  /* A newer gateway replaces an older one; what the older one sent before it died is read first
     (a REMARK, records it committed): the kernel keeps it after its death. */
  while (h.cfd >= 0 && read_connection()) {}
  drop_connection();
  h.cfd = fd;
  size_t records_len = 4;
  for (size_t i = 0; i < h.record_count; i++) records_len += 14 + h.records[i].len;
  unsigned char *p = frame(H_HELLO, (uint32_t)(32 + records_len));
  put16(p, PROTO_MAJOR);
  put16(p + 2, PROTO_MINOR);
  put32(p + 4, (uint32_t)getpid());
  put32(p + 8, (uint32_t)h.child);
  p[12] = (unsigned char)h.pty;
  p[13] = (unsigned char)h.child_exited;
  p[14] = (unsigned char)h.output_ended;
  p[15] = 0;
  put64(p + 16, h.base);
  put64(p + 24, h.base + h.len);
  /* 1.2: the records of input written at once that no gateway has told committed. */
  unsigned char *r = p + 32;
  put32(r, (uint32_t)h.record_count);
  r += 4;
  for (size_t i = 0; i < h.record_count; i++) {
    put64(r, h.records[i].mark);
    put32(r + 8, h.records[i].bytes);
    put16(r + 12, h.records[i].len);
    memcpy(r + 14, h.records[i].actor, h.records[i].len);
    r += 14 + h.records[i].len;
  }
}

/* ---- the spec and the program ---- */

struct spec { int pty, cols, rows; long drain_ms; char *cwd; char **argv; char **envp; };

static int parse_spec(char *buf, size_t n, struct spec *s) {
  char *fields[8];
  size_t at = 0;
  int f = 0;
  while (f < 7 && at < n) { fields[f++] = buf + at; at += strlen(buf + at) + 1; }
  if (f < 7 || strcmp(fields[0], "SBH1") != 0) return -1;
  s->pty = atoi(fields[1]);
  s->cols = atoi(fields[2]);
  s->rows = atoi(fields[3]);
  s->drain_ms = atol(fields[4]);
  s->cwd = fields[5];
  long argc = atol(fields[6]);
  if (argc < 1 || argc > 100000) return -1;
  s->argv = calloc((size_t)argc + 1, sizeof(char *));
  for (long i = 0; i < argc; i++) { if (at >= n) return -1; s->argv[i] = buf + at; at += strlen(buf + at) + 1; }
  if (at >= n) return -1;
  long envc = atol(buf + at);
  at += strlen(buf + at) + 1;
  if (envc < 0 || envc > 100000) return -1;
  s->envp = calloc((size_t)envc + 1, sizeof(char *));
  for (long i = 0; i < envc; i++) { if (at >= n) return -1; s->envp[i] = buf + at; at += strlen(buf + at) + 1; }
  return 0;
}

extern char **environ;

/* In the child: never returns. */
static void exec_child(const struct spec *s, int err_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
  if (chdir(s->cwd) == 0) {
    environ = s->envp;
    execvp(s->argv[0], s->argv);
  }
  int e = errno;
  ssize_t ignored = write(err_fd, &e, sizeof e);
  (void)ignored;
  _exit(127);
}

static void close_from(int low, int keep) {
  for (int fd = low; fd < 1024; fd++) if (fd != keep) close(fd);
}

/* Starts the program; 0, or an errno. */
static int spawn_child(const struct spec *s) {
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) return errno;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
  if (s->pty) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) return errno;
    char name[128];
    if (ptsname_r(m, name, sizeof name) != 0) return errno;
    struct winsize ws = {.ws_col = (unsigned short)s->cols, .ws_row = (unsigned short)s->rows};
    ioctl(m, TIOCSWINSZ, &ws);
    int sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sl < 0) return errno;
    struct termios t;
    if (tcgetattr(sl, &t) == 0) { t.c_iflag |= IUTF8; tcsetattr(sl, TCSANOW, &t); }
    h.out_fd[0] = m;
    h.in_fd = m;
    h.slave_fd = sl;
  } else if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
    return errno;
  }
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    setsid();
    if (s->pty) {
      ioctl(h.slave_fd, TIOCSCTTY, 0);
      dup2(h.slave_fd, 0); dup2(h.slave_fd, 1); dup2(h.slave_fd, 2);
    } else {
      dup2(in[0], 0); dup2(out[1], 1); dup2(errp[1], 2);
    }
    close_from(3, err[1]);
    exec_child(s, err[1]);
  }
  close(err[1]);
  int e = 0;
  ssize_t got = read(err[0], &e, sizeof e);
  close(err[0]);
  h.child = pid;
  if (!s->pty) {
    close(in[0]); close(out[1]); close(errp[1]);
    h.in_fd = in[1]; h.out_fd[0] = out[0]; h.out_fd[1] = errp[0];
    set_nonblock(h.in_fd);
  }
  set_nonblock(h.out_fd[0]);
  if (h.out_fd[1] >= 0) set_nonblock(h.out_fd[1]);
  if (got == (ssize_t)sizeof e) { waitpid(pid, NULL, 0); return e; }
  return 0;
}

static struct timespec after_ms(long ms) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000;
  if (t.tv_nsec >= 1000000000) { t.tv_sec++; t.tv_nsec -= 1000000000; }
  return t;
}

/*
 * Without a gateway, a holder whose socket is gone (its data directory was removed) ends its
 * program, as closing a terminal would: nobody could ever adopt or steer it again.
 */
static void check_orphan(void) {
  if (h.cfd >= 0) return;
  static struct timespec next_check;
  if (!h.orphaned) {
    if (ms_until(next_check) > 0) return;
    next_check = after_ms(ORPHAN_CHECK_MS);
    struct stat st;
    if (stat(h.path, &st) == 0 || errno != ENOENT) return;
    h.orphaned = 1;
    h.orphan_kill_at = after_ms(ORPHAN_GRACE_MS);
    if (!h.child_exited) {
      kill(-h.child, SIGHUP);
      kill(-h.child, SIGTERM);
      kill(-h.child, SIGCONT);
    }
  }
  if (h.child_exited) exit(0);
  if (ms_until(h.orphan_kill_at) == 0) kill(-h.child, SIGKILL);
}

static int run(int lfd) {
  struct pollfd p[6];
  h.orphan_kill_at = after_ms(0);
  for (;;) {
    if (h.child_exited && !h.output_ended && ms_until(h.drain_deadline) == 0) abandon_output();
    pump_output();
    int n = 0, ip = -1, io[2] = {-1, -1}, ic = -1, il = -1, is = -1;
    p[n] = (struct pollfd){.fd = lfd, .events = POLLIN}; il = n++;
    p[n] = (struct pollfd){.fd = sigchld_pipe[0], .events = POLLIN}; is = n++;
    if (h.cfd >= 0) { p[n] = (struct pollfd){.fd = h.cfd, .events = POLLIN | (h.ol > 0 ? POLLOUT : 0)}; ic = n++; }
    for (int s = 0; s < 2; s++)
      if (h.out_fd[s] >= 0 && may_read()) { p[n] = (struct pollfd){.fd = h.out_fd[s], .events = POLLIN}; io[s] = n++; }
    if (h.in_fd >= 0 && h.inq_ready > 0) { p[n] = (struct pollfd){.fd = h.in_fd, .events = POLLOUT}; ip = n++; }
    int timeout = h.child_exited && !h.output_ended ? (int)ms_until(h.drain_deadline) : -1;
    if (h.cfd < 0 && (timeout < 0 || timeout > ORPHAN_CHECK_MS)) timeout = h.orphaned ? 100 : ORPHAN_CHECK_MS;
    if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR) return 1;
    if (p[is].revents) reap();
    for (int s = 0; s < 2; s++)
      if (io[s] >= 0 && p[io[s]].revents) {
        int r = 0;
        for (int k = 0; k < 16 && may_read() && (r = read_output(s)) == 1; k++) {}
        if (r < 0) end_stream(s);
      }
    if (ip >= 0 && p[ip].revents) write_input();
    if (ic >= 0 && h.cfd >= 0 && (p[ic].revents & (POLLIN | POLLHUP | POLLERR))) (void)read_connection();
    if (h.input_end_requested || h.inq_ready > 0) write_input();
    if (p[il].revents & POLLIN) accept_connection(lfd);
    check_orphan();
  }
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: holder SOCKET_NAME < spec\n"); return 2; }
  char *spec_buf = malloc(SPEC_MAX_BYTES);
  size_t spec_len = 0;
  for (;;) {
    ssize_t n = read(0, spec_buf + spec_len, SPEC_MAX_BYTES - spec_len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    spec_len += (size_t)n;
  }
  struct spec spec;
  if (parse_spec(spec_buf, spec_len, &spec) != 0) { printf("err %d spec\n", EINVAL); return 1; }
  char cwd[2048];
  if (getcwd(cwd, sizeof cwd) == NULL) { printf("err %d getcwd\n", errno); return 1; }
  snprintf(h.path, sizeof h.path, "%s/%s", cwd, argv[1]);
  umask(077);
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(argv[1]) >= sizeof addr.sun_path) { printf("err %d name\n", ENAMETOOLONG); return 1; }
  strcpy(addr.sun_path, argv[1]);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || chmod(argv[1], 0600) != 0 ||
      listen(lfd, 8) != 0) {
    printf("err %d listen\n", errno);
    return 1;
  }
  int report[2];
  if (pipe(report) != 0) { printf("err %d pipe\n", errno); unlink(h.path); return 1; }
  fflush(stdout);
  pid_t daemon = fork();
  if (daemon < 0) { printf("err %d fork\n", errno); unlink(h.path); return 1; }
  if (daemon > 0) {
    close(report[1]);
    close(lfd);
    char line[128] = {0};
    ssize_t got = read(report[0], line, sizeof line - 1);
    if (got <= 0) { printf("err %d daemon\n", EIO); return 1; }
    fputs(line, stdout);
    return strncmp(line, "ok ", 3) == 0 ? 0 : 1;
  }
  close(report[0]);
  setsid();
  /* A Unix socket's peer credentials (SO_PEERCRED) name the process that last called listen() on
     it: listening again here makes them the daemon's, whose pid and start time the gateway records
     and checks on every connection (src/sessions/holder-peer.ts). */
  if (listen(lfd, 8) != 0) {
    char failed[64];
    snprintf(failed, sizeof failed, "err %d listen\n", errno);
    ssize_t ignored = write(report[1], failed, strlen(failed));
    (void)ignored;
    unlink(h.path);
    _exit(1);
  }
  int null = open("/dev/null", O_RDWR);
  dup2(null, 0); dup2(null, 1); dup2(null, 2);
  if (null > 2) close(null);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) _exit(1);
  struct sigaction sa = {.sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, NULL);
  h.drain_ms = spec.drain_ms;
  h.pty = spec.pty;
  h.hold_cap = HOLD_MAX_BYTES + HOLD_TAIL_BYTES + READ_BYTES;
  h.hold = malloc(h.hold_cap);
  h.inq = malloc(INPUT_QUEUE_MAX + IN_FRAME_MAX);
  h.obuf = malloc(FRAME_DATA_MAX + 4096);
  h.ibuf = malloc(IN_FRAME_MAX + 5);
  int e = spawn_child(&spec);
  char line[128];
  if (e != 0) snprintf(line, sizeof line, "err %d exec\n", e);
  else snprintf(line, sizeof line, "ok %d %d\n", (int)getpid(), (int)h.child);
  ssize_t ignored = write(report[1], line, strlen(line));
  (void)ignored;
  close(report[1]);
  if (e != 0) { unlink(h.path); _exit(1); }
  free(spec_buf);
  if (chdir("/") != 0) _exit(1);
  reap(); /* a child that exited before the handler was seen */
  return run(lfd);
}
