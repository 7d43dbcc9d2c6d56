#!/usr/bin/env bash
# The extension built with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DFASTLOSS_SANITIZE=ON) into its own virtual environment, and the test suite run under
# it. Fails on any sanitizer report, including one from a subprocess a test starts.
#
#   .ci/sanitize.sh            build (build/sanitize, .venv-sanitize) and run the tests
#   SANITIZE_PYTEST_ARGS="tests/test_adversarial.py" .ci/sanitize.sh    a subset
#
# The slow leak test (1,000,000 calls, RSS) is deselected: ASan's quarantine and shadow
# memory make RSS meaningless and the calls ~5x slower. About 8 minutes on 2 idle cores
# from scratch (the build is most of it; the tests take about 3 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SANITIZE_VENV:-.venv-sanitize}
BUILD_DIR=${SANITIZE_BUILD_DIR:-build/sanitize}
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/fastloss-sanitize.XXXXXX")
# (the Dask tests run the kernels that the rest of the suite checks, through dask: not here)
PYTEST_ARGS=${SANITIZE_PYTEST_ARGS:-tests --ignore=tests/test_dask.py}
export HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci}

python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" "cython>=3.0"
# Only the levels the tests below run: baseline and the best this CPU has (a build without
# the middle level runs its best one: an AVX2 copy on an AVX-512 CPU would be compiled and
# never run).
has() { for f; do grep -qw "$f" /proc/cpuinfo || return 1; done; }
LEVELS="baseline"
if has avx2 fma; then
  if has avx512bw avx512vl avx512dq; then LEVELS="$LEVELS;avx512"; else LEVELS="$LEVELS;avx2"; fi
fi
start=$SECONDS
python -m pip install --quiet --no-build-isolation -Ccmake.define.FASTLOSS_SANITIZE=ON \
  "-Ccmake.define.FASTLOSS_LEVELS=$LEVELS" "-Cbuild-dir=$BUILD_DIR" ".[test]"
echo "sanitize: build ($LEVELS) $((SECONDS - start)) s"

ASAN_LIB=$(gcc -print-file-name=libasan.so)
UBSAN_LIB=$(gcc -print-file-name=libubsan.so)
[ -f "$ASAN_LIB" ] || { echo "sanitize: libasan not found ($ASAN_LIB)"; exit 1; }
export LD_PRELOAD="$ASAN_LIB:$UBSAN_LIB"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$LOGS/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGS/ubsan"
export FASTLOSS_SANITIZED=1 PYTHONFAULTHANDLER=1
# not the repaired wheel (no bundled libgomp, no RECORD of a wheel install): the checks of
# tests/test_installed.py that .ci/run turns on do not apply to this build
unset FASTLOSS_TEST_INSTALLED
python -c "import fastloss, sys; sys.exit('sanitizers' not in fastloss.build_info()['cxx_flags'])" ||
  { echo "sanitize: the installed fastloss is not the sanitizer build"; exit 1; }

start=$SECONDS
status=0
# shellcheck disable=SC2086
python -m pytest $PYTEST_ARGS -q -p no:cacheprovider -m "not slow" || status=$?
# and the adversarial inputs through the baseline (SSE2) kernels too
if [[ $LEVELS == *";"* && -z ${SANITIZE_PYTEST_ARGS:-} ]]; then
  FASTLOSS_CPU=baseline python -m pytest tests/test_adversarial.py -q -p no:cacheprovider ||
    status=$?
fi
unset LD_PRELOAD
echo "sanitize: tests $((SECONDS - start)) s"

if compgen -G "$LOGS/*san*" >/dev/null; then
  echo "sanitize: sanitizer reports:"
  cat "$LOGS"/*san*
  status=1
fi
rm -rf "$LOGS"
[ "$status" -eq 0 ] && echo "sanitize: clean" || echo "sanitize: FAILED"
exit "$status"
