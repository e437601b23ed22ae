// Example lookup (mSwitch's idea): IPv4 goes to the next port in join order, everything else floods.
import { BROADCAST, type Lookup } from "../lookup.ts";

const lookup: Lookup = (u8, off, _len, src, sw) =>
  u8[off + 12] === 0x08 && u8[off + 13] === 0x00 ? sw.ports[(sw.rank(src) + 1) % sw.nports] : BROADCAST;

export default lookup;
