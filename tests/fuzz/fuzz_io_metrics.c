/* fuzz_io_metrics.c - request heads into the metrics endpoint's router:
 * any bytes give one of the routes, never a read outside the input. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy, so ASan sees any read past the request. */
	char *req = malloc(size ? size : 1);
	bool head = true;
	enum metrics_route r;

	if (!req)
		return 0;
	if (size)
		memcpy(req, data, size);
	r = metrics_route(req, size, &head);
	if (r > METRICS_ROUTE_NOT_FOUND)
		abort();
	if (r == METRICS_ROUTE_BAD_REQUEST && head)
		abort(); /* a refused head is never taken for HEAD */
	if ((r == METRICS_ROUTE_METRICS || r == METRICS_ROUTE_HEALTHZ) &&
	    (size < 4 || (memcmp(req, "GET ", 4) != 0 && memcmp(req, "HEAD", 4) != 0)))
		abort();
	free(req);
	return 0;
}
