import { createConnection } from "node:net";
import type { NetConnectOpts, OnReadOpts, Socket } from "node:net";
import { constants as osConstants } from "node:os";
import { SwitchboardError } from "../protocol/errors.js";
import {
  G,
  HOLDER_INPUT_FRAME_MAX_BYTES,
  HOLDER_PROTOCOL_MAJOR,
  HolderFrameReader,
  ackFrame,
  frame,
  helloFrame,
  HOLDER_RECORDS_MAX,
  HOLDER_RECORD_ACTOR_MAX_BYTES,
  INPUT_NOW_MAX_BYTES,
  inputCommitFrame,
  inputHeldFrame,
  inputNowFrame,
  inputRemarkFrame,
  resizeFrame,
} from "./holder-protocol.js";
import type { HolderFrame, InputRecord } from "./holder-protocol.js";
import { checkHolderPeer } from "./holder-peer.js";
import { writeNow } from "../system/socket-write-now.js";
import type { PeerRefusal } from "./holder-peer.js";
import type { ProcessTransport, TransportSink } from "./process-transport.js";

/**
 * Where a held session's input written at once is recorded (TerminalSession): input a holder
 * wrote before a gateway's crash and no gateway committed is appended by the next one.
 */
export interface LateInputRecorder {
  /** The seq the next event appended to the session's log gets. */
  nextSeq(): number;
  /** Appends an `input` event for each, in order, from {@link nextSeq} on. `by`: the actor's JSON. */
  record(inputs: ReadonlyArray<{ by: Uint8Array; bytes: number }>): void;
}

/** ^D, what a terminal sends to end its input (as pty-process.ts). */
const EOF_KEY = Uint8Array.of(0x04);
const DOUBLE_EOF_KEY = Uint8Array.of(0x04, 0x04);

/** What every holder connection reads into: reads run on the event loop one at a time, and the sink copies what it keeps. */
const readBuffer = Buffer.allocUnsafe(256 * 1024);

export interface HolderTransportOptions {
  socketPath: string;
  holderPid: number;
  /** The holder's start time on record (`processStartTime`): with its pid, what the socket's peer must be. */
  holderStart: number | null;
  childPid: number;
  pty: boolean;
  /**
   * The holder offset the gateway has on record: the holder resends from there; `kept`: from the
   * oldest byte it keeps (the last acknowledged), for a gateway whose log has no byte offsets (agents).
   */
  resumeFrom: number | "kept";
  /** The newest seq the gateway's log has on record: input the holder holds for a later one is dropped. */
  committedSeq: number;
  /** The holder said HELLO in a version this gateway speaks; output follows from `resumedFrom`. */
  onGreeted?: (resumedFrom: number) => void;
  /** The socket's peer is not the holder on record (or could not be checked): it was refused, before anything it sent was read. */
  onRefused?: (refusal: PeerRefusal) => void;
}

/**
 * A terminal process's I/O through its holder (native/holder.c): output arrives as OUTPUT
 * frames with their offset, input, resizes and the end of input go as frames; signals go to
 * the process directly (terminal-process.ts), as for a process of the gateway's own.
 * A connection that ends without the holder's END is a holder gone: `sink.lost`.
 * Nothing is read from or sent to the socket's peer before the kernel named it as the holder
 * on record (holder-peer.ts): an impostor's output never reaches the sink, nor input it.
 */
