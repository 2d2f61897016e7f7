#!/usr/bin/env bash
# bench/maillog.sh - how fast is `probe maillog` next to pflogsumm, and is its memory flat?
#
# Run from the repo root: bench/maillog.sh [RUNS]   (about a minute, plus the release build)
#
# Generates Postfix logs of 1,000,000 and 200,000 lines with bench/maillog_gen.py (the lab's
# line shapes), then in the same run times pflogsumm and `probe maillog --json` (release
# build) on the 1M-line log RUNS times each (default 5), whole process, and prints the
# median lines/s of each, the ratio, whether their Grand Totals agree, and probe's max RSS
# (/usr/bin/time) at 200k and at 1M lines.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
command -v pflogsumm >/dev/null || { echo "bench/maillog.sh: pflogsumm is missing (docker/lab/lab.sh install adds it)"; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/maillog.sh: /usr/bin/time is missing (apt-get install time)"; exit 1; }
cargo build --release --locked --quiet
probe=target/release/probe
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 bench/maillog_gen.py 1000000 >"$dir/1m.log"
python3 bench/maillog_gen.py 200000 >"$dir/200k.log"
lines=$(wc -l <"$dir/1m.log")

# seconds of one whole-process run of "$@" on the 1M log
timed() {
    local start end
    start=$(date +%s.%N)
    "$@" "$dir/1m.log" >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
pf=() pr=()
for _ in $(seq "$runs"); do
    pf+=("$(timed pflogsumm)")
    pr+=("$(timed "$probe" maillog --json)")
done
rss() { /usr/bin/time -f %M "$probe" maillog --json "$1" 2>&1 >/dev/null | tail -1; }
rss_1m=$(rss "$dir/1m.log")
rss_200k=$(rss "$dir/200k.log")
pflogsumm "$dir/1m.log" >"$dir/pflogsumm.txt"
"$probe" maillog --json "$dir/1m.log" >"$dir/probe.json"

python3 - "$lines" "$runs" "$rss_200k" "$rss_1m" "$dir/pflogsumm.txt" "$dir/probe.json" "${pf[@]}" "${pr[@]}" <<'PY'
import json, re, statistics, sys
lines, runs, rss_200k, rss_1m, pf_out, pr_out, *times = sys.argv[1:]
lines, runs = int(lines), int(runs)
pf = statistics.median(float(t) for t in times[:runs])
pr = statistics.median(float(t) for t in times[runs:])
grand = {}
for key in ("delivered", "deferred", "bounced", "rejected"):
    m = re.search(r"^\s*(\d+)([km]?)\s+%s\b" % key, open(pf_out).read(), re.M)
    grand[key] = m.group(1) + m.group(2)
mine = json.load(open(pr_out))["totals"]
print(f"log: {lines} lines (bench/maillog_gen.py)")
print(f"pflogsumm      median of {runs}: {pf:.3f} s  {lines / pf:>12,.0f} lines/s")
print(f"probe maillog  median of {runs}: {pr:.3f} s  {lines / pr:>12,.0f} lines/s")
print(f"ratio: {pf / pr:.1f}x")
print("totals pflogsumm: " + ", ".join(f"{k} {v}" for k, v in grand.items()))
print("totals probe:     " + ", ".join(f"{k} {mine[k]}" for k in grand) + f", expired {mine['expired']}")
print(f"probe max RSS: {int(rss_200k) / 1024:.1f} MiB at 200k lines, {int(rss_1m) / 1024:.1f} MiB at 1M lines")
PY
