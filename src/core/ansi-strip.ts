/**
 * Terminal output as plain text, fed in pieces: escape sequences (CSI, OSC, DCS and the other
 * string controls, two-byte ESC sequences) and control characters other than tab and newline
 * are dropped (so `\r\n` becomes `\n`). A sequence split across pieces is dropped whole: the state
 * carries over from one `push` to the next. Pure (no `node:*`): the server and the UI use it.
 */
export class AnsiStripper {
  private state: "text" | "esc" | "csi" | "string" | "string-esc" | "esc-intermediate" = "text";
  /** The text of the next piece of output. */
  push(text: string): string {
    let out = "";
    let runStart = -1;
    const flush = (i: number) => {
      if (runStart >= 0) out += text.slice(runStart, i);
      runStart = -1;
    };
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      switch (this.state) {
        case "text":
          if (c >= 0x20 && c !== 0x7f && !(c >= 0x80 && c <= 0x9f)) {
            if (runStart < 0) runStart = i;
            continue;
          }
          flush(i);
          if (c === 0x1b) this.state = "esc";
          else if (c === 0x9b) this.state = "csi";
          else if (c === 0x9d || c === 0x90 || c === 0x98 || c === 0x9e || c === 0x9f) this.state = "string";
          // `\r` goes: before `\n` it is the line end the `\n` gives; alone (a progress bar
          // redrawing its line) the line goes on.
          else if (c === 0x0a || c === 0x09) out += text[i];
          continue;
        case "esc":
          if (c === 0x5b) this.state = "csi";
          else if (c === 0x5d || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) this.state = "string";
          else if (c >= 0x20 && c <= 0x2f) this.state = "esc-intermediate";
          else this.state = "text";
          continue;
        case "esc-intermediate":
          if (c < 0x20 || c > 0x2f) this.state = "text";
          continue;
        case "csi":
          // Parameters and intermediates (0x20-0x3f) until a final byte (0x40-0x7e).
          if (c >= 0x40 && c <= 0x7e) this.state = "text";
          else if (c === 0x1b) this.state = "esc";
          continue;
        case "string":
          // OSC, DCS, SOS, PM, APC: until BEL or ST (ESC \ or 0x9c).
          if (c === 0x07 || c === 0x9c) this.state = "text";
          else if (c === 0x1b) this.state = "string-esc";
          continue;
        case "string-esc":
          this.state = c === 0x5c ? "text" : c === 0x1b ? "string-esc" : "string";
          continue;
      }
    }
    flush(text.length);
    return out;
  }
}
