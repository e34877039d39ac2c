# libpipeconnect: build, install, test, demo.
#   make            build the library (release) and the pipeconnect tool
#   make demo       the saving on a simulated slow link, classic vs early pipelining
#   make test       every test: format, lints, Rust, C, install, Python, Exim interop
#   make install    PREFIX=/usr/local DESTDIR=   (libdir: $(PREFIX)/lib)
#   make header     regenerate include/pipeconnect.h from the sources

CARGO      ?= cargo
CC         ?= cc
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DESTDIR    ?=

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR   := $(firstword $(subst ., ,$(VERSION)))
MINOR   := $(word 2,$(subst ., ,$(VERSION)))
# The soname's version: MAJOR.MINOR while MAJOR is 0 (every 0.MINOR may break the ABI),
# MAJOR from 1.0 on. build.rs sets the same soname in the library.
SOVERSION := $(if $(filter 0,$(MAJOR)),$(MAJOR).$(MINOR),$(MAJOR))
RELEASE := target/release
# What a static link of libpipeconnect.a needs besides it (rustc's native-static-libs).
PRIVATE_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

.PHONY: all build tools header install uninstall test test-rust test-c-install test-python \
        test-exim test-holddown lint fmt demo fleet-demo clean

all: build

build:
	$(CARGO) build --release -p pipeconnect
	$(CARGO) build --release -p pipeconnect-tools

tools:
	$(CARGO) build --release -p pipeconnect-tools

header:
	PIPECONNECT_BLESS=1 $(CARGO) test -p pipeconnect --test header

pipeconnect.pc: pipeconnect.pc.in Cargo.toml
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@PRIVATE_LIBS@|$(PRIVATE_LIBS)|' $< > $@

install: build pipeconnect.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 0755 $(RELEASE)/libpipeconnect.so $(DESTDIR)$(LIBDIR)/libpipeconnect.so.$(VERSION)
	ln -sf libpipeconnect.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libpipeconnect.so.$(SOVERSION)
	ln -sf libpipeconnect.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libpipeconnect.so
	install -m 0644 $(RELEASE)/libpipeconnect.a $(DESTDIR)$(LIBDIR)/libpipeconnect.a
	install -m 0644 include/pipeconnect.h $(DESTDIR)$(INCLUDEDIR)/pipeconnect.h
	install -m 0644 pipeconnect.pc $(DESTDIR)$(LIBDIR)/pkgconfig/pipeconnect.pc
	rm -f pipeconnect.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libpipeconnect.so* $(DESTDIR)$(LIBDIR)/libpipeconnect.a \
	      $(DESTDIR)$(INCLUDEDIR)/pipeconnect.h $(DESTDIR)$(LIBDIR)/pkgconfig/pipeconnect.pc

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The shared library is built before the tests: `cargo test` builds only the rlib, and
# the C tests link the .so.
test-rust:
	$(CARGO) build --workspace
	$(CARGO) test --workspace
	$(CARGO) test -p pipeconnect --features shared-redis-tls --test shared_redis_tls

test-c-install: build
	sh tests/install/run.sh

test-python: build
	LIBPIPECONNECT_DIR=$(CURDIR)/$(RELEASE) sh bindings/python/run-tests.sh

test-exim: build
	sh tests/exim/run.sh

# The hold-down behind a balancer in front of two real Exims; prints its figures.
test-holddown: build
	sh tests/exim/run-holddown.sh

test: lint test-rust test-c-install test-python test-exim test-holddown
	@echo "make test: all suites passed"

demo: build
	sh examples-c/demo.sh

# A fleet of hosts sharing what they learn through a real redis-server (docs/FLEET.md);
# its last line is the summary. FLEET_ARGS passes options (e.g. --hosts 50 --zipf 0.8).
fleet-demo:
	$(CARGO) build --release -p pipeconnect-tools
	$(RELEASE)/pipeconnect fleet-demo $(FLEET_ARGS)

clean:
	$(CARGO) clean
	rm -f pipeconnect.pc
