import type { HttpClient, ShareListing } from "../../src/client/index.js";
import { SHARE_TTL_DEFAULT_MS } from "../../src/protocol/index.js";
import { fill, h, icon } from "./dom.js";
import { dialogHead, formField, modalDialog } from "./form-dialog.js";
import { errorText } from "./format.js";

/** The lifetimes the dialog offers (the gateway takes 1 min to 7 days). */
const TTL_CHOICES: ReadonlyArray<[label: string, ms: number]> = [
  ["1 hour", 3_600_000],
  ["8 hours", 8 * 3_600_000],
  ["24 hours", SHARE_TTL_DEFAULT_MS],
  ["7 days", 7 * 24 * 3_600_000],
];

/**
 * "Share" on a session page (admins and the session's operators): makes a link that opens this
 * one session only — read-only, or able to take control when nobody holds it — for a name and a
 * lifetime; shows it once with a Copy button, and lists the live links with Revoke, which closes
 * their pages within a second (docs/ui.md, "Sharing a session"; docs/security.md, "Share links").
 */
export class ShareDialog {
  readonly element: HTMLDialogElement;
  private readonly error = h("p", { class: "form-error", role: "alert" });
  private readonly result = h("div", { class: "share-result", "data-test": "share-result" });
  private readonly list = h("ul", { class: "device-list", "data-test": "share-list" });
  private readonly inputs = {
    name: h("input", { name: "name", value: "teammate", autocomplete: "off", maxlength: 64, required: true }),
    ttl: h(
      "select",
      { name: "ttl", "data-test": "share-ttl" },
      ...TTL_CHOICES.map(([label, ms]) =>
        h("option", { value: String(ms), ...(ms === SHARE_TTL_DEFAULT_MS ? { selected: true } : {}) }, label),
      ),
    ),
    allowControl: h("input", { type: "checkbox", name: "allowControl", "data-test": "share-allow-control" }),
  };
  private session = "";

  constructor(
    private readonly http: HttpClient,
    private readonly toast: (message: string, kind?: "error" | "info") => void,
  ) {
    const form = h(
      "form",
      { class: "create-form", method: "dialog" },
      dialogHead("Share this session", () => this.close()),
      h(
        "div",
        { class: "fields" },
        formField("Name", this.inputs.name, "Shown to everyone watching, as share:NAME"),
        formField("Expires after", this.inputs.ttl),
        h(
          "label",
          { class: "field field-check" },
          this.inputs.allowControl,
          h("span", null, "Allow control: may take control when nobody holds it"),
        ),
      ),
      this.error,
      this.result,
      h(
        "footer",
        { class: "dialog-foot" },
        h("button", { class: "btn", type: "button", onclick: () => this.close() }, "Close"),
        h("button", { class: "btn btn-primary", type: "submit", "data-test": "share-create" }, "Create link"),
      ),
      h("h3", { class: "device-list-head" }, "Live links"),
      this.list,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.create();
    });
    this.element = modalDialog("Share this session", () => this.close(), form);
  }

  open(session: string): void {
    this.session = session;
    fill(this.error);
    fill(this.result);
    if (!this.element.open) this.element.showModal();
    void this.refresh();
  }

  close(): void {
    if (this.element.open) this.element.close();
    // The link is a secret: it is not left on screen.
    fill(this.result);
  }

  private async create(): Promise<void> {
    fill(this.error);
    try {
      const made = await this.http.createShare(this.session, {
        name: this.inputs.name.value.trim(),
        ttlMs: Number(this.inputs.ttl.value),
        allowControl: this.inputs.allowControl.checked,
        base: location.origin,
      });
      const until = new Date(made.expiresAt).toLocaleString([], {
        weekday: "short",
        hour: "2-digit",
        minute: "2-digit",
      });
      const copy = h(
        "button",
        { class: "btn btn-small", type: "button", "data-test": "share-copy" },
        icon("copy"),
        h("span", null, "Copy"),
      );
      copy.addEventListener("click", () => void this.copy(made.url, copy));
      fill(
        this.result,
        h("p", { class: "muted" }, `Send this link. It opens this session only, until ${until}, or until revoked.`),
        h(
          "div",
          { class: "share-url-row" },
          h("code", { class: "pair-url", "data-test": "share-url" }, made.url),
          copy,
        ),
      );
    } catch (error) {
      fill(this.error, errorText(error));
      return;
    }
    await this.refresh();
  }

  private async copy(url: string, button: HTMLElement): Promise<void> {
    try {
      await navigator.clipboard.writeText(url);
      fill(button, icon("check"), h("span", null, "Copied"));
    } catch (error) {
      // No clipboard (an insecure origin, a denied permission): the link stays there to select.
      this.toast(`Could not copy: ${errorText(error)}; select the link instead`, "error");
    }
  }

  private async refresh(): Promise<void> {
    let shares: ShareListing[];
    try {
      shares = await this.http.listShares(this.session);
    } catch (error) {
      fill(this.list, h("li", { class: "muted" }, `Could not list the links: ${errorText(error)}`));
      return;
    }
    if (shares.length === 0) {
      fill(this.list, h("li", { class: "muted" }, "No live links."));
      return;
    }
    fill(
      this.list,
      ...shares.map((s) => {
        const until = new Date(s.expiresAt).toLocaleString([], {
          weekday: "short",
          hour: "2-digit",
          minute: "2-digit",
        });
        return h(
          "li",
          { class: "device", "data-test": "share-row", "data-share": s.id },
          h("span", { class: "device-name" }, s.name),
          h("span", { class: "muted" }, `${s.allowControl ? "may take control" : "read-only"} · until ${until}`),
          h(
            "button",
            {
              class: "btn btn-small btn-danger-ghost",
              type: "button",
              "data-test": "share-revoke",
              onclick: () => void this.revoke(s),
            },
            "Revoke",
          ),
        );
      }),
    );
  }

  private async revoke(share: ShareListing): Promise<void> {
    try {
      await this.http.revokeShare(this.session, share.id);
      this.toast(`Revoked the link ${share.name}: its pages are closed`, "info");
    } catch (error) {
      this.toast(`Could not revoke ${share.name}: ${errorText(error)}`, "error");
    }
    await this.refresh();
  }
}
