/* test_config.c - the config file, the options, rules, connection strings
 * and the generated docs. Most tests are tables: a text and the exact
 * message a user would see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "core/config.c"
#include "core/configdoc.h"
#include "lib/testfile.h"

#define K1 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define K2 "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM"
#define CS "kcpsocks://alice:" K1 "@127.0.0.1:8443?key=" K2

/* load parses text as "t.conf" into a fresh config; err gets the message. */
static int load(const char *text, struct config **out, char err[CONFIG_ERR_MAX])
{
	struct config *cfg = config_new();
	int rc;

	assert_non_null(cfg);
	err[0] = '\0';
	rc = config_load(cfg, "t.conf", text, strlen(text), err, CONFIG_ERR_MAX);
	if (out)
		*out = cfg;
	else
		config_free(cfg);
	return rc;
}

struct bad {
	const char *text;
	const char *msg;
};

static const struct bad bad_files[] = {
	{ "[local]\nmtuu = 1\n", "t.conf:2: unknown key 'mtuu' in [local]" },
	{ "[local]\nmtu = 1300\n", "t.conf:2: unknown key 'mtu' in [local]" },
	{ "[transport]\nmtu = 70000\n", "t.conf:2: mtu: 70000 is out of range 576..1500" },
	{ "[transport]\nmtu = 99999999999\n", "t.conf:2: mtu: '99999999999' is not a number" },
	{ "[transport]\nsnd_wnd = 8\n", "t.conf:2: snd_wnd: 8 is out of range 16..8192" },
	{ "[transport]\nnc = maybe\n", "t.conf:2: nc: 'maybe' is not true or false" },
	{ "[transport]\nmtu = 1300\nmtu = 1200\n",
	  "t.conf:3: duplicate key 'mtu' in [transport] (first on line 2)" },
	{ "[transport]\nwindow = 3\n", "t.conf:2: unknown key 'window' in [transport]" },
	{ "[foo]\n\nx = 1\n", "t.conf:1: unknown section [foo]" },
	{ "[user]\npsk = " K1 "\n", "t.conf:1: unknown section [user]" },
	{ "[user bad name!]\npsk = " K1 "\n", "t.conf:1: unknown section [user bad name!]" },
	{ "[local]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n",
	  "t.conf:3: duplicate key 'listen' in [local] (first on line 2)" },
	{ "garbage\n", "t.conf:1: expected [section] or key = value" },
	{ "# comment\n[local\nlisten = 127.0.0.1:1\n",
	  "t.conf:2: expected [section] or key = value" },
	{ "junk\n[local]\nmtuu = 1\n", "t.conf:1: expected [section] or key = value" },
	{ "[local]\nmtuu = 1\njunk\n", "t.conf:2: unknown key 'mtuu' in [local]" },
	{ "log_level = loud\n",
	  "t.conf:1: log_level: 'loud' is not one of: error, warn, info or debug" },
	{ "cipher = aes\n", "t.conf:1: cipher: 'aes' is not one of: auto or chacha20" },
	{ "stream_delivery = yes\n", "t.conf:1: stream_delivery: 'yes' is not one of: off or on" },
	{ "[common]\nlog_target = file\n",
	  "t.conf:2: log_target: 'file' is not one of: stderr or syslog" },
	{ "max_fds = -1\n", "t.conf:1: max_fds: '-1' is not a number" },
	{ "max_fds = 2000000\n", "t.conf:1: max_fds: 2000000 is out of range 0..1048576" },
	{ "[local]\nlisten = 1080\n",
	  "t.conf:2: listen: '1080' is not HOST:PORT (IPv6 as [ADDR]:PORT, port 1..65535)" },
	{ "[local]\nlisten = ::1:1080\n",
	  "t.conf:2: listen: '::1:1080' is not HOST:PORT (IPv6 as [ADDR]:PORT, port 1..65535)" },
	{ "[local]\nlisten = 127.0.0.1:0\n",
	  "t.conf:2: listen: '127.0.0.1:0' is not HOST:PORT (IPv6 as [ADDR]:PORT, port 1..65535)" },
	{ "[local]\nserver = [1.2.3.4]:80\n", "t.conf:2: server: '[1.2.3.4]:80' is not HOST:PORT "
	                                      "(IPv6 as [ADDR]:PORT, port 1..65535)" },
	{ "[local]\nlisten =\n", "t.conf:2: listen: empty value" },
	{ "[local]\npsk = short\n", "t.conf:2: psk: not a base64url 32-byte key (43 characters)" },
	{ "[local]\npsk = " K1 "A\n",
	  "t.conf:2: psk: not a base64url 32-byte key (43 characters)" },
	{ "[local]\nserver_public_key = " K1 "=\n",
	  "t.conf:2: server_public_key: '" K1 "=' is not a base64url 32-byte key (43 characters)" },
	{ "[local]\nuser = al ice\n",
	  "t.conf:2: user: 'al ice' is not a name (1..32 of A-Z a-z 0-9 . _ -)" },
	{ "[local]\nsocks_password = a\x01"
	  "b\n",
	  "t.conf:2: socks_password: value holds control characters" },
	{ "metrics_listen = 10.0.0.1:9100\n",
	  "t.conf:1: metrics_listen: '10.0.0.1:9100' is not on a loopback address (127.0.0.0/8, "
	  "[::1], localhost)" },
	{ "profile = turbo\n", "t.conf:1: profile: unknown profile 'turbo'" },
	{ "[server]\nprofiles = fast, turbo\n", "t.conf:2: profiles: unknown profile 'turbo'" },
	{ "[server]\nprofiles = ,\n", "t.conf:2: profiles: unknown profile ''" },
	{ "[server]\nallow = 10.0.0.0/33\n",
	  "t.conf:2: allow: '10.0.0.0/33' is not ADDR[/PREFIX][:PORT[-PORT]] or *" },
	{ "[server]\ndeny = 10.0.0.0/8, , 1.2.3.4\n",
	  "t.conf:2: deny: '' is not ADDR[/PREFIX][:PORT[-PORT]] or *" },
	{ "[server]\nmax_sessions = 0\n", "t.conf:2: max_sessions: 0 is out of range 1..65536" },
	{ "[user alice]\npsk = " K1 "\npsk = " K2 "\n",
	  "t.conf:3: duplicate key 'psk' in [user alice] (first on line 2)" },
	{ "[local]\npsk = PASTE_PSK_HERE\n",
	  "t.conf:2: psk: 'PASTE_PSK_HERE' is a placeholder: put the real key here "
	  "(kcpsocks-server keygen and adduser print them)" },
	{ "[local]\nserver_public_key = <SERVERPUB>\n",
	  "t.conf:2: server_public_key: '<SERVERPUB>' is a placeholder: put the real key here "
	  "(kcpsocks-server keygen and adduser print them)" },
	{ "[user alice]\npsk = nope\n",
	  "t.conf:2: psk: not a base64url 32-byte key (43 characters)" },
	{ "[user alice]\nname = x\n", "t.conf:2: unknown key 'name' in [user alice]" },
	{ "[local]\nconnect = " CS "\nserver = 1.2.3.4:5\n",
	  "t.conf:3: duplicate key 'server' in [local] (already set by connect on line 2)" },
	{ "[local]\nserver = 1.2.3.4:5\nconnect = " CS "\n",
	  "t.conf:3: connect: 'server' is already set on line 2" },
	{ "profile = fast\n[local]\nconnect = " CS "&profile=lossy\n",
	  "t.conf:3: connect: 'profile' is already set on line 1" },
	{ "[local]\nconnect = kcpsocks://alice@x:1\n",
	  "t.conf:2: connect: missing psk after the user name (kcpsocks://USER:PSK@...)" },
	{ "[local]\nlisten = 127.0.0.1:1\0\n", NULL }, /* see nul_byte_is_an_error */
};

