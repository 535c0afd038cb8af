# kcpsocks - one make for everything. `make help` lists the targets.
#
# Layout: src/base and src/core build libkscore.a (sans-I/O, no libev, no
# sockets); src/io builds libksio.a; src/local, src/server and each
# tools/*.c link against both. The link simulator (src/core/netsim.c) is
# built into libkssim.a, which only tests, benches and tools link: the
# daemons carry nothing they do not use. Every tests/unit/test_*.c, tests/sim/sim_*.c,
# tests/fuzz/fuzz_*.c and bench/bench_*.c is picked up by its name, so a new
# module needs no Makefile edit.

BUILD    ?= build
CC       ?= cc
CLANG    ?= clang
OPT      ?= -O2
SAN      ?=
WERROR   ?= $(if $(CI),-Werror)
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
            -Wno-missing-field-initializers $(WERROR)
CFLAGS   ?=
CPPFLAGS := -Isrc -D_GNU_SOURCE
ALLCFLAGS = -std=c17 $(OPT) -g $(WARN) $(SAN) -MMD -MP $(CFLAGS)
LDLIBS_IO   := -lev -lcares -linih -lsodium -lm
LDLIBS_TEST := -lcmocka
FUZZ_SECONDS ?= 20
# V=1 shows every command
Q        := $(if $(V),,@)

