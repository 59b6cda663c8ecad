# smr: plain GNU make. `make` builds bin/, `make test` builds with
# ASan+UBSan too and runs every test, `make demo` runs the pipeline.
CC      ?= cc
CFLAGS  ?= -O2 -g
STD      = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wvla
LDLIBS   = -lsqlite3 -lcsv -lpcre2-8 -ljansson -lcurl -lcrypto -lm
PREFIX  ?= /usr/local
BUILD   ?= build
BINDIR  ?= bin
SAN      = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

PROGS    = smr-ingest smr-tag smr-segment smr-sop-due smr-send smr-report
LIB_SRC  = $(sort $(wildcard common/*.c))
LIB_OBJ  = $(LIB_SRC:common/%.c=$(BUILD)/common/%.o)
HDRS     = $(wildcard common/*.h)
BINS     = $(PROGS:%=$(BINDIR)/%)
MANS     = $(wildcard man/*.[1-9])

.PHONY: all deps test check-sanitized unit demo bench install clean lint-man
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

# Every test twice: the -O2 build, then the ASan+UBSan build.
test: deps
	$(MAKE) all $(BUILD)/test-unit
	$(MAKE) BUILD=build-san BINDIR=build-san/bin CFLAGS="$(SAN)" $(PROGS:%=build-san/bin/%) build-san/test-unit
	$(MAKE) lint-man
	SMR_BIN=$(CURDIR)/bin SMR_UNIT=$(CURDIR)/$(BUILD)/test-unit ./tests/run
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	SMR_BIN=$(CURDIR)/build-san/bin SMR_UNIT=$(CURDIR)/build-san/test-unit ./tests/run

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
	rm -rf build build-san bin