static void bad_files_give_exact_messages(void **state)
{
	(void)state;
	char err[CONFIG_ERR_MAX];

	for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
		if (!bad_files[i].msg)
			continue;
		int rc = load(bad_files[i].text, NULL, err);
		if (rc != KS_ERR_INVAL || strcmp(err, bad_files[i].msg) != 0)
			fail_msg("case %zu: rc %d\n  got  '%s'\n  want '%s'", i, rc, err,
			         bad_files[i].msg);
	}
}

static void nul_byte_is_an_error(void **state)
{
	(void)state;
	static const char text[] = "[local]\nlisten = 127.0.0.1:1\0\n";
	struct config *cfg = config_new();
	char err[CONFIG_ERR_MAX];

	assert_int_equal(config_load(cfg, "t.conf", text, sizeof text - 1, err, sizeof err),
	                 KS_ERR_INVAL);
	assert_string_equal(err, "t.conf:2: NUL byte in the line");
	config_free(cfg);
}

static void long_lines_are_refused_not_split(void **state)
{
	(void)state;
	char text[400], err[CONFIG_ERR_MAX];

	/* 197 characters is the longest line; 198 is refused with its number. */
	memset(text, 0, sizeof text);
	strcpy(text, "[server]\n#");
	memset(text + strlen(text), 'x', CONFIG_LINE_MAX - 1);
	strcat(text, "\nallow = *\n");
	assert_int_equal(load(text, NULL, err), 0);
	memcpy(strchr(text + 9, '\n'), "x\n", 2);
	strcat(text, "\n");
	assert_int_equal(load(text, NULL, err), KS_ERR_INVAL);
	assert_string_equal(err, "t.conf:2: line longer than 197 characters");
}

