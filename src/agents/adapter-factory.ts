import { SwitchboardError } from "../protocol/index.js";
import { AcpAdapter } from "./acp-adapter.js";
import type { AdapterContext, AgentAdapter, AgentSpec } from "./adapter.js";
import { CommandAdapter } from "./command-adapter.js";
import { EchoAdapter } from "./echo-adapter.js";

/**
 * Chooses the adapter for an agent spec. Validates at once, so a bad config fails when the
 * session is created, not at the first prompt.
 * @throws SwitchboardError CONFIG_INVALID when `acp` or `command` has no command.
 */
export function adapterFactoryFor(spec: AgentSpec): (context: AdapterContext) => AgentAdapter {
  switch (spec.adapter) {
    case "echo":
      return (context) => new EchoAdapter(context);
    case "command": {
      const command = requireCommand(spec);
      return (context) => new CommandAdapter(context, { command, env: spec.env });
    }
    case "acp": {
      const command = requireCommand(spec);
      return (context) => new AcpAdapter(context, { command, env: spec.env, authMethod: spec.authMethod });
    }
  }
}

function requireCommand(spec: AgentSpec): string[] {
  if (!spec.command || spec.command.length === 0) {
    throw new SwitchboardError("CONFIG_INVALID", `agent adapter "${spec.adapter}" needs a command (argv array)`);
  }
  return spec.command;
}
