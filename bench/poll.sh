#!/usr/bin/env bash
# bench/poll.sh - does polling cost grow with the mailbox, and how soon after delivery is a
# verdict in? Against the lab (docker/lab/lab.sh), loopback only, as root.
#
# Run from the repo root: bench/poll.sh   (about 2 minutes, plus the build and, the first
# time, `lab.sh fill-big`, which puts 100,000 messages into big@big.lab.test)
#
#   (a) probe's poll phase: `probe send` one message, wait until Dovecot has stored it
#       (dovecot.log), then time `probe poll` (process start to exit: login, LIST, EXAMINE the
#       spam folder and INBOX, `UID SEARCH UID n:* (SUBJECT ...)`, FETCH, LOGOUT). Against a
#       nearly empty mailbox (implicit@implicit.lab.test) and the 100,000-message one
#       (big@big.lab.test), REPS times each, interleaved; medians. Goal: big <= 1.2x small.
#       Dovecot's own time for each command is shown as well (from its tagged OK). The big
#       mailbox is an mdbox: as a Maildir, opening INBOX after a delivery cost every client
#       ~0.35 s at 100,000 messages (re-reading dovecot-uidlist, listing cur/), which measured
#       the storage format, not the client (6x then; ~1.0-1.25x with mdbox, noisy at ~10 ms).
#       REPS=15 bench/poll.sh gives steadier medians.
#   (b) the same lookups by a naive poller, as Nagios-style checks do it (python3 imaplib):
#       connect, login, EXAMINE INBOX, `SEARCH SUBJECT token` over the whole folder, FETCH the
#       header, logout, for the same messages right after (a)'s poll. Medians, and its ratio;
#       and Dovecot's own time for that search and for probe's `UID n:*` search.
#   (c) delivery to verdict: probe sends N messages to N seeds sharing inbox@inbox.lab.test,
#       through a holding SMTP server here, so none arrives yet; `probe poll` (poll_interval
#       30 s) starts and waits in IDLE; the held messages are then handed to the lab's Postfix
#       one every 1.5 s. Delivery time: the ctime of the message's file in the Maildir, which
#       Dovecot's LMTP writes when it stores it (dovecot.log has the same event, "stored mail
#       into mailbox 'INBOX'", to the second only); verdict time: the store's decided_at (ms).
#       Goal: median under 1 s.
# The first line gives the machine's load. The exit status is 0 whether the goals are met or
# not; it is 1 when a step fails (a message not found, a poll failing).
set -euo pipefail
shopt -s inherit_errexit

REPS=${REPS:-7} N=${N:-10}
LAB=${SEEDPROBE_LAB_DIR:-/tmp/seedprobe-lab}
PROBE=$PWD/target/release/probe
CA=$LAB/tls/ca.pem
DOVECOT_LOG=$LAB/log/dovecot.log

cargo build --release --quiet
bash docker/lab/lab.sh start
bash docker/lab/lab.sh fill-big >/dev/null