static void finish_errors(void **state)
{
	(void)state;
	static const struct {
		enum config_role role;
		const char *text;
		const char *msg;
	} t[] = {
		{ CONFIG_ROLE_LOCAL, "",
		  "t.conf: missing key 'server' in [local] (or set connect)" },
		{ CONFIG_ROLE_LOCAL, "[local]\nserver = h:1\n",
		  "t.conf: missing key 'server_public_key' in [local] (or set connect)" },
		{ CONFIG_ROLE_LOCAL,
		  "[local]\nserver = h:1\nserver_public_key = " K1 "\nuser = a\n",
		  "t.conf: missing key 'psk' in [local] (or set psk_file or connect)" },
		{ CONFIG_ROLE_LOCAL, "[local]\nconnect = " CS "\nsocks_user = u\n",
		  "t.conf: socks_user and socks_password go together" },
		{ CONFIG_ROLE_SERVER, "[user a]\npsk = " K1 "\n",
		  "t.conf: missing key 'private_key' or 'private_key_file' in [server]" },
		{ CONFIG_ROLE_SERVER,
		  "[server]\nprivate_key = " K1 "\nprivate_key_file = /k\n[user a]\npsk = " K1 "\n",
		  "t.conf: set one of private_key and private_key_file in [server], not both" },
		{ CONFIG_ROLE_SERVER, "[server]\nprivate_key = " K1 "\n",
		  "t.conf: no [user NAME] section: nobody could connect (kcpsocks-server adduser "
		  "NAME -c FILE prints one)" },
		{ CONFIG_ROLE_LOCAL,
		  "[local]\nconnect = " CS "\n[transport]\nidle_timeout_ms = 10000\n",
		  "t.conf: profile 'default' with its [transport] overrides: idle_timeout_ms: "
		  "10000 "
		  "must be at least twice keepalive_ms (25000)" },
	};
	char err[CONFIG_ERR_MAX];
	struct config *cfg;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		assert_int_equal(load(t[i].text, &cfg, err), 0);
		int rc = config_finish(cfg, t[i].role, err, sizeof err);
		if (rc != KS_ERR_INVAL || strcmp(err, t[i].msg) != 0)
			fail_msg("case %zu: rc %d\n  got  '%s'\n  want '%s'", i, rc, err, t[i].msg);
		config_free(cfg);
	}
}

static const char local_conf[] = "# kcpsocks-local\n"
                                 "\xef\xbb\xbf"
                                 "profile = mobile ; comments after a blank and ';'\n"
                                 "[local]\n"
                                 "  listen = [::1]:1081\n"
                                 "server = example.org:8443\n"
                                 "server_public_key = " K2 "\n"
                                 "user = alice\n"
                                 "psk = " K1 "\n"
                                 "socks_user = bob\n"
                                 "socks_password = s3cret pass\n"
                                 "[common]\n"
                                 "log_level = debug\n"
                                 "log_target = syslog\n"
                                 "metrics_listen = 127.0.0.1:9100\n"
                                 "run_as = nobody\n"
                                 "max_fds = 8192\n";

static void good_local_file(void **state)
{
	(void)state;
	struct config *cfg;
	char err[CONFIG_ERR_MAX];
	uint8_t k1[32], k2[32];

	for (int i = 0; i < 32; i++) {
		k1[i] = (uint8_t)i;
		k2[i] = (uint8_t)(100 + i);
	}
	/* The BOM is only honoured on line 1: here it makes line 2 a key named
	 * "\xef\xbb\xbfprofile", so take it out for the good case. */
	char text[sizeof local_conf];
	const char *bom = strstr(local_conf, "\xef\xbb\xbf");
	size_t pre = (size_t)(bom - local_conf);
	memcpy(text, local_conf, pre);
	strcpy(text + pre, bom + 3);
	assert_int_equal(load(text, &cfg, err), 0);
	assert_int_equal(config_finish(cfg, CONFIG_ROLE_LOCAL, err, sizeof err), 0);
	assert_string_equal(cfg->profile_name, "mobile");
	assert_string_equal(cfg->profile.name, "mobile");
	assert_int_equal(cfg->profile.mtu, 1200);
	assert_true(cfg->local_listen.set);
	assert_string_equal(cfg->local_listen.host, "::1");
	assert_int_equal(cfg->local_listen.port, 1081);
	assert_string_equal(cfg->server.host, "example.org");
	assert_int_equal(cfg->server.port, 8443);
	assert_memory_equal(cfg->server_public_key, k2, 32);
	assert_memory_equal(cfg->psk, k1, 32);
	assert_string_equal(cfg->user, "alice");
	assert_string_equal(cfg->socks_user, "bob");
	assert_string_equal(cfg->socks_password, "s3cret pass");
	assert_int_equal(cfg->log_level, CONFIG_LOG_DEBUG);
	assert_int_equal(cfg->log_target, CONFIG_LOG_SYSLOG);
	assert_true(cfg->metrics_listen.set);
	assert_int_equal(cfg->metrics_listen.port, 9100);
	assert_string_equal(cfg->run_as, "nobody");
	assert_int_equal(cfg->max_fds, 8192);
	config_free(cfg);

	/* A BOM on line 1 is skipped. */
	char bommed[64];
	snprintf(bommed, sizeof bommed, "\xef\xbb\xbfprofile = lossy\n");
	assert_int_equal(load(bommed, &cfg, err), 0);
	assert_string_equal(cfg->profile_name, "lossy");
	config_free(cfg);
}

/* stream_delivery (mux step 10) is on unless set off; on or off, nothing else. */
static void stream_delivery_key(void **state)
{
	char err[CONFIG_ERR_MAX];
	struct config *cfg;

	(void)state;
	assert_int_equal(load("stream_delivery = on\n", &cfg, err), 0);
	assert_int_equal(cfg->stream_delivery, CONFIG_STREAM_DELIVERY_ON);
	config_free(cfg);
	assert_int_equal(load("[common]\nstream_delivery = off\n", &cfg, err), 0);
	assert_int_equal(cfg->stream_delivery, CONFIG_STREAM_DELIVERY_OFF);
	config_free(cfg);
	assert_int_not_equal(load("[local]\nstream_delivery = on\n", NULL, err), 0);
}

