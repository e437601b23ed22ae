// The C baseline for the shm-pipe benchmark: pkt-gen's tx/rx hot loops in C over bunmap's shm
// region (same layout, same ownership words, same doorbells), so C and TypeScript are measured on
// the same setup and can even be paired with each other.
//   shmpipe tx|rx NAME PIPE(0..) {|} COUNT [BURST]
// Prints the pkt-gen final lines ("Sent|Received N packets ..." / "Speed: X Mpps ...").
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x504d4e42u
#define LINE 128
#define PIPE_STRIDE (4 * LINE)
#define CH_PROD 0
#define CH_CONS LINE
#define CH_PROD_OWNER (2 * LINE)
#define CH_CONS_OWNER (2 * LINE + 8)
#define CH_TXRING (3 * LINE)
#define R_HEAD 20
#define R_SLOT 256

struct region {
	uint8_t *base;
	uint32_t pipes, rings, slots, bufsize, bufbase, pipebase, chanbase, chanstride;
};

static char region_path[256];
static size_t region_chans;

static size_t align(size_t n, size_t a) { return (n + a - 1) / a * a; }
static _Atomic uint32_t *A(struct region *r, size_t off) { return (_Atomic uint32_t *)(r->base + off); }
static uint32_t *U(struct region *r, size_t off) { return (uint32_t *)(r->base + off); }

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *t) {
	syscall(SYS_futex, (uint32_t *)addr, op, val, t, NULL, 0);
}

/* Create (with bunmap's defaults) or attach to /dev/shm/bunmap-NAME. */
static void open_region(struct region *r, const char *name) {
	char path[256];
	snprintf(region_path, sizeof region_path, "%s/bunmap-%s", getenv("BUNMAP_SHM_DIR") ? getenv("BUNMAP_SHM_DIR") : "/dev/shm", name);
	snprintf(path, sizeof path, "%s/bunmap-%s", getenv("BUNMAP_SHM_DIR") ? getenv("BUNMAP_SHM_DIR") : "/dev/shm", name);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0666), creator = fd >= 0;
	if (!creator) fd = open(path, O_RDWR);
	if (fd < 0) { perror(path); exit(1); }
	r->pipes = 4; r->rings = 1; r->slots = 1024; r->bufsize = 2048;
	struct stat st;
	if (!creator) {
		for (int i = 0; i < 400; i++) { fstat(fd, &st); if (st.st_size >= 4096) break; usleep(5000); }
		uint32_t hdr[12];
		for (int i = 0; i < 400; i++) {
			if (pread(fd, hdr, sizeof hdr, 0) == sizeof hdr && hdr[0] == MAGIC) break;
			usleep(5000);
		}
		if (hdr[0] != MAGIC) { fprintf(stderr, "%s: not a bunmap region\n", path); exit(1); }
		r->pipes = hdr[2]; r->rings = hdr[3]; r->slots = hdr[4]; r->bufsize = hdr[5];
	}
	r->pipebase = 4096;
	r->chanbase = align(r->pipebase + r->pipes * PIPE_STRIDE, 4096);
	size_t rxringoff = align(CH_TXRING + R_SLOT + r->slots * 16, LINE);
	r->chanstride = align(rxringoff + 256, 4096);
	size_t nchan = r->pipes * 2 * r->rings, nbufs = 2 + nchan * r->slots;
	r->bufbase = align(r->chanbase + nchan * r->chanstride, 4096);
	region_chans = nchan;
	size_t size = r->bufbase + nbufs * r->bufsize;
	if (creator && ftruncate(fd, size) < 0) { perror("ftruncate"); exit(1); }
	r->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->base == MAP_FAILED) { perror("mmap"); exit(1); }
	if (creator) {
		uint32_t *h = (uint32_t *)r->base;
		h[1] = 1; h[2] = r->pipes; h[3] = r->rings; h[4] = r->slots; h[5] = r->bufsize; h[6] = nbufs;
		h[7] = r->bufbase; h[8] = size; h[9] = r->pipebase; h[10] = r->chanbase; h[11] = r->chanstride;
		for (uint32_t c = 0; c < nchan; c++) {
			size_t ch = r->chanbase + c * r->chanstride;
			size_t rings[2] = { ch + CH_TXRING, ch + rxringoff };
			for (int d = 0; d < 2; d++) {
				uint8_t *rg = r->base + rings[d];
				*(int64_t *)rg = (int64_t)r->bufbase - (int64_t)rings[d];
				*(uint32_t *)(rg + 8) = r->slots;
				*(uint32_t *)(rg + 12) = r->bufsize;
				*(uint16_t *)(rg + 16) = c % r->rings;
				*(uint16_t *)(rg + 18) = d;
				*(uint32_t *)(rg + 28) = d == 0 ? r->slots - 1 : 0;
			}
			for (uint32_t i = 0; i < r->slots; i++) *U(r, ch + CH_TXRING + R_SLOT + 16 * i) = 2 + c * r->slots + i;
		}
		atomic_store(A(r, 0), MAGIC);
	}
}

/* Last one out removes the file, as bunmap does. */
static void unlink_if_unused(struct region *r) {
	for (size_t c = 0; c < region_chans; c++) {
		size_t ch = r->chanbase + c * r->chanstride;
		if (atomic_load(A(r, ch + CH_PROD_OWNER)) || atomic_load(A(r, ch + CH_CONS_OWNER))) return;
	}
	unlink(region_path);
}

static uint32_t token;
static void claim(struct region *r, size_t off) {
	uint32_t cur = atomic_load(A(r, off));
	if (cur && kill(*U(r, off + 4), 0) == 0) { fprintf(stderr, "end already open by pid %u\n", *U(r, off + 4)); exit(1); }
	if (!atomic_compare_exchange_strong(A(r, off), &cur, token)) { fprintf(stderr, "lost the race for the end\n"); exit(1); }
	atomic_store(A(r, off + 4), (uint32_t)getpid());
}
static void release(struct region *r, size_t off) {
	atomic_store(A(r, off + 4), 0);
	uint32_t t = token;
	atomic_compare_exchange_strong(A(r, off), &t, 0);
}

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
