/* dconf.c - command line and config for both daemons (see dconf.h). */
#include "io/dconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "base/errbuf.h"
#include "core/configdoc.h"
#include "core/profile.h"
#include "io/addr.h"
#include "io/daemon.h"
#include "io/log.h"

/* say writes "A: B" into err. */
static void say(char *err, size_t errlen, const char *a, const char *b)
{
	if (err && errlen)
		errbuf_set(err, errlen, "%s: %s", a, b);
}

/* read_text reads a whole small file ("-": standard input) and reports its
 * permission bits in *mode (0 for stdin or anything not a regular file). */
static char *read_text(const char *path, size_t max, size_t *len, mode_t *mode, char *err,
                       size_t errlen)
{
	bool in = !strcmp(path, "-");
	int fd = in ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t n = 0;

	if (fd < 0) {
		say(err, errlen, path, strerror(errno));
		return NULL;
	}
	*mode = !in && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? st.st_mode & 07777 : 0;
	buf = malloc(max + 2);
	if (!buf) {
		say(err, errlen, path, strerror(ENOMEM));
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, max + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			say(err, errlen, path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			say(err, errlen, path, "file too large");
			goto fail;
		}
	}
	buf[n] = '\0';
	*len = n;
	goto out;
fail:
	explicit_bzero(buf, max + 2);
	free(buf);
	buf = NULL;
out:
	if (!in)
		close(fd);
	return buf;
}

char *dconf_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	mode_t mode;

	return read_text(path, max, len, &mode, err, errlen);
}

/* warn_open: a file holding a secret should be for its owner only. */
static void warn_open(const char *path, mode_t mode)
{
	if (mode & (S_IRWXG | S_IRWXO))
		log_warn("%s holds a secret but is open to group or others (mode %04o): chmod 600 "
		         "%s",
		         path, (unsigned)mode, path);
}

char *dconf_read_secret_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	mode_t mode;
	char *text = read_text(path, max, len, &mode, err, errlen);

	if (text)
		warn_open(path, mode);
	return text;
}

static void help_out(const char *text, size_t len, void *ctx) { fwrite(text, 1, len, ctx); }

static void print_help(enum config_role role, const char *usage)
{
	printf("%s\n\n", usage);
	printf("  -c, --config FILE  read settings from FILE (INI; docs/CONFIG.md)\n"
	       "  --check-config     validate the settings and exit\n"
	       "  --help             this text\n"
	       "  --version          print the version and exit\n\n");
	config_write_help(role, help_out, stdout);
}

/* Splits "--key=value" or "--key value"; returns the index after it. */
static int option_at(int argc, char **argv, int i, char *key, size_t keycap, const char **value)
{
	const char *a = argv[i] + 2, *eq = strchr(a, '=');
	size_t klen = eq ? (size_t)(eq - a) : strlen(a);

	if (klen >= keycap)
		klen = keycap - 1;
	memcpy(key, a, klen);
	key[klen] = '\0';
	if (eq) {
		*value = eq + 1;
		return i + 1;
	}
	*value = i + 1 < argc ? argv[i + 1] : NULL;
	return i + 2;
}

static bool holds_secret(const struct config *cfg)
{
	return cfg->has_psk || cfg->has_private_key || cfg->socks_password[0] || cfg->n_users;
}

static int load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	size_t len;
	mode_t mode;
	char *text = read_text(path, CONFIG_TEXT_MAX, &len, &mode, err, errlen);
	int rc;

	if (!text)
		return KS_ERR_IO;
	rc = config_load(cfg, path, text, len, err, errlen);
	explicit_bzero(text, len);
	free(text);
	if (rc == 0 && holds_secret(cfg))
		warn_open(path, mode);
	return rc;
}

/* set_from_text hands the trimmed text to config_set as --key; a message
 * names where the text came from (src) instead of the option. */
static int set_from_text(struct config *cfg, enum config_role role, const char *key, char *text,
                         size_t len, const char *src, char *err, size_t errlen)
{
	char sub[CONFIG_ERR_MAX];
	char *p = text;
	size_t skip = strlen(key) + 4; /* "--KEY: " */
	int rc;

	while (len && (p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == ' ' ||
	               p[len - 1] == '\t'))
		p[--len] = '\0';
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	rc = config_set(cfg, role, key, p, sub, sizeof sub);
	if (rc != 0)
		errbuf_set(err, errlen, "%s: %s", src,
		           strlen(sub) > skip && !strncmp(sub, "--", 2) ? sub + skip : sub);
	explicit_bzero(sub, sizeof sub);
	return rc;
}

