import type { AgentUsage } from "../../src/protocol/index.js";
import { h } from "./dom.js";

/** The meter turns amber past this share of the context window, red past {@link USAGE_FULL}. */
export const USAGE_HIGH = 0.75;
export const USAGE_FULL = 0.9;

/** "1.2k", "200k", "1.5M": token counts as a glance reads them. */
export function tokens(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "?";
  if (n < 1000) return String(Math.round(n));
  if (n < 1_000_000) return `${trim(n / 1000)}k`;
  return `${trim(n / 1_000_000)}M`;
}

function trim(n: number): string {
  return n >= 100 ? String(Math.round(n)) : n.toFixed(1).replace(/\.0$/, "");
}

/**
 * `amount` in `currency` ("$0.25", "0,25 €" as the browser's locale writes it); a currency the
 * browser does not know (the agent's word) is written after the number, as text.
 */
export function money(amount: number, currency: string): string {
  try {
    return new Intl.NumberFormat(undefined, {
      style: "currency",
      currency,
      maximumFractionDigits: amount !== 0 && Math.abs(amount) < 0.01 ? 4 : 2,
    }).format(amount);
  } catch (error) {
    // RangeError: not an ISO 4217 code.
    if (!(error instanceof RangeError)) throw error;
    return `${amount.toFixed(2)} ${currency}`;
  }
}

/** The share of the window used, 0 to 1 (0 when the agent gave no size). */
export function usageShare(usage: AgentUsage): number {
  return usage.size > 0 ? Math.min(1, Math.max(0, usage.used / usage.size)) : 0;
}

/**
 * The agent's context window and cost (`agentState.usage`, ACP `usage_update`): "12k / 200k" with
 * a bar, and the cost when the agent gave one. `compact` (a list row, a phone's header): the
 * share in per cent and the cost. Its title says it all in words. Numbers only: nothing the agent
 * wrote but the currency code, and that as text.
 */
export function usageMeter(usage: AgentUsage, options: { compact: boolean }): HTMLElement {
  const share = usageShare(usage);
  const level = share >= USAGE_FULL ? "full" : share >= USAGE_HIGH ? "high" : "ok";
  const percent = `${Math.round(share * 100)}%`;
  const cost = usage.cost ? money(usage.cost.amount, usage.cost.currency) : null;
  const title = `Context: ${usage.used.toLocaleString()} of ${usage.size.toLocaleString()} tokens (${percent})${
    cost !== null ? ` · cost so far ${cost}` : ""
  }`;
  const fill = h("span", { class: "usage-fill" });
  // CSSOM, not a style attribute: the page's CSP allows no inline style attributes.
  fill.style.width = percent;
  return h(
    "span",
    {
      class: `usage-meter usage-${level}${options.compact ? " compact" : ""}`,
      "data-testid": "usage-meter",
      "data-used": usage.used,
      "data-size": usage.size,
      title,
      "aria-label": title,
      role: "img",
    },
    h("span", { class: "usage-bar" }, fill),
    h(
      "span",
      { class: "usage-text" },
      h("span", { class: "usage-long" }, `${tokens(usage.used)} / ${tokens(usage.size)}`),
      h("span", { class: "usage-short" }, percent),
    ),
    cost !== null ? h("span", { class: "usage-cost" }, cost) : null,
  );
}
