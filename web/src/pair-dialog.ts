import type { DeviceListing, HttpClient, Pairing, PairingAddress } from "../../src/client/index.js";
import { fill, h } from "./dom.js";
import { dialogHead, formField, modalDialog } from "./form-dialog.js";
import { errorText } from "./format.js";

/**
 * "Pair a device" (admins): makes a one-time pairing code for a device name, role and sessions,
 * shows its URL as a QR code to scan with the phone, and lists the paired devices with Revoke.
 * The link starts with an address the phone can reach, chosen among those the gateway lists
 * (`GET /v1/devices/addresses`); when there is none, the dialog says how to make one.
 * The code is in the URL's fragment, which the phone's browser never sends (docs/security.md,
 * "Pairing codes").
 */
export class PairDialog {
  readonly element: HTMLDialogElement;
  private readonly error = h("p", { class: "form-error", role: "alert" });
  private readonly result = h("div", { class: "pair-result", "data-test": "pair-result" });
  private readonly list = h("ul", { class: "device-list", "data-test": "device-list" });
  private readonly where = h("div", { class: "pair-where", "data-test": "pair-where" });
  private readonly base = h("select", { name: "base", "data-test": "pair-base" });
  private readonly baseHint = h("small", { class: "muted", "data-test": "pair-base-hint" });
  private addresses: PairingAddress[] = [];
  private readonly inputs = {
    name: h("input", { name: "name", value: "phone", autocomplete: "off", maxlength: 64, required: true }),
    role: h(
      "select",
      { name: "role" },
      h("option", { value: "operator" }, "operator: watch and steer"),
      h("option", { value: "viewer" }, "viewer: watch only"),
    ),
    sessions: h("input", { name: "sessions", placeholder: "every session", autocomplete: "off", spellcheck: "false" }),
  };

