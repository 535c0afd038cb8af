/* policy.c - the server's destination policy (policy.h). A rule is parsed
 * once into a masked address block and a port range; a verdict is a linear
 * scan of allow, then deny (at most CONFIG_RULES_MAX each).
 */
#include "core/policy.h"

#include <string.h>

#include "base/rd.h"
#include "core/cfgtext.h"

static void mask_addr(uint8_t addr[static 16], unsigned prefix)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
		addr[i] &= (uint8_t)(0xff00u >> keep);
	}
}

/* rule_addr reads the address part; leaves r at what follows it. */
static bool rule_addr(struct rd *r, struct config_rule *o)
{
	const char *s = (const char *)r->p;
	size_t n = rd_left(r);
	const char *v;
	size_t vn;

	if (n && s[0] == '*') {
		o->family = 0;
		return rd_skip(r, 1);
	}
	if (n >= 4 && memcmp(s, "self", 4) == 0 && (n == 4 || s[4] == ':')) {
		o->family = CONFIG_RULE_SELF;
		return rd_skip(r, 4);
	}
	if (n && s[0] == '[') {
		rd_skip(r, 1);
		o->family = 6;
		return cfgtext_take_until(r, ']', &v, &vn) && cfgtext_pton(6, v, vn, o->addr);
	}
	/* Bare: the address runs to '/', or is the whole text, or is IPv4
	 * before the last ':'. */
	const char *slash = memchr(s, '/', n);
	if (slash)
		vn = (size_t)(slash - s);
	else if (cfgtext_pton(4, s, n, o->addr) || cfgtext_pton(6, s, n, o->addr))
		vn = n;
	else
		vn = memrchr(s, ':', n) ? (size_t)((const char *)memrchr(s, ':', n) - s) : n;
	o->family = cfgtext_pton(4, s, vn, o->addr) ? 4 : cfgtext_pton(6, s, vn, o->addr) ? 6 : 0;
	return o->family != 0 && rd_skip(r, vn);
}

static bool rule_ports(const char *s, size_t n, struct config_rule *o)
{
	const char *dash = memchr(s, '-', n);

	if (!dash) {
		if (!cfgtext_parse_port(s, n, &o->port_lo))
			return false;
		o->port_hi = o->port_lo;
		return true;
	}
	return cfgtext_parse_port(s, (size_t)(dash - s), &o->port_lo) &&
	       cfgtext_parse_port(dash + 1, (size_t)(s + n - dash - 1), &o->port_hi) &&
	       o->port_lo <= o->port_hi;
}

int config_rule_parse(const char *text, size_t len, struct config_rule *out)
{
	struct config_rule o = { .port_lo = 0, .port_hi = 65535 };
	struct rd r;
	uint64_t prefix;
	const char *v;
	size_t vn;

	cfgtext_trim(&text, &len);
	r = rd_init(text, len);
	if (!rule_addr(&r, &o))
		return KS_ERR_INVAL;
	o.prefix = o.family == 4 ? 32 : o.family == 6 ? 128 : 0;
	if (rd_left(&r) && *r.p == '/') {
		rd_skip(&r, 1);
		bool has_port = cfgtext_take_until(&r, ':', &v, &vn);
		if (o.prefix == 0 || !cfgtext_parse_u64(v, vn, &prefix) || vn > 3 ||
		    prefix > o.prefix)
			return KS_ERR_INVAL;
		o.prefix = (uint8_t)prefix;
		if (has_port && !rule_ports((const char *)r.p, rd_left(&r), &o))
			return KS_ERR_INVAL;
	} else if (rd_left(&r)) {
		if (*r.p != ':' || !rule_ports((const char *)r.p + 1, rd_left(&r) - 1, &o))
			return KS_ERR_INVAL;
	}
	mask_addr(o.addr, o.prefix);
	*out = o;
	return 0;
}

bool config_self_has(const struct config_self *self, int family, const uint8_t *addr)
{
	size_t len = family == 4 ? 4 : 16;

	if (!self || (family != 4 && family != 6))
		return false;
	for (size_t i = 0; i < self->n && i < CONFIG_SELF_MAX; i++)
		if (self->a[i].family == family && memcmp(self->a[i].addr, addr, len) == 0)
			return true;
	return false;
}

static bool rule_match(const struct config_rule *r, const struct config_self *self, int family,
                       const uint8_t *addr, uint16_t port)
{
	uint8_t a[16] = { 0 };

	if (port < r->port_lo || port > r->port_hi)
		return false;
	if (r->family == 0)
		return true;
	if (r->family == CONFIG_RULE_SELF)
		return config_self_has(self, family, addr);
	if (r->family != family || (family != 4 && family != 6))
		return false;
	memcpy(a, addr, family == 4 ? 4 : 16);
	mask_addr(a, r->prefix);
	return memcmp(a, r->addr, 16) == 0;
}

bool config_rule_match(const struct config_rule *r, int family, const uint8_t *addr, uint16_t port)
{
	return rule_match(r, NULL, family, addr, port);
}

static bool any_match(const struct config_rule *rs, size_t n, const struct config_self *self,
                      int family, const uint8_t *addr, uint16_t port)
{
	for (size_t i = 0; i < n; i++)
		if (rule_match(&rs[i], self, family, addr, port))
			return true;
	return false;
}

/* mapped_v4 says whether addr is an IPv4-mapped IPv6 address ::ffff:a.b.c.d
 * and copies a.b.c.d into v4: a dual-stack socket reaches that IPv4 host. */
static bool mapped_v4(const uint8_t addr[static 16], uint8_t v4[static 16])
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	if (memcmp(addr, prefix, sizeof prefix) != 0)
		return false;
	memset(v4, 0, 16);
	memcpy(v4, addr + 12, 4);
	return true;
}

/* The destination is judged in each form it can be reached by: an
 * IPv4-mapped address meets both the IPv6 and the IPv4 rules. An address
 * family the rules do not know is refused (fail closed). */
bool config_dest_allowed_with(const struct config_policy *pol, const struct config_self *self,
                              int family, const uint8_t *addr, uint16_t port)
{
	uint8_t v4[16];
	bool mapped;

	if (family != 4 && family != 6)
		return false;
	mapped = family == 6 && mapped_v4(addr, v4);
	if (any_match(pol->allow, pol->n_allow, self, family, addr, port) ||
	    (mapped && any_match(pol->allow, pol->n_allow, self, 4, v4, port)))
		return true;
	return !any_match(pol->deny, pol->n_deny, self, family, addr, port) &&
	       !(mapped && any_match(pol->deny, pol->n_deny, self, 4, v4, port));
}

bool config_dest_allowed(const struct config_policy *pol, int family, const uint8_t *addr,
                         uint16_t port)
{
	return config_dest_allowed_with(pol, NULL, family, addr, port);
}
