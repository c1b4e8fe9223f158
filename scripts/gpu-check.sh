#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gpu-check.sh - every GPU test and the GPU benchmark of the KV data path
# (libbeluga/xfer) in one call, for a GPU machine where time is scarce and
# there may be no network and no packages.
#
#   bash scripts/gpu-check.sh [BUILD_DIR]
#
# BUILD_DIR holds the GPU bundle built elsewhere: test_xfer_gpu,
# test_xfer_cuda_hpp (the C++ API the Python binding calls), bench_xfer_gpu,
# bench_xfer_gpu_sum, test_xfer_gpu_store (zero-copy saves into the KV store)
# and libbeluga's test_gpu (static CUDA runtime, static gtest, libbeluga and
# libstdc++; they need glibc >= 2.34 and an NVIDIA driver for CUDA >= the
# toolkit they were built with), python/ (the staged beluga and beluga_vllm
# packages with the binding and libbeluga, for the build machine's Python),
# plus googletest-src/ (GoogleTest's
# sources, copied from Debian's googletest package by the build): BUILD_DIR
# itself, BUILD_DIR/xfer-gpu-bundle/ or BUILD_DIR/tests/xfer/gpu/.  Default:
# build-xfer.  If the xfer programs are missing or cannot use the GPU (e.g. the
# driver is older than their CUDA runtime), the script rebuilds them from
# tests/xfer/standalone/ with whatever CMake and CUDA toolkit the machine has,
# and GoogleTest from googletest-src/.  test_gpu and test_xfer_gpu_store are
# not rebuilt (they need libbeluga's build dependencies): if they cannot run,
# that is reported.
#
# Python: the binding's GPU tests (tests/python/test_xfer.py, GpuCopier on
# torch CUDA tensors against the CPU copier per layout) and the connector's
# save/load on CUDA tensors against the CPU path byte for byte
# (tests/python/test_connector.py) run with $GPU_CHECK_PYTHON (default
# python3, which needs torch with CUDA) on the bundle's python/ if that
# imports there, else on a binding rebuilt here (needs CMake, pybind11, the
# interpreter's headers and libbeluga's build dependencies).  If neither
# works, the script says why and runs test_xfer_cuda_hpp instead (the C++ API
# the binding calls), and reports which ran.
#
# Output: a readable log on stdout; with $OUT set, also $OUT/gpu-check.log,
# $OUT/gpu-check-summary.txt, $OUT/xfer-gpu-tests.{log,json},
# $OUT/libbeluga-gpu-tests.{log,json}, $OUT/xfer-gpu-store-tests.{log,json},
# $OUT/xfer-hpp-tests.{log,json}, $OUT/python-gpu-tests.log,
# $OUT/xfer-bench.{log,json} and $OUT/xfer-sum-bench.{log,json}.  Exit 0
# only if every test passed (skipping is a failure when nvidia-smi sees a GPU)
# and both benchmarks completed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build-xfer}
out=${OUT:-}
test_timeout=${GPU_CHECK_TEST_TIMEOUT:-240}
bench_timeout=${GPU_CHECK_BENCH_TIMEOUT:-180}
store_timeout=${GPU_CHECK_STORE_TIMEOUT:-120}
sum_bench_timeout=${GPU_CHECK_SUM_BENCH_TIMEOUT:-60}
py_timeout=${GPU_CHECK_PYTHON_TIMEOUT:-240}
py_build_timeout=${GPU_CHECK_PYTHON_BUILD_TIMEOUT:-240}
py=${GPU_CHECK_PYTHON:-python3}
start=$(date +%s)

if [ -n "$out" ]; then
	mkdir -p "$out"
	exec > >(tee -a "$out/gpu-check.log") 2>&1
fi

