# kcpsocks - one make for everything. `make help` lists the targets.
#
# Layout: src/base and src/core build libkscore.a (sans-I/O, no libev, no
# sockets); src/io builds libksio.a; src/local, src/server and each
# tools/*.c link against both. Every tests/unit/test_*.c, tests/sim/sim_*.c,
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
LDLIBS_CORE := -lsodium -linih
LDLIBS_IO   := -lev -lcares -linih -lsodium -lm
LDLIBS_TEST := -lcmocka
FUZZ_SECONDS ?= 20
# V=1 shows every command
Q        := $(if $(V),,@)

BASE_SRC  := $(sort $(wildcard src/base/*.c))
CORE_SRC  := $(sort $(wildcard src/core/*.c))
IO_SRC    := $(sort $(wildcard src/io/*.c))
LOCAL_SRC := $(sort $(wildcard src/local/*.c))
SERVER_SRC:= $(sort $(wildcard src/server/*.c))
TOOL_SRC  := $(sort $(wildcard tools/*.c))
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
SIM_SRC   := $(sort $(wildcard tests/sim/sim_*.c))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
CORE_OBJ  := $(call obj,$(BASE_SRC) $(CORE_SRC))
IO_OBJ    := $(call obj,$(IO_SRC))
LIBCORE   := $(BUILD)/libkscore.a
LIBIO     := $(BUILD)/libksio.a

BINS  := $(if $(LOCAL_SRC),$(BUILD)/kcpsocks-local) $(if $(SERVER_SRC),$(BUILD)/kcpsocks-server)
TOOLS := $(patsubst tools/%.c,$(BUILD)/%,$(TOOL_SRC))
UNITS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
SIMS  := $(patsubst tests/sim/%.c,$(BUILD)/tests/%,$(SIM_SRC))
REPLAYS := $(patsubst tests/fuzz/%.c,$(BUILD)/replay/%,$(FUZZ_SRC))
FUZZERS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
DEPS_STAMP := $(BUILD)/.deps-build

.PHONY: all help deps test test-unit test-sim test-replay test-integration test-all \
        test-socks5-realistic test-soak test-fault test-adversarial test-integration-full bench-envelope bench-mux bench-peers bench-handshake asan fuzz fuzz-run check check-format check-layering format \
        bench bench-kcp clean run profile

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
	@echo 'make bench-peers           kcpsocks vs kcptun, shadowsocks-libev, v2ray mKCP on loopback (BENCH_QUICK=1: smoke run)'
	@echo 'make profile               where the CPU goes on the bulk path (perf, callgrind): build/profile/report.md'
	@echo 'make check                 formatting and the sans-I/O layering rule'
	@echo 'make format                apply .clang-format'

# Install missing Debian packages (as root) or say exactly what is missing.
deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/deps.sh
	@mkdir -p $(@D)
	@scripts/deps.sh build
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

LINK = $(Q)$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@

$(BUILD)/kcpsocks-local: $(call obj,$(LOCAL_SRC)) $(LIBIO) $(LIBCORE)
	$(LINK) $^ $(LDLIBS_IO)

$(BUILD)/kcpsocks-server: $(call obj,$(SERVER_SRC)) $(LIBIO) $(LIBCORE)
	$(LINK) $^ $(LDLIBS_IO)

$(TOOLS): $(BUILD)/%: $(BUILD)/obj/tools/%.o $(LIBIO) $(LIBCORE)
	$(LINK) $^ $(LDLIBS_IO)

$(UNITS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBIO) $(LIBCORE)
	@mkdir -p $(@D)
	$(LINK) $^ $(LDLIBS_TEST) $(LDLIBS_IO)

$(SIMS): $(BUILD)/tests/sim_%: $(BUILD)/obj/tests/sim/sim_%.o $(LIBIO) $(LIBCORE)
	@mkdir -p $(@D)
	$(LINK) $^ $(LDLIBS_TEST) $(LDLIBS_IO)

$(BENCHES): $(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBIO) $(LIBCORE)
	@mkdir -p $(@D)
	$(LINK) $^ $(LDLIBS_IO)

# Fuzz targets use public headers only; replay links them with a main that
# feeds each corpus file once, so `make test` needs no libFuzzer.
$(REPLAYS): $(BUILD)/replay/%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay_main.o $(LIBIO) $(LIBCORE)
	@mkdir -p $(@D)
	$(LINK) $^ $(LDLIBS_IO)

FUZZ_CFLAGS = -std=c17 -O1 -g -Isrc -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all -fno-omit-frame-pointer
# fuzz_io_* targets also get the io sources (parsers of config/CLI text there).
fuzz_src = $(BASE_SRC) $(CORE_SRC) $(if $(filter fuzz_io_%,$(1)),$(IO_SRC))
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

test-all: test test-integration-full test-socks5-realistic test-soak test-fault test-adversarial asan fuzz-run
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

# --- checks ----------------------------------------------------------------

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
check: check-format check-layering

check-format:
	@clang-format --dry-run -Werror $(FORMAT_FILES) && echo 'check-format: ok'

format:
	clang-format -i $(FORMAT_FILES)

check-layering: $(CORE_OBJ)
	@scripts/check-layering.sh $(CORE_OBJ)

# --- benchmarks ------------------------------------------------------------

bench: bench-kcp bench-envelope bench-mux bench-handshake bench-peers

bench-kcp bench-envelope bench-mux: bench-%: $(BENCHES)
	@scripts/bench.sh $* $(BUILD)

bench-peers: all
	@scripts/bench.sh peers $(BUILD)

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
