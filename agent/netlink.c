/* Link, address and route changes (NETLINK_ROUTE) wake the agent up. */
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

struct netlink {
	int		 fd;
	struct event	*ev;
	void		(*cb)(void *);
	void		*arg;
};

/* Log a link's name and state at debug level, for field diagnosis. */
static void
netlink_log(struct nlmsghdr *h)
{
	struct ifinfomsg *ifi;
	char name[IF_NAMESIZE];

	if (log_get_verbose() < 1)
		return;
	switch (h->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		ifi = NLMSG_DATA(h);
		if (if_indextoname((unsigned)ifi->ifi_index, name) == NULL)
			strcpy(name, "?");
		log_debug("netlink: link %s %s%s", name,
		    h->nlmsg_type == RTM_DELLINK ? "removed" :
		    (ifi->ifi_flags & IFF_UP) ? "up" : "down",
		    (ifi->ifi_flags & IFF_RUNNING) ? " running" : "");
		break;
	case RTM_NEWADDR:
	case RTM_DELADDR:
		log_debug("netlink: address %s",
		    h->nlmsg_type == RTM_NEWADDR ? "added" : "removed");
		break;
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		log_debug("netlink: route %s",
		    h->nlmsg_type == RTM_NEWROUTE ? "added" : "removed");
		break;
	}
}

/* Drain the socket; any relevant message (or an overrun) is a change. */
static void
netlink_read(evutil_socket_t fd, short what, void *arg)
{
	struct netlink *nl = arg;
	char buf[8192];
	struct nlmsghdr *h;
	ssize_t n;
	int changed = 0;
	unsigned int len;

	for (;;) {
		n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n == -1) {
			if (errno == ENOBUFS) {
				changed = 1;
				continue;
			}
			break;
		}
		if (n == 0)
			break;
		len = (unsigned int)n;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, len);
		    h = NLMSG_NEXT(h, len)) {
			switch (h->nlmsg_type) {
			case RTM_NEWLINK:
			case RTM_DELLINK:
			case RTM_NEWADDR:
			case RTM_DELADDR:
			case RTM_NEWROUTE:
			case RTM_DELROUTE:
				netlink_log(h);
				changed = 1;
				break;
			}
		}
	}
	if (changed)
		nl->cb(nl->arg);
}

/*
 * Subscribe to link, address and route changes: a modem coming up or the
 * Arc interface getting its address is a reason to try now.
 */
struct netlink *
netlink_open(struct event_base *base, void (*cb)(void *), void *arg)
{
	struct sockaddr_nl sa;
	struct netlink *nl;
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    NETLINK_ROUTE);
	if (fd == -1) {
		log_warn("netlink socket");
		return NULL;
	}
	memset(&sa, 0, sizeof sa);
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
	    RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
		log_warn("netlink bind");
		close(fd);
		return NULL;
	}
	nl = xcalloc(1, sizeof *nl);
	nl->fd = fd;
	nl->cb = cb;
	nl->arg = arg;
	nl->ev = event_new(base, fd, EV_READ | EV_PERSIST, netlink_read, nl);
	if (nl->ev == NULL)
		fatalx("event_new");
	event_add(nl->ev, NULL);
	return nl;
}

/* Stop listening. */
void
netlink_close(struct netlink *nl)
{
	if (nl == NULL)
		return;
	event_free(nl->ev);
	close(nl->fd);
	free(nl);
}