  constructor(
    private readonly http: HttpClient,
    private readonly toast: (message: string, kind?: "error" | "info") => void,
  ) {
    const form = h(
      "form",
      { class: "create-form", method: "dialog" },
      dialogHead("Pair a device", () => this.close()),
      h(
        "div",
        { class: "fields" },
        formField("Device name", this.inputs.name),
        formField("Role", this.inputs.role),
        formField("Sessions", this.inputs.sessions, "Names (* and ? match) or whole ids, separated by spaces"),
        this.where,
      ),
      this.error,
      this.result,
      h(
        "footer",
        { class: "dialog-foot" },
        h("button", { class: "btn", type: "button", onclick: () => this.close() }, "Close"),
        h("button", { class: "btn btn-primary", type: "submit", "data-test": "pair-create" }, "Show QR code"),
      ),
      h("h3", { class: "device-list-head" }, "Paired devices"),
      this.list,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.create();
    });
    this.base.addEventListener("change", () => this.showHint());
    this.element = modalDialog("Pair a device", () => this.close(), form);
  }

  open(): void {
    fill(this.error);
    fill(this.result);
    if (!this.element.open) this.element.showModal();
    void this.refresh();
    void this.listAddresses();
  }

  close(): void {
    if (this.element.open) this.element.close();
    // The code is single use and short-lived; it is not left on screen.
    fill(this.result);
  }

  private async create(): Promise<void> {
    fill(this.error);
    const sessions = this.inputs.sessions.value.split(/\s+/).filter((s) => s !== "");
    let pairing: Pairing;
    try {
      pairing = await this.http.createPairing({
        name: this.inputs.name.value.trim(),
        role: this.inputs.role.value === "viewer" ? "viewer" : "operator",
        ...(sessions.length > 0 ? { sessions } : {}),
        base: this.base.value || location.origin,
      });
    } catch (error) {
      fill(this.error, errorText(error));
      return;
    }
    const url = pairing.url ?? `${location.origin}${pairing.path}`;
    const until = new Date(pairing.expiresAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    fill(
      this.result,
      pairing.qrSvg
        ? h("img", {
            class: "pair-qr",
            alt: "QR code of the pairing link",
            src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(pairing.qrSvg)}`,
            "data-test": "pair-qr",
          })
        : null,
      h("p", { class: "muted" }, `Scan it with the device, or open this link there. It works once, until ${until}.`),
      h("code", { class: "pair-url", "data-test": "pair-url" }, url),
    );
  }

  /** Offers the addresses a phone can reach, secure ones first; warns when there is none. */
  private async listAddresses(): Promise<void> {
    let listed: PairingAddress[];
    try {
      listed = await this.http.pairingAddresses();
    } catch (error) {
      fill(this.where, h("p", { class: "muted" }, `Could not list the gateway's addresses: ${errorText(error)}`));
      return;
    }
    this.addresses = withThisPage(listed).filter((a) => a.reachable);
    fill(this.base, ...this.addresses.map((a) => h("option", { value: a.url }, `${a.url} · ${KIND_LABEL[a.kind]}`)));
    if (this.addresses.length === 0) {
      const port = location.port || (location.protocol === "https:" ? "443" : "80");
      fill(
        this.where,
        h(
          "div",
          { class: "pair-warning", role: "status", "data-test": "pair-loopback" },
          h("strong", null, "A phone cannot reach this gateway: it listens on this machine's loopback only."),
          h(
            "p",
            null,
            "Restart it with ",
            h("code", null, "--host 0.0.0.0"),
            " to reach it over your Wi-Fi (no notifications over plain http), or give it HTTPS: ",
            h("code", null, "--tls-cert FILE --tls-key FILE"),
            ", a TLS proxy in front of it, or Tailscale Serve (",
            h("code", null, `tailscale serve --bg --https=443 http://127.0.0.1:${port}`),
            "). The code below opens on this machine only.",
          ),
        ),
      );
      return;
    }
    fill(this.where, formField("Address the phone opens", this.base), this.baseHint);
    this.showHint();
  }

  private showHint(): void {
    const chosen = this.addresses.find((a) => a.url === this.base.value);
    if (!chosen) return fill(this.baseHint);
    const parts: string[] = [];
    if (chosen.note) parts.push(`Works ${chosen.note}.`);
    parts.push(
      chosen.secure
        ? "HTTPS: notifications work (on an iPhone, once the page is added to the home screen)."
        : "Plain http: the phone can use the page, but not notifications, which need HTTPS.",
    );
    if (chosen.kind === "lan") parts.push("The phone must be on the same network.");
    fill(this.baseHint, parts.join(" "));
  }

  private async refresh(): Promise<void> {
    let devices: DeviceListing[];
    try {
      devices = await this.http.listDevices();
    } catch (error) {
      fill(this.list, h("li", { class: "muted" }, errorText(error)));
      return;
    }
    fill(
      this.list,
      devices.length === 0 ? h("li", { class: "muted" }, "None yet.") : null,
      ...devices.map((d) =>
        h(
          "li",
          { class: "device", "data-device": d.id },
          h("span", { class: "device-name" }, d.name),
          h("span", { class: `role role-${d.role}` }, d.role),
          h("span", { class: "muted device-sessions" }, d.sessions.join(" ")),
          h(
            "button",
            {
              class: "btn btn-small",
              type: "button",
              "data-test": "device-revoke",
              onclick: () => void this.revoke(d),
            },
            "Revoke",
          ),
        ),
      ),
    );
  }

  private async revoke(device: DeviceListing): Promise<void> {
    try {
      await this.http.revokeDevice(device.id);
      this.toast(`Unpaired ${device.name}: its connections were closed.`, "info");
    } catch (error) {
      this.toast(`Could not unpair ${device.name}: ${errorText(error)}`, "error");
    }
    await this.refresh();
  }
}

const KIND_LABEL: Record<PairingAddress["kind"], string> = {
  listen: "its address",
  lan: "this machine on the network",
  "allowed-host": "allowedHosts",
  tailscale: "Tailscale",
};

/**
 * The gateway's listing, with this page's own origin when it is not loopback and not
 * listed: a page opened through a proxy the gateway does not know of is reachable there.
 */
function withThisPage(listed: readonly PairingAddress[]): PairingAddress[] {
  const host = location.hostname.replace(/^\[|\]$/g, "");
  const loopback = host === "localhost" || host.startsWith("127.") || host === "::1";
  if (loopback || listed.some((a) => a.url === location.origin)) return [...listed];
  const here: PairingAddress = {
    url: location.origin,
    kind: "listen",
    reachable: true,
    secure: location.protocol === "https:",
  };
  // Secure first (notifications work there), the gateway's order otherwise.
  return [here, ...listed].sort((a, b) => Number(b.secure) - Number(a.secure));
}
