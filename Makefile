# SPDX-License-Identifier: Apache-2.0
#
# Beluga top-level build: drives kbuild (kmod/, the test helper module) and
# CMake (user space), and runs the tests.
#
#   make demo         install missing packages, build, boot a VM that runs the demo
#   make check        install missing packages, build, run every test
#   make / make build build beluga.ko, the test helper module and user space
#   make check-unit   host unit tests (ctest)
#   make check-vm     VM suite, one boot per profile in VM_PROFILES
#   make run-unit / run-vm   the same tests without building first
#   make deps         install missing Debian packages (scripts/debian-packages.txt)
#   make clean
#
# Variables: KDIR (kernel build tree; default the newest /boot/vmlinuz-*-amd64
# that has /lib/modules/<ver>/build), KVER (kernel booted by the VM suite,
# matches KDIR), BUILD_DIR (CMake build directory, default build),
# CMAKE_FLAGS, VM_PROFILES (default "default slub-debug ranges-gpu cxl"),
# DESTDIR and PREFIX (make install).
#
#   make install      install beluga.ko (never loads it), the UAPI header,
#                     the udev rule, libbeluga and beluga-tool
#   make install-dkms register the module sources with DKMS

BUILD_DIR ?= build
CMAKE_FLAGS ?=
VM_PROFILES ?= default slub-debug ranges-gpu cxl
PREFIX ?= /usr/local
DESTDIR ?=
VERSION := $(shell grep -m1 '^project' CMakeLists.txt | grep -o 'VERSION [0-9.]*' | cut -d' ' -f2)
HELPER_DIR := tests/driver/helper

# The kernel: KDIR given -> its release; otherwise the newest Debian kernel
# with headers.  Computed per make invocation, so `make check` (which runs a
# sub-make after installing packages) sees a kernel installed moments ago.
ifneq ($(strip $(KDIR)),)
KVER ?= $(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null)
else
KVER ?= $(shell bash scripts/kernel-version.sh 2>/dev/null)
KDIR := $(if $(strip $(KVER)),/lib/modules/$(strip $(KVER))/build)
endif

KMOD_SOURCES := $(wildcard kmod/*.c)
HELPER_SOURCES := $(wildcard $(HELPER_DIR)/*.c)
SUBMAKE := $(MAKE)
# Sub-makes (kbuild, CMake's) need not announce every directory they enter.
MAKEFLAGS += --no-print-directory

.PHONY: all build kmod helper user deps check check-unit check-vm run-unit run-vm demo clean \
	install install-dkms

all: build

build: kmod helper user

deps:
	@bash scripts/install-deps.sh

kmod:
ifeq ($(KMOD_SOURCES),)
	@echo "kmod: no driver sources (kmod/*.c) yet: beluga.ko not built; the VM suite will fail"
else
	@test -n "$(KDIR)" || { echo "kmod: no kernel build tree; run 'make deps' or pass KDIR=" >&2; exit 1; }
	$(MAKE) -C kmod -j2 KDIR=$(KDIR)
endif

# The test-only helper module; it may use symbols that beluga.ko exports.
helper: kmod
ifneq ($(HELPER_SOURCES),)
	@test -n "$(KDIR)" || { echo "helper: no kernel build tree; run 'make deps' or pass KDIR=" >&2; exit 1; }
	$(MAKE) -C $(KDIR) -j2 M=$(CURDIR)/$(HELPER_DIR) \
		$(if $(wildcard kmod/Module.symvers),KBUILD_EXTRA_SYMBOLS=$(CURDIR)/kmod/Module.symvers) modules
endif

# Configure every time: tests/CMakeLists.txt globs for new test folders.
user:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j2

check-unit: user
	@$(SUBMAKE) run-unit

check-vm: build
	@$(SUBMAKE) run-vm

# run-*: the tests alone, on what was built already.
run-unit:
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2

run-vm:
	KVER=$(KVER) bash tests/vm/run.sh --build-dir $(BUILD_DIR) $(VM_PROFILES)

# Sub-makes run after deps so that they see what deps installed.  The VM
# suite runs even when unit tests failed: one run reports both.
check: deps
	@$(SUBMAKE) build
	@unit=0; vm=0; \
	$(SUBMAKE) run-unit || unit=1; \
	$(SUBMAKE) run-vm || vm=1; \
	if [ $$unit$$vm != 00 ]; then \
		echo "make check: FAILED:$$([ $$unit = 1 ] && echo ' unit tests')$$([ $$vm = 1 ] && echo ' VM suite')"; \
		exit 1; \
	fi

demo: deps
	@$(SUBMAKE) build
	@$(SUBMAKE) VM_PROFILES=demo run-vm

# Installs files only: loading the module is the operator's decision
# (Documentation/admin-guide.md).  depmod runs only for a real install.
install:
	@test -f kmod/beluga.ko -a -d $(BUILD_DIR) || { echo "install: build first (make build)" >&2; exit 1; }
	install -D -m 0644 kmod/beluga.ko $(DESTDIR)/lib/modules/$(KVER)/extra/beluga.ko
	install -D -m 0644 include/uapi/linux/beluga.h $(DESTDIR)/usr/include/linux/beluga.h
	install -D -m 0644 packaging/60-beluga.rules $(DESTDIR)/etc/udev/rules.d/60-beluga.rules
	install -D -m 0644 packaging/beluga.conf.example $(DESTDIR)/etc/modprobe.d/beluga.conf.example
	DESTDIR=$(DESTDIR) cmake --install $(BUILD_DIR) --prefix $(PREFIX)
	@if [ -z "$(DESTDIR)" ]; then depmod -a $(KVER); \
		getent group beluga >/dev/null || groupadd --system beluga; fi
	@echo "installed; load with: modprobe beluga nodes=<nid>[:<size>] (see Documentation/admin-guide.md)"

# DKMS rebuilds the module for every kernel the machine installs.
install-dkms:
	@command -v dkms >/dev/null || { echo "install-dkms: dkms missing: apt-get install dkms" >&2; exit 1; }
	rm -rf $(DESTDIR)/usr/src/beluga-$(VERSION)
	mkdir -p $(DESTDIR)/usr/src/beluga-$(VERSION)/kmod $(DESTDIR)/usr/src/beluga-$(VERSION)/include/uapi/linux
	cp kmod/Makefile kmod/Kbuild kmod/*.c kmod/*.h $(DESTDIR)/usr/src/beluga-$(VERSION)/kmod/
	cp include/uapi/linux/beluga.h $(DESTDIR)/usr/src/beluga-$(VERSION)/include/uapi/linux/
	sed 's/@VERSION@/$(VERSION)/' packaging/dkms.conf > $(DESTDIR)/usr/src/beluga-$(VERSION)/dkms.conf
	@if [ -z "$(DESTDIR)" ]; then dkms add beluga/$(VERSION) && dkms build beluga/$(VERSION) && \
		dkms install beluga/$(VERSION); fi

clean:
ifneq ($(KMOD_SOURCES),)
	-$(MAKE) -C kmod KDIR=$(KDIR) clean
endif
ifneq ($(HELPER_SOURCES),)
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/$(HELPER_DIR) clean
endif
	rm -rf $(BUILD_DIR)