say() { printf '\n=== %s (t+%ss)\n' "$*" "$(($(date +%s) - start))"; }
have() { command -v "$1" >/dev/null 2>&1; }
# Each step's timeout, cut to what is left of the whole check's deadline
# ($GPU_CHECK_DEADLINE seconds from the start, default 540: one command on a
# lent GPU machine may run 10 minutes).  A step with nothing left does not
# start and counts as timed out (124).
deadline=${GPU_CHECK_DEADLINE:-540}
with_timeout() { # seconds, command...
	local t=$1 left
	shift
	left=$((deadline - ($(date +%s) - start)))
	if [ "$left" -le 0 ]; then
		echo "not started: the check's deadline (GPU_CHECK_DEADLINE=${deadline}s) is spent: $*" >&2
		return 124
	fi
	[ "$t" -gt "$left" ] && t=$left
	if have timeout; then timeout -k 10 "$t" "$@"; else "$@"; fi
}

summary=()
note() { summary+=("$*"); }

# ---- 1. the machine -------------------------------------------------------
say "machine"
uname -srm
(ldd --version 2>/dev/null || true) | head -n 1
gpu_present=0
if have nvidia-smi; then
	if nvidia-smi -L; then
		gpu_present=1
		nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,pcie.link.gen.max,pcie.link.width.max,pci.bus_id \
			--format=csv 2>/dev/null || true
	fi
elif ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
	gpu_present=1
	echo "nvidia-smi not found, but /dev/nvidia* exists"
else
	echo "no nvidia-smi and no /dev/nvidia*: no GPU visible"
fi
note "gpu visible: $([ $gpu_present = 1 ] && echo yes || echo no)"

# ---- 2. binaries ----------------------------------------------------------
find_bins() {
	local d
	for d in "$1/xfer-gpu-bundle" "$1" "$1/tests/xfer/gpu"; do
		if [ -x "$d/test_xfer_gpu" ] && [ -x "$d/bench_xfer_gpu" ]; then
			(cd "$d" && pwd)
			return 0
		fi
	done
	return 1
}

# Usable = starts, and finds the GPU when one is visible.
probe() {
	local o rc
	o=$(with_timeout 60 "$1/test_xfer_gpu" --gtest_filter='GpuApi.RejectsBadArgumentsWithoutTouchingTheGpu' 2>&1)
	rc=$?
	echo "$o" | grep -E '^(GPU:|no GPU found)' || echo "$o" | tail -n 5
	[ $rc -eq 0 ] || [ $rc -eq 77 ] || return 1
	[ $gpu_present = 0 ] && return 0
	echo "$o" | grep -q '^GPU:'
}

rebuild() {
	local nvcc cc bd
	nvcc=$(command -v nvcc || true)
	for c in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do
		[ -z "$nvcc" ] && [ -x "$c" ] && nvcc=$c
	done
	if ! have cmake || [ -z "$nvcc" ]; then
		echo "cannot rebuild: cmake $(have cmake && echo found || echo missing), nvcc ${nvcc:-missing}"
		return 1
	fi
	"$nvcc" --version | tail -n 2
	cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
	bd=${TMPDIR:-/tmp}/beluga-xfer-gpu-build
	cmake -S "$root/tests/xfer/standalone" -B "$bd" -DCMAKE_BUILD_TYPE=Release \
		${gtest_src:+-DBELUGA_GTEST_SOURCE=$gtest_src} \
		-DCMAKE_CUDA_COMPILER="$nvcc" ${cc:+-DCMAKE_CUDA_ARCHITECTURES=$cc} >"$bd.cmake.log" 2>&1 ||
		{ tail -n 30 "$bd.cmake.log"; return 1; }
	with_timeout "${GPU_CHECK_REBUILD_TIMEOUT:-300}" cmake --build "$bd" -j "$(nproc 2>/dev/null || echo 4)" >"$bd.build.log" 2>&1 ||
		{ tail -n 30 "$bd.build.log"; return 1; }
	bins=$bd/xfer-gpu-bundle
}

say "binaries"
bins=$(find_bins "$build") || bins=
bundle=$bins
gtest_src=
for d in "$build/xfer-gpu-bundle/googletest-src" "$build/googletest-src"; do
	[ -z "$gtest_src" ] && [ -f "$d/googletest/CMakeLists.txt" ] && gtest_src=$(cd "$d" && pwd)
