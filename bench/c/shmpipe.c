// The C baseline for the shm-pipe benchmark: pkt-gen's tx/rx hot loops in C over bunmap's shm
// region (same layout, same ownership words, same doorbells), so C and TypeScript are measured on
// the same setup and can even be paired with each other.
//   shmpipe tx|rx NAME PIPE(0..) {|} COUNT [BURST]
// Prints the pkt-gen final lines ("Sent|Received N packets ..." / "Speed: X Mpps ...").
#include "shmregion.h"

int main(int argc, char **argv) {
	if (argc < 6) { fprintf(stderr, "usage: shmpipe tx|rx NAME PIPE {|} COUNT [BURST]\n"); return 2; }
	int tx = !strcmp(argv[1], "tx");
	uint32_t pipe = atoi(argv[3]), me = argv[4][0] == '{' ? 0 : 1;
	uint64_t n = strtoull(argv[5], NULL, 10);
	uint32_t burst = argc > 6 ? atoi(argv[6]) : 512;
	struct region r;
	open_region(&r, argv[2]);
	token = ((uint32_t)getpid() << 11) | 1;
	uint32_t dir = tx ? me : 1 - me;
	size_t ch = r.chanbase + ((pipe * 2 + dir) * r.rings) * r.chanstride;
	size_t pb = r.pipebase + pipe * PIPE_STRIDE;
	_Atomic uint32_t *mybell = A(&r, pb + me * 2 * LINE), *mywait = A(&r, pb + (me * 2 + 1) * LINE);
	_Atomic uint32_t *peerbell = A(&r, pb + (1 - me) * 2 * LINE), *peerwait = A(&r, pb + ((1 - me) * 2 + 1) * LINE);
	_Atomic uint32_t *prod = A(&r, ch + CH_PROD), *cons = A(&r, ch + CH_CONS);
	size_t owner = ch + (tx ? CH_PROD_OWNER : CH_CONS_OWNER);
	claim(&r, owner);
	const uint32_t N = r.slots;
	uint8_t *slots = r.base + ch + CH_TXRING + R_SLOT;
	uint8_t *bufs = r.base + r.bufbase;
	uint8_t *primed = calloc(N, 1);
	static uint8_t frame[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0x45, 0x10, 0, 46 };
	uint64_t pkts = 0, bytes = 0, events = 0;
	uint32_t head = tx ? atomic_load(prod) : atomic_load(cons);
	double tic = 0, toc;
	printf("%s %s: 1 queues, 1 threads and 1 cpus.\n", tx ? "Sending on" : "Receiving from", argv[2]);
	fflush(stdout);
	if (tx) tic = now();
	while (pkts < n) {
		uint32_t space;
		if (tx) {
			uint32_t c = atomic_load_explicit(cons, memory_order_acquire);
			uint32_t tail = c == 0 ? N - 1 : c - 1;
			space = (tail + N - head) % N;
		} else {
			space = (atomic_load_explicit(prod, memory_order_acquire) + N - head) % N;
		}
		if (space == 0) {
			/* spin ~50 us, then sleep on our doorbell: the same policy as bunmap's poll() */
			double until = now() + 50e-6;
			int ready = 0;
			while (!ready && now() < until) {
				if (tx) { uint32_t c = atomic_load(cons); ready = ((c == 0 ? N - 1 : c - 1) != head); }
				else ready = atomic_load(prod) != head;
			}
			if (ready) continue;
			atomic_fetch_add(mywait, 1);
			uint32_t bell = atomic_load(mybell);
			if (tx) { uint32_t c = atomic_load(cons); ready = ((c == 0 ? N - 1 : c - 1) != head); }
			else ready = atomic_load(prod) != head;
			if (!ready) { struct timespec t = { 1, 0 }; futex(mybell, FUTEX_WAIT, bell, &t); }
			atomic_fetch_sub(mywait, 1);
			continue;
		}
		uint32_t m = space < burst ? space : burst;
		if (m > n - pkts) m = n - pkts;
		if (!tx && pkts == 0) tic = now();
		for (uint32_t k = 0; k < m; k++) {
			uint8_t *s = slots + (size_t)head * 16;
			if (tx) {
				if (!primed[head] || (*(uint16_t *)(s + 6) & 1)) {
					memcpy(bufs + (size_t)*(uint32_t *)s * r.bufsize, frame, sizeof frame);
					primed[head] = 1;
				}
				*(uint32_t *)(s + 4) = 60;
				bytes += 60;
			} else {
				uint32_t w = *(uint32_t *)(s + 4);
				bytes += w & 0xffff;
			}
			head = head + 1 == N ? 0 : head + 1;
		}
		pkts += m;
		events++;
		atomic_store_explicit(tx ? prod : cons, head, memory_order_release);
		if (atomic_load(peerwait)) { atomic_fetch_add(peerbell, 1); futex(peerbell, FUTEX_WAKE, 0x7fffffff, NULL); }
	}
	toc = now();
	if (tx) /* let the reader drain before we leave, as pkt-gen's flush */
		for (int i = 0; i < 100000 && atomic_load(cons) != head; i++) usleep(10);
	release(&r, owner);
	unlink_if_unused(&r);
	double dt = toc - tic;
	printf("%s %llu packets %llu bytes %llu events %d bytes each in %.2f seconds.\n", tx ? "Sent" : "Received",
		(unsigned long long)pkts, (unsigned long long)bytes, (unsigned long long)events, 60, dt);
	printf("Speed: %.3f Mpps Bandwidth: %.3f Gbps (raw %.3f Gbps). Average batch: %.2f pkts\n",
		pkts / dt / 1e6, bytes * 8 / dt / 1e9, bytes * 8 / dt / 1e9, (double)pkts / events);
	return 0;
}
