/* A TCP transfer that is not the bottleneck (issue 25): one connection, 1 MiB writes of a fixed
 * pattern, the receiver comparing every byte with memcmp. Built static so it runs in any container.
 *   tcpx server PORT              accept one connection, read to EOF: "got BYTES ok" (or "BAD at N")
 *   tcpx client HOST PORT BYTES   send, then wait for the server to close: "sent BYTES MB/s R"
 * R counts from connect() to the server's close: every byte delivered and checked. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static unsigned char pattern[CHUNK];

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int server(int port) {
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1)) { perror("bind/listen"); return 1; }
	printf("listening\n");
	fflush(stdout);
	int c = accept(l, NULL, NULL);
	if (c < 0) { perror("accept"); return 1; }
	static unsigned char buf[CHUNK];
	unsigned long long got = 0, bad = ~0ULL;
	for (;;) {
		ssize_t n = read(c, buf, CHUNK);
		if (n <= 0) break;
		/* the pattern repeats every CHUNK bytes: compare in up to two pieces */
		size_t at = got % CHUNK, first = (size_t)n < CHUNK - at ? (size_t)n : CHUNK - at;
		if (bad == ~0ULL && (memcmp(buf, pattern + at, first) || memcmp(buf + first, pattern, n - first))) bad = got;
		got += n;
	}
	if (bad == ~0ULL) printf("got %llu ok\n", got);
	else printf("got %llu BAD at %llu\n", got, bad);
	close(c);
	return bad == ~0ULL ? 0 : 1;
}

static int client(const char *host, int port, unsigned long long bytes) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", host); return 1; }
	double t0 = now();
	if (connect(s, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
	unsigned long long sent = 0;
	while (sent < bytes) {
		size_t at = sent % CHUNK, want = CHUNK - at;
		if (want > bytes - sent) want = bytes - sent;
		ssize_t n = write(s, pattern + at, want);
		if (n <= 0) { perror("write"); return 1; }
		sent += n;
	}
	shutdown(s, SHUT_WR);
	char x;
	while (read(s, &x, 1) > 0) {}
	double dt = now() - t0;
	printf("sent %llu MB/s %.1f\n", sent, sent / dt / 1e6);
	return 0;
}

int main(int argc, char **argv) {
	for (int i = 0; i < CHUNK; i++) pattern[i] = (unsigned char)(i * 131 + (i >> 11) * 7 + 1);
	if (argc == 3 && !strcmp(argv[1], "server")) return server(atoi(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "client")) return client(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
	fprintf(stderr, "usage: tcpx server PORT | tcpx client HOST PORT BYTES\n");
	return 2;
}
