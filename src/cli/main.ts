#!/usr/bin/env node
import { SwitchboardError } from "../protocol/index.js";
import { COMMANDS } from "./commands.js";
import { serve } from "./serve.js";

const USAGE = `switchboard — a gateway for AI coding agents and the terminals they work in

Usage:
  switchboard serve [--host H] [--port P] [--data-dir DIR] [--config FILE] [--token T]
  switchboard <command> [options]

Run "switchboard <command> --help" for a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "serve") return serve(rest);
  const run = COMMANDS[command];
  if (!run) {
    console.error(`switchboard: unknown command ${command}\n\n${USAGE}`);
    return 2;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof SwitchboardError) console.error(`switchboard: ${error.code}: ${error.message}`);
    else console.error(`switchboard: ${(error as Error).message ?? String(error)}`);
    process.exitCode = 1;
  },
);