done
origin=prebuilt
if [ -n "$bins" ]; then
	echo "found in $bins"
	if ! probe "$bins"; then
		echo "these binaries cannot use this machine's GPU: rebuilding here"
		bins=
	fi
else
	echo "no test_xfer_gpu/bench_xfer_gpu under $build: building here"
fi
if [ -z "$bins" ]; then
	origin=rebuilt
	say "rebuild (tests/xfer/standalone)"
	if ! rebuild || ! probe "$bins"; then
		note "binaries: none usable (see log)"
		note "RESULT: FAIL"
		printf '%s\n' "${summary[@]}" | { [ -n "$out" ] && tee "$out/gpu-check-summary.txt" || cat; }
		exit 1
	fi
fi
note "binaries: $origin ($bins)"

# ---- 3. tests -------------------------------------------------------------
# A test program's exit code as the summary's words (77: skipped).
gtest_status() { # exit code -> PASS / SKIP / FAIL words
	case $1 in
	0) echo PASS ;;
	77) [ $gpu_present = 0 ] && echo "SKIP (no GPU)" || echo "FAIL (skipped although a GPU is visible)" ;;
	124 | 137) echo "FAIL (timeout)" ;;
	*) echo "FAIL (exit $1)" ;;
	esac
}

say "GPU tests (timeout ${test_timeout}s)"
json_arg=()
[ -n "$out" ] && json_arg=(--gtest_output="json:$out/xfer-gpu-tests.json")
with_timeout "$test_timeout" "$bins/test_xfer_gpu" ${json_arg[@]+"${json_arg[@]}"} 2>&1 | tee ${out:+"$out/xfer-gpu-tests.log"}
tests=$(gtest_status "${PIPESTATUS[0]}")
note "tests: $tests"

say "libbeluga GPU tests (timeout ${test_timeout}s)"
if [ -n "$bundle" ] && [ -x "$bundle/test_gpu" ]; then
	json_arg=()
	[ -n "$out" ] && json_arg=(--gtest_output="json:$out/libbeluga-gpu-tests.json")
	# The user-space backend: GPU machines cannot load the driver.
	BELUGA_BACKEND=user with_timeout "$test_timeout" "$bundle/test_gpu" ${json_arg[@]+"${json_arg[@]}"} 2>&1 |
		tee ${out:+"$out/libbeluga-gpu-tests.log"}
	ltests=$(gtest_status "${PIPESTATUS[0]}")
else
	echo "no test_gpu in the bundle (${bundle:-none}); it is not rebuilt here"
	ltests="FAIL (test_gpu missing)"
	[ $gpu_present = 0 ] && ltests="SKIP (no GPU, test_gpu missing)"
fi
note "libbeluga tests: $ltests"

# Zero-copy saves into the KV store (gather into reserved slots, GPU
# checksums, commit, verified reads).  Built only with the store (the main
# build), so it is not rebuilt here either.
say "store GPU tests (timeout ${store_timeout}s)"
if [ -n "$bundle" ] && [ -x "$bundle/test_xfer_gpu_store" ]; then
	json_arg=()
	[ -n "$out" ] && json_arg=(--gtest_output="json:$out/xfer-gpu-store-tests.json")
	with_timeout "$store_timeout" "$bundle/test_xfer_gpu_store" ${json_arg[@]+"${json_arg[@]}"} 2>&1 |
		tee ${out:+"$out/xfer-gpu-store-tests.log"}
	stests=$(gtest_status "${PIPESTATUS[0]}")
else
	echo "no test_xfer_gpu_store in the bundle (${bundle:-none}); it is not rebuilt here"
	stests="FAIL (test_xfer_gpu_store missing)"
	[ $gpu_present = 0 ] && stests="SKIP (no GPU, test_xfer_gpu_store missing)"
fi
note "store tests: $stests"

