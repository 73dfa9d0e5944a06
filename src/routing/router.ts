import { SwitchboardError, InternalError } from "../protocol/errors.js";
import type { Binding } from "./bindings.js";
import type { BindingIndex } from "./binding-index.js";
import { DEFAULT_SESSION_MODE, sessionKey } from "./session-key.js";
import { accountOf } from "./tiers.js";
import type { MatchedBy, RoutableMessage } from "./tiers.js";

/**
 * Where a message goes: the body of `POST /v1/route`. `bindingIndex` is the winning binding's
 * position in `bindings`, or null when the message fell back to `defaultAgent`
 * (`matchedBy: "default"`).
 */
export interface Route {
  agentId: string;
  matchedBy: MatchedBy;
  bindingIndex: number | null;
  sessionKey: string;
}

/**
 * A compiled routing config. Immutable: a reload compiles a new Router and swaps it in
 * (see `RoutingTable`). Get one from `compileRouting`.
 */
export interface Router {
  /** The validated bindings, in config order (`bindingIndex` points into this). */
  readonly bindings: readonly Binding[];
  readonly defaultAgent: string | undefined;
  /**
   * Routes a message: the first binding of the most specific matching tier, else `defaultAgent`,
   * else null (NO_ROUTE). O(1) in the number of bindings (O(roles) with role bindings).
   * @example
   * router.resolve({ channel: "discord", peer: { kind: "direct", id: "u-1" } });
   * // => { agentId: "coder", matchedBy: "peer", bindingIndex: 0, sessionKey: "agent:coder:peer:discord:default:direct:u-1" }
   */
  resolve(message: RoutableMessage): Route | null;
  /** `resolve`, throwing SwitchboardError NO_ROUTE (404) instead of returning null. */
  resolveOrThrow(message: RoutableMessage): Route;
}

/** The one Router implementation: the hash index plus what a match needs to become a Route. */
export class IndexedRouter implements Router {
  constructor(
    readonly bindings: readonly Binding[],
    readonly defaultAgent: string | undefined,
    private readonly index: BindingIndex,
  ) {}

  resolve(message: RoutableMessage): Route | null {
    const match = this.index.lookup(message);
    if (match !== null) {
      const binding = this.bindings[match.bindingIndex];
      // The index holds only positions of this.bindings; a miss would be a bug in the index.
      if (binding === undefined)
        throw new InternalError(`routing index returned unknown binding ${match.bindingIndex}`);
      const { agentId } = binding;
      const mode = binding.session ?? DEFAULT_SESSION_MODE;
      return {
        agentId,
        matchedBy: match.tier,
        bindingIndex: match.bindingIndex,
        sessionKey: sessionKey({ agentId, mode, message }),
      };
    }
    if (this.defaultAgent === undefined) return null;
    const agentId = this.defaultAgent;
    return {
      agentId,
      matchedBy: "default",
      bindingIndex: null,
      sessionKey: sessionKey({ agentId, mode: DEFAULT_SESSION_MODE, message }),
    };
  }

  resolveOrThrow(message: RoutableMessage): Route {
    const route = this.resolve(message);
    if (route !== null) return route;
    throw new SwitchboardError(
      "NO_ROUTE",
      `no binding matches channel "${message.channel}" on account "${accountOf(message)}" and no defaultAgent is configured`,
    );
  }
}

/**
 * The gateway's current Router, swapped whole on reload: a resolve sees the old config or the
 * new one, never a mix.
 * @example
 * const table = new RoutingTable(initial.router);
 * const next = compileRouting(newConfig, { knownAgents });
 * if (next.ok) table.replace(next.router); // else keep the old one and log next.errors
 */
export class RoutingTable {
  private current: Router;

  constructor(router: Router) {
    this.current = router;
  }

  get router(): Router {
    return this.current;
  }

  /** Swaps in `next`; returns the Router it replaced. */
  replace(next: Router): Router {
    const previous = this.current;
    this.current = next;
    return previous;
  }

  resolve(message: RoutableMessage): Route | null {
    return this.current.resolve(message);
  }

  resolveOrThrow(message: RoutableMessage): Route {
    return this.current.resolveOrThrow(message);
  }
}
