// Classic pcap file format (tcpdump): global header, then per packet a 16-byte record header.
// Both microsecond and nanosecond magics, either byte order.
export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const LINKTYPE_ETHERNET = 1;

export interface PcapRecord {
  sec: number;
  frac: number;
  caplen: number;
  origlen: number;
  offset: number;
}

export interface PcapFile {
  nanos: boolean;
  little: boolean;
  snaplen: number;
  linktype: number;
  data: Uint8Array;
  records: PcapRecord[];
}

export function parsePcap(data: Uint8Array, name = "pcap"): PcapFile {
  if (data.length < 24) throw new Error(`${name}: too short for a pcap header (${data.length} bytes)`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const m = dv.getUint32(0, true);
  let little: boolean, nanos: boolean;
  if (m === PCAP_MAGIC_US || m === PCAP_MAGIC_NS) little = true;
  else if (dv.getUint32(0, false) === PCAP_MAGIC_US || dv.getUint32(0, false) === PCAP_MAGIC_NS) little = false;
  else throw new Error(`${name}: not a pcap file (magic 0x${m.toString(16)}; pcapng is not supported)`);
  nanos = dv.getUint32(0, little) === PCAP_MAGIC_NS;
  const snaplen = dv.getUint32(16, little);
  const linktype = dv.getUint32(20, little) & 0xffff;
  const records: PcapRecord[] = [];
  let off = 24;
  while (off + 16 <= data.length) {
    const caplen = dv.getUint32(off + 8, little);
    if (off + 16 + caplen > data.length) throw new Error(`${name}: truncated record at byte ${off}`);
    records.push({
      sec: dv.getUint32(off, little),
      frac: dv.getUint32(off + 4, little),
      caplen,
      origlen: dv.getUint32(off + 12, little),
      offset: off + 16,
    });
    off += 16 + caplen;
  }
  if (off !== data.length) throw new Error(`${name}: ${data.length - off} trailing bytes after the last record`);
  return { nanos, little, snaplen, linktype, data, records };
}

export function pcapGlobalHeader(snaplen = 65535, linktype = LINKTYPE_ETHERNET, nanos = false): Uint8Array {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, nanos ? PCAP_MAGIC_NS : PCAP_MAGIC_US, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setUint32(16, snaplen, true);
  dv.setUint32(20, linktype, true);
  return b;
}

/** Write a record header for a packet of `len` bytes into `into` at `off`. */
export function pcapRecordHeader(
  into: DataView,
  off: number,
  sec: number,
  frac: number,
  caplen: number,
  origlen: number,
): void {
  into.setUint32(off, sec, true);
  into.setUint32(off + 4, frac, true);
  into.setUint32(off + 8, caplen, true);
  into.setUint32(off + 12, origlen, true);
}
