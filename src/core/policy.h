/* policy.h - the server's destination policy: allow/deny rules, the host's
 * own addresses (`self`), and the verdict on one address and port.
 *
 * The rules are read by config.c (the allow and deny keys) into the
 * struct config_policy of struct config; the exit daemon asks
 * config_dest_allowed_with before it connects.
 * Pure: the I/O layer (src/io/ifaddrs.c) reads the own addresses.
 */
#ifndef KCPSOCKS_POLICY_H
#define KCPSOCKS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/limits.h"

/* One destination rule: an address block and a port range. */
struct config_rule {
	uint8_t family;   /* 0: any address (written `*`), 4 or 6, or
	                     CONFIG_RULE_SELF (written `self`): every address of
	                     the host's own interfaces (struct config_self) */
	uint8_t prefix;   /* bits of addr that must match: 0..32 or 0..128 */
	uint8_t addr[16]; /* network order; IPv4 in the first 4 bytes */
	uint16_t port_lo, port_hi;
};

enum { CONFIG_RULE_SELF = 1 };

/* The rules of [server] allow and deny, in the order written. */
struct config_policy {
	struct config_rule allow[CONFIG_RULES_MAX];
	size_t n_allow;
	struct config_rule deny[CONFIG_RULES_MAX];
	size_t n_deny;
};

/* The exit host's own interface addresses as the I/O layer last read them
 * (src/io/ifaddrs.c): the data a `self` rule matches. IPv4 in the first 4
 * bytes of addr, network order. */
struct config_self {
	size_t n;
	struct config_self_addr {
		uint8_t family; /* 4 or 6 */
		uint8_t addr[16];
	} a[CONFIG_SELF_MAX];
};

/* The default of [server] deny: the host's own addresses, then the IANA
 * special-purpose blocks (RFC 6890 and the registries it set up) that are
 * not the public Internet: "this network", private, shared (CGN), loopback,
 * link-local, IETF protocol assignments, the documentation nets,
 * benchmarking, multicast and reserved; IPv4-compatible and IPv4-mapped
 * IPv6, NAT64 (well-known and local-use), 6to4, unique-local, site-local
 * (deprecated), link-local, documentation, multicast. */
#define CONFIG_DEFAULT_DENY                                                                        \
	"self, 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, " \
	"192.0.0.0/24, 192.0.2.0/24, 192.168.0.0/16, 198.18.0.0/15, 198.51.100.0/24, "             \
	"203.0.113.0/24, 224.0.0.0/3, ::/96, ::ffff:0:0/96, 64:ff9b::/96, 64:ff9b:1::/48, "        \
	"2001:db8::/32, 2002::/16, fc00::/7, fe80::/10, fec0::/10, ff00::/8"

/* config_dest_allowed_with applies the server's destination policy to an
 * address (family 4 or 6, addr in network order, 4 or 16 bytes) and port: a
 * match in allow permits; otherwise a match in deny refuses; otherwise it is
 * allowed. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is also judged as
 * the IPv4 address a.b.c.d, where a dual-stack socket would connect. Any
 * other family is refused. A `self` rule matches the addresses in self
 * (borrowed; NULL: none known). The default deny list holds `self`,
 * loopback, private, link-local and the other IANA special-purpose blocks
 * (CONFIG_DEFAULT_DENY; docs/CONFIG.md lists them); setting deny replaces it. */
KS_MUST_CHECK bool config_dest_allowed_with(const struct config_policy *pol,
                                            const struct config_self *self, int family,
                                            const uint8_t *addr, uint16_t port);

/* config_dest_allowed is config_dest_allowed_with without own addresses
 * (a `self` rule matches nothing). */
KS_MUST_CHECK bool config_dest_allowed(const struct config_policy *pol, int family,
                                       const uint8_t *addr, uint16_t port);

/* config_self_has: is (family, addr) one of self's addresses? NULL: no. */
KS_MUST_CHECK bool config_self_has(const struct config_self *self, int family, const uint8_t *addr);

/* config_rule_parse parses one rule: `*`, `self`, an IPv4 or IPv6 address,
 * with an optional /PREFIX (not after `*` or `self`), then an optional :PORT
 * or :LO-HI. IPv6 with a port and
 * no prefix goes in brackets: `[::1]:80`, `2001:db8::/32:443`.
 * Returns 0 or KS_ERR_INVAL (out unchanged). */
KS_MUST_CHECK int config_rule_parse(const char *text, size_t len, struct config_rule *out);

/* config_rule_match: does the rule cover (family, addr, port)? A `self`
 * rule matches nothing here (it needs the own addresses: see
 * config_dest_allowed_with). */
KS_MUST_CHECK bool config_rule_match(const struct config_rule *r, int family, const uint8_t *addr,
                                     uint16_t port);

#endif
