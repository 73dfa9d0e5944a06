/**
 * What a terminal sends by itself, not typed: its answers to the queries programs print (cursor
 * position, device attributes, colours, modes, window size) and focus reports. A viewer's
 * terminal (the CLI's, or xterm.js in the page) answers every query in the output it shows, so
 * only the client in control of the session may pass such answers on: from a viewer they
 * answered vim a second time, and from a page that had released control they took the lease
 * back by themselves (and resized the PTY to the page's window).
 */
const REPORT = new RegExp(
  [
    String.raw`\x1b\[\??\d+;\d+R`, // cursor position (CPR, DECXCPR)
    String.raw`\x1b\[[?>=]?[\d;]*c`, // device attributes (DA1, DA2, DA3)
    String.raw`\x1b\[\??\d*n`, // status (DSR: CSI 0 n; CSI ? ... n)
    String.raw`\x1b\[\??[\d;]+\$y`, // mode reports (DECRPM)
    String.raw`\x1b\[\d+(?:;\d+){0,2}t`, // window reports (XTWINOPS)
    String.raw`\x1b\[\?[\d;]*u`, // kitty keyboard flags
    String.raw`\x1b\[[IO]`, // focus in / out
    String.raw`\x1b\]\d+(?:;[^\x07\x1b]*)?(?:\x07|\x1b\\)`, // OSC answers (colours: OSC 10;rgb:…)
    String.raw`\x1bP[^\x1b]*\x1b\\`, // DCS answers (DECRQSS, XTVERSION, XTGETTCAP)
  ].join("|"),
  "y",
);

/** True when `text` is one or more terminal reports and nothing else (no key typed with them). */
export function isTerminalReport(text: string): boolean {
  if (text.length === 0 || text.charCodeAt(0) !== 0x1b) return false;
  let at = 0;
  while (at < text.length) {
    REPORT.lastIndex = at;
    const m = REPORT.exec(text);
    if (m === null || m[0].length === 0) return false;
    at += m[0].length;
  }
  return true;
}
