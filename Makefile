# SPDX-License-Identifier: Apache-2.0
#
# Beluga top-level build: drives kbuild (kmod/, the test helper module) and
# CMake (user space), and runs the tests.
#
#   make demo         install missing packages, build, boot a VM that runs the demo,
#                     then two VMs sharing CXL memory for its multi-host part
#                     (DEMO_BACKEND=user: one host, user-space backend;
#                     DEMO_PROFILES=demo: the single-host VM only)
#   make bench        KV store benchmarks (Release build in BUILD_DIR/bench, not
#                     part of make check; BENCH_FLAGS, e.g. --quick)
#   make bench-e2e    end-to-end TTFT benchmark: two engine processes, no cache
#                     vs Beluga vs Redis (Documentation/performance.md; minutes,
#                     not part of make check; BENCH_E2E_ARGS, e.g. --smoke)
#   make bench-e2e-sglang  the same for two SGLang-like instances: recompute vs
#                     SGLang's HiCacheShm and HiCacheFile (tmpfs) vs Beluga's
#                     HiCache backend (same knobs, BENCH_E2E_ARGS)
#   make check        install missing packages, build, run every test, the
#                     VM suite on each kernel in CHECK_KVERS (6.1 and 6.12)
#   make / make build build beluga.ko, the test helper module and user space
#   make check-unit   host unit tests (ctest)
#   make check-vm     VM suite, one boot per profile in VM_PROFILES
#   make run-unit / run-vm   the same tests without building first
#   make kmod-kernels build beluga.ko and the helper for every other kernel in
#                     CHECK_KVERS, in BUILD_DIR/kernels/<ver>/
#   make run-vm-kernels      make check's boots: CHECK_PROFILES_NEWEST on
#                     the newest kernel, CHECK_PROFILES_OLDER on the others
#   make check-multihost3    the shared-KV tests with three guests at once
#                     (not part of make check)
#   make deps         install missing Debian packages (scripts/debian-packages.txt)
#   make checkpatch   the kernel's checkpatch.pl --strict on the driver (part of make check)
#   make check-kmod-deps  fail on a file-level dependency cycle in kmod/ (read
#                     with nm from the built objects; part of make check)
#   make check-debug  the VM suite on the debug kernel (KASAN, lockdep, kmemleak,
#                     UBSAN, fault injection; built once per machine, cached)
#   make fuzz         the 10-minute fuzzing run on Debian's kernel
#   make clean
#
# Variables: KDIR (kernel build tree; default the newest /boot/vmlinuz-*-amd64
# that has /lib/modules/<ver>/build), KVER (kernel booted by the VM suite,
# matches KDIR), BUILD_DIR (CMake build directory, default build),
# CMAKE_FLAGS, VM_PROFILES (default "default slub-debug ranges-gpu cxl multihost
# multihost-shared"),
# CHECK_KVERS (default: the newest installed kernel of each series),
# CHECK_PROFILES_NEWEST and CHECK_PROFILES_OLDER, DESTDIR and PREFIX
# (make install).
#
#   make install      install beluga.ko (never loads it), the UAPI header,
#                     the udev rule, libbeluga and beluga-tool
#   make install-dkms register the module sources with DKMS

BUILD_DIR ?= build
CMAKE_FLAGS ?=
VM_PROFILES ?= default slub-debug ranges-gpu cxl multihost multihost-shared multihost-kill
PREFIX ?= /usr/local
DESTDIR ?=
VERSION := $(shell grep -m1 '^project' CMakeLists.txt | grep -o 'VERSION [0-9.]*' | cut -d' ' -f2)
HELPER_DIR := tests/driver/helper
# Debian's python3-torch/-numpy/-pybind11 belong to the system interpreter.
PYTHON ?= /usr/bin/python3
BENCH_E2E_ARGS ?=

# The kernel: KDIR given -> its release (UTS_RELEASE: Debian's headers say
# e.g. 6.1.192 in include/config/kernel.release for the 6.1.0-57-amd64
# image, which is what /boot and /lib/modules are named by); otherwise the
# newest Debian kernel with headers.  Computed per make invocation, so
# `make check` (which runs a sub-make after installing packages) sees a
# kernel installed moments ago.
ifneq ($(strip $(KDIR)),)
KVER ?= $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)
else
KVER ?= $(shell bash scripts/kernel-version.sh 2>/dev/null)
KDIR := $(if $(strip $(KVER)),/lib/modules/$(strip $(KVER))/build)
endif

