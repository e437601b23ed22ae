// bunmap's shm region in C (src/port/shm-layout.ts is the definition; tests/abi.test.ts does not
// cover this file, the benchmarks that pair C with TypeScript on one region do): create or attach,
// claim and release a channel end, the doorbells. For the C baselines in bench/c only.
#ifndef BUNMAP_SHMREGION_H
#define BUNMAP_SHMREGION_H
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


/* One direction of one pipe, as an end sees it: the ring's slots, its producer and consumer words,
 * this end's doorbell and the peer's. */
struct chan {
	uint8_t *slots;
	_Atomic uint32_t *prod, *cons, *mybell, *mywait, *peerbell, *peerwait;
	size_t owner;
};

/* The channel of `pipe` that end `me` (0 = '{', 1 = '}') sends on (tx) or receives on, claimed. */
static inline void open_chan(struct region *r, struct chan *c, uint32_t pipe, uint32_t me, int tx) {
	uint32_t dir = tx ? me : 1 - me;
	size_t ch = r->chanbase + ((pipe * 2 + dir) * r->rings) * r->chanstride;
	size_t pb = r->pipebase + pipe * PIPE_STRIDE;
	c->mybell = A(r, pb + me * 2 * LINE);
	c->mywait = A(r, pb + (me * 2 + 1) * LINE);
	c->peerbell = A(r, pb + (1 - me) * 2 * LINE);
	c->peerwait = A(r, pb + ((1 - me) * 2 + 1) * LINE);
	c->prod = A(r, ch + CH_PROD);
	c->cons = A(r, ch + CH_CONS);
	c->owner = ch + (tx ? CH_PROD_OWNER : CH_CONS_OWNER);
	c->slots = r->base + ch + CH_TXRING + R_SLOT;
	claim(r, c->owner);
}

/* Wake the peer if it sleeps (after moving prod or cons). */
static inline void ring_peer(struct chan *c) {
	if (atomic_load(c->peerwait)) { atomic_fetch_add(c->peerbell, 1); futex(c->peerbell, FUTEX_WAKE, 0x7fffffff, NULL); }
}

/* Sleep on this end's doorbell until `ready` says so (checked after announcing the wait), 1 s at most. */
static inline void sleep_on(struct chan *c, int (*ready)(void *), void *arg) {
	atomic_fetch_add(c->mywait, 1);
	uint32_t bell = atomic_load(c->mybell);
	if (!ready(arg)) { struct timespec t = { 1, 0 }; futex(c->mybell, FUTEX_WAIT, bell, &t); }
	atomic_fetch_sub(c->mywait, 1);
}
#endif
