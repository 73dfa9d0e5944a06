import type { ITheme } from "@xterm/xterm";

/** xterm colours matching styles.css's dark theme (readable ANSI colours). */
export const TERMINAL_THEME: ITheme = {
  background: "#0c0f15",
  foreground: "#d9dee8",
  cursor: "#8ea2ff",
  cursorAccent: "#0c0f15",
  selectionBackground: "#33406680",
  black: "#1b1f29",
  red: "#f0506e",
  green: "#3ecf8e",
  yellow: "#f5c451",
  blue: "#6d8cff",
  magenta: "#c084fc",
  cyan: "#4cc9f0",
  white: "#d9dee8",
  brightBlack: "#5b6478",
  brightRed: "#ff7a93",
  brightGreen: "#6ee7b7",
  brightYellow: "#fde68a",
  brightBlue: "#9db1ff",
  brightMagenta: "#d8b4fe",
  brightCyan: "#90e0f5",
  brightWhite: "#ffffff",
};

/** xterm colours matching styles.css's light theme: ANSI colours dark enough to read on white. */
export const TERMINAL_THEME_LIGHT: ITheme = {
  background: "#fbfbfd",
  foreground: "#1f2430",
  cursor: "#3d5fe0",
  cursorAccent: "#fbfbfd",
  selectionBackground: "#b9c6f580",
  black: "#1f2430",
  red: "#c8234a",
  green: "#177a4d",
  yellow: "#8a6100",
  blue: "#2f52d6",
  magenta: "#8b3fc7",
  cyan: "#0b7490",
  white: "#c9ced9",
  brightBlack: "#5f677a",
  brightRed: "#e0355c",
  brightGreen: "#1d9460",
  brightYellow: "#a87700",
  brightBlue: "#4a6cf0",
  brightMagenta: "#a35ad9",
  brightCyan: "#0e8aab",
  brightWhite: "#8a92a6",
};

/** The system's light setting (`prefers-color-scheme`), which the whole UI follows. */
const LIGHT = "(prefers-color-scheme: light)";

/** The terminal theme for the system's setting now. */
export function terminalTheme(): ITheme {
  return matchMedia(LIGHT).matches ? TERMINAL_THEME_LIGHT : TERMINAL_THEME;
}

/** Calls `listener` with the terminal theme whenever the system's setting changes; returns how to stop. */
export function onThemeChange(listener: (theme: ITheme) => void): () => void {
  const query = matchMedia(LIGHT);
  const changed = () => listener(terminalTheme());
  query.addEventListener("change", changed);
  return () => query.removeEventListener("change", changed);
}
