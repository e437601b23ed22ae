// Whether anyone still reads what a program writes: a pipe whose reader has gone (`| head` done)
// shows POLLERR on its write end. pkt-gen dies of SIGPIPE there at its next write; our report
// lines go to stderr (as pkt-gen's do), so the gone reader of stdout is noticed by asking.
import { poll } from "../../ffi/libc.ts";

const POLLOUT = 0x004,
  POLLERR = 0x008;
const pfd = new Uint8Array(8); // struct pollfd: int fd, short events, short revents
const view = new DataView(pfd.buffer);

/** Has the reader of this descriptor's pipe gone? (never for a terminal or a file) */
export function readerGone(fd = 1): boolean {
  view.setInt32(0, fd, true);
  view.setInt16(4, POLLOUT, true);
  view.setInt16(6, 0, true);
  return poll(pfd, 1, 0) > 0 && (view.getInt16(6, true) & POLLERR) !== 0;
}
