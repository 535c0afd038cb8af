/* fuzz_io_mstatus.c - lines of a scrape into the status parser, and whole
 * scrapes into the renderer: any bytes give a sample, a skip or a refusal,
 * never a read outside the input; a sample's strings are terminated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/mstatus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy, so ASan sees any read past the line. */
	char *line = malloc(size ? size : 1);
	struct mstatus_sample s;
	FILE *sink;
	int rc;

	if (!line)
		return 0;
	if (size)
		memcpy(line, data, size);
	rc = mstatus_parse_line(line, size, &s);
	if (rc != 1 && rc != 0 && rc != KS_ERR_PROTO)
		abort();
	if (rc == 1 && (memchr(s.name, 0, sizeof s.name) == NULL || s.name[0] == '\0' ||
	                memchr(s.label, 0, sizeof s.label) == NULL ||
	                memchr(s.label_name, 0, sizeof s.label_name) == NULL))
		abort();
	sink = fopen("/dev/null", "w");
	if (sink) {
		(void)mstatus_render(sink, (size & 1) ? CONFIG_ROLE_SERVER : CONFIG_ROLE_LOCAL,
		                     line, size);
		fclose(sink);
	}
	free(line);
	return 0;
}
