import type { ITheme } from "@xterm/xterm";

/** xterm colours matching styles.css (a dark theme with readable ANSI colours). */
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
