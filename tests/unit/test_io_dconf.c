/* test_io_dconf.c - the daemons' command line: options override in order,
 * bad input gives a message that names it. (The profile mapping is
 * core/transport's: test_transport.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/dconf.h"

/* A connection string with fixed keys. */
static void make_url(char *url, size_t cap)
{
	struct config_connstr c = { .user = "alice", .server = { true, "127.0.0.1", 8443 } };

	memset(c.psk, 1, sizeof c.psk);
	memset(c.server_key, 9, sizeof c.server_key);
	assert_true(config_connstr_format(&c, url, cap) > 0);
}

static int parse(int argc, char **argv, struct config **cfg, enum dconf_action *act, char *err)
{
	return dconf_parse(argc, argv, 1, CONFIG_ROLE_LOCAL, "usage", cfg, act, err, 256);
}

static void options_apply_in_order(void **state)
{
	char url[CONFIG_CONNSTR_MAX], err[256];
	char *argv[] = { "x",    "--connect", url,     "--listen=127.0.0.1:1099", "--mtu",
		         "1200", "--profile", "lossy", "--check-config" };
	struct config *cfg;
	enum dconf_action act;

	(void)state;
	make_url(url, sizeof url);
	assert_int_equal(parse(9, argv, &cfg, &act, err), 0);
	assert_int_equal(act, DCONF_CHECK);
	assert_int_equal(cfg->local_listen.port, 1099);
	assert_string_equal(cfg->user, "alice");
	assert_string_equal(cfg->profile.name, "lossy");
	assert_int_equal(cfg->profile.mtu, 1200); /* override wins over the profile */
	config_free(cfg);
}

static void bad_command_lines(void **state)
{
	char url[CONFIG_CONNSTR_MAX], err[256];
	struct config *cfg = (struct config *)1;
	enum dconf_action act;
	char *unknown[] = { "x", "--connect", url, "--mtuu", "1" };
	char *range[] = { "x", "--connect", url, "--mtu", "70000" };
	char *novalue[] = { "x", "--connect", url, "--mtu" };
	char *stray[] = { "x", "stray" };
	char *nofile[] = { "x", "--config", "/nonexistent/kcpsocks.conf" };
	char *missing[] = { "x", "--listen", "127.0.0.1:1080" };

	(void)state;
	make_url(url, sizeof url);
	assert_int_equal(parse(5, unknown, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, "mtuu"));
	assert_null(cfg);
	assert_int_equal(parse(5, range, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, "70000"));
	assert_int_equal(parse(4, novalue, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, "--mtu"));
	assert_int_equal(parse(2, stray, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, "stray"));
	assert_int_equal(parse(3, nofile, &cfg, &act, err), KS_ERR_IO);
	assert_non_null(strstr(err, "/nonexistent/kcpsocks.conf"));
	assert_int_equal(parse(3, missing, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, "server"));
}

static void config_file_and_options(void **state)
{
	char path[] = "/tmp/test_io_dconf_XXXXXX", err[256], url[CONFIG_CONNSTR_MAX];
	char line[CONFIG_CONNSTR_MAX + 64];
	char *argv[] = { "x", "--config", path, "--listen", "127.0.0.1:2000" };
	struct config *cfg;
	enum dconf_action act;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	make_url(url, sizeof url);
	snprintf(line, sizeof line, "[local]\nconnect = %s\nlisten = 127.0.0.1:1999\n", url);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);
	assert_int_equal(parse(5, argv, &cfg, &act, err), 0);
	assert_int_equal(act, DCONF_RUN);
	assert_int_equal(cfg->local_listen.port, 2000); /* the option replaces the file */
	config_free(cfg);
	unlink(path);
}

static void read_file_bounds(void **state)
{
	char path[] = "/tmp/test_io_dconf_XXXXXX", err[256];
	int fd = mkstemp(path);
	size_t len;
	char *t;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789", 10), 10);
	close(fd);
	t = dconf_read_file(path, 10, &len, err, sizeof err);
	assert_non_null(t);
	assert_int_equal(len, 10);
	assert_string_equal(t, "0123456789");
	free(t);
	assert_null(dconf_read_file(path, 9, &len, err, sizeof err));
	assert_non_null(strstr(err, "too large"));
	unlink(path);
}