static void defaults_come_from_the_table(void **state)
{
	(void)state;
	struct config *cfg = config_new();
	uint8_t a[16] = { 127, 0, 0, 1 };

	assert_non_null(cfg);
	assert_string_equal(cfg->profile_name, "default");
	assert_string_equal(cfg->local_listen.host, "127.0.0.1");
	assert_int_equal(cfg->local_listen.port, 1080);
	assert_string_equal(cfg->server_listen.host, "0.0.0.0");
	assert_int_equal(cfg->server_listen.port, 8443);
	assert_false(cfg->metrics_listen.set);
	assert_int_equal(cfg->log_level, CONFIG_LOG_INFO);
	assert_int_equal(cfg->log_target, CONFIG_LOG_STDERR);
	assert_int_equal(cfg->cipher, CONFIG_CIPHER_AUTO);
	assert_int_equal(cfg->stream_delivery, CONFIG_STREAM_DELIVERY_ON);
	assert_int_equal(cfg->max_sessions, 1024);
	assert_int_equal(cfg->connect_timeout_ms, 10000);
	assert_int_equal(cfg->max_idle_timeout_ms, 600000);
	assert_int_equal(cfg->accepted_profiles, (1u << profile_count()) - 1);
	assert_int_equal(cfg->policy.n_allow, 0);
	assert_true(cfg->policy.n_deny >= 10);
	assert_false(config_dest_allowed(&cfg->policy, 4, a, 80));
	assert_int_equal(cfg->profile.mtu, profile_default()->mtu);
	/* Every default in the table passes its own setter (config_new would
	 * fail otherwise), and every key with a range has its default in it. */
	for (size_t i = 0; i < KEY_COUNT; i++) {
		uint64_t v = 0;
		if (config_keys[i].type == T_U32) {
			assert_non_null(config_keys[i].def);
			assert_true(cfgtext_parse_u64(config_keys[i].def,
			                              strlen(config_keys[i].def), &v));
			assert_true(v >= config_keys[i].min && v <= config_keys[i].max);
		}
	}
	config_free(cfg);
	config_free(NULL);
}

static void server_file_and_users(void **state)
{
	(void)state;
	static const char text[] = "[server]\n"
	                           "listen = 127.0.0.1:9443\n"
	                           "private_key_file = /etc/kcpsocks/server.key\n"
	                           "allow = 127.0.0.0/8:1-65535\n"
	                           "allow = ::1\n"
	                           "deny = *:25\n"
	                           "profiles = default, lossy\n"
	                           "max_streams_per_session = 64\n"
	                           "[user alice]\npsk = " K1 "\n"
	                           "[ user bob ]\npsk = " K2 "\n";
	struct config *cfg;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(load(text, &cfg, err), 0);
	assert_int_equal(config_finish(cfg, CONFIG_ROLE_SERVER, err, sizeof err), 0);
	assert_string_equal(cfg->server_listen.host, "127.0.0.1");
	assert_int_equal(cfg->server_listen.port, 9443);
	assert_string_equal(cfg->private_key_file, "/etc/kcpsocks/server.key");
	assert_int_equal(cfg->policy.n_allow, 2);
	assert_int_equal(cfg->policy.n_deny, 1); /* the file's deny replaced the default */
	assert_int_equal(cfg->accepted_profiles, 1u << 0 | 1u << 2);
	assert_int_equal(cfg->max_streams_per_session, 64);
	assert_int_equal(cfg->n_users, 2);
	assert_non_null(config_find_user(cfg, "alice"));
	assert_non_null(config_find_user(cfg, "bob"));
	assert_null(config_find_user(cfg, "carol"));
	assert_int_equal(config_find_user(cfg, "bob")->psk[0], 100);
	assert_int_equal(config_find_user(cfg, "bob")->line, 12);

	uint8_t lo[16] = { 127, 0, 0, 1 }, pub[16] = { 8, 8, 8, 8 }, six[16] = { [15] = 1 };
	assert_true(config_dest_allowed(&cfg->policy, 4, lo, 80));
	assert_true(config_dest_allowed(&cfg->policy, 4, lo, 25)); /* allow wins over deny */
	assert_true(config_dest_allowed(&cfg->policy, 4, pub, 443));
	assert_false(config_dest_allowed(&cfg->policy, 4, pub, 25));
	assert_true(config_dest_allowed(&cfg->policy, 6, six, 25));
	config_free(cfg);
}

static void many_users_grow_the_array(void **state)
{
	(void)state;
	size_t n = 100, cap = n * 64;
	char *text = malloc(cap), err[CONFIG_ERR_MAX];
	size_t len = 0;
	struct config *cfg;

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "[user u%zu]\npsk = %s\n", i, K1);
	assert_int_equal(load(text, &cfg, err), 0);
	assert_int_equal(cfg->n_users, n);
	assert_string_equal(cfg->users[99].name, "u99");
	assert_string_equal(config_find_user(cfg, "u42")->name, "u42");
	config_free(cfg);
	free(text);
}

