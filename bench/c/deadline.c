// The machine's own floor for timing a packet's exit: a C thread that sleeps until 100 us before
// each deadline (COUNT deadlines, PERIOD_US apart), spins through the rest, and records how late it
// saw each one. What it cannot do on this machine (a VM whose vCPUs the host takes away), an
// emulator cannot either. Prints "lateness p50 X us, p99 Y us, max Z us".
//   deadline COUNT PERIOD_US
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	double period = argc > 2 ? atof(argv[2]) : 833;
	double *late = malloc(n * sizeof *late), t = now() + period;
	for (int i = 0; i < n; i++, t += period) {
		double left = t - now() - 100;
		if (left > 0) {
			struct timespec s = { 0, (long)(left * 1000) };
			nanosleep(&s, NULL);
		}
		double x;
		while ((x = now()) < t);
		late[i] = x - t;
	}
	qsort(late, n, sizeof *late, cmp);
	printf("lateness p50 %.1f us, p99 %.1f us, max %.1f us\n", late[n / 2], late[(int)(n * 0.99)], late[n - 1]);
	return 0;
}
