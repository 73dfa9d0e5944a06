import { afterAll } from "vitest";
import { runFileCleanups } from "./helpers/cleanup.js";

// Before the file's own hooks, so after them at the end: its gateways close before their dirs go.
afterAll(runFileCleanups);