static void overrides_apply_over_the_profile_in_any_order(void **state)
{
	(void)state;
	static const char *const texts[] = {
		"[transport]\nmtu = 1300\nnc = off\n[common]\nprofile = mobile\n[local]\n"
		"connect = " CS "\n",
		"profile = mobile\n[local]\nconnect = " CS "\n[transport]\nnc = false\nmtu=1300\n",
	};
	char err[CONFIG_ERR_MAX];
	struct config *cfg;

	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(load(texts[i], &cfg, err), 0);
		assert_int_equal(config_finish(cfg, CONFIG_ROLE_LOCAL, err, sizeof err), 0);
		assert_string_equal(cfg->profile.name, "mobile");
		assert_int_equal(cfg->profile.mtu, 1300);
		assert_false(cfg->profile.nc);
		assert_int_equal(cfg->profile.keepalive_ms, profile_find("mobile")->keepalive_ms);
		assert_int_equal(cfg->profile.max_streams, profile_find("mobile")->max_streams);
		/* An option after the file changes the base; overrides stay. */
		assert_int_equal(
		        config_set(cfg, CONFIG_ROLE_LOCAL, "profile", "lossy", err, sizeof err), 0);
		assert_int_equal(config_finish(cfg, CONFIG_ROLE_LOCAL, err, sizeof err), 0);
		assert_int_equal(cfg->profile.snd_wnd, profile_find("lossy")->snd_wnd);
		assert_int_equal(cfg->profile.mtu, 1300);
		config_free(cfg);
	}
}

static void connect_fills_local_keys(void **state)
{
	(void)state;
	struct config *cfg;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(load("[local]\nconnect = " CS "&profile=fast\n", &cfg, err), 0);
	assert_int_equal(config_finish(cfg, CONFIG_ROLE_LOCAL, err, sizeof err), 0);
	assert_string_equal(cfg->user, "alice");
	assert_string_equal(cfg->server.host, "127.0.0.1");
	assert_int_equal(cfg->server.port, 8443);
	assert_int_equal(cfg->psk[1], 1);
	assert_int_equal(cfg->server_public_key[0], 100);
	assert_string_equal(cfg->profile.name, "fast");
	config_free(cfg);
}

/* Several servers: a comma list in server (file, option) or in the
 * connection string; the first is also cfg->server. */
static void server_lists(void **state)
{
	(void)state;
	struct config *cfg;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(load("[local]\nserver = a.example:1, [::1]:2 ,127.0.0.1:3\n"
	                      "server_public_key = " K2 "\nuser = u\npsk = " K1 "\n",
	                      &cfg, err),
	                 0);
	assert_int_equal(config_finish(cfg, CONFIG_ROLE_LOCAL, err, sizeof err), 0);
	assert_int_equal(cfg->servers.n, 3);
	assert_string_equal(cfg->server.host, "a.example");
	assert_string_equal(cfg->servers.e[1].host, "::1");
	assert_int_equal(cfg->servers.e[2].port, 3);
	assert_int_equal(cfg->server_return_ms, 60000);
	assert_int_equal(config_set(cfg, CONFIG_ROLE_LOCAL, "server", "b:9", err, sizeof err), 0);
	assert_int_equal(cfg->servers.n, 1);
	assert_string_equal(cfg->server.host, "b");
	assert_int_not_equal(config_set(cfg, CONFIG_ROLE_LOCAL, "server", "a:1,b:2,c:3,d:4,e:5",
	                                err, sizeof err),
	                     0);
	assert_string_equal(err, "--server: more than 4 servers");
	assert_int_not_equal(
	        config_set(cfg, CONFIG_ROLE_LOCAL, "server", "a:1,,b:2", err, sizeof err), 0);
	assert_int_equal(cfg->servers.n, 1); /* unchanged by a refused value */
	assert_int_equal(config_set(cfg, CONFIG_ROLE_LOCAL, "connect",
	                            "kcpsocks://alice:" K1 "@h1:1,h2:2?key=" K2, err, sizeof err),
	                 0);
	assert_int_equal(cfg->servers.n, 2);
	assert_string_equal(cfg->servers.e[1].host, "h2");
	assert_string_equal(cfg->server.host, "h1");
	assert_int_equal(config_set(cfg, CONFIG_ROLE_LOCAL, "resolver_servers", "127.0.0.1:5353",
	                            err, sizeof err),
	                 0);
	assert_int_equal(
	        config_set(cfg, CONFIG_ROLE_LOCAL, "resolver_lookups", "b", err, sizeof err), 0);
	assert_int_equal(cfg->resolver_lookups, CONFIG_LOOKUPS_B);
	config_free(cfg);
}

/* ---- the command line goes through the same setters ------------------- */

