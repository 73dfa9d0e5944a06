import type { PluginListing } from "../../src/client/index.js";
import type { AppContext, View } from "./context.js";
import { fill, h, icon, morphChildren } from "./dom.js";
import { errorText } from "./format.js";

/** How often the page asks again: a crashed plugin's restarts show without a reload. */
const PLUGINS_POLL_MS = 2_000;

const STATE_LABEL: Record<PluginListing["state"], string> = {
  starting: "Starting",
  running: "Running",
  restarting: "Restarting",
  failed: "Failed",
  stopped: "Stopped",
};

/** The badge classes of the sessions list that mean the same (styles.css). */
const STATE_CLASS: Record<PluginListing["state"], string> = {
  starting: "state-working",
  running: "state-running",
  restarting: "state-waiting",
  failed: "state-failed",
  stopped: "state-exited",
};

/**
 * `#/plugins`: the configured plugins, their state, agents and permissions and why one failed,
 * polled while the page is open. Admins can restart one (`POST /v1/plugins/:id/restart`).
 */
export class PluginsView implements View {
  readonly element: HTMLElement;
  private readonly rowsEl: HTMLElement;
  private readonly summaryEl: HTMLElement;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly abort = new AbortController();
  private plugins: PluginListing[] | null = null;
  /** Plugins being restarted from this page: their button waits for the answer. */
  private readonly restarting = new Set<string>();

  constructor(private readonly ctx: AppContext) {
    this.summaryEl = h("p", { class: "list-summary" });
    // One listener for every row's button, which finds its plugin by the row it is in: rows are
    // updated in place (the focus stays on a button across polls), so a listener of the button
    // itself would keep the plugin it was first built for when a reload moved the rows.
    this.rowsEl = h(
      "div",
      {
        class: "rows",
        role: "list",
        onclick: (event) => {
          const button = (event.target as Element).closest("[data-test=restart-plugin]");
          const id = button?.closest("[data-plugin]")?.getAttribute("data-plugin");
          if (id) void this.restart(id);
        },
      },
      loading(),
    );
    this.element = h(
      "section",
      { class: "plugins-view list-full", "aria-label": "Plugins" },
      h("header", { class: "list-head" }, h("div", { class: "list-title" }, h("h1", null, "Plugins")), this.summaryEl),
      this.rowsEl,
    );
    void this.poll();
  }

  dispose(): void {
    this.abort.abort();
    clearTimeout(this.timer);
  }

  debug(): unknown {
    return { plugins: this.plugins?.map((p) => ({ id: p.id, state: p.state })) ?? null };
  }

  private async poll(): Promise<void> {
    try {
      this.plugins = await this.ctx.http.listPlugins({ signal: this.abort.signal });
      this.render();
    } catch (error) {
      if (this.abort.signal.aborted) return;
      fill(this.rowsEl, h("div", { class: "placeholder muted" }, `Cannot list the plugins: ${errorText(error)}`));
    }
    if (!this.abort.signal.aborted) this.timer = setTimeout(() => void this.poll(), PLUGINS_POLL_MS);
  }

  private render(): void {
    const plugins = this.plugins ?? [];
    const running = plugins.filter((p) => p.state === "running").length;
    const failed = plugins.filter((p) => p.state === "failed").length;
    this.summaryEl.textContent =
      plugins.length === 0
        ? ""
        : `${plugins.length} configured · ${running} running${failed > 0 ? ` · ${failed} failed` : ""}`;
    if (plugins.length === 0) {
      fill(
        this.rowsEl,
        h(
          "div",
          { class: "placeholder muted" },
          h("p", null, "No plugins are configured."),
          h("p", null, "Add them under plugins.entries in the gateway's config: see docs/plugins.md."),
        ),
      );
      return;
    }
    if (this.rowsEl.querySelector("[data-plugin]") === null) this.rowsEl.replaceChildren();
    morphChildren(
      this.rowsEl,
      plugins.map((p) => this.row(p)),
    );
  }

  private row(p: PluginListing): HTMLElement {
    const facts = [
      p.pid !== null ? `pid ${p.pid}` : null,
      `${p.restarts} restart${p.restarts === 1 ? "" : "s"}`,
      p.agents.length > 0 ? `agents: ${p.agents.join(", ")}` : null,
      p.permissions.length > 0 ? `permissions: ${p.permissions.join(", ")}` : null,
    ].filter((f) => f !== null);
    return h(
      "div",
      { class: `row plugin-row state-${p.state}`, role: "listitem", "data-plugin": p.id },
      h("span", { class: "kind-icon kind-plugin", "aria-hidden": "true" }, icon("tool")),
      h(
        "span",
        { class: "row-main" },
        h(
          "span",
          { class: "row-line" },
          h("span", { class: "row-title" }, p.id),
          h("span", { class: `badge ${STATE_CLASS[p.state]}` }, h("span", { class: "dot" }), STATE_LABEL[p.state]),
          p.publicHooks
            ? h(
                "span",
                { class: "badge state-waiting", title: `/hooks/${p.id}/… takes requests without a token` },
                "Public hooks",
              )
            : null,
        ),
        h("span", { class: "row-sub" }, facts.join(" · ")),
        p.lastError !== null ? h("pre", { class: "plugin-error", "data-test": "last-error" }, p.lastError) : null,
      ),
      this.ctx.me.role === "admin" ? this.restartButton(p) : null,
    );
  }

  private restartButton(p: PluginListing): HTMLElement {
    const busy = this.restarting.has(p.id);
    return h(
      "button",
      {
        class: "btn btn-small",
        type: "button",
        disabled: busy,
        "data-test": "restart-plugin",
        "aria-label": `Restart ${p.id}`,
      },
      icon("power"),
      busy ? "Restarting…" : "Restart",
    );
  }

  private async restart(id: string): Promise<void> {
    if (this.restarting.has(id)) return;
    this.restarting.add(id);
    this.render();
    try {
      const after = await this.ctx.http.restartPlugin(id, { signal: this.abort.signal });
      // Shown at once; the poll goes on as before.
      this.plugins = this.plugins?.map((p) => (p.id === id ? after : p)) ?? null;
      if (after.state === "running") this.ctx.toast(`${id} restarted (pid ${after.pid ?? "?"})`);
      else this.ctx.toast(`${id} did not come back: ${after.lastError ?? after.state}`, "error");
    } catch (error) {
      if (this.abort.signal.aborted) return;
      this.ctx.toast(`Restarting ${id} failed: ${errorText(error)}`, "error");
    } finally {
      this.restarting.delete(id);
    }
    if (!this.abort.signal.aborted) this.render();
  }
}

function loading(): HTMLElement {
  return h("div", { class: "placeholder muted" }, h("span", { class: "spinner" }), "Loading plugins…");
}