/* set_from_file reads path ("-": stdin) and sets key from it. */
static int set_from_file(struct config *cfg, enum config_role role, const char *key,
                         const char *path, char *err, size_t errlen)
{
	char src[CONFIG_PATH_MAX + 32];
	size_t len;
	char *text = dconf_read_secret_file(path, CONFIG_CONNSTR_MAX, &len, err, errlen);
	int rc;

	if (!text)
		return KS_ERR_IO;
	snprintf(src, sizeof src, "%s", !strcmp(path, "-") ? "standard input" : path);
	rc = set_from_text(cfg, role, key, text, len, src, err, errlen);
	explicit_bzero(text, len);
	free(text);
	return rc;
}

/* read_secret_files turns connect_file and psk_file into connect and psk
 * (local only); each refuses to meet what it would set. */
static int read_secret_files(struct config *cfg, enum config_role role, char *err, size_t errlen)
{
	int rc;

	if (role != CONFIG_ROLE_LOCAL)
		return 0;
	if (cfg->connect_file[0]) {
		if (cfg->server.set || cfg->user[0] || cfg->has_psk || cfg->has_server_public_key) {
			say(err, errlen, "connect_file",
			    "server, user, psk or server_public_key is set too: keep one of them");
			return KS_ERR_INVAL;
		}
		if ((rc = set_from_file(cfg, role, "connect", cfg->connect_file, err, errlen)) != 0)
			return rc;
	}
	if (cfg->psk_file[0]) {
		if (cfg->has_psk) {
			say(err, errlen, "psk_file", "a psk is set too (psk or connect): keep one");
			return KS_ERR_INVAL;
		}
		return set_from_file(cfg, role, "psk", cfg->psk_file, err, errlen);
	}
	return 0;
}

/* The example keys once published with the source (bytes 0..31 and
 * 0x64..0x83): anyone could use them, so no daemon takes them. */
static bool published_key(const uint8_t k[static CONFIG_KEY_LEN])
{
	bool a = true, b = true;

	for (size_t i = 0; i < CONFIG_KEY_LEN; i++) {
		a = a && k[i] == i;
		b = b && k[i] == 0x64 + i;
	}
	return a || b;
}

static int refuse_published(const struct config *cfg, char *err, size_t errlen)
{
	const char *which = cfg->has_psk && published_key(cfg->psk) ? "psk"
	                    : cfg->has_server_public_key && published_key(cfg->server_public_key)
	                            ? "server_public_key"
	                    : cfg->has_private_key && published_key(cfg->private_key)
	                            ? "private_key"
	                            : NULL;

	for (size_t i = 0; !which && i < cfg->n_users; i++)
		if (published_key(cfg->users[i].psk))
			which = "a [user] psk";
	if (!which)
		return 0;
	say(err, errlen, which,
	    "this is the example key published with kcpsocks' source: make your own "
	    "(kcpsocks-server keygen, kcpsocks-server adduser)");
	return KS_ERR_INVAL;
}

/* is_config_flag: -c is short for --config. */
static bool is_config_flag(const char *a) { return !strcmp(a, "--config") || !strcmp(a, "-c"); }

/* First pass: the flags that are not config keys. */
static int scan_flags(int argc, char **argv, int first, const char **path,
                      enum dconf_action *action, char *err, size_t errlen)
{
	for (int i = first; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			*action = DCONF_HELP;
		else if (!strcmp(a, "--version"))
			*action = DCONF_VERSION;
		else if (!strcmp(a, "--check-config"))
			*action = *action == DCONF_RUN ? DCONF_CHECK : *action;
		else if (is_config_flag(a) && i + 1 < argc)
			*path = argv[++i];
		else if (!strncmp(a, "--config=", 9))
			*path = a + 9;
		else if (strncmp(a, "--", 2) != 0 || is_config_flag(a)) {
			say(err, errlen, a,
			    is_config_flag(a) ? "needs a value" : "unexpected argument");
			return KS_ERR_INVAL;
		} else if (!strchr(a, '='))
			i++; /* --key value */
	}
	return 0;
}