static void same_config(const struct config *a, const struct config *b)
{
	assert_string_equal(a->profile_name, b->profile_name);
	for (size_t i = 0; i < PROFILE_F_COUNT; i++)
		assert_int_equal(profile_get(&a->profile, profile_field_at(i)),
		                 profile_get(&b->profile, profile_field_at(i)));
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->log_target, b->log_target);
	assert_int_equal(a->cipher, b->cipher);
	assert_int_equal(a->stream_delivery, b->stream_delivery);
	assert_memory_equal(&a->metrics_listen, &b->metrics_listen, sizeof a->metrics_listen);
	assert_string_equal(a->run_as, b->run_as);
	assert_int_equal(a->max_fds, b->max_fds);
	assert_memory_equal(&a->local_listen, &b->local_listen, sizeof a->local_listen);
	assert_memory_equal(&a->server, &b->server, sizeof a->server);
	assert_memory_equal(a->server_public_key, b->server_public_key, 32);
	assert_string_equal(a->user, b->user);
	assert_memory_equal(a->psk, b->psk, 32);
	assert_string_equal(a->socks_user, b->socks_user);
	assert_string_equal(a->socks_password, b->socks_password);
	assert_memory_equal(&a->server_listen, &b->server_listen, sizeof a->server_listen);
	assert_memory_equal(a->private_key, b->private_key, 32);
	assert_string_equal(a->private_key_file, b->private_key_file);
	assert_int_equal(a->policy.n_allow, b->policy.n_allow);
	assert_memory_equal(a->policy.allow, b->policy.allow,
	                    a->policy.n_allow * sizeof a->policy.allow[0]);
	assert_int_equal(a->policy.n_deny, b->policy.n_deny);
	assert_memory_equal(a->policy.deny, b->policy.deny,
	                    a->policy.n_deny * sizeof a->policy.deny[0]);
	assert_int_equal(a->accepted_profiles, b->accepted_profiles);
	assert_int_equal(a->max_sessions, b->max_sessions);
	assert_int_equal(a->max_streams_per_session, b->max_streams_per_session);
	assert_int_equal(a->connect_timeout_ms, b->connect_timeout_ms);
	assert_int_equal(a->max_idle_timeout_ms, b->max_idle_timeout_ms);
}

static void flag_path_equals_file_path(void **state)
{
	(void)state;
	static const struct {
		enum config_role role;
		const char *section, *key, *value;
	} t[] = {
		{ CONFIG_ROLE_LOCAL, "common", "profile", "lossy" },
		{ CONFIG_ROLE_LOCAL, "common", "log_level", "warn" },
		{ CONFIG_ROLE_SERVER, "common", "cipher", "chacha20" },
		{ CONFIG_ROLE_LOCAL, "common", "stream_delivery", "off" },
		{ CONFIG_ROLE_SERVER, "common", "stream_delivery", "off" },
		{ CONFIG_ROLE_SERVER, "common", "metrics_listen", "[::1]:9100" },
		{ CONFIG_ROLE_LOCAL, "common", "max_fds", "100" },
		{ CONFIG_ROLE_LOCAL, "local", "listen", "127.0.0.2:1" },
		{ CONFIG_ROLE_LOCAL, "local", "psk", K2 },
		{ CONFIG_ROLE_LOCAL, "local", "connect", CS "&profile=mobile" },
		{ CONFIG_ROLE_LOCAL, "local", "socks_password", "pw" },
		{ CONFIG_ROLE_SERVER, "server", "listen", "[::]:443" },
		{ CONFIG_ROLE_SERVER, "server", "allow", "10.0.0.0/8:80-90, [::1]:22" },
		{ CONFIG_ROLE_SERVER, "server", "deny", "" },
		{ CONFIG_ROLE_SERVER, "server", "profiles", "fast" },
		{ CONFIG_ROLE_SERVER, "server", "private_key", K1 },
		{ CONFIG_ROLE_LOCAL, "transport", "mtu", "1400" },
		{ CONFIG_ROLE_SERVER, "transport", "fast_open", "yes" },
		{ CONFIG_ROLE_SERVER, "server", "max_idle_timeout_ms", "300000" },
		/* and bad values give the same reason */
		{ CONFIG_ROLE_SERVER, "server", "max_idle_timeout_ms", "4000" },
		{ CONFIG_ROLE_LOCAL, "transport", "mtu", "70000" },
		{ CONFIG_ROLE_LOCAL, "local", "listen", "nope" },
		{ CONFIG_ROLE_LOCAL, "common", "profile", "turbo" },
		{ CONFIG_ROLE_SERVER, "server", "allow", "1.2.3.4:99999" },
	};
	char text[512], ef[CONFIG_ERR_MAX], eo[CONFIG_ERR_MAX];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct config *f, *o = config_new();
		snprintf(text, sizeof text, "[%s]\n%s = %s\n", t[i].section, t[i].key, t[i].value);
		int rf = load(text, &f, ef);
		int ro = config_set(o, t[i].role, t[i].key, t[i].value, eo, sizeof eo);
		assert_int_equal(rf, ro);
		if (rf) {
			/* "t.conf:2: KEY: why" and "--KEY: why" */
			assert_string_equal(ef + strlen("t.conf:2: "), eo + 2);
		} else {
			assert_int_equal(config_finish(f, t[i].role, ef, sizeof ef),
			                 config_finish(o, t[i].role, eo, sizeof eo));
			same_config(f, o);
		}
		config_free(f);
		config_free(o);
	}
}