# The C++ API of the GPU path (beluga/xfer_cuda.hpp), what the binding calls.
say "xfer C++ API GPU tests (timeout ${test_timeout}s)"
if [ -x "$bins/test_xfer_cuda_hpp" ]; then
	json_arg=()
	[ -n "$out" ] && json_arg=(--gtest_output="json:$out/xfer-hpp-tests.json")
	with_timeout "$test_timeout" "$bins/test_xfer_cuda_hpp" ${json_arg[@]+"${json_arg[@]}"} 2>&1 |
		tee ${out:+"$out/xfer-hpp-tests.log"}
	htests=$(gtest_status "${PIPESTATUS[0]}")
else
	echo "no test_xfer_cuda_hpp in $bins (built only with a C++20 compiler)"
	htests="FAIL (test_xfer_cuda_hpp missing)"
	[ $gpu_present = 0 ] && htests="SKIP (no GPU, test_xfer_cuda_hpp missing)"
fi
note "xfer C++ API tests: $htests"

# ---- 3b. the Python binding and the connector on CUDA tensors --------------
say "Python GPU tests with $py (timeout ${py_timeout}s)"
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || pyver=
pypath=
plog=${out:+$out/python-gpu-tests.log}
plog=${plog:-${TMPDIR:-/tmp}/beluga-python-gpu-tests.log}
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
py_probe() { # PYTHONPATH -> 0 if beluga (with the CUDA data path) and torch import
	PYTHONPATH=$1 with_timeout 60 "$py" -c 'import beluga, torch; assert beluga.HAVE_CUDA_XFER, "built without CUDA"; print("beluga", beluga.version(), "torch", torch.__version__, "cuda", torch.cuda.is_available(), "gpu", beluga.gpu_available())' 2>&1
}
if [ -z "$pyver" ]; then
	pywhy="no Python interpreter '$py'"
elif ! o=$(with_timeout 60 "$py" -c 'import torch' 2>&1); then
	pywhy="$py $pyver cannot import torch ($(echo "$o" | tail -n 1)); the tests move torch CUDA tensors"
else
	echo "python: $(command -v "$py") $pyver"
	if [ -n "$bundle" ] && [ -d "$bundle/python/beluga" ] && o=$(py_probe "$bundle/python"); then
		echo "$o"
		pypath=$bundle/python
		pyorigin="bundled binding"
	elif [ $gpu_present = 0 ]; then
		pywhy="the bundled binding does not import with $py $pyver, and no GPU is visible: not rebuilding it"
	else
		echo "the bundled binding does not import here: ${o:-no python/ in the bundle}" | tail -n 3
		pbd=${TMPDIR:-/tmp}/beluga-python-build
		if have cmake && cmake -S "$root" -B "$pbd" -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$(command -v "$py")" \
			${cc:+-DCMAKE_CUDA_ARCHITECTURES=$cc} >"$pbd.cmake.log" 2>&1 &&
			with_timeout "$py_build_timeout" cmake --build "$pbd" -j "$(nproc 2>/dev/null || echo 4)" --target _beluga beluga_python_files \
				>"$pbd.build.log" 2>&1 && o=$(py_probe "$pbd/python"); then
			echo "$o"
			pypath=$pbd/python
			pyorigin="binding rebuilt here"
		else
			pywhy="the binding cannot be built for $py $pyver here: $(tail -n 3 "$pbd.cmake.log" "$pbd.build.log" 2>/dev/null | tr '\n' ' ' | cut -c1-400)"
			have cmake || pywhy="the binding cannot be built for $py $pyver here: no cmake"
		fi
	fi
