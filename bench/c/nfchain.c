// The C baseline for the chain benchmark (bench/nf-chain.ts): firewall -> lb -> counting sinks over
// bunmap's shm region, the same work as the TypeScript chain (the tutorial's ACL on IPv4 TCP/UDP,
// through one VLAN tag and IPv4 options; lb's symmetric hash, the TCP/UDP-over-IP path of
// src/nf/lb-hash.ts, onto 2 pipes; a sink counting packets and bytes per pipe).
//   nfchain one NAME COUNT    the whole chain in one process, reading pipe 0 ('{' end)
//   nfchain fwlb NAME COUNT   firewall and lb, reading pipe 0, swapping buffers into pipes 1 and 2
//   nfchain sink NAME COUNT   the sinks, reading pipes 1 and 2 ('}' ends)
// Ends after COUNT packets in (one, fwlb) or sunk (sink); prints "Received N packets ..." and
// "Speed: X Mpps" as pkt-gen, and the sinks' counts.
#include "shmregion.h"

/* ---- lb's hash (netmap apps/lb/pkt_hash.c, as src/nf/lb-hash.ts) ---- */
#define SEED 66
static uint32_t bc[4][256];
static void hash_init(void) {
	const uint8_t key[2] = { 0x50, 0x6d };
	uint32_t kc[96], result = ((uint32_t)key[0] << 24) | (key[1] << 16) | (key[0] << 8) | key[1];
	for (int i = 0, idx = 32; i < 96; i++, idx++) {
		kc[i] = result;
		int bit = ((key[(idx >> 3) & 1] << (idx % 8)) & 0x80) != 0;
		result = (result << 1) | bit;
	}
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 256; j++) {
			uint32_t v = 0;
			for (int k = 0, b = j; k < 8; k++, b <<= 1) if (b & 0x80) v ^= kc[8 * i + k];
			bc[i][j] = v;
		}
}
static inline uint32_t sym_hash(uint32_t s, uint32_t d, uint32_t sp, uint32_t dp) {
	return bc[0][s >> 24] ^ bc[1][(s >> 16) & 255] ^ bc[2][(s >> 8) & 255] ^ bc[3][s & 255] ^ bc[0][d >> 24] ^
	       bc[1][(d >> 16) & 255] ^ bc[2][(d >> 8) & 255] ^ bc[3][d & 255] ^ bc[0][(sp >> 8) & 255] ^ bc[1][sp & 255] ^
	       bc[2][(dp >> 8) & 255] ^ bc[3][dp & 255];
}
static inline uint32_t be16(const uint8_t *p) { return (p[0] << 8) | p[1]; }
static inline uint32_t be32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }
static inline uint32_t le32(const uint8_t *p) { return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24); }

/* the frame's IPv4 header offset (one VLAN tag at most), or 0 */
static inline uint32_t ipv4_at(const uint8_t *f, uint32_t len) {
	uint32_t et = be16(f + 12), l3 = 14;
	if (et == 0x8100 || et == 0x88a8) { et = be16(f + 16); l3 = 18; }
	if (et != 0x0800 || len < l3 + 20 || (f[l3] >> 4) != 4) return 0;
	return l3;
}
static inline uint32_t lb_hash(const uint8_t *f, uint32_t len) {
	uint32_t ip = ipv4_at(f, len);
	if (!ip) return sym_hash(le32(f + 8), le32(f + 2), (0xfdff + SEED) & 0xffff, (0xfeff + SEED) & 0xffff);
	uint32_t hl = f[ip] & 15, l4 = ip + hl * 4;
	if (hl < 5 || hl * 4 > be16(f + ip + 2)) return 0;
	uint32_t s = be32(f + ip + 12), d = be32(f + ip + 16), p = f[ip + 9];
	if (p == 6 || p == 17)
		return sym_hash(s, d, (be16(f + l4) + SEED) & 0xffff, (be16(f + l4 + 2) + SEED) & 0xffff);
	return sym_hash(s, d, (0xfdff + SEED) & 0xffff, (0xfeff + SEED) & 0xffff);
}

/* ---- the tutorial's firewall: TCP/UDP to 198.18.1.0/24, ports 80 and 443 ---- */
static uint64_t fw_drops[2];
static inline int firewall(const uint8_t *f, uint32_t len) {
	uint32_t ip = ipv4_at(f, len);
	if (!ip || (f[ip + 9] != 6 && f[ip + 9] != 17) || len < ip + (f[ip] & 15) * 4 + 4) { fw_drops[0]++; return 0; }
	uint32_t l4 = ip + (f[ip] & 15) * 4, port = be16(f + l4 + 2);
	if ((be32(f + ip + 16) >> 8) == 0xc61201 && (port == 80 || port == 443)) return 1;
	fw_drops[1]++;
	return 0;
}

static uint64_t sunk[2], sunk_bytes[2];
static inline uint32_t ring_space_rx(struct chan *c, uint32_t head, uint32_t n) {
	return (atomic_load_explicit(c->prod, memory_order_acquire) + n - head) % n;
}
static inline uint32_t ring_space_tx(struct chan *c, uint32_t head, uint32_t n) {
	uint32_t k = atomic_load_explicit(c->cons, memory_order_acquire);
	return ((k == 0 ? n - 1 : k - 1) + n - head) % n;
}
struct waitarg { struct chan *c; uint32_t head, n; int tx; };
static int ready(void *a) {
	struct waitarg *w = a;
	return w->tx ? ring_space_tx(w->c, w->head, w->n) != 0 : ring_space_rx(w->c, w->head, w->n) != 0;
}
/* nothing to do: spin ~50 us, then sleep on the doorbell (bunmap's poll policy) */
static void idle(struct chan *c, uint32_t head, uint32_t n, int tx) {
	struct waitarg w = { c, head, n, tx };
	double until = now() + 50e-6;
	while (now() < until) if (ready(&w)) return;
	sleep_on(c, ready, &w);
}

