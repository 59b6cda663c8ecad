# smr: plain GNU make. `make` builds bin/, `make test` builds with
# ASan+UBSan too and runs every test, `make demo` runs the pipeline.
CC      ?= cc
CFLAGS  ?= -O2 -g
STD      = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wvla
LDLIBS   = -lsqlite3 -lcsv -lpcre2-8 -ljansson -lcurl -lcrypto -lxlsxwriter -lm
PREFIX  ?= /usr/local
BUILD   ?= build
BINDIR  ?= bin
# Debian's python3 (scripts/install-deps) for the test scripts, not a
# version manager's slower shim that may come first on PATH.
PYTHON  ?= $(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3)
SAN      = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

PROGS    = smr-ingest smr-tag smr-segment smr-sop-due smr-send smr-report smr-person
LIB_SRC  = $(sort $(wildcard common/*.c))
LIB_OBJ  = $(LIB_SRC:common/%.c=$(BUILD)/common/%.o)
HDRS     = $(wildcard common/*.h)
BINS     = $(PROGS:%=$(BINDIR)/%)
MANS     = $(wildcard man/*.[1-9])

.PHONY: all deps test demo bench install clean lint-man fuzz fuzz-build fuzz-bins fuzz-run fuzz-test \
	build-san soak soak-test
all: $(BINS)

$(BUILD)/common/%.o: common/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(CFLAGS) -c -o $@ $<

$(BUILD)/libsmr.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BINDIR)/%: cmd/%.c $(BUILD)/libsmr.a $(HDRS)
	@mkdir -p $(BINDIR)
	$(CC) $(STD) $(CFLAGS) -o $@ $< $(BUILD)/libsmr.a $(LDLIBS)

$(BUILD)/test-unit: tests/unit.c $(BUILD)/libsmr.a $(HDRS)
	$(CC) $(STD) $(CFLAGS) -o $@ $< $(BUILD)/libsmr.a $(LDLIBS)

$(BUILD)/ingest-floor: scripts/ingest-floor.c $(BUILD)/libsmr.a $(HDRS)
	$(CC) $(STD) $(CFLAGS) -o $@ $< $(BUILD)/libsmr.a $(LDLIBS)

deps:
	@./scripts/install-deps

# The three builds (-O2, sanitizers, fuzzing) run side by side, then the
# fuzzers and the soaks (one core each), then every test twice: on the
# -O2 build, then on the ASan+UBSan build.
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
test: deps
	$(MAKE) -j$(JOBS) --output-sync=target all $(BUILD)/test-unit build-san fuzz-bins
	$(MAKE) lint-man
	$(MAKE) -j$(JOBS) --output-sync=target fuzz-run soak-test
	SMR_BIN=$(CURDIR)/bin SMR_UNIT=$(CURDIR)/$(BUILD)/test-unit ./tests/run
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	SMR_BIN=$(CURDIR)/build-san/bin SMR_UNIT=$(CURDIR)/build-san/test-unit ./tests/run

# libFuzzer harnesses (tests/fuzz): the library built again with clang and
# coverage instrumentation in build-fuzz/. `make fuzz` runs each target
# FUZZ_S seconds; `make test` replays the corpus and fuzzes FUZZ_TEST_S.
FUZZ_CC     = clang
FUZZ_BUILD  = build-fuzz
FUZZ_SAN    = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_S     ?= 60
FUZZ_TEST_S ?= 3
FUZZ_TARGETS = ndjson csv csv-gbk rules ruleexpr segment render scalars policy
FUZZ_BINS   = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz-%)
FUZZ_COMMON = tests/fuzz/fuzz.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libsmr.a
FUZZ_LINK   = $(FUZZ_CC) $(STD) $(FUZZ_SAN) -fsanitize=fuzzer

ifneq ($(BUILD),$(FUZZ_BUILD))
$(FUZZ_BUILD)/libsmr.a: $(LIB_SRC) $(HDRS)
	$(MAKE) CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD) CFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" $(FUZZ_BUILD)/libsmr.a
endif

$(FUZZ_BUILD)/fuzz-ndjson: tests/fuzz/source.c $(FUZZ_COMMON)
	$(FUZZ_LINK) -o $@ tests/fuzz/source.c tests/fuzz/fuzz.c $(FUZZ_BUILD)/libsmr.a $(LDLIBS)
$(FUZZ_BUILD)/fuzz-csv: tests/fuzz/source.c $(FUZZ_COMMON)
	$(FUZZ_LINK) -DFUZZ_FORMAT=FORMAT_CSV -o $@ tests/fuzz/source.c tests/fuzz/fuzz.c $(FUZZ_BUILD)/libsmr.a $(LDLIBS)
$(FUZZ_BUILD)/fuzz-csv-gbk: tests/fuzz/source.c $(FUZZ_COMMON)
	$(FUZZ_LINK) -DFUZZ_FORMAT=FORMAT_CSV -DFUZZ_ENCODING='"gbk"' -o $@ tests/fuzz/source.c tests/fuzz/fuzz.c $(FUZZ_BUILD)/libsmr.a $(LDLIBS)
$(FUZZ_BUILD)/fuzz-%: tests/fuzz/%.c $(FUZZ_COMMON)
	$(FUZZ_LINK) -o $@ $< tests/fuzz/fuzz.c $(FUZZ_BUILD)/libsmr.a $(LDLIBS)

fuzz-bins:
	$(MAKE) $(FUZZ_BUILD)/libsmr.a
	$(MAKE) $(FUZZ_BINS)

fuzz-build: deps
	$(MAKE) fuzz-bins

fuzz: fuzz-build
	tests/fuzz/run $(FUZZ_S) $(FUZZ_TARGETS)

fuzz-test: fuzz-build
	$(MAKE) fuzz-run

fuzz-run:
	tests/fuzz/run $(FUZZ_TEST_S) $(FUZZ_TARGETS)

build-san:
	$(MAKE) BUILD=build-san BINDIR=build-san/bin CFLAGS="$(SAN)" $(PROGS:%=build-san/bin/%) build-san/test-unit

# The chaos soak (scripts/soak): 30 simulated days; `make test` runs a
# one-day soak with a fixed seed, then one with a random seed (printed to
# replay), each with enough events that SOP steps fall due and are sent
# while processes are killed (a half day of 120 events sent next to none).
SOAK_DAYS ?= 30
soak: deps
	$(MAKE) all
	./scripts/soak --days $(SOAK_DAYS) --bin $(CURDIR)/bin

soak-test:
	$(PYTHON) scripts/soak --days 1 --events-per-day 600 --seed 1 --bin $(CURDIR)/bin
	$(PYTHON) scripts/soak --days 1 --events-per-day 600 --bin $(CURDIR)/bin

demo: deps
	$(MAKE) all
	./scripts/demo

bench: deps
	$(MAKE) all $(BUILD)/ingest-floor
	./scripts/bench

lint-man:
	@test -z "$(MANS)" || mandoc -T lint -W warning $(MANS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin
	for m in $(MANS); do s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s; done

clean:
	rm -rf build build-san build-fuzz bin