export class HolderTransport implements ProcessTransport {
  readonly pid: number;
  private readonly options: HolderTransportOptions;
  private readonly sink: TransportSink;
  private readonly socket: Socket;
  private readonly reader: HolderFrameReader;
  /** The holder offset of the next output byte expected. */
  private next: number;
  /** The newest output offset the holder said it has (HELLO), and the newest acknowledged. */
  private holderEnd = 0;
  private acked: number;
  private sentInput = 0;
  private takenInput = 0;
  /** The holder's minor version, once it said HELLO: from 1 on it holds input until its event is committed. */
  private holderMinor: number | null = null;
  /** Input given before the holder's HELLO, sent once its version is known. */
  private early: Array<{ data: Uint8Array; mark: number | undefined } | { end: true; mark: number | undefined }> = [];
  /** The newest input mark sent held, the newest commit told to the holder, the newest the session reported. */
  private heldMark = 0;
  private toldCommitted = 0;
  private committed = 0;
  /** The newest mark sent with INPUT_HELD: input written at once waits until the holder released it all. */
  private holdMark = 0;
  /** Where input written at once is recorded; without one, all input is held until committed. */
  private recorder: LateInputRecorder | undefined;
  /** Marks of input written at once whose commit the holder was not told: it keeps their records. */
  private records: number[] = [];
  /** Records the holder reported at HELLO that this gateway's log lacks, until appended (see {@link placeRecords}). */
  private unrecorded: InputRecord[] | null = null;
  /** Such records reported before a recorder was set: the holder keeps them unplaced meanwhile. */
  private reported: InputRecord[] | null = null;
  /** A pipe's end of input waits for this mark's commit, as its input does. */
  private endAfter: number | null = null;
  private inputClosed = false;
  private lineStart = true;
  private ended = false;
  /** Closed by us (close, detach, done): its end is no loss. */
  private letGo = false;
  private closed = false;
  /** Let go of by a stopping gateway ({@link detach}). */
  private detached = false;
  private connected = false;
  /** Whether the socket's peer was checked to be the holder on record. */
  private peer: "unchecked" | "verified" | "refused" = "unchecked";
  /** Why the connection failed, when it said (an errno code). */
  constructor(options: HolderTransportOptions, sink: TransportSink) {
    this.options = options;
    this.pid = options.childPid;
    this.sink = sink;
    this.next = options.resumeFrom === "kept" ? 0 : options.resumeFrom;
    this.acked = this.next;
    this.reader = new HolderFrameReader((f) => this.onFrame(f));
    // `onread` into one shared buffer (as pty-master.ts): no new Buffer per read under a flood.
    const connectOptions: NetConnectOpts & { onread: OnReadOpts } = {
      path: options.socketPath,
      onread: {
        buffer: readBuffer,
        callback: (n, buffer) => {
          this.received(buffer.subarray(0, n));
          return true;
        },
      },
    };
    this.socket = createConnection(connectOptions);
    // 'connect' comes before the first read: the peer is checked before a byte of it is taken or sent.
    this.socket.once("connect", () => {
      this.connected = true;
      if (!this.checkPeer()) return;
      if (options.resumeFrom !== "kept") this.hello(helloFrame(options.resumeFrom, options.committedSeq));
    });

    this.socket.on("error", (error: NodeJS.ErrnoException) => {
      // 'close' follows; the reason is the first that is known.
      this.failure ??= error.code ?? error.message;
    });
    this.socket.on("close", () => {
      this.undelivered();
      if (this.letGo || this.ended) return;
      const how = this.failure === undefined ? "" : ` (${this.failure})`;
      this.fail(
        this.connected
          ? `its holder (pid ${options.holderPid}) ended without the program's exit${how}: it was killed (kill -9?) or crashed`
          : `its holder (pid ${options.holderPid}) could not be reached${how}: it was killed or crashed`,
      );
    });
  }

  private failure: string | undefined;
  /**
   * Frames given before this gateway's HELLO went (an acknowledgement, a resize, as a restored
   * session is taken over on demand while its socket still connects): the holder refuses a
   * connection whose first frame is not HELLO, so they follow it (test/sessions/holder.test.ts).
   */
  private beforeHello: Buffer[] | undefined = [];

  get pendingInputBytes(): number {
    return this.sentInput - this.takenInput;
  }