# make check's kernels: the newest installed kernel of each series, oldest
# first (6.1 and 6.12 once make deps has run).  The default kernel's modules
# are the in-tree kmod/beluga.ko and helper; every other kernel's are built
# in $(BUILD_DIR)/kernels/<ver>/, where tests/vm/run.sh looks for them.
# Recursive: evaluated in the sub-makes that run after deps installed them.
CHECK_KVERS ?= $(shell bash scripts/kernel-version.sh --each-series 2>/dev/null)
CHECK_KVER_NEWEST = $(lastword $(CHECK_KVERS))
# make check's boots: on the newest kernel (6.12) and on each older one (6.1).
# Every profile on both would add about 6 minutes under load; split this
# way, each kernel runs every test list once (default, slub-debug) and the
# range-source tests (ranges-gpu: memmap= ranges and GPU stand-ins on both;
# cxl: QEMU's CXL device on 6.12; multihost, multihost-shared and
# multihost-kill: two 6.12 guests sharing one, with device-dax and with
# beluga.ko; multihost-kill boots them again for a test that kills one).  Every profile on both:
#   make check CHECK_PROFILES_NEWEST="default slub-debug ranges-gpu cxl" \
#              CHECK_PROFILES_OLDER="default slub-debug ranges-gpu cxl"
# With a single kernel installed, it boots VM_PROFILES.
CHECK_PROFILES_NEWEST ?= default ranges-gpu cxl multihost multihost-shared multihost-kill
CHECK_PROFILES_OLDER ?= slub-debug ranges-gpu
CHECK_BOOTS = $(if $(word 2,$(CHECK_KVERS)),$(foreach k,$(CHECK_KVERS),$(addsuffix @$(k),$(if \
	$(filter $(k),$(CHECK_KVER_NEWEST)),$(CHECK_PROFILES_NEWEST),$(CHECK_PROFILES_OLDER)))),$(addsuffix \
	@$(CHECK_KVERS),$(VM_PROFILES)))

