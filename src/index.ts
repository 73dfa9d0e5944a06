// The package root (`import … from "switchboard"`): the types a plugin is written against, and
// nothing that runs. Types only, so that the import costs a plugin (or a program) no code: the
// gateway's runtime is reached through the CLI, and the SDK through `switchboard/client`.
export type * from "./plugins/api.js";
export type { HttpHookRequest } from "./plugins/types.js";
export type { HttpHookResponse } from "./plugins/ipc.js";
export type { PluginPermission } from "./plugins/permissions.js";
export type { CommandResult } from "./plugins/run-command.js";
