/* fuzz_io_addr.c - addresses from config files and command lines: any text
 * into addr_parse and addr_parse_host_port. A parse either fails with a
 * message or yields an address that formats and parses back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/addr.h"

static void check_roundtrip(const struct sockaddr_storage *ss)
{
	char text[ADDR_TEXT_MAX], err[ADDR_ERR_MAX];
	struct sockaddr_storage again;

	if (addr_parse(addr_format(ss, text), NULL, &again, err, sizeof err) != 0)
		abort();
	if (!addr_equal(ss, &again))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[256], err[ADDR_ERR_MAX];
	struct sockaddr_storage ss;
	char *sep;

	if (size >= sizeof text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	if (addr_parse(text, "127.0.0.1", &ss, err, sizeof err) == 0)
		check_roundtrip(&ss);
	else if (err[0] == '\0')
		abort(); /* every refusal explains itself */

	sep = strchr(text, ' ');
	if (sep) {
		*sep = '\0';
		if (addr_parse_host_port(text, sep + 1, &ss, err, sizeof err) == 0)
			check_roundtrip(&ss);
	}
	return 0;
}