static void options_replace_file_values(void **state)
{
	(void)state;
	struct config *cfg;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(load("[server]\nallow = 1.0.0.0/8\nallow = 3.0.0.0/8\nlisten = "
	                      "127.0.0.1:1\n",
	                      &cfg, err),
	                 0);
	assert_int_equal(cfg->policy.n_allow, 2);
	assert_int_equal(config_set(cfg, CONFIG_ROLE_SERVER, "allow", "2.0.0.0/8", err, sizeof err),
	                 0);
	assert_int_equal(config_set(cfg, CONFIG_ROLE_SERVER, "allow", "4.0.0.0/8", err, sizeof err),
	                 0);
	assert_int_equal(cfg->policy.n_allow, 2);
	assert_int_equal(cfg->policy.allow[0].addr[0], 2);
	assert_int_equal(cfg->policy.allow[1].addr[0], 4);
	assert_int_equal(
	        config_set(cfg, CONFIG_ROLE_SERVER, "listen", "127.0.0.1:2", err, sizeof err), 0);
	assert_int_equal(cfg->server_listen.port, 2);
	config_free(cfg);
}

static void resolver_keys(void **state)
{
	(void)state;
	struct config *cfg;
	char err[CONFIG_ERR_MAX], long_list[CONFIG_DNS_TEXT_MAX + 2];

	assert_int_equal(load("[server]\nresolver_lookups = files\n"
	                      "resolver_servers = 127.0.0.53, [::1]:5353\n",
	                      &cfg, err),
	                 0);
	assert_int_equal(cfg->resolver_lookups, CONFIG_LOOKUPS_FILES);
	assert_string_equal(cfg->resolver_servers, "127.0.0.53, [::1]:5353");
	/* A bad order is named; the value stays what it was. */
	assert_int_equal(
	        config_set(cfg, CONFIG_ROLE_SERVER, "resolver_lookups", "dns", err, sizeof err),
	        KS_ERR_INVAL);
	assert_non_null(strstr(err, "resolver_lookups"));
	assert_int_equal(cfg->resolver_lookups, CONFIG_LOOKUPS_FILES);
	memset(long_list, '1', sizeof long_list - 1);
	long_list[sizeof long_list - 1] = '\0';
	assert_int_equal(
	        config_set(cfg, CONFIG_ROLE_SERVER, "resolver_servers", long_list, err, sizeof err),
	        KS_ERR_INVAL);
	assert_string_equal(cfg->resolver_servers, "127.0.0.53, [::1]:5353");
	/* [local] has its own pair, for the server's name. */
	assert_int_equal(
	        config_set(cfg, CONFIG_ROLE_LOCAL, "resolver_lookups", "b", err, sizeof err), 0);
	config_free(cfg);

	cfg = config_new();
	assert_non_null(cfg);
	assert_int_equal(cfg->resolver_lookups, CONFIG_LOOKUPS_FB);
	assert_string_equal(cfg->resolver_servers, "");
	config_free(cfg);
}

static void options_are_scoped_by_role(void **state)
{
	(void)state;
	struct config *cfg = config_new();
	char err[CONFIG_ERR_MAX];

	assert_int_equal(config_set(cfg, CONFIG_ROLE_LOCAL, "allow", "*", err, sizeof err),
	                 KS_ERR_INVAL);
	assert_string_equal(err, "unknown option '--allow'");
	assert_int_equal(config_set(cfg, CONFIG_ROLE_SERVER, "socks_user", "u", err, sizeof err),
	                 KS_ERR_INVAL);
	assert_string_equal(err, "unknown option '--socks_user'");
	assert_int_equal(
	        config_set(cfg, CONFIG_ROLE_LOCAL, "listen", "127.0.0.1:7", err, sizeof err), 0);
	assert_int_equal(cfg->local_listen.port, 7);
	assert_int_equal(cfg->server_listen.port, 8443);
	assert_int_equal(
	        config_set(cfg, CONFIG_ROLE_SERVER, "listen", "127.0.0.1:9", err, sizeof err), 0);
	assert_int_equal(cfg->server_listen.port, 9);
	assert_int_equal(cfg->local_listen.port, 7);
	/* A failing option leaves the config unchanged. */
	assert_int_equal(config_set(cfg, CONFIG_ROLE_LOCAL, "listen", "x", err, sizeof err),
	                 KS_ERR_INVAL);
	assert_int_equal(cfg->local_listen.port, 7);
	assert_int_equal(
	        config_set(cfg, CONFIG_ROLE_SERVER, "allow", "1.0.0.0/8, bad", err, sizeof err),
	        KS_ERR_INVAL);
	assert_int_equal(cfg->policy.n_allow, 0);
	config_free(cfg);

	/* Option names are unique across the sections one binary reads. */
	for (int role = CONFIG_ROLE_LOCAL; role <= CONFIG_ROLE_SERVER; role++) {
		enum section own = role == CONFIG_ROLE_LOCAL ? SEC_LOCAL : SEC_SERVER;
		for (size_t i = 0; i < KEY_COUNT; i++) {
			if (config_keys[i].sec != SEC_COMMON && config_keys[i].sec != own)
				continue;
			assert_null(profile_field_find(config_keys[i].name));
			for (size_t j = 0; j < i; j++)
				if (config_keys[j].sec == SEC_COMMON || config_keys[j].sec == own)
					assert_string_not_equal(config_keys[i].name,
					                        config_keys[j].name);
		}
	}
}

