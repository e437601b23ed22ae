// What every bunmap command does the same way: usage errors as one line naming the help flag,
// bounded whole numbers, help on -h.
export class UsageError extends Error {
  override name = "UsageError";
}

/** A whole number in [lo, hi], or a UsageError naming the flag. */
export function intArg(flag: string, v: string | undefined, lo: number, hi: number): number {
  if (v === undefined || !/^[0-9]+$/.test(v) || +v < lo || +v > hi)
    throw new UsageError(`${flag} ${v ?? ""}: expected a number ${lo}..${hi}`.replace("  ", " "));
  return +v;
}

/**
 * Parse argv with `parse` (which returns "help" for -h); print usage, or one error line and exit 1.
 * Returns the parsed arguments, or null when help was printed.
 */
export function parseCli<T>(
  tool: string,
  usage: string,
  parse: (argv: string[]) => T | "help",
  argv = process.argv.slice(2),
): T | null {
  try {
    const r = parse(argv);
    if (r === "help") {
      process.stdout.write(`${usage}\n`);
      return null;
    }
    return r;
  } catch (e) {
    process.stderr.write(`${tool}: ${(e as Error).message}${e instanceof UsageError ? ` (bun run ${tool} -h)` : ""}\n`);
    process.exit(1);
  }
}

/** argv read flag by flag: `next()` the next argument, `value()` the value of the flag just read. */
export class ArgvReader {
  private i = -1;
  constructor(private readonly argv: string[]) {}
  next(): string | undefined {
    return this.argv[++this.i];
  }
  /** The argument after the flag just read, or a UsageError naming the flag. */
  value(): string {
    const flag = this.argv[this.i];
    const v = this.argv[++this.i];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  }
}

/** Run a command's main: an error nothing else caught is one line naming the command (never a stack
 * trace), and exit status 1. */
export async function runMain(tool: string, main: () => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (e) {
    process.stderr.write(`${tool}: ${(e as Error).message}\n`);
    code = 1;
  }
  process.exit(code);
}
