# SPDX-License-Identifier: MIT
# mproc: top-level entry points. `make demo`, `make test`, `make bench`.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
BUILD_TSAN ?= build-tsan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

export ASAN_OPTIONS  ?= halt_on_error=1:abort_on_error=0:detect_leaks=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1

.PHONY: all deps build build-asan demo test test-normal test-asan fuzz bench \
	install clean valgrind tsan

all: build

deps:
	@./scripts/setup

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(BUILD_ASAN)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DMPROC_SANITIZE=ON

$(BUILD_FUZZ)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang \
		-DCMAKE_BUILD_TYPE=Debug -DMPROC_FUZZ=ON -DMPROC_TESTS=OFF

$(BUILD_TSAN)/Makefile: CMakeLists.txt
	CC=clang cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=Debug -DMPROC_TSAN=ON

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(BUILD_ASAN)/Makefile
	cmake --build $(BUILD_ASAN) -j $(JOBS)

demo: build
	@./scripts/demo $(BUILD)

# The whole suite twice: a normal build, then ASan + UBSan; then every
# fuzz target for FUZZ_SECONDS.
test: test-normal test-asan fuzz

# Interop tests run verbosely: their output names every CPython version
# tested and every version skipped.
test-normal: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE interop $(CTEST_ARGS)
	cd $(BUILD) && ctest --output-on-failure -V -L interop $(CTEST_ARGS)
	@./scripts/check-leftovers

test-asan: build-asan
	cd $(BUILD_ASAN) && ctest --output-on-failure -j $(JOBS) -LE interop $(CTEST_ARGS)
	cd $(BUILD_ASAN) && ctest --output-on-failure -V -L interop $(CTEST_ARGS)
	@./scripts/check-leftovers

# libFuzzer targets (clang, ASan + UBSan), each FUZZ_SECONDS on a copy of
# its corpus: tests/fuzz/README.md.
fuzz: deps $(BUILD_FUZZ)/Makefile
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzzers
	@./scripts/fuzz $(BUILD_FUZZ) $(FUZZ_SECONDS)

# The non-interop suite under valgrind memcheck (normal build): no memory
# error and no definite or indirect leak in any process. Not part of
# `make test` (about 13 minutes here); scripts/valgrind says what it
# runs and why. VALGRIND_TESTS=test_x ... runs only those executables.
valgrind: build
	@./scripts/setup valgrind
	@./scripts/valgrind $(BUILD) $(VALGRIND_TESTS)
	@./scripts/check-leftovers

# ThreadSanitizer (clang) over the suite, in its own build; not part of
# `make test`. scripts/tsan says what it runs. TSAN_TESTS=test_x ... runs
# only those executables.
tsan: deps $(BUILD_TSAN)/Makefile
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	@./scripts/tsan $(BUILD_TSAN) $(TSAN_TESTS)
	@./scripts/check-leftovers

# Benchmarks also compare the manager with Redis: setup installs it too.
bench: build
	@./scripts/setup bench
	@./bench/run $(BUILD)

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_TSAN)