  /**
   * Input for the event that gets seq `mark`, sent by `by` (the actor's JSON). True: written at
   * once, the holder keeping its record until {@link commitInput} reaches `mark` (1.2, see
   * {@link writesAtOnce}). False: held, written only once the commit reaches `mark` (1.1), or
   * plain input without a mark. Either way no input reaches the program without its record
   * (docs/architecture.md, "Session holders").
   */
  write(data: Uint8Array, mark?: number, by?: Uint8Array): boolean {
    if (data.length === 0) return false;
    if (this.inputClosed) throw this.inputClosedError();
    this.sentInput += data.length;
    this.lineStart = data[data.length - 1] === 0x0d || data[data.length - 1] === 0x0a;
    if (this.holderMinor === null) this.early.push({ data: Uint8Array.from(data), mark });
    else if (mark !== undefined && by !== undefined && this.writesAtOnce(data, mark, by)) {
      this.send(inputNowFrame(mark, by, data));
      this.records.push(mark);
      this.heldMark = Math.max(this.heldMark, mark);
      return true;
    } else this.sendInput(data, mark);
    return false;
  }

  /**
   * Sets where input written at once is recorded: from then on a 1.2 holder writes input as it
   * comes and keeps its record until the commit (INPUT_NOW), and records it reported at HELLO
   * are appended here. Only for a log that never refuses an append (not a cluster's).
   */
  recordInputLate(recorder: LateInputRecorder): void {
    this.recorder = recorder;
    if (this.reported === null) return;
    this.unrecorded = this.reported;
    this.reported = null;
    this.placeRecords();
  }

  /**
   * Whether this input may go to the program before its event is committed: the holder keeps
   * its record until then (and reports it to the next gateway after a crash). Not while held
   * input waits for its commit (the order of the two), nor past the holder's records.
   */
  private writesAtOnce(data: Uint8Array, mark: number, by: Uint8Array): boolean {
    return (
      this.recorder !== undefined &&
      this.holderMinor !== null &&
      this.holderMinor >= 2 &&
      this.unrecorded === null &&
      this.holdMark <= this.toldCommitted &&
      this.records.length < HOLDER_RECORDS_MAX &&
      by.length <= HOLDER_RECORD_ACTOR_MAX_BYTES &&
      data.length <= INPUT_NOW_MAX_BYTES &&
      mark > this.heldMark
    );
  }

  /**
   * Appends the records the holder reported at HELLO that this log lacks, at the seqs INPUT_REMARK
   * gives them. That frame is in the kernel before they are appended (so before their commit):
   * a crash after the commit leaves the holder knowing their new seqs, and a third gateway does
   * not record them twice. While it waits in this process, no commit is told (it could drop
   * records under a REMARK sent again).
   */
  private placeRecords(): void {
    const inputs = this.unrecorded;
    const recorder = this.recorder;
    if (inputs === null || recorder === undefined || this.letGo || this.ended || !this.socket.writable) return;
    const first = recorder.nextSeq();
    this.send(inputRemarkFrame(first));
    if (this.socket.writableLength > 0) {
      this.socket.once("drain", () => this.placeRecords());
      return;
    }
    this.unrecorded = null;
    recorder.record(inputs.map((r) => ({ by: r.by, bytes: r.bytes })));
    for (let i = 0; i < inputs.length; i++) this.records.push(first + i);
    this.heldMark = Math.max(this.heldMark, first + inputs.length - 1);
    this.tellCommitsHeldBack();
  }

  /** Commits reported while none could be told (before the HELLO, while records were placed) apply to what was sent since. */
  private tellCommitsHeldBack(): void {
    if (this.committed <= this.toldCommitted) return;
    const seq = this.committed;
    this.committed = 0;
    this.commitInput(seq);
  }

  endInput(mark?: number): void {
    // A PTY: the terminal's EOF character, as pty-process.ts; pipes: the holder closes stdin.
    if (this.options.pty) this.write(this.lineStart ? EOF_KEY : DOUBLE_EOF_KEY, mark);
    else if (this.holderMinor === null) this.early.push({ end: true, mark });
    else if (this.holdsInput && mark !== undefined && mark > this.committed) this.endAfter = mark;
    else this.send(frame(G.INPUT_END));
  }

  /** The session's log is committed up to `seq`: held input up to there may reach the program. */
  commitInput(seq: number): void {
    if (seq <= this.committed) return;
    this.committed = seq;
    if (this.holderMinor === null || this.unrecorded !== null) return;
    if (this.heldMark > this.toldCommitted) {
      this.send(inputCommitFrame(seq));
      this.toldCommitted = seq;
      let told = 0;
      while (told < this.records.length && this.records[told]! <= seq) told++;
      if (told > 0) this.records.splice(0, told);
    }
    if (this.endAfter !== null && seq >= this.endAfter) {
      this.endAfter = null;
      this.send(frame(G.INPUT_END));
    }
  }

