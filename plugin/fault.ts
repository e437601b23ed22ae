// Crash points for the tests of recovery: with BUNMAP_FAULT=<point>, the process kills itself
// (SIGKILL: no cleanup, as the OOM killer or a power cut) when it reaches that point. Unset, nothing.
const AT = process.env.BUNMAP_FAULT ?? "";

export function fault(point: string): void {
  if (AT === point) process.kill(process.pid, "SIGKILL");
}
