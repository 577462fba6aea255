/* simtunctl: ask a running simtun-relay or simtun-agent what it is doing. */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define RELAY_SOCK	"/run/simtun/relay.sock"
#define AGENT_SOCK	"/run/simtun/agent.sock"

/* Print usage and exit. */
static __dead void
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: simtunctl [-s SOCKET] status [--json]\n"
	    "       simtunctl [-s SOCKET] devices [--json]\n"
	    "       simtunctl [-s SOCKET] kick DEVICE\n"
	    "       simtunctl [-s SOCKET] grant OPERATOR DEVICEPATTERN[:PORT] "
	    "--for DURATION\n"
	    "                 [--from CIDR,...]\n"
	    "       simtunctl [-s SOCKET] expose DEVICE[:PORT] --for DURATION "
	    "[--from CIDR,...]\n"
	    "                 [--listen PORT]\n"
	    "       simtunctl [-s SOCKET] grants [--json]\n"
	    "       simtunctl [-s SOCKET] revoke ID\n"
	    "       simtunctl [-s SOCKET] usage [DEVICE] [--days N] [--json]\n"
	    "  DURATION    90s, 30m, 2h, 1d\n"
	    "  -s SOCKET   control socket (default %s, else %s)\n",
	    RELAY_SOCK, AGENT_SOCK);
	exit(code);
}

/* Send one request line, copy the answer to stdout; bounded by 10 s. */
static int
ctl_request(const char *path, const char *req)
{
	struct sockaddr_un sun;
	struct pollfd pfd;
	char buf[4096];
	ssize_t n;
	int fd, err = 0, first = 1;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		fprintf(stderr, "simtunctl: %s: path too long\n", path);
		return 1;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		fprintf(stderr, "simtunctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) ||
	    write(fd, "\n", 1) != 1) {
		fprintf(stderr, "simtunctl: %s: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, 10000) <= 0) {
			fprintf(stderr, "simtunctl: %s: no answer\n", path);
			close(fd);
			return 1;
		}
		if ((n = read(fd, buf, sizeof buf)) <= 0)
			break;
		if (first && n >= 6 && !strncmp(buf, "error:", 6))
			err = 1;
		first = 0;
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	return err;
}

int
main(int argc, char **argv)
{
	const char *sock = NULL;
	char req[600];
	int ch;

	while ((ch = getopt(argc, argv, "+s:hV")) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'V': printf("simtunctl %s\n", SIMTUN_VERSION); return 0;
		case 'h': usage(0);
		default: usage(1);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage(1);
	if (sock == NULL)
		sock = access(RELAY_SOCK, F_OK) == 0 ||
		    access(AGENT_SOCK, F_OK) != 0 ? RELAY_SOCK : AGENT_SOCK;
	if (!strcmp(argv[0], "status") || !strcmp(argv[0], "devices")) {
		if (argc == 1)
			snprintf(req, sizeof req, "%s", argv[0]);
		else if (argc == 2 && !strcmp(argv[1], "--json"))
			snprintf(req, sizeof req, "%s --json", argv[0]);
		else
			usage(1);
	} else if (!strcmp(argv[0], "kick") && argc == 2) {
		if (strlen(argv[1]) > 256 || strchr(argv[1], '\n'))
			usage(1);
		snprintf(req, sizeof req, "kick %s", argv[1]);
	} else if (!strcmp(argv[0], "grant") || !strcmp(argv[0], "grants") ||
	    !strcmp(argv[0], "revoke") || !strcmp(argv[0], "expose") ||
	    !strcmp(argv[0], "usage")) {
		/* the relay parses and checks the words; they go as they are */
		size_t off = 0;
		int i;

		for (i = 0; i < argc; i++) {
			if (argv[i][0] == '\0' || strpbrk(argv[i], " \t\n\r")) {
				fprintf(stderr, "simtunctl: \"%s\": no blanks "
				    "inside an argument\n", argv[i]);
				return 1;
			}
			if (off + strlen(argv[i]) + 2 > 500) {
				fprintf(stderr, "simtunctl: request too long\n");
				return 1;
			}
			off += (size_t)snprintf(req + off, sizeof req - off,
			    "%s%s", i ? " " : "", argv[i]);
		}
	} else
		usage(1);
	return ctl_request(sock, req);
}
