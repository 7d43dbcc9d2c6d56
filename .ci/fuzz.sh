#!/usr/bin/env bash
# Bounded-time fuzzing of the Python entry points: the adversarial property tests
# (tests/test_adversarial.py) with the "fuzz" hypothesis profile (150 examples per test
# and pass), pass after pass with a new random seed, until the budget is spent. A pass
# that has started is finished, so the run takes the budget plus at most one pass (about
# 30 s). Runs in the active environment (fastloss and the test extras installed).
#
#   .ci/fuzz.sh [seconds]      default: $FUZZ_SECONDS or 120
#
# A failure prints hypothesis's falsifying example and the seed that found it; rerun it
# with: HYPOTHESIS_PROFILE=fuzz python -m pytest tests/test_adversarial.py --hypothesis-seed=SEED
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-${FUZZ_SECONDS:-120}}
export HYPOTHESIS_PROFILE=fuzz
end=$((SECONDS + budget))
passes=0
examples=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
while [ "$SECONDS" -lt "$end" ]; do
  seed=$(python -c "import random; print(random.getrandbits(32))")
  echo "fuzz: pass $((passes + 1)), seed $seed"
  if ! python -m pytest tests/test_adversarial.py -q -p no:cacheprovider -x \
      --hypothesis-seed="$seed" --hypothesis-show-statistics >"$log" 2>&1; then
    cat "$log"
    echo "fuzz: FAILED with --hypothesis-seed=$seed"
    exit 1
  fi
  # ("N passing examples" or, in newer hypothesis, "N passing, 0 failing ... test cases")
  n=$( (grep -oE "[0-9]+ passing" "$log" || true) | awk '{s += $1} END {print s + 0}')
  examples=$((examples + n))
  echo "fuzz: $(grep -E "passed|failed" "$log" | tail -1); $n examples"
  passes=$((passes + 1))
done
echo "fuzz: $passes passes, $examples examples in $SECONDS s (budget $budget s), no failure"