int main(int argc, char **argv) {
	if (argc < 4) { fprintf(stderr, "usage: nfchain one|fwlb|sink NAME COUNT\n"); return 2; }
	const char *mode = argv[1];
	uint64_t n = strtoull(argv[3], NULL, 10), seen = 0;
	struct region r;
	open_region(&r, argv[2]);
	token = ((uint32_t)getpid() << 11) | 1;
	hash_init();
	const uint32_t N = r.slots;
	uint8_t *bufs = r.base + r.bufbase;
	double tic = 0;
	printf("nfchain %s %s: running\n", mode, argv[2]);
	fflush(stdout);
	if (!strcmp(mode, "sink")) {
		struct chan in[2];
		uint32_t head[2];
		for (int k = 0; k < 2; k++) { open_chan(&r, &in[k], 1 + k, 1, 0); head[k] = atomic_load(in[k].cons); }
		while (seen < n) {
			uint32_t got = 0;
			for (int k = 0; k < 2; k++) {
				uint32_t m = ring_space_rx(&in[k], head[k], N);
				if (!m) continue;
				if (!tic) tic = now();
				for (uint32_t j = 0; j < m; j++) {
					uint8_t *s = in[k].slots + (size_t)head[k] * 16;
					sunk[k]++;
					sunk_bytes[k] += *(uint16_t *)(s + 4);
					head[k] = head[k] + 1 == N ? 0 : head[k] + 1;
				}
				atomic_store_explicit(in[k].cons, head[k], memory_order_release);
				ring_peer(&in[k]);
				got += m;
			}
			seen += got;
			if (!got) idle(&in[seen & 1], head[seen & 1], N, 0);
		}
		for (int k = 0; k < 2; k++) release(&r, in[k].owner);
	} else {
		int split = !strcmp(mode, "fwlb");
		struct chan in, out[2];
		open_chan(&r, &in, 0, 0, 0);
		uint32_t head = atomic_load(in.cons), ohead[2] = { 0, 0 };
		if (split)
			for (int k = 0; k < 2; k++) { open_chan(&r, &out[k], 1 + k, 0, 1); ohead[k] = atomic_load(out[k].prod); }
		while (seen < n) {
			uint32_t m = ring_space_rx(&in, head, N);
			if (!m) { idle(&in, head, N, 0); continue; }
			if (!tic) tic = now();
			if (split) /* take only what both outputs have room for: a full output holds the input back */
				for (int k = 0; k < 2; k++) {
					uint32_t room = ring_space_tx(&out[k], ohead[k], N);
					if (room < m) m = room;
				}
			if (!m) { idle(&out[0], ohead[0], N, 1); continue; }
			uint32_t sent[2] = { 0, 0 };
			for (uint32_t j = 0; j < m; j++) {
				uint8_t *s = in.slots + (size_t)head * 16;
				uint32_t len = *(uint16_t *)(s + 4);
				const uint8_t *f = bufs + (size_t)*(uint32_t *)s * r.bufsize;
				if (firewall(f, len)) {
					uint32_t k = lb_hash(f, len) & 1;
					if (split) { /* swap the buffer into pipe 1 + k, both slots flagged NS_BUF_CHANGED */
						uint8_t *o = out[k].slots + (size_t)ohead[k] * 16;
						uint32_t b = *(uint32_t *)o;
						*(uint32_t *)o = *(uint32_t *)s;
						*(uint32_t *)(o + 4) = len | (1u << 16);
						*(uint32_t *)s = b;
						*(uint16_t *)(s + 6) |= 1;
						ohead[k] = ohead[k] + 1 == N ? 0 : ohead[k] + 1;
						sent[k]++;
					} else {
						sunk[k]++;
						sunk_bytes[k] += len;
					}
				}
				head = head + 1 == N ? 0 : head + 1;
			}
			seen += m;
			for (int k = 0; split && k < 2; k++)
				if (sent[k]) { atomic_store_explicit(out[k].prod, ohead[k], memory_order_release); ring_peer(&out[k]); }
			atomic_store_explicit(in.cons, head, memory_order_release);
			ring_peer(&in);
		}
		if (split) /* let the sinks drain before we leave */
			for (int i = 0; i < 100000 && (atomic_load(out[0].cons) != ohead[0] || atomic_load(out[1].cons) != ohead[1]); i++) usleep(10);
		release(&r, in.owner);
		for (int k = 0; split && k < 2; k++) release(&r, out[k].owner);
	}
	double dt = now() - tic;
	unlink_if_unused(&r);
	printf("Received %llu packets %llu bytes %llu events %d bytes each in %.2f seconds.\n", (unsigned long long)seen,
	       (unsigned long long)(sunk_bytes[0] + sunk_bytes[1]), 0ULL, 60, dt);
	printf("Speed: %.3f Mpps\n", seen / dt / 1e6);
	printf("sink 0: %llu packets, sink 1: %llu packets; firewall dropped %llu (not IPv4 TCP/UDP), %llu (acl)\n",
	       (unsigned long long)sunk[0], (unsigned long long)sunk[1], (unsigned long long)fw_drops[0],
	       (unsigned long long)fw_drops[1]);
	return 0;
}