WORK=$(mktemp -d /tmp/bench-poll.XXXXXX)
HOLDER_PID=
cleanup() {
  [[ -n $HOLDER_PID ]] && kill "$HOLDER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export PROBE_STORE=$WORK/store.sqlite NO_COLOR=1
unset PROBE_CONFIG PROBE_LOG

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt() { awk -v s="$1" 'BEGIN { printf "%.3f", s }'; }
sql() { python3 -c 'import sqlite3, sys; [print(*r, sep="|") for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]' "$PROBE_STORE" "$1"; }

echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
count() { doveadm -c "$LAB/dovecot/dovecot.conf" -f flow mailbox status -u "$1" messages INBOX | sed 's/.*messages=//'; }

# seed NAME ADDRESS LOCALPART MX: one seed entry (implicit TLS, the lab CA).
seed() {
  printf '  - name: %s\n    address: %s\n    mx: "%s"\n    imap: { host: 127.0.0.1, port: 1993, tls: implicit, password: { file: %s }, ca_file: %s }\n' \
    "$1" "$2" "$4" "$LAB/secrets/$3.pass" "$CA"
}
# config FILE INTERVAL TIMEOUT: the header of a seeds file; seed entries are appended.
config() {
  printf 'sender:\n  from: "Probe Bench <probe@sender.lab.test>"\n  ehlo: bench.example.org\ntiming:\n  poll_interval: %s\n  timeout: %s\n  smtp_timeout: 10s\n  imap_timeout: 10s\nseeds:\n' "$2" "$3" >"$1"
}

# --- (a) and (b) ------------------------------------------------------------

# stored TOKEN: wait (at most 20 s) until Dovecot logs the message as stored.
stored() {
  local i
  for i in $(seq 400); do
    grep -q "msgid=<$1\.seedprobe@[^>]*>: stored mail into mailbox" "$DOVECOT_LOG" && return 0
    sleep 0.05
  done
  echo "FAIL: message $1 was not delivered within 20 s" >&2
  return 1
}

# imap MODE USER PASSWORD-FILE TOKEN UIDNEXT: one IMAP session (python3 imaplib, TLS).
#   open:  EXAMINE INBOX and log out; prints Dovecot's own time for the EXAMINE (from its
#          tagged OK, "Examine completed (0.264 + 0.000 + 0.263 secs)").
#   naive: a Nagios-style lookup: EXAMINE INBOX, SEARCH SUBJECT over the whole folder, FETCH
#          the header, logout; prints its wall seconds, then Dovecot's own times for that
#          EXAMINE and that SEARCH, and for probe's `UID SEARCH UID n:* (SUBJECT ...)` run in
#          the same session.
imap() {
  python3 - "$@" "$CA" <<'PY'
import imaplib, re, ssl, sys, time
mode, user, pwfile, token, uidnext, ca = sys.argv[1:7]
def server_secs(dat):
    m = re.search(rb"\(([0-9.]+) \+", dat[-1] or b"")
    return float(m.group(1)) if m else float("nan")
ctx = ssl.create_default_context(cafile=ca)
t = time.monotonic()
m = imaplib.IMAP4_SSL("127.0.0.1", 1993, ssl_context=ctx)
m.login(user, open(pwfile).read().strip())
typ, dat = m._simple_command("EXAMINE", "INBOX")
# What select(readonly=True) would have recorded; _simple_command keeps the tagged OK text.
m.is_readonly, m.state = True, "SELECTED"
opened = server_secs(dat)
if mode == "open":
    m.logout()
    print("%.6f" % server_secs(dat))
    sys.exit()
typ, dat = m._simple_command("SEARCH", "SUBJECT", '"%s"' % token)
full = server_secs(dat)
typ, hits = m._untagged_response(typ, dat, "SEARCH")
hits = hits[0].split()
if not hits:
    sys.exit("FAIL: naive search did not find " + token)
m.fetch(hits[-1], "(BODY.PEEK[HEADER])")
wall = time.monotonic() - t
typ, dat = m._simple_command("UID", "SEARCH", "UID", uidnext + ":*", '(SUBJECT "%s")' % token)
incremental = server_secs(dat)
m.logout()
print("%.6f %.6f %.6f %.6f" % (wall, opened, full, incremental))
PY
}

# stats "T1 T2 ...": median [each]
stats() {
  local m
  m=$(tr ' ' '\n' <<<"$1" | grep . | median)
  printf '%s [%s]' "$(fmt "$m")" "$(for t in $1; do fmt "$t"; echo -n ' '; done | sed 's/ $//')"
}
med() { tr ' ' '\n' <<<"$1" | grep . | median; }

declare -A SYNC PROBE_T NAIVE_T OPEN_T FULL_T INCR_T
config "$WORK/small.yaml" 1s 30s
seed small implicit@implicit.lab.test implicit 127.0.0.1:2525 >>"$WORK/small.yaml"
config "$WORK/big.yaml" 1s 30s
seed big big@big.lab.test big 127.0.0.1:2525 >>"$WORK/big.yaml"
echo "(a)/(b) mailboxes: small $(count implicit@implicit.lab.test) messages, big $(count big@big.lab.test) messages; $REPS lookups each, interleaved"

for rep in $(seq "$REPS"); do
  for kind in small big; do
    case $kind in
    small) user=implicit@implicit.lab.test pw=$LAB/secrets/implicit.pass ;;
    big) user=big@big.lab.test pw=$LAB/secrets/big.pass ;;
    esac
    run_id=$("$PROBE" send --all --config "$WORK/$kind.yaml" 2>/dev/null)
    token=$(sql "SELECT token FROM messages WHERE run_id = '$run_id'")
    uidnext=$(sql "SELECT uidnext FROM positions WHERE run_id = '$run_id' AND folder = 'INBOX'")
    [[ -n $uidnext ]] || { echo "FAIL: no position recorded for $kind" >&2; exit 1; }
    stored "$token"
    t0=$(now)
    "$PROBE" poll --run "$run_id" --config "$WORK/$kind.yaml" >/dev/null 2>"$WORK/poll.err" ||
      { echo "FAIL: probe poll ($kind): $(cat "$WORK/poll.err")" >&2; exit 1; }
    t1=$(now)
    verdict=$(sql "SELECT verdict FROM messages WHERE token = '$token'")
    [[ $verdict == inbox ]] || { echo "FAIL: $kind verdict $verdict" >&2; exit 1; }
    PROBE_T[$kind]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') "
    read -r wall open full incr < <(imap naive "$user" "$pw" "$token" "$uidnext")
    NAIVE_T[$kind]+="$wall " OPEN_T[$kind]+="$open " FULL_T[$kind]+="$full " INCR_T[$kind]+="$incr "
    # Dovecot's own time to open INBOX in a fresh session once things are quiet.
    SYNC[$kind]+="$(imap open "$user" "$pw" "$token" "$uidnext") "
  done
