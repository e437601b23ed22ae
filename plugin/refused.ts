// The one error the driver answers with {"Err"} (HTTP 200, what Docker shows the user): a request
// refused with a reason the user can act on. Anything else that escapes is a bug (500).

export class Refused extends Error {}

/** Docker's short form of an ID (what `docker network ls` shows): its first 12 characters. */
export const short = (id: string) => id.slice(0, 12);

/** The same refusal with what it was about in front ("network 0123456789ab: ..."). */
export function refusedFor(what: string, e: unknown): Refused {
  const msg = (e as Error).message;
  return new Refused(msg.startsWith(`${what}: `) ? msg : `${what}: ${msg}`);
}
