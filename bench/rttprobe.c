/*
 * bench/rttprobe HOST PORT COUNT [SIZE]: small-request round trips over one
 * TCP connection to an echo service (TCP_NODELAY), after 20 warm-up trips.
 * Prints "median_us p95_us p99_us" on one line.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Send size bytes, read them all back. */
static int
trip(int fd, char *buf, size_t size)
{
	size_t got = 0;
	ssize_t n;

	if (write(fd, buf, size) != (ssize_t)size)
		return -1;
	while (got < size) {
		n = read(fd, buf + got, size - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	int fd, one = 1, i, count;
	size_t size = 64;
	double *v, t;
	char *buf;

	if (argc < 4) {
		fprintf(stderr, "usage: rttprobe HOST PORT COUNT [SIZE]\n");
		return 2;
	}
	count = atoi(argv[3]);
	if (argc > 4)
		size = (size_t)atoi(argv[4]);
	if (count < 1 || size < 1 || size > 65536)
		return 2;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
		return 2;
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
		perror("rttprobe: connect");
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	buf = malloc(size);
	v = calloc((size_t)count, sizeof *v);
	if (buf == NULL || v == NULL)
		return 1;
	memset(buf, 'x', size);
	for (i = 0; i < 20; i++)
		if (trip(fd, buf, size) == -1) {
			fprintf(stderr, "rttprobe: echo failed\n");
			return 1;
		}
	for (i = 0; i < count; i++) {
		t = now_us();
		if (trip(fd, buf, size) == -1) {
			fprintf(stderr, "rttprobe: echo failed\n");
			return 1;
		}
		v[i] = now_us() - t;
	}
	qsort(v, (size_t)count, sizeof *v, cmp);
	printf("%.1f %.1f %.1f\n", v[count / 2], v[(count * 95) / 100],
	    v[(count * 99) / 100]);
	return 0;
}
