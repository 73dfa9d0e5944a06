import { openAsBlob } from "node:fs";
import { writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { FILE_UPLOAD_MAX_BYTES } from "../protocol/session-files.js";
import { positional, runCommand, writeJson } from "./context.js";
import { EXIT, UsageError } from "./exit-codes.js";
import { printable } from "./printable.js";
import { sessionOperand } from "./session-ref.js";
import type { Command } from "./commands.js";

export const PUT_USAGE = `Usage: switchboard put ID FILE [PATH]

Uploads FILE (on this machine) into the session's working directory as PATH (relative; default:
FILE's name), making missing directories, replacing a file there. At most
${FILE_UPLOAD_MAX_BYTES / (1024 * 1024)} MiB. Paths that leave the directory (.., absolute, a symlink out, a hard-linked
file) are refused and nothing is written. Logged in the session as a file.upload event. Prints
the path, size and SHA-256 (--json: the answer).`;

export const GET_USAGE = `Usage: switchboard get ID PATH [-o FILE]

Downloads PATH (relative to the session's working directory) to FILE (default: PATH's name in
the current directory; - for stdout). Confined as put is.`;

export const put: Command = (argv) =>
  runCommand(argv, { usage: PUT_USAGE, options: {}, positionals: 3 }, async (ctx, parsed) => {
    const file = positional(parsed, 1, "the file to upload");
    const target = parsed.positionals[2] ?? basename(file);
    const id = await sessionOperand(ctx, parsed);
    let body: Blob;
    try {
      // Streamed from the disk as it is sent, not read whole first.
      body = await openAsBlob(file);
    } catch (error) {
      throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
    }
    const answer = await ctx.http.uploadFile(id, target, body);
    if (ctx.json) writeJson(ctx, answer);
    else ctx.out.write(`${printable(answer.path)} ${answer.bytes} bytes sha256 ${answer.sha256}\n`);
    return EXIT.OK;
  });

export const get: Command = (argv) =>
  runCommand(
    argv,
    { usage: GET_USAGE, options: { output: { type: "string", short: "o" } }, positionals: 2 },
    async (ctx, parsed) => {
      const path = positional(parsed, 1, "the file's path in the session's working directory");
      const id = await sessionOperand(ctx, parsed);
      const blob = await ctx.http.downloadFile(id, path);
      const bytes = new Uint8Array(await blob.arrayBuffer());
      const output = parsed.values.output ?? basename(path);
      if (output === "-") ctx.out.write(bytes);
      else await writeFile(output, bytes);
      if (ctx.json && output !== "-") writeJson(ctx, { path, bytes: bytes.length, output });
      return EXIT.OK;
    },
  );
