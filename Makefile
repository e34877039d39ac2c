# libpipeconnect: build, install, test, demo.
#   make            build the library (release) and the pipeconnect tool
#   make demo       the saving on a simulated slow link, classic vs early pipelining
#   make test       every test: format, lints, Rust, C, install, Python, Perl, packages, man
#                   pages, Exim interop, hold-down behind a balancer, Postfix, a short fuzzing
#                   run, the C side under ASan/UBSan (docs/TESTING.md)
#   make test-slow  Miri over the pure modules and the C API driven from Rust
#   make postfix-demo  patched Postfix against a real Exim 4.96 at 50 ms RTT (root)
#   make install    PREFIX=/usr/local DESTDIR=   (libdir: $(PREFIX)/lib)
#   make header     regenerate include/pipeconnect.h from the sources
#   make deb        Debian packages into target/debian/ (test-deb installs, uses and purges them)

CARGO      ?= cargo
CC         ?= cc
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
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
        test-exim test-holddown test-postfix postfix postfix-demo lint fmt demo clean \
        deb test-deb test-perl test-man fuzz-smoke test-sanitize test-miri test-slow fleet-demo

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
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 0755 $(RELEASE)/pipeconnect $(DESTDIR)$(BINDIR)/pipeconnect
	install -m 0644 man/pipeconnect.1 $(DESTDIR)$(MANDIR)/man1/pipeconnect.1
	install -m 0644 man/libpipeconnect.3 $(DESTDIR)$(MANDIR)/man3/libpipeconnect.3

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libpipeconnect.so* $(DESTDIR)$(LIBDIR)/libpipeconnect.a \
	      $(DESTDIR)$(INCLUDEDIR)/pipeconnect.h $(DESTDIR)$(LIBDIR)/pkgconfig/pipeconnect.pc \
	      $(DESTDIR)$(BINDIR)/pipeconnect $(DESTDIR)$(MANDIR)/man1/pipeconnect.1 \
	      $(DESTDIR)$(MANDIR)/man3/libpipeconnect.3

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
	sh bindings/python/test-install.sh

test-exim: build
	sh tests/exim/run.sh

# The hold-down behind a balancer in front of two real Exims; prints its figures.
test-holddown: build
	sh tests/exim/run-holddown.sh

# Postfix 3.7.11 from Debian's source package, patched to use the library (as root).
postfix: build
	sh integrations/postfix/build.sh

test-postfix: build
	sh integrations/postfix/run-tests.sh

postfix-demo: postfix
	python3 integrations/postfix/demo.py


# Debian packages into target/debian/ (debian/, README "Install"): the crates are vendored
# first so dpkg-buildpackage runs cargo offline, on a copy of the tree; lintian must find no error.
# Cargo builds in target/deb-cargo (kept between runs): the Debian build flags reach the C code
# of some crates, which would otherwise rebuild back and forth with target/release.
DEB_DIR := target/debian
# `make test` runs the suites; `make deb DEB_BUILD_OPTIONS=` also runs the library's unit tests.
DEB_BUILD_OPTIONS ?= nocheck
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	$(CARGO) vendor --locked --versioned-dirs $(CURDIR)/$(DEB_DIR)/vendor > $(DEB_DIR)/vendor-config.toml
	git ls-files -z -co --exclude-standard | tar --null -T - --ignore-failed-read -cf - | tar -xf - -C $(DEB_DIR)/src
	cp $(DEB_DIR)/vendor-config.toml $(DEB_DIR)/src/debian/vendor-config.toml
	cd $(DEB_DIR)/src && CARGO_TARGET_DIR=$(CURDIR)/target/deb-cargo DEB_BUILD_OPTIONS="$(DEB_BUILD_OPTIONS)" \
	    dpkg-buildpackage -b -us -uc
	lintian --fail-on error $(DEB_DIR)/*.changes
	@ls -l $(DEB_DIR)/*.deb

# Installs the packages into this machine (root), builds and runs a C program against them
# with pkg-config, then purges them again.
test-deb: deb
	sh debian/tests/run-installed.sh $(DEB_DIR)

# The man pages render without a warning (man-db's and groff's).
test-man:
	@for f in man/*.[0-9]; do \
	    w=$$(MANWIDTH=80 man --warnings -l $$f 2>&1 >/dev/null; groff -ww -z -man $$f 2>&1); \
	    if [ -n "$$w" ]; then echo "$$f: $$w"; exit 1; fi; echo "ok: $$f renders without warnings"; done

test-perl: build
	PIPECONNECT_LIBRARY=$(CURDIR)/$(RELEASE)/libpipeconnect.so PIPECONNECT_BIN=$(CURDIR)/$(RELEASE)/pipeconnect \
	    prove -r -Ibindings/perl/lib bindings/perl/t

# Every fuzz target for a few seconds from the committed seeds (nightly + cargo-fuzz).
fuzz-smoke:
	sh fuzz/smoke.sh

# The C tests, the example client and the demo built with clang's ASan and UBSan, against
# the library built with -Zsanitizer=address; canaries prove both sides are checked.
test-sanitize:
	sh tests/sanitize/run.sh

# Miri over the pure modules and tests/miri_capi.rs (minutes: see docs/TESTING.md).
test-miri:
	sh tests/sanitize/miri.sh

test-slow: test-miri

# With CI=true a missing nightly toolchain, cargo-fuzz or clang fails these; elsewhere
# they say what is missing and are skipped.
test: lint test-rust test-c-install test-python test-perl test-man test-deb test-exim \
      test-holddown test-postfix fuzz-smoke test-sanitize
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
