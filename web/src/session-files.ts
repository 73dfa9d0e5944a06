import { FILE_UPLOAD_MAX_BYTES } from "../../src/protocol/session-files.js";
import type { AppContext } from "./context.js";
import { h, icon } from "./dom.js";
import { errorText } from "./format.js";

/**
 * Files into a session's working directory (docs/ui.md, "Files"): an Upload button (pick a file,
 * or on a phone take a photo with the camera) and files dropped on `dropTarget` go to
 * `PUT /v1/sessions/:id/files` under their own name. Not a prompt's attachments
 * (prompt-attachments.ts): these land on disk where the session's programs see them.
 */
export class SessionFiles {
  readonly element: HTMLElement;

  constructor(
    private readonly ctx: Pick<AppContext, "http" | "toast">,
    private readonly sessionId: string,
    dropTarget: HTMLElement,
  ) {
    const pick = h("input", { type: "file", multiple: true, hidden: true, "data-test": "upload-input" });
    const camera = h("input", { type: "file", accept: "image/*", capture: "environment", hidden: true });
    for (const input of [pick, camera]) {
      input.addEventListener("change", () => {
        const files = [...(input.files ?? [])];
        input.value = "";
        void this.upload(files);
      });
    }
    this.element = h(
      "span",
      { class: "session-files" },
      h(
        "button",
        {
          class: "btn btn-small btn-ghost",
          type: "button",
          title: "Upload files into the session's working directory (or drop them on the header)",
          "data-test": "upload",
          onclick: () => pick.click(),
        },
        icon("upload"),
        h("span", null, "Upload"),
      ),
      h(
        "button",
        {
          class: "btn btn-small btn-ghost btn-icon camera-upload",
          type: "button",
          title: "Take a photo into the session's working directory",
          "aria-label": "Photo into the working directory",
          onclick: () => camera.click(),
        },
        icon("camera"),
      ),
      pick,
      camera,
    );
    dropTarget.addEventListener("dragover", (event) => {
      if (!event.dataTransfer?.types.includes("Files")) return;
      event.preventDefault();
      dropTarget.classList.add("dropping");
    });
    dropTarget.addEventListener("dragleave", () => dropTarget.classList.remove("dropping"));
    dropTarget.addEventListener("drop", (event) => {
      dropTarget.classList.remove("dropping");
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length === 0) return;
      event.preventDefault();
      void this.upload(files);
    });
  }

  /** Uploads each file under its name, one after the other; each outcome is a toast. */
  private async upload(files: File[]): Promise<void> {
    for (const file of files) {
      if (file.size > FILE_UPLOAD_MAX_BYTES) {
        this.ctx.toast(`${file.name} is larger than ${FILE_UPLOAD_MAX_BYTES / (1024 * 1024)} MiB`, "error");
        continue;
      }
      try {
        const done = await this.ctx.http.uploadFile(this.sessionId, file.name, file);
        this.ctx.toast(`Uploaded ${done.path} (${done.bytes} bytes)`, "info");
      } catch (error) {
        this.ctx.toast(`Could not upload ${file.name}: ${errorText(error)}`, "error");
      }
    }
  }
}

/**
 * A link that downloads `path` (relative to the session's cwd) from `GET /v1/sessions/:id/files`:
 * fetched with the page's credentials and saved under its name.
 */
export function downloadLink(ctx: Pick<AppContext, "http" | "toast">, sessionId: string, path: string): HTMLElement {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return h(
    "button",
    {
      class: "btn btn-ghost btn-icon btn-small download-link",
      type: "button",
      title: `Download ${path}`,
      "aria-label": `Download ${path}`,
      "data-test": "download",
      "data-path": path,
      onclick: async (event: Event) => {
        event.stopPropagation();
        try {
          const blob = await ctx.http.downloadFile(sessionId, path);
          const url = URL.createObjectURL(blob);
          const a = h("a", { href: url, download: name });
          a.click();
          setTimeout(() => URL.revokeObjectURL(url), 0);
        } catch (error) {
          ctx.toast(`Could not download ${path}: ${errorText(error)}`, "error");
        }
      },
    },
    icon("download"),
  );
}