  private get holdsInput(): boolean {
    return this.holderMinor !== null && this.holderMinor >= 1;
  }

  private sendInput(data: Uint8Array, mark: number | undefined): void {
    const held = mark !== undefined && this.holdsInput;
    for (let at = 0; at < data.length; at += HOLDER_INPUT_FRAME_MAX_BYTES) {
      const piece = data.subarray(at, at + HOLDER_INPUT_FRAME_MAX_BYTES);
      this.send(held ? inputHeldFrame(mark, piece) : frame(G.INPUT, piece));
    }
    if (!held) return;
    this.heldMark = Math.max(this.heldMark, mark);
    this.holdMark = Math.max(this.holdMark, mark);
    // A commit told before this frame does not release it: the holder is told again.
    if (mark <= this.toldCommitted) this.send(inputCommitFrame(this.toldCommitted));
  }

  resize(cols: number, rows: number): void {
    this.send(resizeFrame(cols, rows));
  }

  abandonOutput(): void {
    this.send(frame(G.ABANDON));
  }

  pauseOutput(): void {
    this.socket.pause();
  }

  resumeOutput(): void {
    this.socket.resume();
  }

  /** The output up to holder offset `offset` is committed: the holder may forget it. */
  acknowledge(offset: number): void {
    this.acked = Math.max(this.acked, offset);
    this.send(ackFrame(offset));
  }

  /** Output bytes the holder keeps for this gateway: received or announced (HELLO), not yet acknowledged. */
  get heldBytes(): number {
    if (this.letGo || this.ended) return 0;
    return Math.max(0, Math.max(this.holderEnd, this.next) - this.acked);
  }

  /** The exit is on record: the holder may end. */
  done(): void {
    this.send(frame(G.DONE));
    this.letGo = true;
    this.socket.end();
  }