static int apply_options(struct config *cfg, enum config_role role, int argc, char **argv,
                         int first, char *err, size_t errlen)
{
	char key[64];

	for (int i = first; i < argc;) {
		const char *a = argv[i], *value;
		int rc;

		if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "--version") ||
		    !strcmp(a, "--check-config")) {
			i++;
			continue;
		}
		if (is_config_flag(a)) {
			i += 2;
			continue;
		}
		if (!strncmp(a, "--config=", 9)) {
			i++;
			continue;
		}
		i = option_at(argc, argv, i, key, sizeof key, &value);
		if (!value) {
			errbuf_set(err, errlen, "--%s: needs a value", key);
			return KS_ERR_INVAL;
		}
		if (role == CONFIG_ROLE_LOCAL && !strcmp(key, "connect") && !strcmp(value, "-"))
			rc = set_from_file(cfg, role, "connect", "-", err, errlen);
		else
			rc = config_set(cfg, role, key, value, err, errlen);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int dconf_parse(int argc, char **argv, int first, enum config_role role, const char *usage,
                struct config **out, enum dconf_action *action, char *err, size_t errlen)
{
	const char *path = NULL;
	struct config *cfg;
	int rc;

	*out = NULL;
	*action = DCONF_RUN;
	rc = scan_flags(argc, argv, first, &path, action, err, errlen);
	if (rc != 0)
		return rc;
	if (*action == DCONF_HELP) {
		print_help(role, usage);
		return 0;
	}
	if (*action == DCONF_VERSION) {
		printf("kcpsocks %s\n", KCPSOCKS_VERSION);
		return 0;
	}
	cfg = config_new();
	if (!cfg) {
		say(err, errlen, "config", "out of memory");
		return KS_ERR_NOMEM;
	}
	rc = path ? load_file(cfg, path, err, errlen) : 0;
	if (rc == 0)
		rc = apply_options(cfg, role, argc, argv, first, err, errlen);
	if (rc == 0)
		rc = read_secret_files(cfg, role, err, errlen);
	if (rc == 0)
		rc = config_finish(cfg, role, err, errlen);
	if (rc == 0)
		rc = refuse_published(cfg, err, errlen);
	if (rc != 0) {
		config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

static const enum log_level log_levels[] = {
	[CONFIG_LOG_ERROR] = LOG_LEVEL_ERROR,
	[CONFIG_LOG_WARN] = LOG_LEVEL_WARN,
	[CONFIG_LOG_INFO] = LOG_LEVEL_INFO,
	[CONFIG_LOG_DEBUG] = LOG_LEVEL_DEBUG,
};

void dconf_log_open(const char *ident, const struct config *cfg)
{
	log_open(ident, log_levels[cfg->log_level],
	         cfg->log_target == CONFIG_LOG_SYSLOG ? LOG_SINK_SYSLOG : LOG_SINK_STDERR);
}

int dconf_endpoint_addr(const struct config_endpoint *e, struct sockaddr_storage *out, char *err,
                        size_t errlen)
{
	char port[8];

	snprintf(port, sizeof port, "%u", (unsigned)e->port);
	return addr_parse_host_port(e->host, port, out, err, errlen);
}

static bool same_endpoint(const struct config_endpoint *a, const struct config_endpoint *b)
{
	return a->set == b->set && a->port == b->port && !strcmp(a->host, b->host);
}

static bool same_profile(const struct profile *a, const struct profile *b)
{
	for (size_t i = 0; profile_field_at(i); i++)
		if (profile_get(a, profile_field_at(i)) != profile_get(b, profile_field_at(i)))
			return false;
	return true;
}

const char *dconf_restart_only(const struct config *a, const struct config *b)
{
	if (strcmp(a->profile_name, b->profile_name) || !same_profile(&a->profile, &b->profile))
		return "profile";
	if (a->accepted_profiles != b->accepted_profiles)
		return "accepted profiles";
	if (!same_endpoint(&a->server_listen, &b->server_listen))
		return "the server's listen address";
	if (a->has_private_key != b->has_private_key ||
	    sodium_memcmp(a->private_key, b->private_key, sizeof a->private_key) != 0 ||
	    strcmp(a->private_key_file, b->private_key_file))
		return "the private key";
	if (!same_endpoint(&a->local_listen, &b->local_listen))
		return "the local listen address";
	if (!same_endpoint(&a->server, &b->server) || a->servers.n != b->servers.n ||
	    strcmp(a->user, b->user) || sodium_memcmp(a->psk, b->psk, sizeof a->psk) != 0 ||
	    sodium_memcmp(a->server_public_key, b->server_public_key,
	                  sizeof a->server_public_key) != 0)
		return "the server, user or keys";
	if (!same_endpoint(&a->metrics_listen, &b->metrics_listen))
		return "metrics_listen";
	if (a->log_target != b->log_target)
		return "log_target";
	if (strcmp(a->run_as, b->run_as))
		return "run_as";
	if (a->max_sessions != b->max_sessions || a->sessions_per_user != b->sessions_per_user ||
	    a->max_streams_per_session != b->max_streams_per_session)
		return "session limits";
	if (a->cipher != b->cipher)
		return "cipher";
	return NULL;
}

/* dconf_serve's state: the daemon object and its signal watchers. */
struct served {
	const struct dconf_service *svc;
	const struct config *cfg; /* the one started with */
	struct config *live;      /* the latest reloaded one, owned; NULL: none */
	void *obj;
	struct daemon_signals *sig;
};

/* served_reload: SIGHUP. A config that does not load changes nothing. */
static void served_reload(void *arg)
{
	struct served *s = arg;
	const struct dconf_service *svc = s->svc;
	struct config *ncfg = NULL;
	enum dconf_action act;
	char err[CONFIG_ERR_MAX + 64], summary[256] = "";
	const char *diff;

	if (dconf_parse(svc->argc, svc->argv, svc->first, svc->role, "", &ncfg, &act, err,
	                sizeof err) != 0) {
		log_error("reload: %s: keeping the running config", err);
		return;
	}
	if (!ncfg) /* --help or --version: not a daemon's command line */
		return;
	diff = dconf_restart_only(s->cfg, ncfg);
	if (svc->reload &&
	    svc->reload(s->obj, ncfg, summary, sizeof summary, err, sizeof err) != 0) {
		log_error("reload: %s: keeping the running config", err);
		config_free(ncfg);
		return;
	}
	if (diff)
		log_warn("reload: %s changed: that needs a restart (running on the old one)", diff);
	/* Said before the level changes, so a reload to warn still logs it. */
	log_info("reloaded: %s%slog level %s", summary, summary[0] ? ", " : "",
	         log_level_name(log_levels[ncfg->log_level]));
	log_set_level(log_levels[ncfg->log_level]);
	config_free(s->live);
	s->live = ncfg;
}

static void served_empty(void *arg)
{
	struct served *s = arg;

	daemon_drained(s->sig);
}

static void served_drain(void *arg)
{
	struct served *s = arg;

	s->svc->drain(s->obj, served_empty, s);
}

int dconf_serve(const struct config *cfg, const struct dconf_service *svc)
{
	struct ev_loop *loop = ev_default_loop(0);
	struct served s = { .svc = svc, .cfg = cfg };
	struct daemon_stop_cb stop = { served_drain, svc->argv ? served_reload : NULL, &s };
	char err[512];
	int rc = EXIT_FAILURE;

	if (geteuid() == 0 && !cfg->run_as[0])
		log_warn("running as root without run_as: set run_as = USER (e.g. nobody) to drop "
		         "root after binding");
	if (daemon_ignore_sigpipe() != 0) {
		log_error("SIGPIPE cannot be ignored");
		return EXIT_FAILURE;
	}
	daemon_malloc_policy();
	if (cfg->max_fds && daemon_raise_nofile(cfg->max_fds, NULL, err, sizeof err) != 0) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	s.obj = svc->start(loop, cfg, svc->arg, err, sizeof err);
	if (!s.obj) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	if (daemon_drop_privileges(cfg->run_as, err, sizeof err) != 0) {
		log_error("%s", err);
		goto out;
	}
	s.sig = daemon_signals_new(loop, 0, &stop);
	if (!s.sig) {
		log_error("signals: out of memory");
		goto out;
	}
	ev_run(loop, 0);
	rc = EXIT_SUCCESS;
	log_info("stopped");
out:
	svc->stop(s.obj);
	daemon_signals_free(s.sig);
	config_free(s.live);
	ev_run(loop, EVRUN_NOWAIT); /* reap closed connections */
	return rc;
}