KMOD_SOURCES := $(wildcard kmod/*.c)
HELPER_SOURCES := $(wildcard $(HELPER_DIR)/*.c)
SUBMAKE := $(MAKE)
# Sub-makes (kbuild, CMake's) need not announce every directory they enter.
MAKEFLAGS += --no-print-directory

.PHONY: all build kmod helper user deps check check-unit check-vm run-unit run-vm demo bench clean \
	install install-dkms checkpatch check-kmod-deps check-debug fuzz bench-e2e bench-e2e-sglang kmod-kernels \
	run-vm-kernels check-multihost3

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

# The driver and the helper for each kernel in CHECK_KVERS but KVER, built
# from copies of their sources so the in-tree build is left alone.
kmod-kernels:
ifneq ($(KMOD_SOURCES),)
	@for k in $(CHECK_KVERS); do \
		[ "$$k" = "$(strip $(KVER))" ] && continue; \
		echo "kmod: beluga.ko and beluga_test.ko for $$k in $(BUILD_DIR)/kernels/$$k/"; \
		bash scripts/debug-kernel/build-modules.sh /lib/modules/$$k/build \
			$(BUILD_DIR)/kernels/$$k >/dev/null || exit 1; \
	done
endif

# Configure every time (cheap when nothing changed): picks up new files and options.
user:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j2

check-unit: user
	@$(SUBMAKE) run-unit

check-vm: build
	@$(SUBMAKE) run-vm

# run-*: the tests alone, on what was built already.
# After ctest: every case skipped inside a passing test, by name and reason.
run-unit:
	@rc=0; ctest --test-dir $(BUILD_DIR) --output-on-failure -j2 \
		--output-junit Testing/ctest-junit.xml --test-output-size-passed 16000000 || rc=$$?; \
	python3 scripts/ctest-skips.py $(BUILD_DIR)/Testing/ctest-junit.xml; exit $$rc

run-vm:
	KVER=$(KVER) bash tests/vm/run.sh --build-dir $(BUILD_DIR) $(VM_PROFILES)

# The multihost-shared guests three at once, with the shared-region and KV
# lists (make demo's part needs exactly two hosts); Documentation/multihost.md,
# "Three hosts".
MH3_LISTS := tests/vm/multihost-shared.d/00-shared.list tests/vm/multihost-shared.d/10-kv.list \
	tests/vm/multihost-shared.d/90-kv-kill.list
check-multihost3: build
	VM_HOSTS=3 VM_LISTS="$(MH3_LISTS)" KVER=$(KVER) bash tests/vm/run.sh --build-dir $(BUILD_DIR) \
		multihost-shared

# make check's boots, PROFILE@KVER, in one run.sh run (one closing line).
run-vm-kernels:
	@test -n "$(strip $(CHECK_KVERS))" || { echo "run-vm-kernels: no kernel installed (make deps)" >&2; exit 1; }
	KVER=$(KVER) bash tests/vm/run.sh --build-dir $(BUILD_DIR) $(CHECK_BOOTS)

# Sub-makes run after deps so that they see what deps installed.  The VM
# suite runs even when unit tests or checkpatch failed: one run reports all.
check: deps
	@$(SUBMAKE) build
	@$(SUBMAKE) kmod-kernels
	@unit=0; vm=0; cp=0; kd=0; \
	$(SUBMAKE) checkpatch || cp=1; \
	$(SUBMAKE) check-kmod-deps || kd=1; \
	$(SUBMAKE) run-unit || unit=1; \
	$(SUBMAKE) run-vm-kernels || vm=1; \
	if [ $$unit$$vm$$cp$$kd != 0000 ]; then \
		echo "make check: FAILED:$$([ $$cp = 1 ] && echo ' checkpatch')$$([ $$kd = 1 ] && echo ' kmod dependency cycle')$$([ $$unit = 1 ] && echo ' unit tests')$$([ $$vm = 1 ] && echo ' VM suite')"; \
		exit 1; \
	fi

# checkpatch.pl --strict (from linux-source-6.1) on kmod/ and the UAPI
# header; ignores are listed, with reasons, in the script.
checkpatch:
	@bash scripts/debug-kernel/checkpatch.sh

# One direction between the driver's files: the graph is read with nm from
# the objects kbuild built (kmod/*.o), so run it after make kmod.  Its own
# test (tests/kmod-deps/) runs it on made-up objects with cycles.
check-kmod-deps:
	@bash scripts/check-kmod-deps.sh

# The VM suite on the debug kernel (Documentation/hardening.md).  The kernel
# is built on first use (over an hour on 2 cores) into
# /var/cache/beluga-debug-kernel and reused; not part of make check.
# DEBUG_PROFILES overrides the boots (default debug debug-ranges-gpu debug-fuzz).
check-debug: deps
	@BELUGA_DEPS_LIST=scripts/debug-kernel/packages.txt bash scripts/install-deps.sh
	@$(SUBMAKE) user
	BUILD_DIR=$(BUILD_DIR) bash scripts/debug-kernel/check-debug.sh $(DEBUG_PROFILES)

# The long fuzzing run (tests/fuzz/fuzz-long.list) on Debian's kernel.  Its
# two tests alone take 11 minutes: its boot gets the limit check-debug's boots have
# (the default 900 s would leave a loaded machine a few minutes for the rest).
fuzz: deps
	@BELUGA_DEPS_LIST=scripts/debug-kernel/packages.txt bash scripts/install-deps.sh
	@$(SUBMAKE) build
	VM_TIMEOUT=3600 VM_TEST_TIMEOUT=1500 KVER=$(KVER) bash tests/vm/run.sh --build-dir $(BUILD_DIR) fuzz

# The KV-cache demo (tests/vm/demo/): in the VM on the driver, or with
# DEMO_BACKEND=user on this host with libbeluga's user-space backend.  In
# the VM it boots DEMO_PROFILES: demo (one host, two instances, against
# Redis) and demo-multihost (two guests sharing CXL memory, one instance on
# each; Documentation/multihost.md, "Trying it").
DEMO_BACKEND ?= kernel
DEMO_PROFILES ?= demo demo-multihost
bench-e2e: user
	PYTHONPATH=$(BUILD_DIR)/python $(PYTHON) python/bench/e2e.py --json $(BUILD_DIR)/bench-e2e.json $(BENCH_E2E_ARGS)

bench-e2e-sglang: user
	PYTHONPATH=$(BUILD_DIR)/python $(PYTHON) python/bench/sglang_e2e.py --json $(BUILD_DIR)/bench-e2e-sglang.json $(BENCH_E2E_ARGS)

demo: deps
ifeq ($(DEMO_BACKEND),user)
	@$(SUBMAKE) user
	$(BUILD_DIR)/tests/vm/demo/beluga-kv-demo --backend user
else
	@$(SUBMAKE) build
	@$(SUBMAKE) VM_PROFILES="$(DEMO_PROFILES)" run-vm && \
		echo "make demo: every part worked ($(DEMO_PROFILES)); each part's results and verdict are above" || \
		{ echo "make demo: FAILED (the failing part's output is above)"; exit 1; }
endif

# Benchmarks: a Release build of their own; the report (Markdown) is printed
# and kept in $(BUILD_DIR)/bench/beluga-bench.md.
BENCH_FLAGS ?=
bench: deps
	cmake -S bench -B $(BUILD_DIR)/bench
	cmake --build $(BUILD_DIR)/bench -j2 --target beluga-bench
	$(BUILD_DIR)/bench/beluga-bench --out $(BUILD_DIR)/bench/beluga-bench.md $(BENCH_FLAGS)

# Installs files only: loading the module is the operator's decision
# (Documentation/admin-guide.md).  depmod runs only for a real install.
install:
	@test -f kmod/beluga.ko -a -d $(BUILD_DIR) || { echo "install: build first (make build)" >&2; exit 1; }
	install -D -m 0644 kmod/beluga.ko $(DESTDIR)/lib/modules/$(KVER)/extra/beluga.ko
	install -D -m 0644 include/uapi/linux/beluga.h $(DESTDIR)/usr/include/linux/beluga.h
	install -D -m 0644 packaging/60-beluga.rules $(DESTDIR)/etc/udev/rules.d/60-beluga.rules
	install -D -m 0644 packaging/beluga.conf.example $(DESTDIR)/etc/modprobe.d/beluga.conf.example
	install -D -m 0755 packaging/beluga-setup $(DESTDIR)/usr/libexec/beluga/beluga-setup
	install -D -m 0644 packaging/beluga-setup.service $(DESTDIR)/lib/systemd/system/beluga-setup.service
	install -D -m 0644 packaging/beluga-setup.conf.example $(DESTDIR)/etc/beluga/beluga-setup.conf.example
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