fi
if [ -n "$pypath" ]; then
	PYTHONPATH=$pypath BELUGA_BACKEND=user with_timeout "$py_timeout" "$py" "$root/tests/python/run_pytest.py" \
		"$root/tests/python/test_xfer.py" "$root/tests/python/test_connector.py" -k "gpu or cuda" 2>&1 |
		tee "$plog"
	prc=${PIPESTATUS[0]}
	ptests="$(gtest_status "$prc") ($pyorigin, $py $pyver)"
	[ $gpu_present = 0 ] && [ "$prc" = 0 ] && ptests="SKIP (no GPU; the cases needing none passed; $pyorigin, $py $pyver)"
	# Skips inside a passing run are failures where a GPU is visible.
	# (The cases for machines without a GPU skip here, saying so.)
	if [ "$prc" = 0 ] && [ $gpu_present = 1 ] &&
		grep '^beluga-skip: ' "$plog" | grep -qv 'a GPU is usable here'; then
		ptests="FAIL (GPU cases skipped although a GPU is visible; $pyorigin)"
	fi
else
	echo "$pywhy"
	echo "running the C++ API the binding calls instead (test_xfer_cuda_hpp, above)"
	ptests="NOT RUN: $pywhy; ran test_xfer_cuda_hpp instead ($htests)"
	[ $gpu_present = 0 ] && ptests="SKIP (no GPU): $pywhy"
fi
note "python GPU tests: $ptests"

# ---- 4. benchmark ---------------------------------------------------------
say "GPU benchmark (timeout ${bench_timeout}s)"
bench_arg=()
[ -n "$out" ] && bench_arg=(--json "$out/xfer-bench.json")
with_timeout "$bench_timeout" "$bins/bench_xfer_gpu" ${bench_arg[@]+"${bench_arg[@]}"} 2>&1 | tee ${out:+"$out/xfer-bench.log"}
brc=${PIPESTATUS[0]}
case $brc in
0) bench=OK ;;
77) bench="SKIP (no GPU)" ;;
124 | 137) bench="FAIL (timeout)" ;;
*) bench="FAIL (exit $brc)" ;;
esac
note "benchmark: $bench"

say "checksum benchmark (timeout ${sum_bench_timeout}s)"
if [ -x "$bins/bench_xfer_gpu_sum" ]; then
	sum_arg=()
	[ -n "$out" ] && sum_arg=(--json "$out/xfer-sum-bench.json")
	with_timeout "$sum_bench_timeout" "$bins/bench_xfer_gpu_sum" ${sum_arg[@]+"${sum_arg[@]}"} 2>&1 |
		tee ${out:+"$out/xfer-sum-bench.log"}
	sbrc=${PIPESTATUS[0]}
	case $sbrc in
	0) sbench=OK ;;
	77) sbench="SKIP (no GPU)" ;;
	124 | 137) sbench="FAIL (timeout)" ;;
	*) sbench="FAIL (exit $sbrc)" ;;
	esac
else
	echo "no bench_xfer_gpu_sum in $bins"
	sbench="FAIL (bench_xfer_gpu_sum missing)"
	[ $gpu_present = 0 ] && sbench="SKIP (no GPU, bench_xfer_gpu_sum missing)"
fi
note "checksum benchmark: $sbench"

# ---- 5. summary -----------------------------------------------------------
result=PASS
case $tests in PASS | "SKIP (no GPU)") ;; *) result=FAIL ;; esac
case $ltests in PASS | "SKIP (no GPU"*) ;; *) result=FAIL ;; esac
case $htests in PASS | "SKIP (no GPU"*) ;; *) result=FAIL ;; esac
case $ptests in PASS* | "SKIP (no GPU"* | "NOT RUN"*) ;; *) result=FAIL ;; esac
case $bench in OK | "SKIP (no GPU)") ;; *) result=FAIL ;; esac
case $stests in PASS | "SKIP (no GPU"*) ;; *) result=FAIL ;; esac
case $sbench in OK | "SKIP (no GPU"*) ;; *) result=FAIL ;; esac
[ $gpu_present = 0 ] && result="SKIP (no GPU)"
note "elapsed: $(($(date +%s) - start))s"
note "RESULT: $result"
say "summary"
printf '%s\n' "${summary[@]}" | { [ -n "$out" ] && tee "$out/gpu-check-summary.txt" || cat; }
[ "$result" = FAIL ] && exit 1
exit 0
