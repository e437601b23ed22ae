// libnetmap through bun:ffi. netmap builds only libnetmap.a; make the shared object once, in netmap's
// source tree:
//   gcc -shared -fPIC -O2 -I sys -I libnetmap libnetmap/*.c -o libnetmap.so -lpthread
// then put it on the loader path or point BUNMAP_LIBNETMAP at it. Its constructors (option parsers,
// the thread-safe context) run on dlopen.
import { dlopen, FFIType, type Pointer } from "bun:ffi";
import { ioctl } from "./libc.ts";

const { i32, u64, ptr: P, cstring } = FFIType;

export const LIBNETMAP_PATHS = ["/usr/local/lib/libnetmap.so", "/usr/lib/libnetmap.so", "libnetmap.so"];

export interface Libnetmap {
  nmport_open(spec: Buffer): Pointer | null;
  nmport_close(d: Pointer): void;
  nmport_inject(d: Pointer, buf: Pointer, size: number): number;
  /** ioctl(2) (libc's; part of this interface so tests can stand in for the kernel). Returns -errno. */
  ioctl(fd: number, req: number, arg: Pointer | null): number;
}

let lib: Libnetmap | null = null;

export function libnetmap(): Libnetmap {
  if (lib) return lib;
  const tried: string[] = [];
  for (const path of [process.env.BUNMAP_LIBNETMAP, ...LIBNETMAP_PATHS].filter(Boolean) as string[]) {
    try {
      const nm = dlopen(path, {
        nmport_open: { args: [cstring], returns: P },
        nmport_close: { args: [P], returns: FFIType.void },
        nmport_inject: { args: [P, P, u64], returns: i32 },
      }).symbols;
      lib = {
        nmport_open: (s) => nm.nmport_open(s) as Pointer | null,
        nmport_close: (d) => nm.nmport_close(d),
        nmport_inject: (d, b, n) => nm.nmport_inject(d, b, n),
        ioctl,
      };
      return lib;
    } catch (e) {
      tried.push(`${path} (${(e as Error).message.split("\n")[0]})`);
    }
  }
  throw new Error(
    `libnetmap.so not found (tried ${tried.join("; ")}): build it in netmap's source tree with ` +
      "`gcc -shared -fPIC -O2 -I sys -I libnetmap libnetmap/*.c -o libnetmap.so -lpthread` and set BUNMAP_LIBNETMAP to it",
  );
}
