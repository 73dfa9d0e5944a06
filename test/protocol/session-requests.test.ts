import { describe, expect, it } from "vitest";
import { Env, Signal } from "../../src/protocol/sessions.js";

const problems = (result: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) =>
  result.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);

describe("what a session request's environment and signal are refused with", () => {
  it("names the variable whose name is not one, and says what a name is (zod said only 'Invalid key in record')", () => {
    for (const name of ["A=B", "1ABC", "", "A-B", "X".repeat(257)])
      expect(problems(Env.safeParse({ OK: "1", [name]: "x" }))).toEqual([
        `${name}: a variable's name is letters, digits and _ (not starting with a digit; at most 256)`,
      ]);
    expect(Env.parse({ _A1: "x", PATH: "/bin" })).toEqual({ _A1: "x", PATH: "/bin" });
    expect(problems(Env.safeParse({ A: "x\u0000y" }))).toEqual(["A: must not contain NUL bytes"]);
  });

  it("says that a signal is a name when given a number, and which names there are", () => {
    expect(Signal.parse("sigint")).toBe("INT");
    const list = "INT, TERM, KILL, HUP, QUIT, USR1, USR2, STOP, CONT, WINCH";
    expect(problems(Signal.safeParse(9))).toEqual([`: a name, one of ${list}`]);
    expect(problems(Signal.safeParse("NINE"))).toEqual([`: one of ${list} (with or without SIG)`]);
  });
});