done

for kind in small big; do
  echo "  $kind:"
  echo "    probe poll, process start to exit (first after delivery):  $(stats "${PROBE_T[$kind]}")"
  echo "    naive lookup, connect to FETCH (second):                     $(stats "${NAIVE_T[$kind]}")"
  echo "    Dovecot's time: naive's EXAMINE INBOX:                       $(stats "${OPEN_T[$kind]}")"
  echo "    Dovecot's time: EXAMINE INBOX in a third session:            $(stats "${SYNC[$kind]}")"
  echo "    Dovecot's time: SEARCH SUBJECT (naive, whole folder):        $(stats "${FULL_T[$kind]}")"
  echo "    Dovecot's time: UID SEARCH UID n:* (SUBJECT ...) (probe's):  $(stats "${INCR_T[$kind]}")"
done
awk -v ps="$(med "${PROBE_T[small]}")" -v pb="$(med "${PROBE_T[big]}")" \
  -v ns="$(med "${NAIVE_T[small]}")" -v nb="$(med "${NAIVE_T[big]}")" \
  -v fs="$(med "${FULL_T[small]}")" -v fb="$(med "${FULL_T[big]}")" \
  -v is="$(med "${INCR_T[small]}")" -v ib="$(med "${INCR_T[big]}")" 'BEGIN {
  r = pb / ps
  printf "(a) probe poll big/small: %.2fx (goal <= 1.2x: %s); its search alone (Dovecot'"'"'s time): %.2fx\n", r, (r <= 1.2) ? "met" : "NOT met", ib / is
  printf "(b) naive big/small: %.2fx; its search alone: %.2fx; on the big mailbox naive/probe: %.2fx\n", nb / ns, fb / fs, nb / pb
}'
echo "    search scopes probe used: $(sql "SELECT DISTINCT json_extract(detail, '$.scope.mode') FROM observations WHERE kind = 'search'" | tr '\n' ' ')"

# --- (c) ----------------------------------------------------------------------

# A holding SMTP server: accepts every message (250) and keeps it as a file in $WORK/held.
mkdir -p "$WORK/held"
python3 - "$WORK/held" >"$WORK/holder.port" <<'PY' &
import socket, sys, os, threading
out = sys.argv[1]
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(16)
print(srv.getsockname()[1], flush=True)
n = 0
lock = threading.Lock()
def serve(c):
    global n
    f = c.makefile("rb")
    c.sendall(b"220 holder ESMTP\r\n")
    rcpt = b""
    while True:
        line = f.readline()
        if not line:
            return
        u = line.upper()
        if u.startswith(b"RCPT TO:"):
            rcpt = line[8:].strip().strip(b"<>")
            c.sendall(b"250 2.1.5 Ok\r\n")
        elif u.startswith(b"DATA"):
            c.sendall(b"354 go ahead\r\n")
            data = b""
            while True:
                l = f.readline()
                if not l or l == b".\r\n":
                    break
                data += l
            with lock:
                n += 1
                path = os.path.join(out, "%03d" % n)
            with open(path + ".tmp", "wb") as h:
                h.write(rcpt + b"\n" + data)
            os.rename(path + ".tmp", path)
            c.sendall(b"250 2.0.0 Ok: held\r\n")
        elif u.startswith(b"QUIT"):
            c.sendall(b"221 Bye\r\n"); return
        else:
            c.sendall(b"250 holder\r\n")
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
HOLDER_PID=$!
for _ in $(seq 100); do [[ -s $WORK/holder.port ]] && break; sleep 0.05; done
HOLDER=127.0.0.1:$(cat "$WORK/holder.port")

