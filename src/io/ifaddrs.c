/* ifaddrs.c - the host's own interface addresses (see ifaddrs.h). */
#include "io/ifaddrs.h"

#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* add copies one interface address into out; false when it is not IP. */
static bool add(struct config_self *out, const struct sockaddr *sa)
{
	struct config_self_addr *a = &out->a[out->n];

	memset(a, 0, sizeof *a);
	if (sa->sa_family == AF_INET) {
		a->family = 4;
		memcpy(a->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		a->family = 6;
		memcpy(a->addr, ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr,
		       16);
	} else {
		return false;
	}
	out->n++;
	return true;
}

int ifaddrs_read(struct config_self *out)
{
	struct ifaddrs *list, *i;
	struct config_self *tmp;

	if (getifaddrs(&list) != 0)
		return KS_ERR_IO;
	/* Built aside, so a failure leaves *out as it was. */
	tmp = calloc(1, sizeof *tmp);
	if (!tmp) {
		freeifaddrs(list);
		errno = ENOMEM;
		return KS_ERR_IO;
	}
	for (i = list; i && tmp->n < CONFIG_SELF_MAX; i = i->ifa_next)
		if (i->ifa_addr)
			(void)add(tmp, i->ifa_addr);
	freeifaddrs(list);
	*out = *tmp;
	free(tmp);
	return 0;
}

const struct config_self *ifaddrs_current(struct ifaddrs_cache *c, uint64_t now)
{
	if (c->read_at == 0 || now - c->read_at >= IFADDRS_REFRESH_MS) {
		c->read_at = now ? now : 1;
		c->last_errno = ifaddrs_read(&c->self) == 0 ? 0 : errno;
	}
	return &c->self;
}
