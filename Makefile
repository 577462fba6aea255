# simtun: make, make check, make demo, make install, make deps
PREFIX   ?= /usr/local
DESTDIR  ?=
SBINDIR  ?= $(PREFIX)/sbin
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
UNITDIR  ?= /lib/systemd/system
SYSCONFDIR ?= /etc

PKGS     := libssh libevent_core libevent_extra libsodium inih libsystemd
RELAY_PKGS := sqlite3 hiredis
PKG_CONFIG ?= pkg-config
DEB_PKGS := build-essential pkg-config libssh-dev libevent-dev libsodium-dev libsqlite3-dev sqlite3 \
	libhiredis-dev redis-server redis-sentinel \
	libinih-dev libsystemd-dev openssh-server openssh-client socat nftables \
	iproute2 wireguard-go wireguard-tools procps psmisc \
	clang libclang-rt-14-dev python3 python3-paramiko curl perl valgrind \
	systemd-container mmdebstrap

ifeq ($(SANITIZE),1)
BUILD    ?= build-asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer
else
BUILD    ?= build
SANFLAGS :=
endif

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -std=c11 -Wall -Wextra -Wno-unused-parameter -Wshadow
ifneq ($(CI),)
WARN     += -Werror
endif
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
RELAY_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(RELAY_PKGS) 2>/dev/null)
RELAY_LIBS = $(shell $(PKG_CONFIG) --libs $(RELAY_PKGS) 2>/dev/null)
ALL_CFLAGS = $(WARN) -D_GNU_SOURCE $(CFLAGS) $(SANFLAGS) $(PKG_CFLAGS) $(RELAY_CFLAGS) -Icommon -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