  /**
   * Lets go of the holder without ending it (the gateway stops; the next one adopts it). `flush`:
   * what was written still reaches the holder first (resolves once the connection is closed).
   */
  detach(options: { flush?: boolean } = {}): Promise<void> {
    this.detached = true;
    this.letGo = true;
    this.closed = true;
    if (options.flush !== true || this.socket.destroyed) {
      this.socket.destroy();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.socket.once("close", () => resolve());
      this.socket.end();
    });
  }

  close(): void {
    // After the exit: the connection stays for done() (the exit must be committed first).
    if (this.closed) return;
    this.closed = true;
    if (!this.ended) {
      this.letGo = true;
      this.socket.destroy();
    }
  }

  /** Bytes read from the holder, valid only during the call (the shared read buffer). */
  private received(chunk: Uint8Array): void {
    if (this.peer !== "verified" && !this.checkPeer()) return;
    try {
      this.reader.push(chunk);
    } catch (error) {
      this.fail(`its holder broke the protocol: ${(error as Error).message}`);
    }
  }

  /** Whether the socket's peer is the holder on record; refuses it (the session is lost) when not. */
  private checkPeer(): boolean {
    if (this.peer !== "unchecked") return this.peer === "verified";
    const refusal = checkHolderPeer(this.socket, { pid: this.options.holderPid, start: this.options.holderStart });
    if (refusal === null) {
      this.peer = "verified";
      return true;
    }
    this.peer = "refused";
    this.options.onRefused?.(refusal);
    // Not steered by a peer it could not verify, the program is left for the user to end (a real
    // holder whose socket was taken ends it within 2 s of losing its socket).
    this.fail(
      `its holder could not be trusted: ${refusal.reason}; the program (pid ${this.pid}) was left running: end it with kill ${this.pid}`,
      { leaveRunning: true },
    );
    return false;
  }

  /** Before 'connect' Node queues the write and sends it after the listeners, so after {@link checkPeer}. */
  private send(bytes: Buffer): void {
    if (this.beforeHello !== undefined) this.beforeHello.push(bytes);
    else if (this.peer !== "refused" && !this.socket.destroyed && this.socket.writable) {
      const sent = writeNow(this.socket, bytes);
      if (sent === bytes.length) return this.checkFlushed();
      // A failed write left nothing in the kernel: only the connection's close follows.
      const rest = sent === 0 ? bytes : bytes.subarray(sent);
      this.socket.write(rest, (error) => (error === undefined || error === null ? this.checkFlushed() : undefined));
    }
  }

  /** Sends this gateway's HELLO, then what was given to send before it. */
  private hello(bytes: Buffer): void {
    const waiting = this.beforeHello ?? [];
    this.beforeHello = undefined;
    this.send(bytes);
    for (const queued of waiting) this.send(queued);
  }

  /**
   * Whether every byte given has left this process: it is in the kernel's socket buffer, which
   * the holder reads even after this process dies. (A write the kernel took at once leaves
   * `writableLength` at 0 before `write` returns.)
   */
  get flushed(): boolean {
    return this.holderMinor !== null && this.early.length === 0 && this.socket.writableLength === 0;
  }

  private flushWaiters: Array<() => void> = [];

  /**
   * Calls `fn` once {@link flushed}: at once when it is, else after the writes before it are
   * done. Never once the connection is gone (nothing it waits for can reach the holder then).
   */
  whenFlushed(fn: () => void): void {
    if (this.flushed) return fn();
    this.flushWaiters.push(fn);
  }

  private deliveryWaiters: Array<{ resolve: () => void; reject: (error: SwitchboardError) => void }> = [];
  private greetWaiters: Array<{ resolve: () => void; reject: (error: SwitchboardError) => void }> = [];

  /**
   * Undefined once the holder said HELLO; else a promise of it, refused as {@link delivered} is if
   * the connection ends first. A take-over's session writes input only then (terminal-session.ts).
   */
  greeted(): Promise<void> | undefined {
    if (this.holderMinor !== null) return undefined;
    if (this.letGo || this.ended) return Promise.reject(this.undeliveredError());
    const greeted = new Promise<void>((resolve, reject) => this.greetWaiters.push({ resolve, reject }));
    greeted.catch(() => undefined);
    return greeted;
  }

  /**
   * Undefined when every input byte given has left this process ({@link flushed}: the common
   * case, a greeted holder and a kernel that took the write at once); else a promise of that,
   * refused if the connection ends first. Input given before the holder's HELLO waits in
   * `early`, in this process only: an answer that says the input was taken waits for this, so a
   * kill -9 of the gateway then loses no input it answered for (test/sessions/holder-early-input.test.ts).
   */
  delivered(): Promise<void> | undefined {
    if (this.flushed) return undefined;
    if (this.letGo || this.ended) return Promise.reject(this.undeliveredError());
    const delivered = new Promise<void>((resolve, reject) => this.deliveryWaiters.push({ resolve, reject }));
    // Whoever answers for the input handles the refusal; nobody may be waiting (an untracked write).
    delivered.catch(() => undefined);
    return delivered;
  }

  private checkFlushed(): void {
    if (!this.flushed || this.closed) return;
    for (const waiter of this.deliveryWaiters.splice(0)) waiter.resolve();
    for (const fn of this.flushWaiters.splice(0)) fn();
  }

  /** The connection ended: input still in this process never reaches the holder. */
  private undelivered(): void {
    if (this.deliveryWaiters.length === 0 && this.greetWaiters.length === 0) return;
    const error = this.undeliveredError();
    for (const waiter of [...this.deliveryWaiters.splice(0), ...this.greetWaiters.splice(0)]) waiter.reject(error);
  }

  private undeliveredError(): SwitchboardError {
    return !this.detached
      ? new SwitchboardError(
          "SESSION_NOT_RUNNING",
          `the input did not reach process ${this.pid}: the connection to its holder ended first`,
        )
      : new SwitchboardError(
          "SHUTTING_DOWN",
          `the gateway stopped before the input reached process ${this.pid}'s holder: it was not delivered; send it again once the next gateway is up`,
        );
  }

  private onFrame(f: HolderFrame): void {
    if (this.closed && f.type !== "end") return;
    switch (f.type) {
      case "hello":
        if (f.hello.major !== HOLDER_PROTOCOL_MAJOR) {
          this.fail(
            `its holder (pid ${f.hello.holderPid}) speaks protocol ${f.hello.major}.${f.hello.minor} and this gateway ${HOLDER_PROTOCOL_MAJOR}.x: ` +
              `the program (pid ${f.hello.childPid}) was left running; run a gateway of the holder's version to adopt it, or end it with kill ${f.hello.childPid}`,
            { leaveRunning: true },
          );
          return;
        }
        if (f.hello.childPid !== this.pid) {
          this.fail(`its holder runs pid ${f.hello.childPid}, not ${this.pid}`);
          return;
        }
        this.holderMinor = f.hello.minor;
        this.holderEnd = f.hello.end;
        if (this.options.resumeFrom === "kept") {
          this.next = f.hello.keptFrom;
          this.acked = f.hello.keptFrom;
          this.hello(helloFrame(f.hello.keptFrom, this.options.committedSeq));
        }
        for (const item of this.early.splice(0)) {
          if ("end" in item) this.endInput(item.mark);
          else this.sendInput(item.data, item.mark);
        }
        this.tellCommitsHeldBack();
        // Input the holder wrote that no gateway committed: recorded here, after the seqs given above.
        this.takeRecords(f.hello.records);
        this.options.onGreeted?.(this.next);
        for (const waiter of this.greetWaiters.splice(0)) waiter.resolve();
        // Nothing queued may have been sent (an end of input waiting for its commit).
        this.checkFlushed();
        return;
      case "output": {
        // Resent bytes the log already has are skipped; a gap would be a lost byte.
        let bytes = f.bytes;
        if (f.offset < this.next) {
          const skip = this.next - f.offset;
          if (skip >= bytes.length) return;
          bytes = bytes.subarray(skip);
        } else if (f.offset > this.next) {
          this.fail(`its holder sent output from byte ${f.offset}, after a gap from ${this.next}`);
          return;
        }
        this.next += bytes.length;
        this.sink.output(this.options.pty ? "pty" : f.stream, bytes);
        return;
      }
      case "childExit":
        this.sink.childExited({
          exitCode: f.exitCode,
          signal: f.signal === null ? null : (signalName(f.signal) ?? `SIG${f.signal}`),
        });
        return;
      case "end":
        this.ended = true;
        this.sink.outputEnded();
        return;
      case "inputTaken":
        this.takenInput += f.bytes;
        return;
      case "inputClosed":
        this.inputClosed = true;
        return;
      case "error":
        this.fail(`its holder refused the gateway: ${f.message}`);
        return;
      case "unknown":
        return;
    }
  }

  /**
   * The holder's records at HELLO: those up to the seq this log had when the gateway started
   * were committed by the last gateway (the HELLO sent says so, and the holder drops them); the
   * rest are this log's to append ({@link placeRecords}). A record's place is counted against the
   * holder's room until told committed.
   */
  private takeRecords(records: readonly InputRecord[]): void {
    const unrecorded = records.filter((r) => r.mark > this.options.committedSeq);
    if (unrecorded.length === 0) return;
    if (this.recorder === undefined) {
      this.reported = unrecorded;
      return;
    }
    this.unrecorded = unrecorded;
    this.placeRecords();
  }

  private fail(reason: string, options: { leaveRunning?: boolean } = {}): void {
    if (this.letGo || this.ended) return;
    this.letGo = true;
    this.socket.destroy();
    this.sink.lost?.(reason, options.leaveRunning === true);
  }

  private inputClosedError(): SwitchboardError {
    return new SwitchboardError(
      "INPUT_CLOSED",
      `process ${this.pid} closed its input (stdin) and reads no more; it still runs and takes signals`,
    );
  }
}

function signalName(signal: number): string | undefined {
  return Object.entries(osConstants.signals).find(([, n]) => n === signal)?.[0];
}
