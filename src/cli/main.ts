#!/usr/bin/env node
import { isPublicError } from "../protocol/errors.js";
import { reportUsageError, wantsJson } from "./context.js";
import { EXIT } from "./exit-codes.js";
import { firstOperand, hoistGlobalOptions, isGlobalOption } from "./global-options.js";
import { hideTokenArgument } from "./hide-token.js";
import { packageVersion } from "../system/package-version.js";
import { plainStacks } from "../system/stack-maps.js";

const USAGE = `switchboard — a gateway for AI coding agents and the terminals they work in

Usage:
  switchboard serve [--host H] [--port P] [--data-dir DIR] [--config FILE] [--token T] [--tls-cert F --tls-key F]
  switchboard run [--pty | --no-pty] [--name N] [--cwd D] [--worktree BRANCH [--base REF]] [--env K=V]... [--attach] [--] CMD ARGS...
  switchboard attach ID [--read-only | --force] [--since BYTE] [--detach-key KEY]   (Ctrl-] detaches)
  switchboard ls [--state STATE[,STATE]]
  switchboard logs ID [-f] [--since BYTE]
  switchboard send ID [-n] [--eof] [--] TEXT...
  switchboard signal ID SIGNAL
  switchboard kill [--remove-worktree [--discard-changes]] ID
  switchboard shutdown [--sessions]          (stops the gateway; --sessions: every session too)
  switchboard rm [-f] [--remove-worktree [--discard-changes]] ID...  |  switchboard rm --ended [--older-than AGE]
  switchboard run --agent AGENT [--name N] [--cwd D]                 (an agent session)
  switchboard prompt ID [-w] [--image FILE] [--file FILE] [--link URI] [TEXT...]
  switchboard abort ID [--all]
  switchboard permission ID REQUEST OPTION   (answers an agent's permission request)
  switchboard mode ID [MODE]                 (an agent's mode: lists or switches it)
  switchboard config ID [KEY VALUE]          (an agent's settings, the model among them)
  switchboard elicit ID REQUEST ACTION [CONTENT]   (answers an agent's elicitation)
  switchboard resume ID                      (starts a lost agent session's agent again)
  switchboard diff ID [RUN]                  (the git patch of what an agent changed in a run)
  switchboard grep PATTERN [--session ID] [--limit N]   (searches every session's log)
  switchboard put ID FILE [PATH]             (uploads FILE into the session's working directory)
  switchboard get ID PATH [-o FILE]          (downloads a file from the session's working directory)
  switchboard plugins [ID]  |  switchboard plugins restart ID
  switchboard pair [--role viewer|operator] [--sessions GLOB] [--name NAME] [--ttl 10m] [--base URL]
  switchboard devices  |  switchboard devices revoke ID
  switchboard share ID [--name N] [--ttl 24h] [--allow-control]  |  share ls ID  |  share revoke ID SHARE
  switchboard mcp [--cwd D] [--progress-ms MS]   (an MCP server on stdio, for coding agents)

ID is a session's id, its name, or the start of its id (as git takes short hashes); one that
fits several sessions is refused with their ids.
Client commands take --url (SWITCHBOARD_URL), --token (SWITCHBOARD_TOKEN), --token-file
(SWITCHBOARD_TOKEN_FILE), --data-dir (SWITCHBOARD_DATA_DIR, for its token file) and --json,
before or after the command. Exit codes: 0 ok, 1 refused,
2 usage, 3 unreachable, 4 bad token, 5 no such session (or plugin), 6 control held, 7 session ended;
attach exits with the session's exit code.
Run "switchboard <command> --help" (or "switchboard help <command>") for a command's options;
"switchboard --version" prints the version.`;

async function main(argv: string[]): Promise<number> {
  hideTokenArgument(argv);
  const [command, ...rest] = hoistGlobalOptions(argv);
  // `switchboard help run` is `switchboard run --help` (git's and npm's way of asking).
  const topic = command === "help" ? firstOperand(rest) : undefined;
  if (topic !== undefined) return main([topic, "--help"]);
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return EXIT.OK;
  }
  if (command === "--version") {
    console.log(`switchboard ${packageVersion()}`);
    return EXIT.OK;
  }
  if (command === undefined) {
    // A mistake, as every other usage error: on stderr, so `switchboard $CMD > out` shows it.
    console.error(USAGE);
    return EXIT.USAGE;
  }
  // Loaded on demand: client commands should not pay for loading the whole server.
  if (command === "serve") {
    // A gateway runs on when its output's reader is gone (`serve | tee` with tee ended): its
    // sessions matter more than its log, which then goes nowhere (src/system/log-destination.ts).
    process.stdout.off("error", onOutputError);
    process.stdout.on("error", keepServing);
    const code = await (await import("./serve.js")).serve(rest);
    // A stopped gateway exits at once, not when its loop runs dry: on that way out Node puts the
    // default signal actions back, and a repeated Ctrl-C there (npm forwards its own) would end a
    // cleanly stopped gateway "killed by SIGINT" (test/cli/serve.test.ts, signals repeated).
    process.exit(code);
  }
  // The client commands, loaded here so that `serve` never pays for them.
  const { COMMANDS } = await import("./commands.js");
  const run = COMMANDS[command];
  if (!run) {
    const why = !command.startsWith("-")
      ? `unknown command ${command}`
      : isGlobalOption(command)
        ? rest.length === 0 && !command.includes("=") && command !== "--json"
          ? `${command} needs a value`
          : `missing the command (before ${command})`
        : `unknown option ${command} (switchboard --help lists the commands, --version prints the version)`;
    return reportUsageError({ out: process.stdout, err: process.stderr }, wantsJson(argv), why, USAGE);
  }
  return run(rest);
}

/** A write to a pipe whose reader is gone (`| head` has read its line). */
function brokenPipe(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "EPIPE";
}

// Reading only the start of the output (`switchboard logs ID | head -1`) closes the pipe:
// stop quietly, as `cat` does, not with a stack trace about EPIPE.
function onOutputError(error: Error): void {
  if (brokenPipe(error)) process.exit(EXIT.BROKEN_PIPE);
  // Any other failed write (a full disk under `logs ID > file`, `> /dev/full`, a terminal gone):
  // the output is incomplete. Said in a line, as `cat` says it, not with a stack trace.
  process.stderr.write(`switchboard: cannot write the output: ${error.message}\n`);
  process.exit(EXIT.FAILURE);
}
process.stdout.on("error", onOutputError);
plainStacks();

function keepServing(_error: Error): void {
  // `serve` prints one line to stdout (where it listens): nobody left to read it loses nothing more.
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (brokenPipe(error)) process.exit(EXIT.BROKEN_PIPE);
    if (isPublicError(error)) console.error(`switchboard: ${error.code}: ${error.message}`);
    else console.error(`switchboard: ${(error as Error).message ?? String(error)}`);
    process.exitCode = 1;
  },
);