COMMON_SRC := $(wildcard common/*.c)
RELAY_SRC  := $(wildcard relay/*.c)
AGENT_SRC  := $(wildcard agent/*.c)
CTL_SRC    := $(wildcard common/ctl/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
RELAY_OBJ  := $(call obj,$(RELAY_SRC))
AGENT_OBJ  := $(call obj,$(AGENT_SRC))
CTL_OBJ    := $(call obj,$(CTL_SRC))
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))

BINS := $(BUILD)/simtun-relay
ifneq ($(AGENT_SRC),)
BINS += $(BUILD)/simtun-agent
endif
ifneq ($(CTL_SRC),)
BINS += $(BUILD)/simtunctl
endif

.PHONY: all check unit integration deps demo install clean bench
all: $(BINS) $(UNIT_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/simtun-relay: $(RELAY_OBJ) $(COMMON_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(RELAY_LIBS)

$(BUILD)/simtun-agent: $(AGENT_OBJ) $(COMMON_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/simtunctl: $(CTL_OBJ) $(COMMON_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Unit tests link the common objects; a test of a daemon's module also names
# that module's objects here (modules that need no more of their daemon).
UNIT_OBJ_test_relay_config := $(call obj,relay/config.c)
UNIT_OBJ_test_penalty      := $(call obj,relay/penalty.c relay/config.c)
UNIT_OBJ_test_backoff      := $(call obj,agent/backoff.c)
UNIT_OBJ_test_agent_config := $(call obj,agent/config.c agent/path.c)

.SECONDEXPANSION:
$(BUILD)/tests/unit/%: tests/unit/%.c $(COMMON_OBJ) $$(UNIT_OBJ_$$*)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(RELAY_LIBS)

# Install the Debian packages the build and the tests need; wait (bounded)
# for a package database another process holds (tests/lockwait.sh).
APT_GET := DEBIAN_FRONTEND=noninteractive bash tests/lockwait.sh apt-get -o DPkg::Lock::Timeout=120
deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "deps: installing$$missing"; \
		$(APT_GET) install -y --no-install-recommends $$missing || \
		{ $(APT_GET) update && $(APT_GET) install -y --no-install-recommends $$missing; }; \
	else echo "deps: missing packages; run:"; echo "  sudo apt-get install -y$$missing"; exit 1; fi

# Unit tests, then the integration suite under ASan/UBSan; ends "N passed, N failed".
check: deps
	$(MAKE) all
	$(MAKE) SANITIZE=1 all
	SIMTUN_BIN=$(CURDIR)/build-asan SIMTUN_UNIT=$(CURDIR)/build-asan/tests/unit bash tests/run.sh

unit: all
	SIMTUN_UNIT=$(CURDIR)/$(BUILD)/tests/unit bash tests/run.sh --unit-only

demo: deps all
	bash tests/demo.sh

# bench/ also needs autossh (the OpenSSH side of every table); what it
# needs is installed first, so a fresh machine gets to the tables.
bench:
	$(MAKE) deps DEB_PKGS="$(DEB_PKGS) autossh"
	$(MAKE) all
	bash bench/run

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/simtun-relay $(DESTDIR)$(SBINDIR)/simtun-relay
	[ ! -f $(BUILD)/simtun-agent ] || install -m 0755 $(BUILD)/simtun-agent $(DESTDIR)$(SBINDIR)/simtun-agent
	[ ! -f $(BUILD)/simtunctl ] || install -m 0755 $(BUILD)/simtunctl $(DESTDIR)$(BINDIR)/simtunctl
	install -d $(DESTDIR)$(SYSCONFDIR)/simtun
	for f in conf/*; do [ -f "$$f" ] && install -m 0644 "$$f" $(DESTDIR)$(SYSCONFDIR)/simtun/$$(basename $$f).example; done; true
	install -d $(DESTDIR)$(UNITDIR)
# the units name /usr/sbin: point them at the SBINDIR actually used
	for f in systemd/*.service; do [ -f "$$f" ] || continue; \
		sed 's|/usr/sbin/simtun-|$(SBINDIR)/simtun-|g' "$$f" >$(DESTDIR)$(UNITDIR)/$$(basename $$f).tmp && \
		install -m 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$f).tmp $(DESTDIR)$(UNITDIR)/$$(basename $$f) && \
		rm -f $(DESTDIR)$(UNITDIR)/$$(basename $$f).tmp || exit 1; done
	for s in 5 8; do for f in docs/*.$$s; do [ -f "$$f" ] && install -d $(DESTDIR)$(MANDIR)/man$$s && install -m 0644 "$$f" $(DESTDIR)$(MANDIR)/man$$s/; done; done; true

# Raspberry Pi builds: make cross ARCH=armhf|arm64 builds into build-$(ARCH)/ with
# Debian's cross compiler (ARCH=this machine's: the same hardened build,
# native, for make deb). tests/cross-deps.sh installs the toolchain and qemu-user and
# unpacks the target's libraries into build-$(ARCH)/sysroot (immune to a mirror
# whose foreign index lags the native one); SYSROOT=/ uses multiarch
# libssh-dev:$(ARCH)... instead. make deb: .debs into build-deb/ for this machine
# and every arch cross-built before (or DEB_ARCHES="amd64 armhf arm64").
CROSS_TRIPLET_amd64 := x86_64-linux-gnu
CROSS_TRIPLET_armhf := arm-linux-gnueabihf
CROSS_TRIPLET_arm64 := aarch64-linux-gnu
NATIVE_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
SYSROOT ?= $(if $(filter $(NATIVE_ARCH),$(ARCH)),/,$(CURDIR)/build-$(ARCH)/sysroot)
DEB_ARCHES ?= $(NATIVE_ARCH) $(foreach a,$(filter-out $(NATIVE_ARCH),amd64 armhf arm64),$(if $(wildcard build-$(a)/simtun-agent),$(a)))

.PHONY: cross deb clean-cross
cross:
	@t=$(CROSS_TRIPLET_$(ARCH)); [ -n "$$t" ] || { echo "usage: make cross ARCH=armhf|arm64|amd64"; exit 2; }; \
	bash tests/cross-deps.sh $(ARCH) $(SYSROOT) || exit 1; \
	sr=$(SYSROOT); sr=$${sr%/}; pc=; rl=; \
	[ -z "$$sr" ] || { pc="PKG_CONFIG_SYSROOT_DIR=$$sr "; rl="-Wl,-rpath-link,$$sr/usr/lib/$$t:$$sr/lib/$$t"; }; \
	export DEB_HOST_ARCH=$(ARCH) DEB_BUILD_MAINT_OPTIONS=hardening=+all; \
	$(MAKE) --no-print-directory BUILD=build-$(ARCH) CC=$$t-gcc \
	    PKG_CONFIG="$${pc}PKG_CONFIG_LIBDIR=$$sr/usr/lib/$$t/pkgconfig:$$sr/usr/share/pkgconfig pkg-config" \
	    CFLAGS="$$(dpkg-buildflags --get CFLAGS) $$(dpkg-buildflags --get CPPFLAGS)" \
	    LDFLAGS="$$(dpkg-buildflags --get LDFLAGS) $$rl" \
	    build-$(ARCH)/simtun-relay build-$(ARCH)/simtun-agent build-$(ARCH)/simtunctl

deb:
	@set -e; for a in $(DEB_ARCHES); do $(MAKE) --no-print-directory cross ARCH=$$a; done; \
	for a in $(DEB_ARCHES); do bash tests/mkdeb.sh $$a build-$$a build-deb; done

clean-cross:
	rm -rf build-amd64 build-armhf build-arm64 build-deb

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
include tests/fuzz/fuzz.mk
