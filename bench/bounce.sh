#!/usr/bin/env bash
# bench/bounce.sh - does `probe bounce` agree with Sisimai, and how fast is it?
#
# Run from the repo root: bench/bounce.sh   (a few seconds, plus the release build)
#
# Reads the real-bounce corpus in ../shared/corpora/bounces (never copied into the project;
# skipped with a message when absent), runs `probe bounce --json` over its maildir/, and
# joins the result with expected.tsv (Sisimai's answers) on file + recipient index (the Nth
# recipient probe reports for that file). Prints: rows, same status %, same reason
# (reason_v5.5plus) %, and the median wall and CPU times of 10 whole-process runs with files/s.
# With -v it also lists every disagreement.
#
# Speed: `probe bounce` and Sisimai itself (Debian's libsisimai-perl, the Perl version, through
# bench/sisimai.pl) read the same directory in the same run, as hyperfine would time them: per
# tool one warm-up run, then 5 timed runs, in two rounds (probe, Sisimai, probe, Sisimai), so
# both see the same machine; the medians of the 10 wall times and of the 10 CPU times (user +
# system) are compared. The warm-up matters: the first process after a large one (Sisimai
# holds its whole corpus in memory) spends several times the usual system time opening and
# reading files, whichever tool it is. The issue's figure for Sisimai's Go version here
# (~0.5 s, ~1,300 files/s) is printed beside it; Go's Sisimai cannot be installed here (no Go
# toolchain newer than 1.19 in Debian 12; it needs 1.22). Without libsisimai-perl the peer is
# skipped with a note (`apt-get install libsisimai-perl`).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=../shared/corpora/bounces
if [ ! -d "$corpus/maildir" ] || [ ! -f "$corpus/expected.tsv" ]; then
    echo "bench/bounce.sh: $corpus is absent; skipped"
    exit 0
fi
cargo build --release --locked --quiet
probe=target/release/probe
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$probe" bounce --json "$corpus/maildir" >"$out" 2>/dev/null
files=$(find "$corpus/maildir" -type f | wc -l)
peer=""
if perl -MSisimai -e 1 2>/dev/null; then
    peer="perl bench/sisimai.pl $corpus/maildir"
else
    echo "bench/bounce.sh: Sisimai (libsisimai-perl) is not installed; the peer is skipped"
fi
# One line per run and tool: name, wall seconds, CPU seconds (the children's user + system).
timings=$(python3 - "$probe" "$corpus/maildir" "$peer" <<'PY'
import os, resource, subprocess, sys, time
probe, maildir, peer = sys.argv[1:]
tools = [("probe", [probe, "bounce", "--json", maildir])]
if peer:
    tools.append(("sisimai", peer.split()))
def quiet(cmd):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
for _ in range(2):
    for name, cmd in tools:
        quiet(cmd)  # warm-up, not timed
        for _ in range(5):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            quiet(cmd)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            print(name, f"{wall:.4f}", f"{cpu:.4f}")
PY
)
python3 - "$out" "$corpus/expected.tsv" "$files" "${1:-}" "$timings" <<'PY'
import csv, json, os, statistics, sys
out, expected_path, files, verbose, timings = sys.argv[1:]
got = {}
for row in json.load(open(out)):
    name = os.path.basename(row["file"])
    got.setdefault(name, []).append(row)
rows = same_status = same_reason = 0
bad = []
with open(expected_path, newline="") as f:
    for e in csv.DictReader(f, delimiter="\t"):
        rows += 1
        mine = got.get(e["file"], [])
        i = int(e["index"]) - 1
        g = mine[i] if 0 <= i < len(mine) else None
        status = (g or {}).get("status") or ""
        reason = (g or {}).get("reason") or ""
        same_status += status == e["status"]
        same_reason += reason == e["reason_v5.5plus"]
        if reason != e["reason_v5.5plus"]:
            bad.append(f'{e["file"]}\t{e["index"]}\t{e["status"]}/{status or "-"}\t{e["reason_v5.5plus"]}/{reason or "-"}')
print(f"rows {rows}")
print(f"same status {100 * same_status / rows:.1f}% ({same_status}/{rows})")
print(f"same reason (reason_v5.5plus) {100 * same_reason / rows:.1f}% ({same_reason}/{rows})")
runs = {}
for line in timings.splitlines():
    name, wall, cpu = line.split()
    runs.setdefault(name, []).append((float(wall), float(cpu)))
medians = {}
for name, rs in runs.items():
    wall = statistics.median(w for w, _ in rs)
    cpu = statistics.median(c for _, c in rs)
    medians[name] = (wall, cpu)
    print(f"{name}: median of {len(rs)} runs: wall {wall:.3f} s ({int(files) / wall:,.0f} files/s), "
          f"cpu {cpu:.3f} s ({int(files) / cpu:,.0f} files/s) ({files} files)")
if "sisimai" in medians:
    (pw, pc), (sw, sc) = medians["probe"], medians["sisimai"]
    print(f"probe vs Sisimai (Perl, same run): {sw / pw:.1f}x by wall time, {sc / pc:.1f}x by CPU time")
pw, pc = medians["probe"]
print(f"probe vs the issue's Sisimai (Go, ~1,300 files/s): {int(files) / pw / 1300:.1f}x by wall time, {int(files) / pc / 1300:.1f}x by CPU time")
if verbose == "-v":
    print("file\tindex\tstatus sisimai/probe\treason sisimai/probe")
    print("\n".join(bad))
PY