/* ---- every prefix of a good file is handled ---------------------------- */

static void every_prefix_of_a_file(void **state)
{
	(void)state;
	char err[CONFIG_ERR_MAX];
	size_t n = strlen(local_conf);

	for (size_t len = 0; len <= n; len++) {
		struct config *cfg = config_new();
		int rc = config_load(cfg, "t.conf", local_conf, len, err, sizeof err);
		assert_true(rc == 0 || rc == KS_ERR_INVAL);
		if (rc)
			assert_memory_equal(err, "t.conf:", 7);
		config_free(cfg);
	}
}

static void too_big_is_refused(void **state)
{
	(void)state;
	struct config *cfg = config_new();
	char err[CONFIG_ERR_MAX];
	char *big = calloc(1, (size_t)CONFIG_TEXT_MAX + 1);

	assert_int_equal(
	        config_load(cfg, "t.conf", big, (size_t)CONFIG_TEXT_MAX + 1, err, sizeof err),
	        KS_ERR_TOOBIG);
	free(big);
	assert_string_equal(err, "t.conf: larger than 1048576 bytes");
	config_free(cfg);
}

/* The examples hold placeholders, never keys: loaded as shipped they are
 * refused with a message that says so (the server's: no user yet). With the
 * placeholders filled in (and a user added) they are valid. */
static char *fill(const char *text, const char *what, const char *with)
{
	const char *at = strstr(text, what);
	char *out;

	assert_non_null(at);
	out = malloc(strlen(text) + strlen(with) + 1);
	assert_non_null(out);
	memcpy(out, text, (size_t)(at - text));
	strcpy(out + (at - text), with);
	strcat(out, at + strlen(what));
	return out;
}

static void examples_hold_placeholders(void **state)
{
	(void)state;
	char err[CONFIG_ERR_MAX];
	char *local = test_read_file("examples/kcpsocks-local.conf");
	char *server = test_read_file("examples/kcpsocks-server.conf");
	struct config *cfg, *fresh = config_new();
	char *a, *b;

	if (!local || !server)
		fail_msg("examples not found: run the tests from the top of the tree");
	cfg = config_new();
	assert_int_equal(config_load(cfg, "l.conf", local, strlen(local), err, sizeof err),
	                 KS_ERR_INVAL);
	assert_non_null(strstr(err, "is a placeholder"));
	config_free(cfg);
	a = fill(local, "PASTE_SERVER_PUBLIC_KEY_HERE", K2);
	b = fill(a, "PASTE_PSK_HERE", K1);
	cfg = config_new();
	if (config_load(cfg, "l.conf", b, strlen(b), err, sizeof err) != 0 ||
	    config_finish(cfg, CONFIG_ROLE_LOCAL, err, sizeof err) != 0)
		fail_msg("%s", err);
	config_free(cfg);
	free(a);
	free(b);

	cfg = config_new();
	assert_int_equal(config_load(cfg, "s.conf", server, strlen(server), err, sizeof err), 0);
	assert_int_equal(config_finish(cfg, CONFIG_ROLE_SERVER, err, sizeof err), KS_ERR_INVAL);
	assert_non_null(strstr(err, "no [user NAME] section"));
	assert_int_equal(cfg->log_target, CONFIG_LOG_STDERR);
	config_free(cfg);
	size_t cap = strlen(server) + 128;
	a = malloc(cap);
	assert_non_null(a);
	snprintf(a, cap, "%s\n[user alice]\npsk = %s\n", server, K1);
	cfg = config_new();
	if (config_load(cfg, "s.conf", a, strlen(a), err, sizeof err) != 0 ||
	    config_finish(cfg, CONFIG_ROLE_SERVER, err, sizeof err) != 0)
		fail_msg("%s", err);
	/* The example spells out the default deny list, plus *:25. */
	assert_int_equal(cfg->policy.n_deny, fresh->policy.n_deny + 1);
	assert_memory_equal(cfg->policy.deny, fresh->policy.deny,
	                    fresh->policy.n_deny * sizeof fresh->policy.deny[0]);
	assert_non_null(config_find_user(cfg, "alice"));
	config_free(cfg);
	config_free(fresh);
	free(a);
	free(local);
	free(server);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_files_give_exact_messages),
		cmocka_unit_test(nul_byte_is_an_error),
		cmocka_unit_test(long_lines_are_refused_not_split),
		cmocka_unit_test(finish_errors),
		cmocka_unit_test(good_local_file),
		cmocka_unit_test(defaults_come_from_the_table),
		cmocka_unit_test(stream_delivery_key),
		cmocka_unit_test(server_file_and_users),
		cmocka_unit_test(many_users_grow_the_array),
		cmocka_unit_test(overrides_apply_over_the_profile_in_any_order),
		cmocka_unit_test(connect_fills_local_keys),
		cmocka_unit_test(server_lists),
		cmocka_unit_test(flag_path_equals_file_path),
		cmocka_unit_test(options_replace_file_values),
		cmocka_unit_test(options_are_scoped_by_role),
		cmocka_unit_test(resolver_keys),
		cmocka_unit_test(every_prefix_of_a_file),
		cmocka_unit_test(too_big_is_refused),
		cmocka_unit_test(examples_hold_placeholders),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
