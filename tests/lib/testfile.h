/* testfile.h - reading a file of the source tree from a test (the tests run
 * from the top of the tree: docs/, examples/). */
#ifndef KCPSOCKS_TESTFILE_H
#define KCPSOCKS_TESTFILE_H

/* test_read_file returns the whole file NUL-terminated (owned by the
 * caller: free it), or NULL if it cannot be opened or read whole. */
char *test_read_file(const char *path);

#endif