config "$WORK/idle.yaml" 30s 60s
for i in $(seq -w "$N"); do seed "m$i" inbox@inbox.lab.test inbox "$HOLDER" >>"$WORK/idle.yaml"; done
run_id=$("$PROBE" send --all --config "$WORK/idle.yaml" 2>/dev/null)
[[ $(ls "$WORK/held" | wc -l) -eq $N ]] || { echo "FAIL: the holder did not get $N messages" >&2; exit 1; }

"$PROBE" poll --run "$run_id" --config "$WORK/idle.yaml" >"$WORK/idle.out" 2>"$WORK/idle.err" &
POLL_PID=$!
# Hand messages over only once probe is past its first INBOX search (and so in IDLE).
for _ in $(seq 400); do
  [[ -n $(sql "SELECT 1 FROM observations WHERE run_id = '$run_id' AND kind = 'search' AND detail LIKE '%\"INBOX\"%' LIMIT 1") ]] && break
  sleep 0.05
done
python3 - "$WORK/held" <<'PY'
import os, smtplib, sys, time
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    raw = open(os.path.join(d, name), "rb").read()
    rcpt, data = raw.split(b"\n", 1)
    with smtplib.SMTP("127.0.0.1", 2525) as s:
        s.ehlo("holder.lab.test")
        code, _ = s.docmd("MAIL FROM:<probe@sender.lab.test>")
        assert code == 250, code
        code, _ = s.docmd("RCPT TO:<%s>" % rcpt.decode())
        assert code == 250, code
        code, _ = s.docmd("DATA")
        assert code == 354, code
        s.send(data + b".\r\n")
        code, msg = s.getreply()
        assert code == 250, (code, msg)
    time.sleep(1.5)
PY
wait "$POLL_PID" || { echo "FAIL: probe poll (c): $(cat "$WORK/idle.err")" >&2; exit 1; }

MAILDIR=$LAB/mail/inbox.lab.test/inbox
LAT=""
while IFS='|' read -r token decided verdict; do
  [[ $verdict == inbox ]] || { echo "FAIL: (c) verdict $verdict for $token" >&2; exit 1; }
  file=$(grep -l "^X-Probe-Id: $token" "$MAILDIR"/new/* "$MAILDIR"/cur/* 2>/dev/null | head -n1)
  [[ -n $file ]] || { echo "FAIL: (c) $token not in $MAILDIR" >&2; exit 1; }
  grep -q "msgid=<$token\.seedprobe@[^>]*>: stored mail into mailbox 'INBOX'" "$DOVECOT_LOG" ||
    { echo "FAIL: (c) no delivery line for $token in $DOVECOT_LOG" >&2; exit 1; }
  delivered=$(stat -c '%.9Z' "$file")
  LAT+="$(awk -v d="$delivered" -v v="$decided" 'BEGIN { print v / 1000 - d }') "
done < <(sql "SELECT token, decided_at, verdict FROM messages WHERE run_id = '$run_id' ORDER BY token")
med=$(tr ' ' '\n' <<<"$LAT" | grep . | median)
echo "(c) delivery -> verdict with IDLE (poll_interval 30s), $N messages: median $(fmt "$med")s" \
  "[$(for t in $LAT; do fmt "$t"; echo -n ' '; done | sed 's/ $//')] (goal < 1 s: $(awk -v m="$med" 'BEGIN { print (m < 1) ? "met" : "NOT met" }'))"
echo "    reconnects: $(sql "SELECT COUNT(*) FROM observations WHERE run_id = '$run_id' AND kind = 'reconnect'"), poll errors: $(sql "SELECT COUNT(*) FROM observations WHERE run_id = '$run_id' AND kind = 'poll_error'")"
echo "after: load $(cut -d' ' -f1-3 /proc/loadavg)"