BASE_SRC  := $(sort $(wildcard src/base/*.c))
SIMLIB_SRC:= src/core/netsim.c
CORE_SRC  := $(filter-out $(SIMLIB_SRC),$(sort $(wildcard src/core/*.c)))
IO_SRC    := $(sort $(wildcard src/io/*.c))
LOCAL_SRC := $(sort $(wildcard src/local/*.c))
SERVER_SRC:= $(sort $(wildcard src/server/*.c))
TOOL_SRC  := $(sort $(wildcard tools/*.c))
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
TESTLIB_SRC := $(sort $(wildcard tests/lib/*.c))
SIM_SRC   := $(sort $(wildcard tests/sim/sim_*.c))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
CORE_OBJ  := $(call obj,$(BASE_SRC) $(CORE_SRC))
IO_OBJ    := $(call obj,$(IO_SRC))
SIMLIB_OBJ:= $(call obj,$(SIMLIB_SRC))
LIBCORE   := $(BUILD)/libkscore.a
LIBIO     := $(BUILD)/libksio.a
LIBSIM    := $(BUILD)/libkssim.a
LIBTEST   := $(BUILD)/libkstest.a

BINS  := $(if $(LOCAL_SRC),$(BUILD)/kcpsocks-local) $(if $(SERVER_SRC),$(BUILD)/kcpsocks-server)
TOOLS := $(patsubst tools/%.c,$(BUILD)/%,$(TOOL_SRC))
UNITS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
SIMS  := $(patsubst tests/sim/%.c,$(BUILD)/tests/%,$(SIM_SRC))
REPLAYS := $(patsubst tests/fuzz/%.c,$(BUILD)/replay/%,$(FUZZ_SRC))
FUZZERS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
DEPS_STAMP := $(BUILD)/.deps-build

.PHONY: all help deps test test-unit test-sim test-replay test-integration test-all \
        test-socks5-realistic test-soak test-fault test-adversarial test-integration-full bench-envelope bench-mux bench-peers bench-matrix bench-handshake bench-udp asan fuzz fuzz-run check check-format check-layering format \
        bench bench-kcp clean run profile cross test-cross test-cross-replay test-cross-e2e test-cross-all bench-cross

all: $(BINS) $(TOOLS)

help:
	@echo 'make                       build the daemons and tools into $(BUILD)/'
	@echo 'make test                  unit, simulation, fuzz-corpus replay and fast integration tests'
	@echo 'make test-all              make test + realistic, soak and fault suites + ASan/UBSan + short fuzzing'
	@echo 'make test-socks5-realistic curl and nginx through the lossy relay'
	@echo 'make asan                  the unit/sim/replay tests under ASan+UBSan (build/asan)'
	@echo 'make fuzz                  build libFuzzer targets into build/fuzz; fuzz-run runs each $(FUZZ_SECONDS)s'
	@echo 'make test-soak / test-fault  the 30 s soak / the fault suites through the relay'
	@echo 'make test-adversarial      hostile peers: handshake floods, replays, racing relays'
	@echo 'make bench                 all benchmarks; writes docs/BENCHMARKS.md'
	@echo 'make bench-kcp|bench-envelope|bench-mux  one core benchmark (simulated, no network)'
	@echo 'make bench-handshake       the server under handshake floods (real daemons, loopback)'
	@echo 'make bench-cross           sizes, libraries and 32-bit RSS of the cross-built daemons (docs/bench/cross.md)'
	@echo 'make bench-udp             UDP ASSOCIATE: DNS latency idle/under bulk, echo at 1 % loss vs ss-local -u'
	@echo 'make bench-peers           kcpsocks vs kcptun, shadowsocks-libev, v2ray mKCP on loopback (BENCH_QUICK=1: smoke run)'
	@echo 'make bench-matrix          every profile x every path, page loads, bottleneck, concurrency (docs/bench/matrix.md)'
	@echo 'make profile               where the CPU goes on the bulk path (perf, callgrind): build/profile/report.md'
	@echo 'make cross ARCH=A          the daemons for A = arm64, armhf or mipsel into build/cross-A/ (Debian cross gcc; STATIC=1: -static)'
	@echo 'make test-cross [ARCH=A]   the unit tests and corpus replay cross-built for A (default armhf), run under qemu-user'
	@echo 'make test-cross-e2e        a $(CROSS32) server + local pair under qemu-user through the lossy relay, and mixed with native'
	@echo 'make test-cross-all        all three cross builds, test-cross and test-cross-e2e (part of test-all)'
	@echo 'make check                 formatting and the sans-I/O layering rule'
	@echo 'make format                apply .clang-format'

# Install missing Debian packages (as root) or say exactly what is missing.
deps: $(DEPS_STAMP)
DEPS_SET ?= build
$(DEPS_STAMP): scripts/deps.sh
	@mkdir -p $(@D)
	@scripts/deps.sh $(DEPS_SET)
	@touch $@

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(if $(Q),@echo '  CC      $<')
	$(Q)$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c -o $@ $<

$(LIBCORE): $(CORE_OBJ)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(LIBIO): $(IO_OBJ)
	@rm -f $@
	$(AR) rcs $@ $(if $^,$^,)

$(LIBSIM): $(SIMLIB_OBJ)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

# tests/lib: helpers the unit tests, sims, benches and fuzz targets share
# (included as "lib/NAME.h"; no cmocka, so fuzzers can link them too).
$(BUILD)/obj/tests/%.o: CPPFLAGS += -Itests
$(BUILD)/obj/bench/%.o: CPPFLAGS += -Itests
$(LIBTEST): $(call obj,$(TESTLIB_SRC))
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

LINK = $(Q)$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@

$(BUILD)/kcpsocks-local: $(call obj,$(LOCAL_SRC)) $(LIBIO) $(LIBCORE)
	$(LINK) $^ $(LDLIBS_IO)

$(BUILD)/kcpsocks-server: $(call obj,$(SERVER_SRC)) $(LIBIO) $(LIBCORE)
	$(LINK) $^ $(LDLIBS_IO)

$(TOOLS): $(BUILD)/%: $(BUILD)/obj/tools/%.o $(LIBSIM) $(LIBIO) $(LIBCORE)
	$(LINK) $^ $(LDLIBS_IO)

$(UNITS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBTEST) $(LIBSIM) $(LIBIO) $(LIBCORE)
	@mkdir -p $(@D)
	$(LINK) $^ $(LDLIBS_TEST) $(LDLIBS_IO)

$(SIMS): $(BUILD)/tests/sim_%: $(BUILD)/obj/tests/sim/sim_%.o $(LIBTEST) $(LIBSIM) $(LIBIO) $(LIBCORE)
	@mkdir -p $(@D)
	$(LINK) $^ $(LDLIBS_TEST) $(LDLIBS_IO)

$(BENCHES): $(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBTEST) $(LIBSIM) $(LIBIO) $(LIBCORE)
	@mkdir -p $(@D)
	$(LINK) $^ $(LDLIBS_IO)

# Fuzz targets use public headers only; replay links them with a main that
# feeds each corpus file once, so `make test` needs no libFuzzer.
$(REPLAYS): $(BUILD)/replay/%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay_main.o $(LIBTEST) $(LIBSIM) $(LIBIO) $(LIBCORE)
	@mkdir -p $(@D)
	$(LINK) $^ $(LDLIBS_IO)

FUZZ_CFLAGS = -std=c17 -O1 -g -Isrc -Itests -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all -fno-omit-frame-pointer
# fuzz_io_* targets also get the io sources (parsers of config/CLI text there).
# Every target gets tests/lib (test-only helpers, e.g. the SOCKS5 client encoders).
fuzz_src = $(BASE_SRC) $(CORE_SRC) $(SIMLIB_SRC) $(TESTLIB_SRC) $(if $(filter fuzz_io_%,$(1)),$(IO_SRC))
.SECONDEXPANSION:
$(FUZZERS): build/fuzz/%: tests/fuzz/%.c $$(call fuzz_src,$$*) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(if $(Q),@echo '  FUZZ    $@')
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(call fuzz_src,$*) $(LDLIBS_IO)

# --- tests -----------------------------------------------------------------

test: check test-unit test-sim test-replay test-integration

test-unit: $(UNITS)
	@scripts/run-tests.sh unit $(UNITS)

test-sim: $(SIMS)
	@scripts/run-tests.sh sim $(SIMS)

test-replay: $(REPLAYS)
	@scripts/replay-corpus.sh $(REPLAYS)

test-integration: all
	@scripts/deps.sh metrics udp
	@scripts/run-integration.sh fast $(BUILD)

test-socks5-realistic: all
	@scripts/deps.sh realistic
	@scripts/run-integration.sh realistic $(BUILD)

asan:
	$(MAKE) BUILD=build/asan OPT=-O1 \
	  SAN='-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer' \
	  test-unit test-sim test-replay

fuzz: $(FUZZERS)

fuzz-run: $(FUZZERS)
	@scripts/fuzz-run.sh $(FUZZ_SECONDS) $(FUZZERS)

test-all: test test-integration-full test-socks5-realistic test-soak test-fault test-adversarial test-cross-all asan fuzz-run test-package
	@echo 'test-all: every suite passed'

# The 30 s soak and the fault suites (restart, blackhole, rebinding, slow
# reader, probing) through the impairment relay; part of test-all.
test-soak: all
	@scripts/deps.sh realistic
	@scripts/run-integration.sh soak $(BUILD)

test-fault: all
	@scripts/deps.sh realistic
	@scripts/run-integration.sh fault $(BUILD)

# Hostile peers (tests/adversarial): handshake floods, replays, racing
# relays; each test passes only when its attack fails. Part of test-all.
test-adversarial: all
	@scripts/run-integration.sh adversarial $(BUILD)

# Longer integration tests (large transfers); part of test-all only.
test-integration-full: all
	@scripts/run-integration.sh full $(BUILD)

# --- install ---------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: the two daemons, their man
# pages, the systemd units (contrib/, their /usr/bin paths rewritten to
# BINDIR), the sysusers.d and tmpfiles.d entries, the example configs under
# DOCDIR/examples and the operator's docs in DOCDIR. No config is written
# to /etc and nothing is enabled or started. Without DESTDIR, as root, the
# kcpsocks user and the empty config directory /etc/kcpsocks (root:kcpsocks
# 0750) are created at once by systemd-sysusers and systemd-tmpfiles.
# docs/OPERATIONS.md, "Install".
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/kcpsocks
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
SYSCONFDIR  ?= /etc
INSTALL     ?= install
DAEMONS     := kcpsocks-server kcpsocks-local
UNIT_FILES  := $(notdir $(wildcard contrib/*.service))
EXAMPLES    := $(notdir $(wildcard examples/*.conf))
DOC_FILES   := README.md docs/OPERATIONS.md docs/CONFIG.md docs/METRICS.md

.PHONY: install uninstall test-package

install: $(BINS)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(DOCDIR)/examples
	$(INSTALL) -m 0755 $(addprefix $(BUILD)/,$(DAEMONS)) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0644 $(addprefix man/,$(addsuffix .1,$(DAEMONS))) $(DESTDIR)$(MANDIR)/man1/
	for u in $(UNIT_FILES); do \
	  sed 's|/usr/bin/|$(BINDIR)/|g' contrib/$$u >$(DESTDIR)$(UNITDIR)/$$u && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	$(INSTALL) -m 0644 contrib/kcpsocks.sysusers $(DESTDIR)$(SYSUSERSDIR)/kcpsocks.conf
	$(INSTALL) -m 0644 contrib/kcpsocks.tmpfiles $(DESTDIR)$(TMPFILESDIR)/kcpsocks.conf
	$(INSTALL) -m 0644 $(addprefix examples/,$(EXAMPLES)) $(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 0644 $(DOC_FILES) $(DESTDIR)$(DOCDIR)/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null; then \
	  echo 'install: creating the kcpsocks user and $(SYSCONFDIR)/kcpsocks'; \
	  systemd-sysusers $(SYSUSERSDIR)/kcpsocks.conf && \
	  systemd-tmpfiles --create $(TMPFILESDIR)/kcpsocks.conf; \
	else \
	  echo 'install: then, as root: systemd-sysusers $(SYSUSERSDIR)/kcpsocks.conf &&' \
	    'systemd-tmpfiles --create $(TMPFILESDIR)/kcpsocks.conf'; fi
	@echo 'install: nothing enabled; docs/OPERATIONS.md, "Install" has the next steps'

# Removes what install wrote. Kept: /etc/kcpsocks (configs and keys) and
# the kcpsocks user (files may still belong to it); remove them by hand.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(DAEMONS)) \
	  $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(addsuffix .1,$(DAEMONS))) \
	  $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNIT_FILES)) \
	  $(DESTDIR)$(SYSUSERSDIR)/kcpsocks.conf $(DESTDIR)$(TMPFILESDIR)/kcpsocks.conf \
	  $(addprefix $(DESTDIR)$(DOCDIR)/examples/,$(EXAMPLES)) \
	  $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOC_FILES)))
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null
	@echo 'uninstall: kept $(SYSCONFDIR)/kcpsocks and the kcpsocks user'

# Builds the Debian package from this tree, lints, installs, runs and
# purges it (tests/integration/pkg_deb.sh); part of test-all. As root.
test-package: all
	@scripts/deps.sh build package
	@scripts/run-integration.sh pkg $(BUILD)

# --- cross builds (docs/OPERATIONS.md, "Building for a router") ------------
# Debian's cross compilers and multiarch -dev packages (scripts/deps.sh
# cross). Each ARCH builds into its own build/cross-ARCH with the same rules
# as the native build; qemu-user runs what it built (no binfmt needed).

# ARCH: make cross and make test-cross (unit tests: armhf, whose errno
# numbers qemu passes through right; docs/TESTING.md). CROSS32: the pair
# of make test-cross-e2e (mipsel, the common router CPU; strict alignment).
ARCH    ?= armhf
CROSS32 ?= mipsel
cross_triplet = $(if $(filter arm64,$(1)),aarch64-linux-gnu,$(if $(filter armhf,$(1)),arm-linux-gnueabihf,$(if $(filter mipsel,$(1)),mipsel-linux-gnu,$(error ARCH=$(1): use arm64, armhf or mipsel))))
cross_qemu    = $(if $(filter arm64,$(1)),qemu-aarch64,$(if $(filter armhf,$(1)),qemu-arm,qemu-mipsel))
# No -L: the target's ld.so and libc are the multiarch libc6:ARCH under /
# (the cross toolchain's older libc under /usr/TRIPLET crashes in fork()
# under qemu 7.2); binfmt_misc need not be registered.
cross_run     = $(call cross_qemu,$(1))
# STATIC=1: linked statically into build/cross-ARCH-static (docs/OPERATIONS.md)
CROSS_SUFFIX  = $(if $(STATIC),-static)
cross_make    = $(MAKE) --no-print-directory BUILD=build/cross-$(1)$(CROSS_SUFFIX) DEPS_SET='build cross' \
                CC=$(call cross_triplet,$(1))-gcc AR=$(call cross_triplet,$(1))-ar \
                PKG_CONFIG_LIBDIR=/usr/lib/$(call cross_triplet,$(1))/pkgconfig \
                LDFLAGS='$(if $(STATIC),-static )-L/usr/lib/$(call cross_triplet,$(1))'

cross:
	+$(Q)$(call cross_make,$(ARCH)) build/cross-$(ARCH)$(CROSS_SUFFIX)/kcpsocks-local build/cross-$(ARCH)$(CROSS_SUFFIX)/kcpsocks-server
	@echo 'cross: build/cross-$(ARCH)$(CROSS_SUFFIX)/kcpsocks-local and kcpsocks-server ($(call cross_triplet,$(ARCH)))'

cross_dir = $(patsubst $(BUILD)/%,build/cross-$(ARCH)/%,$(1))

test-cross: test-cross-replay
	+$(Q)$(call cross_make,$(ARCH)) $(call cross_dir,$(UNITS))
	@TEST_WRAPPER='$(call cross_run,$(ARCH))' scripts/run-tests.sh unit-$(ARCH) $(call cross_dir,$(UNITS))

# every parser's checked-in corpus, cross-built (under qemu-mipsel an
# unaligned load is a SIGBUS, as on the real CPU)
test-cross-replay:
	+$(Q)$(call cross_make,$(ARCH)) $(call cross_dir,$(REPLAYS))
	@TEST_WRAPPER='$(call cross_run,$(ARCH))' scripts/replay-corpus.sh $(call cross_dir,$(REPLAYS))

test-cross-e2e: all
	$(Q)$(MAKE) --no-print-directory cross ARCH=$(CROSS32)
	@CROSS_BUILD=build/cross-$(CROSS32) CROSS_RUN='$(call cross_run,$(CROSS32))' \
	  scripts/run-integration.sh cross $(BUILD)

# CI: the three architectures build (-Werror with CI=1), the 32-bit one
# runs its unit tests and the end-to-end pair under emulation.
# Compiling is most of its time: -j2 even when CI runs make without -j.
test-cross-all: all
	$(Q)$(MAKE) -j2 --no-print-directory cross ARCH=arm64
	$(Q)$(MAKE) -j2 --no-print-directory cross ARCH=mipsel
	$(Q)$(MAKE) -j2 --no-print-directory cross ARCH=armhf
	$(Q)$(MAKE) -j2 --no-print-directory test-cross ARCH=armhf
	$(Q)$(MAKE) -j2 --no-print-directory test-cross-replay ARCH=mipsel
	$(Q)$(MAKE) -j2 --no-print-directory test-cross-e2e

# --- checks ----------------------------------------------------------------

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
check: check-format check-layering

check-format:
	@clang-format --dry-run -Werror $(FORMAT_FILES) && echo 'check-format: ok'

format:
	clang-format -i $(FORMAT_FILES)

check-layering: $(CORE_OBJ) $(SIMLIB_OBJ)
	@scripts/check-layering.sh $(CORE_OBJ) $(SIMLIB_OBJ)

# --- benchmarks ------------------------------------------------------------

bench: bench-kcp bench-envelope bench-mux bench-handshake bench-peers bench-udp bench-cross

bench-kcp bench-envelope bench-mux: bench-%: $(BENCHES)
	@scripts/bench.sh $* $(BUILD)

# sizes, libraries and 32-bit RSS of the cross-built daemons (docs/bench/cross.md)
bench-cross: all
	$(Q)$(MAKE) --no-print-directory cross ARCH=arm64
	$(Q)$(MAKE) --no-print-directory cross ARCH=armhf
	$(Q)$(MAKE) --no-print-directory cross ARCH=mipsel
	$(Q)$(MAKE) --no-print-directory cross ARCH=mipsel STATIC=1
	@scripts/bench.sh cross $(BUILD)

bench-peers: all
	@scripts/bench.sh peers $(BUILD)

# UDP ASSOCIATE: DNS p50/p99 idle and under bulk, echo at 1 % loss vs ss-local -u.
bench-udp: all
	@scripts/bench.sh udp $(BUILD)

# The matrix alone: every profile x every path, page loads, the bottleneck,
# concurrency, idle cost (docs/bench/matrix.md; bench-peers writes it too).
bench-matrix: all
	@scripts/bench.sh matrix $(BUILD)

# Handshakes/s, the CPU of a refused init, a session during a flood.
bench-handshake: all
	@scripts/bench.sh handshake $(BUILD)

# The bulk-path profile (scripts/profile-bulk.sh; docs/bench/profile.md).
profile: all
	@scripts/profile-bulk.sh $(BUILD)

run: all
	@scripts/demo.sh $(BUILD)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