/* A temporary file holding text, mode 0600; returns its path in path. */
static void temp_file(char path[static 32], const char *text)
{
	int fd;

	strcpy(path, "/tmp/test_io_dconf_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void b64(char out[static 44], uint8_t fill)
{
	uint8_t k[32];

	memset(k, fill, sizeof k);
	sodium_bin2base64(out, 44, k, sizeof k, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* psk_file, connect_file and --connect - keep secrets off the command
 * line: each is read into psk or connect, trimmed; a clash with what it
 * sets and a bad file are refused with the file's name; -c is --config. */
static void secrets_from_files(void **state)
{
	char url[CONFIG_CONNSTR_MAX], err[256], pub[44], psk[44], text[CONFIG_CONNSTR_MAX + 64];
	char pskf[32], urlf[32], conf[32], badf[32];
	struct config *cfg;
	enum dconf_action act;
	uint8_t ones[32];

	(void)state;
	memset(ones, 1, sizeof ones);
	make_url(url, sizeof url);
	b64(pub, 9);
	b64(psk, 1);
	snprintf(text, sizeof text, "  %s\n", psk);
	temp_file(pskf, text);
	snprintf(text, sizeof text, "%s\r\n", url);
	temp_file(urlf, text);
	snprintf(text, sizeof text, "[local]\nconnect_file = %s\n", urlf);
	temp_file(conf, text);
	temp_file(badf, "nope\n");

	char *with_psk_file[] = { "x", "--server", "127.0.0.1:1", "--server_public_key",
		                  pub, "--user",   "bob",         "--psk_file",
		                  pskf };
	assert_int_equal(parse(9, with_psk_file, &cfg, &act, err), 0);
	assert_true(cfg->has_psk);
	assert_memory_equal(cfg->psk, ones, 32);
	config_free(cfg);

	char *with_conf[] = { "x", "-c", conf, "--listen", "127.0.0.1:2001" };
	assert_int_equal(parse(5, with_conf, &cfg, &act, err), 0);
	assert_string_equal(cfg->user, "alice");
	assert_memory_equal(cfg->psk, ones, 32);
	assert_int_equal(cfg->local_listen.port, 2001);
	config_free(cfg);

	char *clash[] = { "x", "--connect", url, "--psk_file", pskf };
	assert_int_equal(parse(5, clash, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, "psk_file"));
	char *clash2[] = { "x", "-c", conf, "--user", "bob" };
	assert_int_equal(parse(5, clash2, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, "connect_file"));
	char *bad[] = { "x", "--connect_file", badf };
	assert_int_equal(parse(3, bad, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, badf));
	assert_non_null(strstr(err, "does not start with kcpsocks://"));
	char *badpsk[] = { "x",   "--server",   "127.0.0.1:1", "--server_public_key", pub, "--user",
		           "bob", "--psk_file", badf };
	assert_int_equal(parse(9, badpsk, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, badf));
	assert_non_null(strstr(err, "base64url"));
	char *nofile[] = { "x", "--psk_file", "/nonexistent/psk" };
	assert_int_equal(parse(3, nofile, &cfg, &act, err), KS_ERR_IO);
	assert_non_null(strstr(err, "/nonexistent/psk"));

	/* --connect - reads standard input */
	int saved = dup(STDIN_FILENO), fd = open(urlf, O_RDONLY);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	close(fd);
	char *from_stdin[] = { "x", "--connect", "-" };
	int rc = parse(3, from_stdin, &cfg, &act, err);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->user, "alice");
	config_free(cfg);

	unlink(pskf);
	unlink(urlf);
	unlink(conf);
	unlink(badf);
}

/* The example keys once published with the source are refused. */
static void published_keys_refused(void **state)
{
	struct config_connstr c = { .user = "alice", .server = { true, "127.0.0.1", 8443 } };
	char url[CONFIG_CONNSTR_MAX], err[256];
	char *argv[] = { "x", "--connect", url };
	struct config *cfg;
	enum dconf_action act;

	(void)state;
	for (size_t i = 0; i < 32; i++) {
		c.psk[i] = (uint8_t)i;
		c.server_key[i] = 7;
	}
	assert_true(config_connstr_format(&c, url, sizeof url) > 0);
	assert_int_equal(parse(3, argv, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, "psk: this is the example key published"));
	memset(c.psk, 3, 32);
	for (size_t i = 0; i < 32; i++)
		c.server_key[i] = (uint8_t)(0x64 + i);
	assert_true(config_connstr_format(&c, url, sizeof url) > 0);
	assert_int_equal(parse(3, argv, &cfg, &act, err), KS_ERR_INVAL);
	assert_non_null(strstr(err, "server_public_key: this is the example key published"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(options_apply_in_order),  cmocka_unit_test(bad_command_lines),
		cmocka_unit_test(config_file_and_options), cmocka_unit_test(read_file_bounds),
		cmocka_unit_test(secrets_from_files),      cmocka_unit_test(published_keys_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
