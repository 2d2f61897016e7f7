#!/usr/bin/env bash
# seedprobe test lab: a private Postfix + Dovecot (IMAP, LMTP, Sieve) on loopback
# that simulates mail providers, plus a DNS server for the lab's zone and a
# second Postfix standing for the sender's own MTA, for seedprobe's integration
# tests and demos.
#
# Usage: lab.sh install|start|stop|restart|restart-dovecot|status|foreground|reset-mail|fill-big [N]
#
#   install     install the Debian packages if a binary is missing, and unpack
#               Cyrus IMAP into /opt/seedprobe-cyrus if it is not there (root;
#               Cyrus takes a few seconds)
#   install-chromium, install-promtool  Debian's Chromium (HTML tests);
#               promtool unpacked into /opt/seedprobe-prometheus (metrics test)
#   start       render config, make CA/certs/passwords/DKIM keys if missing,
#               start the five daemons and wait until every port below answers,
#               then Cyrus (its own master; also started alone when only it is down)
#               (rspamd, the slowest, takes about 3 s; see start_rspamd).
#               A no-op when the lab is already healthy; concurrent calls are
#               serialised with flock.
#   stop        stop all daemons (idempotent)
#   restart     stop, then start
#   restart-dovecot  stop Dovecot alone (its IMAP clients get BYE, new
#               connections are refused meanwhile), start it again and wait
#               until the lab is healthy: for tests that IMAP clients survive
#               a server restart. Mail Postfix hands over meanwhile is
#               deferred and retried (queue_run_delay 5 s)
#   status      exit 0 when healthy, 1 otherwise
#   foreground  start, then stay in the foreground showing the logs until
#               TERM/INT (then stop) or until a daemon dies (exit 1)
#   reset-mail  delete every message in every lab mailbox and both Postfix
#               queues (provider and relay)
#   fill-big [N]  start the lab if needed, then fill the INBOX of every `big`
#               seed (big@big.lab.test) with N (default 100000) small unrelated
#               messages (varied subjects, senders, dates; seen, not \Recent).
#               That INBOX is an mdbox, not a Maildir (userdb field
#               `mail`): the messages are written as a scratch Maildir, then
#               `doveadm import`ed (~20 s in all for 100,000), then indexed
#               with Subject/From/Message-ID cached (a SEARCH SUBJECT over all
#               of it takes ~0.3 s; an uncached header or BODY takes ~2 s).
#               Does nothing when that INBOX already holds N or more; tops it
#               up to N otherwise. Never run by start (it takes 10 s or more);
#               tests and benchmarks call it. reset-mail empties that INBOX too.
#
# Ports (all on 127.0.0.1 only; nothing in the lab can reach another address):
#   5433  PostgreSQL 15 (Debian's), a private cluster in $LAB_DIR/postgres/data
#                  run as user postgres, for `--store postgres://` tests:
#                  superuser `probe`, password (scram-sha-256) in
#                  $LAB_DIR/secrets/postgres.pass; TCP on 127.0.0.1 only, its
#                  socket in $LAB_DIR/postgres/run; TLS offered with the lab
#                  certificate (plain TCP allowed too). Started by `start` with the
#                  rest (also alone when only it is down), stopped by `stop`;
#                  optional in `status` like Cyrus. Tests restart it with
#                  `pg_ctl -D $LAB_DIR/postgres/data restart` (as postgres).
#   2525  SMTP     the providers' MX (Postfix, config postfix/): STARTTLS offered,
#                  no AUTH, accepts mail for the lab domains only
#   1143  IMAP     Dovecot, plain + STARTTLS      } every seed's mailbox, login
#   1993  IMAPS    Dovecot, implicit TLS          } = address, password below
#   2587  SMTP     the sender's own MTA ("relay", Postfix instance 2, config
#                  relay/): submission, STARTTLS required, AUTH PLAIN/LOGIN only
#                  after STARTTLS, authenticated clients relay anywhere, all
#                  of it (and its DSNs) to 127.0.0.1:2525; envelope sender
#                  must be the login's own address
#   2465  SMTPS    the same relay with implicit TLS ("submissions")
#   5353  DNS      dnsmasq, UDP + TCP, answers lab.test only, forwards nothing:
#                  `dig @127.0.0.1 -p 5353 MX inbox.lab.test`
#   127.0.0.4:2525  SMTP  the judging MX (judge-mx.lab.test): the providers'
#                  Postfix again (same domains, queue, TLS), but every message
#                  passes rspamd as a milter; for the judged domains below
#   11342 milter   rspamd's proxy worker in milter mode (Postfix -> rspamd)
#   11343 HTTP     rspamd's scanner, to ask by hand why a message scored what it
#                  did: `rspamc -h 127.0.0.1:11343 --ip 127.0.0.3
#                  --from probe@sender.lab.test --rcpt dmarc@dmarc.lab.test symbols FILE`
#   11344 HTTP     rspamd's controller (not checked by status)
#   3143  IMAP     Cyrus IMAP 3.6 (optional part, see CYRUS below): plain,
#                  allowplaintext: no, so it advertises LOGINDISABLED before
#                  STARTTLS; one user `seed`, password in secrets/cyrus-seed.pass,
#                  folders Quarantine (\Junk, shown only on RETURN (SPECIAL-USE))
#                  and a decoy Spam
#   3993  IMAPS    the same Cyrus, implicit TLS with the lab's certificate
#   3024  LMTP     the same Cyrus's lmtpd (-a: no authentication), delivery;
#                  RCPT TO:<seed+Quarantine> files into Quarantine
#   9443  HTTPS    NOT the lab's: where Dovecot's oauth2 passdb asks whether a
#                  bearer token is valid (POST /introspect, RFC 7662). A test
#                  serves it (tests/oauth2_dovecot.rs); unserved, only
#                  XOAUTH2/OAUTHBEARER logins fail. Not checked by status
# TLS everywhere: server certificate for localhost, mx.lab.test, imap.lab.test
# and IP 127.0.0.1, signed by the lab CA $LAB_DIR/tls/ca.pem.
#
# Domains and users (seeds.list; password of LOCAL@... in secrets/LOCAL.pass):
#   inbox@inbox.lab.test        250, INBOX
#   junk@junk.lab.test          250, Sieve files it into "Filtered" (\Junk)
#   tagged@tagged.lab.test      250, INBOX, "[SPAM] " subject, X-Spam-* headers
#   defer@defer.lab.test        RCPT 450 4.7.1 (rate limit)
#   reject@reject.lab.test      RCPT 550 5.7.1 (block list)
#   discard@discard.lab.test    250, then silently dropped
#   iprep@iprep.lab.test        IP reputation: RCPT 450 4.7.1 when the client
#                               connects from 127.0.0.3, 250 + INBOX from
#                               127.0.0.1/127.0.0.2 (postfix/client_reputation.cidr)
#   multi@multimx.lab.test      250, INBOX; DNS: MX 10 dead-mx.lab.test
#                               (127.0.0.9, connection refused), MX 20 mx.lab.test
#   implicit@implicit.lab.test  250, INBOX; DNS: no MX, A 127.0.0.1 (implicit MX)
#   probe@sender.lab.test       250, INBOX; the sender: SASL login on the relay
#                               and its envelope sender, so the relay's DSNs
#                               (delayed after ~5-10 s, failed at once) land here
#   sievereject@sievereject.lab.test
#                               250 (Postfix and LMTP), then the global Sieve
#                               script's `reject`: Dovecot sends its own
#                               rejection notice (MDN, report-type=
#                               disposition-notification) to the envelope
#                               sender through 127.0.0.1:2525 (submission_host);
#                               a non-lab sender is refused there (554) and
#                               the notice dropped, never sent off-box
#   Provider-like spam folders: 250, then Sieve files EVERY message into the
#   account's spam folder, which is listed from the first login on. These
#   accounts have no "Filtered" folder, and no \Junk attribute unless noted:
#   yahoo@yahoolike.lab.test    "Bulk"
#   gmxlike@gmxlike.lab.test    "Spamverdacht"
#   gmaillike@gmaillike.lab.test
#                               "[Gmail]/Spam" WITH \Junk, below a parent
#                               "[Gmail]" listed as (\Noselect \HasChildren)
#   umlaut@umlaut.lab.test      "Unerwünscht", on the wire "Unerw&APw-nscht"
#   big@big.lab.test            250, INBOX; `lab.sh fill-big` puts 100,000
#                               unrelated messages there (not done by start)
#   Judged providers (rspamd, reach them at 127.0.0.4:2525; 127.0.0.1:2525
#   takes them unjudged): rspamd checks SPF, DKIM and DMARC of every message
#   against the lab's DNS and adds Authentication-Results (authserv-id
#   mx.lab.test), X-Spamd-Result, and "X-Spam: Yes" from score 6. It never
#   rejects or defers on score (config: rspamd/, rendered to $LAB_DIR/rspamd/).
#   judged@judged.lab.test      250, INBOX, whatever rspamd says
#   authjunk@authjunk.lab.test  250; Sieve files it into "Filtered" (\Junk) when
#                               rspamd's Authentication-Results say spf=fail,
#                               spf=softfail or dkim=fail; INBOX otherwise
#   dmarc@dmarc.lab.test        like judged, but a message failing DMARC whose
#                               From domain says p=reject is refused at end of
#                               data: 550 5.7.26 (postfix/milter_header_checks)
#   Provider styles (kind `refuse` in seeds.list: RCPT answered with a
#   provider's own reply, further lines from postfix/reject_footers; no DNS
#   record, reach them by mx: 127.0.0.1:2525):
#   gmail-rate@gmail-rate.lab.test      421-4.7.28 unusual rate (Gmail, 3 lines)
#   gmail-auth@gmail-auth.lab.test      550 5.7.26 unauthenticated (Gmail)
#   outlook-s3150@outlook-s3150.lab.test 550 5.7.1 ... block list (S3150)
#   yahoo-tss04@yahoo-tss04.lab.test    421 4.7.0 [TSS04] deferred
#   yahoo-ts03@yahoo-ts03.lab.test      421 4.7.1 [TS03] permanently deferred
#   gmx-case@gmx-case.lab.test          554 (4 lines), case URL c=r0201 last
#   tonline-nowl@tonline-nowl.lab.test  554 IP=... None/bad reputation (NOWL)
#   `start` on a running lab re-renders these tables and reloads Postfix
#   when they changed (refresh_postfix).
#   oauth@oauth.lab.test        250, INBOX; IMAP login also by OAuth 2.0 (SASL
#                               XOAUTH2 / OAUTHBEARER): Dovecot's oauth2 passdb
#                               POSTs the bearer token to the introspection
#                               endpoint https://127.0.0.1:9443/introspect,
#                               which only a test serves while it runs
#                               (tests/oauth2_dovecot.rs); the lab itself never
#                               listens on 9443. Password login works as usual
# DNS (dns/dnsmasq.conf): MX 10 mx.lab.test for every seed domain above unless
# noted; mx.lab.test A 127.0.0.1; dead-mx.lab.test A 127.0.0.9;
# nullmx.lab.test null MX "MX 0 ." (RFC 7505) + A 127.0.0.1, no user;
# judge-mx.lab.test A 127.0.0.4, the MX of judged, authjunk and dmarc.lab.test.
# The sender's domain sender.lab.test (the lab's envelope and From domain):
#   SPF    "v=spf1 ip4:127.0.0.1 ip4:127.0.0.2 -all" (127.0.0.3 fails)
#   DMARC  _dmarc.sender.lab.test "v=DMARC1; p=reject; adkim=r; aspf=r"
#   DKIM   lab._domainkey.sender.lab.test (RSA 2048) and ed._domainkey... (Ed25519),
#          public halves of the lab's own key pairs, made at the first start:
#          private keys (PEM, PKCS#8) $LAB_DIR/dkim/sender.lab.test/lab.key and
#          .../ed.key, for probe's DKIM signing in tests (sender.dkim, d=
#          sender.lab.test, s=lab or ed). TEST-ONLY keys, world-readable like the
#          lab's passwords; the lab's DNS is the only place that publishes them.
# Any other name under lab.test NXDOMAIN; any name outside lab.test REFUSED.
#
# Everything lives under ${SEEDPROBE_LAB_DIR:-/tmp/seedprobe-lab}: rendered
# config, queues, maildirs, logs, TLS files (tls/ca.pem), passwords
# (secrets/<localpart>.pass), pid files. Keep that path short: Dovecot's unix
# sockets live under it and are limited to 107 bytes.
#   postfix/   provider config   (postqueue -c $LAB_DIR/postfix ...), queue spool/
#   relay/     relay config      (postqueue -c $LAB_DIR/relay ...), queue relay-spool/
#   dns/       dnsmasq.conf
#   dkim/      sender.lab.test/{lab,ed}.key (private), .txt (the DNS record)
#   rspamd/    rspamd's LOCAL_CONFDIR (local.d/, override.d/, maps);
#              rspamd-db/ its DBDIR, run/rspamd/ its pid file
#   log/       postfix.log (provider, both listeners), relay.log, dovecot.log,
#              dnsmasq.log (every query), rspamd/rspamd.log, start.log
#
# Environment:
#   SEEDPROBE_LAB_DIR      state directory (default /tmp/seedprobe-lab)
#   SEEDPROBE_LAB_SEEDS    seed list (default seeds.list next to this script)
#   SEEDPROBE_LAB_TIMEOUT  seconds to wait for the ports on start (default 30)
#   SEEDPROBE_LAB_RSPAMD_TIMEOUT  the same when rspamd was (re)started (default 120:
#                          3-8 s here, but it loads maps and regular expressions,
#                          slow on a busy machine)
set -euo pipefail
shopt -s lastpipe # so `... | put FILE` records CHANGED in this shell

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_DIR=${SEEDPROBE_LAB_DIR:-/tmp/seedprobe-lab}
LAB_DIR=${LAB_DIR%/}
SEEDS=${SEEDPROBE_LAB_SEEDS:-$LAB_SRC/seeds.list}
START_TIMEOUT=${SEEDPROBE_LAB_TIMEOUT:-30}
RSPAMD_TIMEOUT=${SEEDPROBE_LAB_RSPAMD_TIMEOUT:-120}

# pflogsumm: the reference `probe maillog`'s counts are checked against (tests/lab/maillog.rs).
PACKAGES=(postfix dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve dnsmasq-base swaks openssl rspamd postgresql pflogsumm)
# One file per package, so a half-installed set is noticed.
REQUIRED_FILES=(
    /usr/sbin/postfix /usr/sbin/postqueue /usr/sbin/postsuper
    /usr/sbin/dovecot /usr/bin/doveadm /usr/lib/dovecot/imap /usr/lib/dovecot/lmtp
    /usr/bin/sievec /usr/sbin/dnsmasq /usr/bin/swaks /usr/bin/openssl
    /usr/bin/rspamd /usr/bin/rspamc /usr/sbin/pflogsumm
    /usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/pg_ctl /usr/bin/psql
)

PF_DIR=$LAB_DIR/postfix
PF_PID=$LAB_DIR/spool/pid/master.pid
DC_CONF=$LAB_DIR/dovecot/dovecot.conf
DC_PID=$LAB_DIR/run/dovecot/master.pid
RELAY_DIR=$LAB_DIR/relay
RELAY_PID=$LAB_DIR/relay-spool/pid/master.pid
DNS_CONF=$LAB_DIR/dns/dnsmasq.conf
DNS_PID=$LAB_DIR/run/dnsmasq.pid
LOG_DIR=$LAB_DIR/log
# rspamd: the stock /etc/rspamd/rspamd.conf, with the lab's LOCAL_CONFDIR (all
# the lab's settings), DBDIR, RUNDIR and LOGDIR (owned by _rspamd: its workers
# run as that user, its main process as root).
RS_DIR=$LAB_DIR/rspamd
RS_DB=$LAB_DIR/rspamd-db
RS_RUN=$LAB_DIR/run/rspamd
RS_LOG=$LOG_DIR/rspamd
RS_PID=$RS_RUN/rspamd.pid
# The milter's address (Postfix smtpd_milters) and the judging listener's.
RS_MILTER_PORT=11342
JUDGE_ADDR=127.0.0.4
DKIM_DIR=$LAB_DIR/dkim
# The sender's domain whose SPF, DKIM and DMARC the lab's DNS publishes.
DKIM_DOMAIN=sender.lab.test
LOCK=$LAB_DIR/.lock

# Cyrus IMAP 3.6, a second real IMAP server with its own ideas (special-use
# \Junk shown only on request, LOGINDISABLED before STARTTLS). As a package it
# conflicts with Dovecot, so `install` fetches its .debs (and the libraries a
# Postfix/Dovecot/rspamd machine lacks) with apt-get download and unpacks them
# with dpkg -x into CYRUS_PREFIX; nothing is registered with dpkg. Its
# binaries run from there with LD_LIBRARY_PATH, as user cyrus (master refuses
# root). Optional: the rest of the lab never needs it.
CYRUS_PREFIX=/opt/seedprobe-cyrus
CYRUS_DEBS=(cyrus-common cyrus-imapd sasl2-bin libical3 libpcre3 libxapian30
    libjansson4 libwrap0 libpq5 libxml2 libsqlite3-0 libldap-2.5-0)
CYRUS_LIBS=$CYRUS_PREFIX/usr/lib/x86_64-linux-gnu:$CYRUS_PREFIX/lib/x86_64-linux-gnu
CYRUS_BIN=$CYRUS_PREFIX/usr/lib/cyrus/bin
CYRUS_DIR=$LAB_DIR/cyrus
CYRUS_PID=$CYRUS_DIR/master.pid
CYRUS_IMAP_PORT=3143
CYRUS_IMAPS_PORT=3993
CYRUS_LMTP_PORT=3024
CYRUS_USER=seed
CYRUS_PASS=$LAB_DIR/secrets/cyrus-seed.pass

# PostgreSQL (for `--store postgres://`): Debian's 15, a private cluster.
PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR=$LAB_DIR/postgres
PG_DATA=$PG_DIR/data
PG_PORT=5433
PG_USER=probe
PG_PASS=$LAB_DIR/secrets/postgres.pass
# Junk mail goes to Quarantine (special-use \Junk); Spam is a decoy that only
# looks like the spam folder by name.
CYRUS_FOLDERS=('Quarantine (USE (\Junk))' 'Spam')

log() { printf 'lab.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() {
    [[ $(id -u) -eq 0 ]] || die "'$1' needs root (Postfix, Dovecot and dnsmasq start only as root); run it with sudo or as root"
}

check_lab_dir() {
    # Dovecot's deepest socket is about 36 bytes below LAB_DIR; sun_path is 108.
    [[ $LAB_DIR == /* ]] || die "SEEDPROBE_LAB_DIR must be an absolute path (got '$LAB_DIR')"
    [[ $LAB_DIR =~ ^/[A-Za-z0-9._/-]+$ ]] ||
        die "SEEDPROBE_LAB_DIR may only contain letters, digits, '.', '_', '-' and '/' (got '$LAB_DIR')"
    ((${#LAB_DIR} <= 64)) ||
        die "SEEDPROBE_LAB_DIR is ${#LAB_DIR} characters long; keep it at most 64 (unix socket paths are limited to 107 bytes)"
}

# --- install ---------------------------------------------------------------

missing_files() {
    local f
    for f in "${REQUIRED_FILES[@]}"; do
        [[ -e $f ]] || printf '%s\n' "$f"
    done
}

cmd_install() {
    local missing
    missing=$(missing_files)
    [[ -z $missing ]] && return 0
    need_root install
    log "installing ${PACKAGES[*]} (missing: $(echo $missing))"
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${PACKAGES[@]}"
    missing=$(missing_files)
    [[ -z $missing ]] || die "still missing after apt-get install: $(echo $missing)"
}

# install_cyrus: unpack Cyrus into CYRUS_PREFIX unless the stamp says this
# exact list of packages is there already (then it is a no-op; ~5 s otherwise).
install_cyrus() {
    local stamp=$CYRUS_PREFIX/.debs tmp missing deb
    [[ -x $CYRUS_BIN/master && -r $stamp && $(<"$stamp") == "${CYRUS_DEBS[*]}" ]] && return 0
    need_root install
    log "fetching Cyrus IMAP into $CYRUS_PREFIX (${CYRUS_DEBS[*]})"
    # The folders are made over IMAP by a few lines of python3 (cyrus_folders).
    command -v python3 >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3
    tmp=$(mktemp -d)
    # apt-get download writes into the current directory, a private one that
    # apt's _apt user could not write: fetch as root (no warning about it).
    download() { (cd "$tmp" && apt-get download -o APT::Sandbox::User=root "${CYRUS_DEBS[@]}" >/dev/null); }
    download || {
        # A stale package index names versions the mirror no longer has.
        DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
        download
    } || die "apt-get download ${CYRUS_DEBS[*]} failed"
    rm -rf "$CYRUS_PREFIX"
    install -d -m 0755 "$CYRUS_PREFIX"
    for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$CYRUS_PREFIX"; done
    rm -rf "$tmp"
    # Every library the servers need must resolve (from the prefix or the system).
    missing=$(for b in master imapd lmtpd ctl_cyrusdb; do
        LD_LIBRARY_PATH=$CYRUS_LIBS ldd "$CYRUS_BIN/$b"
    done | grep 'not found' | sort -u || true)
    [[ -z $missing ]] || die "Cyrus still lacks libraries: $(echo $missing)"
    id cyrus >/dev/null 2>&1 ||
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cyrus
    echo "${CYRUS_DEBS[*]}" >"$stamp"
}

# Debian's Chromium, for the test that renders the HTML report headless. Not part of
# `install`: the lab (and its container image) does not need a browser.
cmd_install_chromium() {
    command -v chromium >/dev/null && return 0
    need_root install-chromium
    log "installing chromium"
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
    command -v chromium >/dev/null || die "chromium still missing after apt-get install"
}

# Prometheus's promtool, for the test that parses `probe serve`'s /metrics with
# Prometheus's own parser (`promtool check metrics`). Unpacked from Debian's
# `prometheus` package into PROMTOOL_PREFIX, as Cyrus is, without installing the
# service (no daemon, no user, no unit): only its promtool binary is used.
PROMTOOL_PREFIX=/opt/seedprobe-prometheus
cmd_install_promtool() {
    local tmp deb
    [[ -x $PROMTOOL_PREFIX/usr/bin/promtool ]] && return 0
    need_root install-promtool
    log "fetching promtool into $PROMTOOL_PREFIX (Debian's prometheus package, unpacked)"
    tmp=$(mktemp -d)
    download() { (cd "$tmp" && apt-get download -o APT::Sandbox::User=root prometheus >/dev/null); }
    download || {
        DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
        download
    } || die "apt-get download prometheus failed"
    rm -rf "$PROMTOOL_PREFIX"
    install -d -m 0755 "$PROMTOOL_PREFIX"
    for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$PROMTOOL_PREFIX"; done
    rm -rf "$tmp"
    "$PROMTOOL_PREFIX/usr/bin/promtool" --version >/dev/null 2>&1 ||
        die "$PROMTOOL_PREFIX/usr/bin/promtool does not run"
}

# --- health ----------------------------------------------------------------

# pid_alive PIDFILE COMM: the pid file names a live (not zombie) process
# called COMM.
pid_alive() {
    local pid comm stat
    [[ -r $1 ]] || return 1
    # (rspamd writes its pid without a newline: read fails but sets pid)
    { read -r pid || [[ -n $pid ]]; } 2>/dev/null <"$1" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    read -r comm 2>/dev/null <"/proc/$pid/comm" || return 1
    [[ $comm == "$2" ]] || return 1
    read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}
postfix_running() { pid_alive "$PF_PID" master; }
dovecot_running() { pid_alive "$DC_PID" dovecot; }
relay_running() { pid_alive "$RELAY_PID" master; }
dnsmasq_running() { pid_alive "$DNS_PID" dnsmasq; }
rspamd_running() { pid_alive "$RS_PID" rspamd; }
all_running() { postfix_running && dovecot_running && relay_running && dnsmasq_running && rspamd_running; }

# banner PORT PREFIX REPLY [ADDR]: something on ADDR:PORT (default 127.0.0.1)
# greets with PREFIX; REPLY is sent to say goodbye.
banner() {
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$4/$1" || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        printf "%s\r\n" "$3" >&3 2>/dev/null || true
        [[ $line == "$2"* ]]' _ "$1" "$2" "$3" "${4:-127.0.0.1}" 2>/dev/null
}
# port_open PORT: 127.0.0.1:PORT accepts a TCP connection.
port_open() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

healthy() {
    # Pid files are root-only; an unprivileged caller (a test suite run by a
    # user, the probe container) judges by the ports alone.
    if [[ $EUID -eq 0 ]]; then
        all_running || return 1
    fi
    banner 2525 220 QUIT &&
        banner 1143 '* OK' 'a LOGOUT' &&
        port_open 1993 &&
        banner 2587 220 QUIT &&
        port_open 2465 &&
        port_open 5353 &&
        banner 2525 220 QUIT "$JUDGE_ADDR" &&
        port_open "$RS_MILTER_PORT"
}

describe() {
    local what
    if [[ $EUID -eq 0 ]]; then
        postfix_running && what="running (pid $(tr -d ' ' <"$PF_PID"))" || what="not running"
        printf 'postfix: %s\n' "$what"
        dovecot_running && what="running (pid $(<"$DC_PID"))" || what="not running"
        printf 'dovecot: %s\n' "$what"
        relay_running && what="running (pid $(tr -d ' ' <"$RELAY_PID"), postqueue -c $RELAY_DIR)" || what="not running"
        printf 'relay:   %s\n' "$what"
        dnsmasq_running && what="running (pid $(<"$DNS_PID"))" || what="not running"
        printf 'dnsmasq: %s\n' "$what"
        rspamd_running && what="running (pid $(<"$RS_PID"))" || what="not running"
        printf 'rspamd:  %s\n' "$what"
    fi
    banner 2525 220 QUIT && what=ok || what=closed
    printf 'smtp  127.0.0.1:2525 %s\n' "$what"
    banner 1143 '* OK' 'a LOGOUT' && what=ok || what=closed
    printf 'imap  127.0.0.1:1143 %s\n' "$what"
    port_open 1993 && what=ok || what=closed
    printf 'imaps 127.0.0.1:1993 %s\n' "$what"
    banner 2587 220 QUIT && what=ok || what=closed
    printf 'submission  127.0.0.1:2587 %s (relay, STARTTLS + AUTH)\n' "$what"
    port_open 2465 && what=ok || what=closed
    printf 'submissions 127.0.0.1:2465 %s (relay, implicit TLS + AUTH)\n' "$what"
    port_open 5353 && what=ok || what=closed
    printf 'dns   127.0.0.1:5353 %s (tcp + udp)\n' "$what"
    banner 2525 220 QUIT "$JUDGE_ADDR" && what=ok || what=closed
    printf 'judge %s:2525 %s (smtp through rspamd)\n' "$JUDGE_ADDR" "$what"
    port_open "$RS_MILTER_PORT" && what=ok || what=closed
    printf 'rspamd milter 127.0.0.1:%s %s\n' "$RS_MILTER_PORT" "$what"
    # (optional: not part of `status`'s verdict)
    cyrus_healthy && what=ok || what=down
    printf 'cyrus imap 127.0.0.1:%s, imaps %s, lmtp %s %s (optional)\n' \
        "$CYRUS_IMAP_PORT" "$CYRUS_IMAPS_PORT" "$CYRUS_LMTP_PORT" "$what"
    pg_answers && what=ok || what=down
    printf 'postgresql 127.0.0.1:%s %s (optional; user %s, password in %s)\n' \
        "$PG_PORT" "$what" "$PG_USER" "$PG_PASS"
}

show_logs() {
    local f
    for f in "$LOG_DIR"/start.log "$LOG_DIR"/postfix.log "$LOG_DIR"/dovecot.log \
        "$LOG_DIR"/relay.log "$LOG_DIR"/dnsmasq.log "$RS_LOG"/rspamd.log; do
        [[ -s $f ]] || continue
        printf '==> %s (last 30 lines) <==\n' "$f" >&2
        tail -n 30 "$f" >&2
    done
}

# --- rendering ---------------------------------------------------------------

# put DEST MODE: write stdin to DEST, replacing it only if the content changed
# (changed files are remembered in CHANGED, to reload a running daemon).
CHANGED=()
put() {
    local dest=$1 mode=$2 tmp
    tmp=$(mktemp "$dest.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [[ -e $dest ]] && cmp -s "$tmp" "$dest"; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$dest"
        CHANGED+=("$dest")
    fi
}
# changed PREFIX...: render changed a file under one of the PREFIXes.
changed() {
    local f p
    for f in "${CHANGED[@]}"; do
        for p in "$@"; do [[ $f == "$p"* ]] && return 0; done
    done
    return 1
}

template() {
    sed "s|@LAB_DIR@|$LAB_DIR|g" "$LAB_SRC/$1"
}

# Reads $SEEDS into SEED_ADDRS / SEED_KINDS.
read_seeds() {
    local addr kind rest n=0
    SEED_ADDRS=() SEED_KINDS=() SEED_REPLIES=()
    [[ -r $SEEDS ]] || die "seed list $SEEDS not found"
    while read -r addr kind rest || [[ -n $addr ]]; do
        n=$((n + 1))
        [[ -z $addr || $addr == \#* ]] && continue
        [[ $addr =~ ^[a-z0-9._-]+@[a-z0-9.-]+$ ]] || die "$SEEDS:$n: bad address '$addr' (lower-case local@domain)"
        case $kind in
        inbox | junk | tagged | defer | reject | discard | iprep | sender | sievereject) ;;
        yahoo | gmx | gmail | umlaut | big | oauth | judged | authjunk | dmarc) ;;
        refuse)
            # The rest of the line is the whole reply: "CODE X.Y.Z text" (a provider's words).
            [[ $rest =~ ^[45][0-9][0-9]\ [45]\.[0-9]{1,3}\.[0-9]{1,3}\ [^[:cntrl:]]+$ ]] ||
                die "$SEEDS:$n: kind refuse needs a reply 'CODE X.Y.Z text' after it"
            ;;
        *) die "$SEEDS:$n: unknown kind '$kind' (inbox junk tagged defer reject discard iprep sender sievereject yahoo gmx gmail umlaut big oauth judged authjunk dmarc refuse)" ;;
        esac
        SEED_ADDRS+=("$addr") SEED_KINDS+=("$kind") SEED_REPLIES+=("$rest")
    done <"$SEEDS"
    ((${#SEED_ADDRS[@]} > 0)) || die "$SEEDS lists no seeds"
}

random_password() {
    local raw
    raw=$(LC_ALL=C tr -dc 'A-Za-z0-9' < <(head -c 1024 /dev/urandom))
    ((${#raw} >= 20)) || die "could not read enough randomness from /dev/urandom"
    printf 'lab-%s' "${raw:0:20}"
}

# Provider-like kinds: the spam folder that providers.sieve files into (keep
# both in step), and the per-user settings that make it exist from the first
# login with \Junk for gmail only, as userdb extra fields in the passwd-file
# (see dovecot.conf, `mailbox ProviderSpam`).
provider_spam_folder() {
    case $1 in
    yahoo) echo Bulk ;;
    gmx) echo Spamverdacht ;;
    gmail) echo '[Gmail]/Spam' ;;
    umlaut) echo 'Unerwünscht' ;;
    esac
}
# big_mail_dir ADDR: the mdbox root of a `big` seed (mail/DOMAIN/LOCAL, where
# the other seeds keep their Maildir, so reset-mail finds it the same way).
big_mail_dir() {
    printf '%s/mail/%s/%s' "$LAB_DIR" "${1#*@}" "${1%@*}"
}

# drop_old_big_maildirs: a `big` seed's mail was a Maildir before it became an
# mdbox; delete such a leftover (Dovecot not running) so that the mdbox starts
# empty and fill-big fills it again.
drop_old_big_maildirs() {
    local i dir
    for i in "${!SEED_ADDRS[@]}"; do
        [[ ${SEED_KINDS[$i]} == big ]] || continue
        dir=$(big_mail_dir "${SEED_ADDRS[$i]}")
        if [[ -d $dir/cur ]]; then
            rm -rf "${dir:?}"
            log "deleted the old Maildir of ${SEED_ADDRS[$i]} (now mdbox; refill with fill-big)"
        fi
    done
}

userdb_fields() {
    local kind=$1 addr=$2 folder mb=userdb_namespace/inbox/mailbox
    # The 100,000-message seed is stored as mdbox (index-based, like real
    # providers' stores), not Maildir: opening a huge Maildir after a delivery
    # re-reads dovecot-uidlist and lists cur/ (~0.35 s at 100,000 messages).
    if [[ $kind == big ]]; then
        printf '%s ' "userdb_mail=mdbox:$(big_mail_dir "$addr")"
    fi
    folder=$(provider_spam_folder "$kind")
    [[ -n $folder ]] || return 0
    # Filtered's settings (\Junk, auto = subscribe) go to a name that cannot
    # exist; ProviderSpam becomes the spam folder, created at first login.
    printf '%s ' "$mb/Filtered/name=Filtered.disabled" "$mb/Filtered/auto=no" \
        "$mb/ProviderSpam/name=$folder" "$mb/ProviderSpam/auto=subscribe"
    if [[ $kind == gmail ]]; then
        printf '%s ' "$mb/ProviderSpam/special_use=\\Junk"
    fi
}

render_secrets() {
    local i addr pass file fields users=""
    # World-readable on purpose: loopback-only lab passwords, read by tests
    # that may run as another user (e.g. the probe container).
    install -d -m 0755 "$LAB_DIR/secrets"
    for i in "${!SEED_ADDRS[@]}"; do
        addr=${SEED_ADDRS[$i]}
        file=$LAB_DIR/secrets/${addr%@*}.pass
        [[ -s $file ]] || random_password | put "$file" 0644
        pass=$(<"$file")
        [[ $pass =~ ^[A-Za-z0-9._-]+$ ]] || die "$file: password may only contain letters, digits, '.', '_', '-'"
        # user:password:uid:gid:gecos:home:shell:extra fields (passdb and userdb)
        fields=$(userdb_fields "${SEED_KINDS[$i]}" "$addr")
        users+="$addr:{PLAIN}$pass::::::${fields% }"$'\n'
    done
    printf '%s' "$users" | put "$LAB_DIR/dovecot/users" 0640
    chgrp dovecot "$LAB_DIR/dovecot/users"
}

render_postfix_tables() {
    local i addr kind
    {
        echo "# rendered by lab.sh from $SEEDS"
        for addr in "${SEED_ADDRS[@]}"; do echo "${addr#*@} lab"; done | sort -u
    } | put "$PF_DIR/virtual_domains" 0644
    {
        echo "# rendered by lab.sh from $SEEDS"
        for i in "${!SEED_ADDRS[@]}"; do
            case ${SEED_KINDS[$i]} in
            inbox | junk | tagged | discard | iprep | sender | sievereject | yahoo | gmx | gmail | umlaut | big | oauth | judged | authjunk | dmarc)
                echo "${SEED_ADDRS[$i]} lab"
                ;;
            esac
        done
    } | put "$PF_DIR/virtual_mailboxes" 0644
    {
        echo "# rendered by lab.sh from $SEEDS"
        for i in "${!SEED_ADDRS[@]}"; do
            addr=${SEED_ADDRS[$i]} kind=${SEED_KINDS[$i]}
            case $kind in
            defer) echo "$addr 450 4.7.1 Temporarily deferred: seedprobe lab simulates a rate limit, try again later" ;;
            reject) echo "$addr 550 5.7.1 Message refused: seedprobe lab simulates a block list" ;;
            iprep) echo "$addr iprep_reputation" ;;
            refuse) echo "$addr ${SEED_REPLIES[$i]}" ;;
            esac
        done
    } | put "$PF_DIR/recipient_access" 0644
    {
        echo "# rendered by lab.sh from $SEEDS"
        for i in "${!SEED_ADDRS[@]}"; do
            # (if, not &&: a false test as the last command would fail the pipeline)
            if [[ ${SEED_KINDS[$i]} == discard ]]; then
                echo "${SEED_ADDRS[$i]} discard:seedprobe lab discards this recipient"
            fi
        done
    } | put "$PF_DIR/transport" 0644
    template postfix/client_reputation.cidr | put "$PF_DIR/client_reputation.cidr" 0644
    template postfix/milter_header_checks | put "$PF_DIR/milter_header_checks" 0644
    template postfix/reject_footers | put "$PF_DIR/reject_footers" 0644
}

# The relay instance: config from relay/, plus who may send as whom.
render_relay() {
    local addr
    template relay/main.cf | put "$RELAY_DIR/main.cf" 0644
    template relay/master.cf | put "$RELAY_DIR/master.cf" 0644
    {
        echo "# rendered by lab.sh from $SEEDS: SASL login -> envelope senders it may use"
        for addr in "${SEED_ADDRS[@]}"; do echo "$addr $addr"; done
    } | put "$RELAY_DIR/sender_logins" 0644
}

# dnsmasq: the template's records, the DKIM keys' TXT records (render_dkim
# first), plus "MX 10 mx.lab.test" for every seed domain the template does not
# route itself (a TXT record, such as sender.lab.test's SPF, routes nothing).
render_dns() {
    local domain sel
    {
        template dns/dnsmasq.conf
        echo
        echo "# --- rendered by lab.sh: the lab's DKIM public keys ($DKIM_DIR/$DKIM_DOMAIN/*.txt) ---"
        for sel in lab ed; do
            printf 'txt-record=%s._domainkey.%s,%s\n' "$sel" "$DKIM_DOMAIN" "$(dkim_txt_strings "$DKIM_DIR/$DKIM_DOMAIN/$sel.txt")"
        done
        echo
        echo "# --- rendered by lab.sh from $SEEDS: MX 10 mx.lab.test for the other seed domains ---"
        # (not the `refuse` seeds: tests reach them at 127.0.0.1:2525 by their mx: override)
        for domain in $(for i in "${!SEED_ADDRS[@]}"; do
            if [[ ${SEED_KINDS[$i]} != refuse ]]; then echo "${SEED_ADDRS[$i]#*@}"; fi
        done | sort -u); do
            grep -Eq "^(mx-host|host-record|dns-rr|cname|srv-host)=${domain//./\\.}," "$LAB_SRC/dns/dnsmasq.conf" &&
                continue
            echo "mx-host=$domain,mx.lab.test,10"
        done
    } | put "$DNS_CONF" 0644
}

# dkim_txt_strings FILE: the record in FILE as dnsmasq txt-record strings:
# quoted, at most 255 characters each (a TXT string's limit; a verifier joins
# them, RFC 6376 3.6.2.2).
dkim_txt_strings() {
    local rec out="" sep=""
    rec=$(<"$1")
    while [[ -n $rec ]]; do
        out+="$sep\"${rec:0:250}\""
        rec=${rec:250}
        sep=,
    done
    printf '%s' "$out"
}

# The lab's DKIM key pairs for $DKIM_DOMAIN, made once and kept (a new key
# would invalidate signatures in mail already delivered): selector "lab" RSA
# 2048, selector "ed" Ed25519 (RFC 8463). KEY.key is the private key (PEM,
# PKCS#8), KEY.txt the DNS record that render_dns publishes. TEST-ONLY keys:
# world-readable, like the lab's passwords, for tests that sign as
# $DKIM_DOMAIN under any user.
render_dkim() {
    local dir=$DKIM_DIR/$DKIM_DOMAIN sel tmp pub
    install -d -m 0755 "$DKIM_DIR" "$dir"
    for sel in lab ed; do
        [[ -s $dir/$sel.key && -s $dir/$sel.txt ]] && continue
        log "creating the lab's DKIM key $dir/$sel.key (selector $sel, d=$DKIM_DOMAIN)"
        tmp=$(mktemp "$dir/$sel.key.XXXXXX")
        if [[ $sel == lab ]]; then
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp" 2>/dev/null ||
                die "openssl could not make an RSA key"
            # p= is the DER SubjectPublicKeyInfo (RFC 6376 3.6.1).
            pub=$(openssl pkey -in "$tmp" -pubout -outform DER | base64 -w0)
            printf 'v=DKIM1; k=rsa; p=%s\n' "$pub" >"$tmp.txt"
        else
            openssl genpkey -algorithm ed25519 -out "$tmp" 2>/dev/null ||
                die "openssl could not make an Ed25519 key"
            # p= is the bare 32-byte public key (RFC 8463 4.2): the end of the
            # DER SubjectPublicKeyInfo.
            pub=$(openssl pkey -in "$tmp" -pubout -outform DER | tail -c 32 | base64 -w0)
            printf 'v=DKIM1; k=ed25519; p=%s\n' "$pub" >"$tmp.txt"
        fi
        chmod 0644 "$tmp" "$tmp.txt"
        # Key first, record last: a half-finished pair is made again next time.
        mv -f "$tmp" "$dir/$sel.key"
        mv -f "$tmp.txt" "$dir/$sel.txt"
    done
}

# rspamd's LOCAL_CONFDIR: the lab's settings (rspamd/), plus the map of the
# recipient domains that enforce DMARC (kind dmarc), for multimap.conf.
render_rspamd() {
    local f rel i
    install -d -m 0755 "$RS_DIR" "$RS_DIR/local.d" "$RS_DIR/override.d"
    install -d -m 0750 -o _rspamd -g _rspamd "$RS_DB" "$RS_RUN" "$RS_LOG"
    for f in "$LAB_SRC"/rspamd/local.d/* "$LAB_SRC"/rspamd/override.d/* "$LAB_SRC"/rspamd/tld.dat; do
        rel=${f#"$LAB_SRC"/}
        template "$rel" | put "$LAB_DIR/$rel" 0644
    done
    {
        echo "# rendered by lab.sh from $SEEDS: recipient domains that enforce DMARC (kind dmarc)"
        for i in "${!SEED_ADDRS[@]}"; do
            if [[ ${SEED_KINDS[$i]} == dmarc ]]; then echo "${SEED_ADDRS[$i]#*@}"; fi
        done | sort -u
    } | put "$RS_DIR/dmarc_enforcing.map" 0644
}

render_tls() {
    local tls=$LAB_DIR/tls tmp
    install -d -m 0755 "$tls"
    [[ -s $tls/dh.pem ]] ||
        openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 2>/dev/null | put "$tls/dh.pem" 0644
    [[ -s $tls/ca.pem && -s $tls/ca.key && -s $tls/server.pem && -s $tls/server.key ]] && return 0
    log "creating the lab CA and server certificate in $tls"
    tmp=$(mktemp -d "$tls/new.XXXXXX")
    cat >"$tmp/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
O = seedprobe lab
CN = seedprobe lab CA
[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, DNS:mx.lab.test, DNS:imap.lab.test, IP:127.0.0.1
EOF
    if [[ -s $tls/ca.pem && -s $tls/ca.key ]]; then
        cp "$tls/ca.pem" "$tls/ca.key" "$tmp/"
    else
        openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
            -config "$tmp/openssl.cnf" -extensions ca_ext \
            -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
    fi
    openssl req -new -newkey rsa:2048 -nodes -sha256 -config "$tmp/openssl.cnf" \
        -subj '/O=seedprobe lab/CN=mx.lab.test' \
        -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in "$tmp/server.csr" \
        -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -set_serial "0x$(openssl rand -hex 12)" \
        -extfile "$tmp/openssl.cnf" -extensions server_ext -out "$tmp/server.pem" 2>/dev/null
    chmod 0600 "$tmp/ca.key" "$tmp/server.key"
    chmod 0644 "$tmp/ca.pem" "$tmp/server.pem"
    # Key before certificate, CA last: a half-finished run is redone next time.
    mv -f "$tmp/server.key" "$tls/server.key"
    mv -f "$tmp/server.pem" "$tls/server.pem"
    mv -f "$tmp/ca.key" "$tls/ca.key"
    mv -f "$tmp/ca.pem" "$tls/ca.pem"
    CHANGED+=("$tls/server.pem")
    rm -rf "$tmp"
}

render() {
    read_seeds
    install -d -m 0755 "$PF_DIR" "$LAB_DIR/spool" "$LAB_DIR/dovecot" "$LAB_DIR/run" \
        "$LAB_DIR/dovecot-state" "$LOG_DIR" "$LAB_DIR/sieve" \
        "$RELAY_DIR" "$LAB_DIR/relay-spool" "$LAB_DIR/dns"
    install -d -m 0750 -o mail -g mail "$LAB_DIR/mail" "$LAB_DIR/home"
    chown mail:mail "$LAB_DIR/sieve"

    template postfix/main.cf | put "$PF_DIR/main.cf" 0644
    template postfix/master.cf | put "$PF_DIR/master.cf" 0644
    render_postfix_tables
    render_relay
    render_dkim
    render_dns
    render_rspamd
    template dovecot/dovecot.conf | put "$DC_CONF" 0644
    template dovecot/oauth2.conf.ext | put "$LAB_DIR/dovecot/oauth2.conf.ext" 0644
    template sieve/providers.sieve | put "$LAB_DIR/sieve/providers.sieve" 0644
    render_tls
    render_secrets
    drop_old_big_maildirs

    # Precompile the global script (Dovecot could not write the binary
    # next to it otherwise); recompiles only when the script changed.
    if [[ ! $LAB_DIR/sieve/providers.svbin -nt $LAB_DIR/sieve/providers.sieve ]]; then
        sievec -c "$DC_CONF" "$LAB_DIR/sieve/providers.sieve" ||
            die "sievec could not compile $LAB_DIR/sieve/providers.sieve"
        chown mail:mail "$LAB_DIR/sieve/providers.svbin"
    fi
}

# --- start / stop ------------------------------------------------------------

# lock: serialise start/stop/reset-mail between processes (fd 9).
lock() {
    install -d -m 0755 "$LAB_DIR"
    exec 9>"$LOCK"
    # (long enough for a concurrent start that waits for rspamd)
    flock -w $((RSPAMD_TIMEOUT + 60)) 9 || die "another lab.sh held $LOCK for $((RSPAMD_TIMEOUT + 60)) s"
}
unlock() { exec 9>&-; }

# start_dnsmasq: run dnsmasq as a daemon on 127.0.0.1:5353 (it drops
# privileges to nobody after binding; pid file and log under LAB_DIR).
start_dnsmasq() {
    rm -f "$DNS_PID"
    # The flags repeat the config's safety settings: never read resolv.conf or
    # /etc/hosts, never forward, never listen beyond 127.0.0.1.
    dnsmasq --conf-file="$DNS_CONF" --no-resolv --no-hosts --no-poll --bind-interfaces \
        </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- ||
        { show_logs; die "dnsmasq --conf-file=$DNS_CONF failed to start"; }
}

# start_rspamd: run rspamd as a daemon (it forks; the main process keeps
# root, its workers run as _rspamd) with the stock config and the lab's
# directories. It binds its ports only after loading its configuration and
# maps (3 s here with the lab's short public suffix list, rspamd/tld.dat; the
# stock list made it 20 s to 2 minutes); start_daemons polls the milter port.
start_rspamd() {
    rm -f "$RS_PID"
    rspamd -u _rspamd -g _rspamd -c /etc/rspamd/rspamd.conf \
        --var=LOCAL_CONFDIR="$RS_DIR" --var=DBDIR="$RS_DB" \
        --var=RUNDIR="$RS_RUN" --var=LOGDIR="$RS_LOG" \
        </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- ||
        { show_logs; die "rspamd failed to start (see $RS_LOG/rspamd.log)"; }
}

start_daemons() {
    local deadline timeout=$START_TIMEOUT
    # A daemon that survived (another one had died) gets the new config.
    if postfix_running && changed "$PF_DIR/" "$LAB_DIR/tls/"; then
        postfix -c "$PF_DIR" reload </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- || true
    fi
    if relay_running && changed "$RELAY_DIR/" "$LAB_DIR/tls/"; then
        postfix -c "$RELAY_DIR" reload </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- || true
    fi
    if dovecot_running && changed "$DC_CONF" "$LAB_DIR/dovecot/oauth2.conf.ext" "$LAB_DIR/tls/"; then
        kill -HUP "$(<"$DC_PID")" 2>/dev/null || true
    fi
    # dnsmasq re-reads only hosts files on HUP: restart it for a new config.
    if dnsmasq_running && changed "$DNS_CONF"; then
        kill -TERM "$(<"$DNS_PID")" 2>/dev/null || true
        wait_gone "$DNS_PID" dnsmasq dnsmasq
    fi
    if ! dnsmasq_running; then
        start_dnsmasq
    fi
    # rspamd re-reads its configuration on HUP (workers restart; the judging
    # listener answers 451 meanwhile). Started before the others: its start-up
    # is by far the slowest and runs while they start.
    if rspamd_running && changed "$RS_DIR/"; then
        kill -HUP "$(<"$RS_PID")" 2>/dev/null || true
    fi
    if ! rspamd_running; then
        start_rspamd
        timeout=$RSPAMD_TIMEOUT
    fi
    if ! postfix_running; then
        # fd 9 (the lock) must not leak into the daemons.
        postfix -c "$PF_DIR" start </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- ||
            { show_logs; die "postfix -c $PF_DIR start failed"; }
    fi
    if ! dovecot_running; then
        rm -f "$DC_PID"
        # Dovecot keeps the caller's stdio open: never hand it a pipe.
        dovecot -c "$DC_CONF" </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- ||
            { show_logs; die "dovecot -c $DC_CONF failed to start"; }
    fi
    if ! relay_running; then
        postfix -c "$RELAY_DIR" start </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- ||
            { show_logs; die "postfix -c $RELAY_DIR start failed"; }
    fi
    deadline=$((SECONDS + timeout))
    until healthy; do
        if ((SECONDS >= deadline)); then
            describe >&2
            show_logs
            die "the lab did not become healthy within ${timeout}s"
        fi
        sleep 0.1
    done
}

# Create the provider-like seeds' spam folders now (opening an auto =
# subscribe folder creates it), not at their first login: Dovecot lists the
# parent "[Gmail]" under LIST "" "*" only once "[Gmail]/Spam" exists on disk,
# and the listing should not change with the first delivery. Idempotent.
create_provider_folders() {
    local i folder
    for i in "${!SEED_ADDRS[@]}"; do
        folder=$(provider_spam_folder "${SEED_KINDS[$i]}")
        [[ -n $folder ]] || continue
        doveadm -c "$DC_CONF" mailbox status -u "${SEED_ADDRS[$i]}" messages "$folder" \
            </dev/null >/dev/null 2>>"$LOG_DIR/start.log" 9>&- ||
            log "warning: could not create '$folder' for ${SEED_ADDRS[$i]} (see $LOG_DIR/start.log)"
    done
}

# refresh_dns: a lab that is already running still gets DNS records added to
# dns/dnsmasq.conf since it started (a test of new records must not need a
# lab restart): only dnsmasq is re-rendered, and restarted when its file
# changed; the other daemons, and the tests using them, are left alone.
refresh_dns() {
    [[ $EUID -eq 0 && -e $DNS_CONF ]] || return 0
    lock
    CHANGED=()
    read_seeds
    render_dns
    if changed "$DNS_CONF" && dnsmasq_running; then
        kill -TERM "$(<"$DNS_PID")" 2>/dev/null || true
        wait_gone "$DNS_PID" dnsmasq dnsmasq
        start_dnsmasq
    fi
    unlock
}

# refresh_postfix: a lab that is already running still gets the provider
# instance's tables and main.cf as they are now (a new `refuse` seed, a new
# reject footer) and the new seeds' IMAP logins: re-rendered, and Postfix
# reloaded only when a file changed. Dovecot reads its passwd-file at each
# login, so it needs nothing.
refresh_postfix() {
    [[ $EUID -eq 0 && -e $PF_DIR/main.cf ]] || return 0
    lock
    CHANGED=()
    read_seeds
    template postfix/main.cf | put "$PF_DIR/main.cf" 0644
    render_postfix_tables
    render_secrets
    if changed "$PF_DIR/" && postfix_running; then
        postfix -c "$PF_DIR" reload </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- || true
    fi
    unlock
}

cmd_start() {
    check_lab_dir
    if healthy; then
        refresh_dns
        refresh_postfix
        # PostgreSQL (re)started when down, its settings applied (a reload) when
        # this lab.sh changed them: cheap, so done on every start as root.
        if [[ $EUID -eq 0 ]]; then
            lock
            start_postgres
            unlock
        fi
        # Cyrus alone may be missing (a lab started by an older lab.sh).
        cyrus_healthy && return 0
        need_root start
        lock
        start_cyrus
        unlock
        return 0
    fi
    need_root start
    lock
    if ! healthy; then
        cmd_install
        render
        start_daemons
        create_provider_folders
        start_cyrus
        start_postgres
        log "lab running: smtp 127.0.0.1:2525, imap 127.0.0.1:1143, imaps 127.0.0.1:1993," \
            "relay submission 127.0.0.1:2587 / submissions 127.0.0.1:2465, dns 127.0.0.1:5353," \
            "judging smtp $JUDGE_ADDR:2525 (rspamd milter 127.0.0.1:$RS_MILTER_PORT), state $LAB_DIR"
    fi
    unlock
}

# --- Cyrus (optional) ----------------------------------------------------------

cyrus_running() { pid_alive "$CYRUS_PID" master; }
cyrus_answers() {
    banner "$CYRUS_IMAP_PORT" '* OK' 'a LOGOUT' && port_open "$CYRUS_IMAPS_PORT" &&
        port_open "$CYRUS_LMTP_PORT"
}
# (ready: its folders were made, which the ports alone do not tell)
cyrus_healthy() { [[ -e $CYRUS_DIR/ready ]] && cyrus_answers; }

# render_cyrus: config, TLS copies (the lab's key is root-only; cyrus needs its
# own readable copy), the user's password in sasldb. Idempotent.
render_cyrus() {
    local c=$CYRUS_DIR
    install -d -m 0755 -o cyrus -g mail "$c"
    install -d -m 0750 -o cyrus -g mail "$c/config" "$c/spool" "$c/socket" "$c/tls"
    install -m 0640 -o cyrus -g mail "$LAB_DIR/tls/server.pem" "$c/tls/server.pem"
    install -m 0600 -o cyrus -g mail "$LAB_DIR/tls/server.key" "$c/tls/server.key"
    install -m 0644 "$LAB_DIR/tls/ca.pem" "$c/tls/ca.pem"
    # altnamespace/unixhierarchysep (3.x defaults, spelled out): the user sees
    # INBOX, Quarantine, Spam at the top level, separator "/".
    # specialusealways: no: a plain LIST leaves \Junk out; only LIST ...
    # RETURN (SPECIAL-USE) shows it (RFC 6154 allows either).
    cat <<EOF | put "$c/imapd.conf" 0644
# rendered by lab.sh
configdirectory: $c/config
defaultpartition: default
partition-default: $c/spool
serverpath: $CYRUS_BIN
servername: localhost
admins: cyrus
altnamespace: yes
unixhierarchysep: yes
specialusealways: no
allowplaintext: no
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $c/sasldb2
sasl_mech_list: PLAIN LOGIN
lmtpsocket: $c/socket/lmtp
idlesocket: $c/socket/idle
notifysocket: $c/socket/notify
tls_server_cert: $c/tls/server.pem
tls_server_key: $c/tls/server.key
tls_client_ca_file: $c/tls/ca.pem
lmtp_downcase_rcpt: yes
autocreate_quota: 0
EOF
    # Absolute commands, each told its config: master passes neither on
    # (serverpath is not used for START, -C is not handed to its children).
    cat <<EOF | put "$c/cyrus.conf" 0644
# rendered by lab.sh
START {
    recover cmd="$CYRUS_BIN/ctl_cyrusdb -C $c/imapd.conf -r"
}
SERVICES {
    imap  cmd="$CYRUS_BIN/imapd -C $c/imapd.conf" listen="127.0.0.1:$CYRUS_IMAP_PORT" prefork=0
    imaps cmd="$CYRUS_BIN/imapd -C $c/imapd.conf -s" listen="127.0.0.1:$CYRUS_IMAPS_PORT" prefork=0
    lmtp  cmd="$CYRUS_BIN/lmtpd -C $c/imapd.conf -a" listen="127.0.0.1:$CYRUS_LMTP_PORT" prefork=0
}
EVENTS {
    checkpoint cmd="$CYRUS_BIN/ctl_cyrusdb -C $c/imapd.conf -c" period=30
}
EOF
    # Beside the Dovecot seeds' passwords (world-readable, see render_secrets).
    install -d -m 0755 "$LAB_DIR/secrets"
    [[ -s $CYRUS_PASS ]] || random_password | put "$CYRUS_PASS" 0644
    # saslpasswd2 -p reads the password from stdin; -u localhost = servername.
    tr -d '\n' <"$CYRUS_PASS" |
        LD_LIBRARY_PATH=$CYRUS_LIBS "$CYRUS_PREFIX/usr/sbin/saslpasswd2" -p -c \
            -f "$c/sasldb2" -u localhost "$CYRUS_USER"
    # The admin "cyrus" creates the user's INBOX (see cyrus_folders).
    [[ -s $c/cyrus.password ]] || random_password | put "$c/cyrus.password" 0600
    tr -d '\n' <"$c/cyrus.password" |
        LD_LIBRARY_PATH=$CYRUS_LIBS "$CYRUS_PREFIX/usr/sbin/saslpasswd2" -p -c \
            -f "$c/sasldb2" -u localhost cyrus
    chown cyrus:mail "$c/sasldb2"
    chmod 0640 "$c/sasldb2"
}

# cyrus_folders: the user's INBOX (created by the admin), then Quarantine
# (\Junk) and the decoy Spam (created by the user, so \Junk is theirs), over
# implicit TLS. Idempotent: an existing folder is left as it is.
cyrus_folders() {
    CYRUS_PORT=$CYRUS_IMAPS_PORT CA=$CYRUS_DIR/tls/ca.pem \
        ADMIN_PW=$(tr -d '\n' <"$CYRUS_DIR/cyrus.password") \
        USER_PW=$(tr -d '\n' <"$CYRUS_PASS") USER_NAME=$CYRUS_USER \
        python3 - "${CYRUS_FOLDERS[@]}" <<'EOF' 9>&-
import imaplib, os, ssl, sys
ctx = ssl.create_default_context(cafile=os.environ["CA"])
def session(user, pw):
    s = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["CYRUS_PORT"]), ssl_context=ctx, timeout=10)
    s.login(user, pw)
    return s
def create(s, args):
    typ, data = s._simple_command("CREATE", args)
    # (Cyrus says "NO Mailbox already exists", without [ALREADYEXISTS])
    if typ != "OK" and b"already exists" not in b" ".join(data).lower():
        sys.exit("CREATE %s: %s %r" % (args, typ, data))
admin = session("cyrus", os.environ["ADMIN_PW"])
create(admin, "user/" + os.environ["USER_NAME"])
admin.logout()
user = session(os.environ["USER_NAME"], os.environ["USER_PW"])
# Only the missing ones: CREATE of an existing \Junk folder is a USEATTR conflict.
_, lines = user.list()
have = {line.decode().rsplit(" ", 1)[-1].strip('"') for line in lines if line}
for f in sys.argv[1:]:
    if f.split(" ", 1)[0] not in have:
        create(user, f)
# lmtpd delivers to seed+Quarantine only when anyone may post there: how
# tests put a message straight into the \Junk folder.
typ, data = user._simple_command("SETACL", "Quarantine anyone p")
if typ != "OK":
    sys.exit("SETACL Quarantine: %s %r" % (typ, data))
user.logout()
EOF
}

# start_cyrus: start Cyrus (render, master as a daemon, wait for its ports,
# folders) unless it answers already. Needs install_cyrus's prefix.
start_cyrus() {
    cyrus_healthy && return 0
    [[ -x $CYRUS_BIN/master ]] || install_cyrus
    rm -f "$CYRUS_DIR/ready"
    render_cyrus
    if ! cyrus_running; then
        rm -f "$CYRUS_PID"
        runuser -u cyrus -- env LD_LIBRARY_PATH="$CYRUS_LIBS" "$CYRUS_BIN/master" \
            -C "$CYRUS_DIR/imapd.conf" -M "$CYRUS_DIR/cyrus.conf" -p "$CYRUS_PID" -d \
            </dev/null >>"$LOG_DIR/cyrus.log" 2>&1 9>&- ||
            die "Cyrus master failed to start (see $LOG_DIR/cyrus.log)"
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    until cyrus_answers; do
        ((SECONDS < deadline)) || die "Cyrus did not answer on 127.0.0.1:$CYRUS_IMAP_PORT within ${START_TIMEOUT}s (see $LOG_DIR/cyrus.log)"
        sleep 0.1
    done
    cyrus_folders || die "could not create the Cyrus user's folders"
    touch "$CYRUS_DIR/ready"
    log "cyrus running: imap 127.0.0.1:$CYRUS_IMAP_PORT (LOGINDISABLED), imaps 127.0.0.1:$CYRUS_IMAPS_PORT, lmtp 127.0.0.1:$CYRUS_LMTP_PORT"
}

# --- PostgreSQL ----------------------------------------------------------------

# as_pg CMD...: run CMD as the postgres user, never with the lock or a pipe
# that would keep the caller waiting (the server inherits them otherwise).
as_pg() { runuser -u postgres -- "$@" </dev/null 9>&-; }
pg_running() { [[ -e $PG_DATA/PG_VERSION ]] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }
pg_answers() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 2>/dev/null; }

# render_postgres: the cluster (initdb once: superuser probe, scram-sha-256,
# password from PG_PASS) and its lab settings (loopback TCP only, its own
# socket directory); a changed setting is applied by reloading a running server.
render_postgres() {
    install -d -m 0755 "$LAB_DIR/secrets"
    # World-readable like the seeds' passwords: a test-only lab on loopback.
    [[ -s $PG_PASS ]] || random_password | put "$PG_PASS" 0644
    install -d -m 0755 -o postgres -g postgres "$PG_DIR" "$PG_DIR/run"
    if [[ ! -e $PG_DATA/PG_VERSION ]]; then
        rm -rf "$PG_DATA"
        install -d -m 0700 -o postgres -g postgres "$PG_DATA"
        install -m 0600 -o postgres -g postgres "$PG_PASS" "$PG_DIR/initdb.pass"
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" --pwfile="$PG_DIR/initdb.pass" \
            --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
            >>"$LOG_DIR/postgres.log" 2>&1 || die "initdb failed (see $LOG_DIR/postgres.log)"
        rm -f "$PG_DIR/initdb.pass"
        echo "include_if_exists = 'lab.conf'" >>"$PG_DATA/postgresql.conf"
    fi
    # Durability as in production (fsync, synchronous_commit): the restart test
    # kills the server and checks that nothing committed is lost.
    cat <<EOF | put "$PG_DATA/lab.conf" 0644
# rendered by lab.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/run'
max_connections = 200
password_encryption = scram-sha-256
ssl = on
ssl_cert_file = '$PG_DIR/server.pem'
ssl_key_file = '$PG_DIR/server.key'
EOF
    cat <<EOF | put "$PG_DATA/pg_hba.conf" 0600
# rendered by lab.sh: passwords only, loopback only
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
EOF
    chown postgres:postgres "$PG_DATA/lab.conf" "$PG_DATA/pg_hba.conf"
    # TLS with the lab's certificate (127.0.0.1, signed by the lab CA): its own
    # copy, as the lab's key is root-only (as for Cyrus).
    install -m 0644 -o postgres -g postgres "$LAB_DIR/tls/server.pem" "$PG_DIR/server.pem"
    install -m 0600 -o postgres -g postgres "$LAB_DIR/tls/server.key" "$PG_DIR/server.key"
}

# start_postgres: render, start unless running (reload when a setting
# changed), wait until it answers on 127.0.0.1:PG_PORT.
start_postgres() {
    [[ -x $PG_BIN/initdb ]] || cmd_install
    render_postgres
    if pg_running; then
        if changed "$PG_DATA"; then
            as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" reload >>"$LOG_DIR/start.log" 2>&1
        fi
    else
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w -t "$START_TIMEOUT" start \
            >>"$LOG_DIR/start.log" 2>&1 || die "PostgreSQL failed to start (see $PG_DIR/server.log)"
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    until pg_answers; do
        ((SECONDS < deadline)) || die "PostgreSQL did not answer on 127.0.0.1:$PG_PORT within ${START_TIMEOUT}s (see $PG_DIR/server.log)"
        sleep 0.1
    done
}

stop_postgres() {
    pg_running || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >>"$LOG_DIR/start.log" 2>&1 ||
        die "PostgreSQL did not stop (see $PG_DIR/server.log)"
}

# wait_gone PIDFILE COMM WHAT: poll until the process has exited (bounded).
wait_gone() {
    local deadline=$((SECONDS + 30))
    while pid_alive "$1" "$2"; do
        ((SECONDS < deadline)) || die "$3 (pid $(<"$1")) did not stop within 30 s"
        sleep 0.1
    done
}

stop_daemons() {
    if relay_running; then
        postfix -c "$RELAY_DIR" stop </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- ||
            kill -TERM "$(tr -d ' ' <"$RELAY_PID")" 2>/dev/null || true
        wait_gone "$RELAY_PID" master "postfix (relay)"
    fi
    if postfix_running; then
        postfix -c "$PF_DIR" stop </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- ||
            kill -TERM "$(tr -d ' ' <"$PF_PID")" 2>/dev/null || true
        wait_gone "$PF_PID" master postfix
    fi
    if dovecot_running; then
        kill -TERM "$(<"$DC_PID")" 2>/dev/null || true
        wait_gone "$DC_PID" dovecot dovecot
    fi
    if dnsmasq_running; then
        kill -TERM "$(<"$DNS_PID")" 2>/dev/null || true
        wait_gone "$DNS_PID" dnsmasq dnsmasq
    fi
    if rspamd_running; then
        kill -TERM "$(<"$RS_PID")" 2>/dev/null || true
        wait_gone "$RS_PID" rspamd rspamd
    fi
    if cyrus_running; then
        kill -TERM "$(<"$CYRUS_PID")" 2>/dev/null || true
        wait_gone "$CYRUS_PID" master cyrus
    fi
    stop_postgres
}

cmd_stop() {
    check_lab_dir
    [[ -d $LAB_DIR ]] || return 0
    need_root stop
    lock
    stop_daemons
    unlock
}

cmd_status() {
    check_lab_dir
    if healthy; then
        describe
        return 0
    fi
    describe
    return 1
}

cmd_foreground() {
    cmd_start
    describe
    local tail_pid
    tail -n 0 -F "$LOG_DIR/postfix.log" "$LOG_DIR/dovecot.log" "$LOG_DIR/relay.log" "$RS_LOG/rspamd.log" &
    tail_pid=$!
    trap 'kill "$tail_pid" 2>/dev/null || true; log "stopping"; cmd_stop; exit 0' TERM INT
    while all_running; do
        sleep 5 &
        wait $! || true
    done
    kill "$tail_pid" 2>/dev/null || true
    describe >&2
    show_logs
    die "a lab daemon died"
}

cmd_reset_mail() {
    check_lab_dir
    need_root reset-mail
    lock
    if [[ -d $LAB_DIR/spool ]] && postfix_running; then
        postsuper -c "$PF_DIR" -d ALL >>"$LOG_DIR/start.log" 2>&1 || true
    fi
    if [[ -d $LAB_DIR/relay-spool ]] && relay_running; then
        postsuper -c "$RELAY_DIR" -d ALL >>"$LOG_DIR/start.log" 2>&1 || true
    fi
    local dir user
    if dovecot_running; then
        # Expunge through Dovecot so open IMAP sessions and indexes stay consistent.
        for dir in "$LAB_DIR"/mail/*/*/; do
            [[ -d $dir ]] || continue
            dir=${dir%/}
            user=${dir##*/}@$(basename "$(dirname "$dir")")
            doveadm -c "$DC_CONF" expunge -u "$user" mailbox '*' all ||
                log "warning: could not expunge the mail of $user"
            # An mdbox (kind big) keeps expunged mail in storage/ until purged.
            if [[ -d $dir/storage ]]; then
                doveadm -c "$DC_CONF" purge -u "$user" ||
                    log "warning: could not purge the mail of $user"
            fi
        done
    else
        rm -rf "${LAB_DIR:?}"/mail/* "${LAB_DIR:?}"/home/*
    fi
    unlock
    log "all lab mailboxes emptied"
}

# --- fill-big ------------------------------------------------------------------

# inbox_count USER: how many messages USER's INBOX holds (Dovecot syncs the
# Maildir first, and creates it when missing).
inbox_count() {
    local out
    out=$(doveadm -c "$DC_CONF" -f flow mailbox status -u "$1" messages INBOX) || return 1
    out=${out##*messages=}
    [[ $out =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$out"
}

# seconds_since EPOCHREALTIME: elapsed seconds, three decimals.
seconds_since() {
    local us=$((${EPOCHREALTIME//[.,]/} - ${1//[.,]/}))
    printf '%d.%03d' $((us / 1000000)) $((us % 1000000 / 1000))
}

# write_filler DIR COUNT SEED: COUNT small unrelated messages into the Maildir
# DIR (tmp/, then renamed into cur/ with flags ":2,S": seen, not \Recent),
# mtime = Date: header (Dovecot's INTERNALDATE). Run as the mail user.
# Deterministic for a given SEED; nothing in them looks like a probe message.
write_filler() {
    setpriv --reuid=mail --regid=mail --clear-groups -- perl - "$@" <<'PERL'
use strict;
use warnings;
use POSIX qw(strftime);
my ($dir, $count, $seed) = @ARGV;
srand(1000003 + $seed);
my @first = qw(Anna Ben Carla David Emma Felix Greta Hugo Ines Jonas Klara Lukas
  Mia Noah Olga Paul Rosa Sven Tara Uwe Vera Will Yara Zoe Amir Bea Chen Dana);
my @last = qw(Adams Becker Costa Dubois Evans Fischer Garcia Hansen Ito Jensen
  Kowalski Lopez Meyer Nguyen Okafor Petrov Quinn Rossi Schmidt Tanaka Vogel
  Weber Young Zimmer);
my @domains = qw(example.com example.net example.org mail.example.com
  lists.example.org shop.example.net news.example.com travel.example.org);
my @topics = qw(budget roadmap migration invoice hiring offsite release backup
  security garden recipe football concert holiday mortgage insurance renovation
  conference webinar workshop printer server database deadline contract survey
  feedback warranty subscription delivery parcel ticket appointment payroll
  benefits training onboarding audit compliance kitchen bicycle library museum
  volunteer charity dentist playground harvest festival marathon);
my @things = qw(review update plan schedule draft summary report reminder notes
  agenda figures results options checklist request question estimate photos
  slides minutes changes status invitation confirmation receipt statement);
my @lists = qw(dev-announce book-club hiking-group parents-association
  python-users photo-circle choir-news neighbours allotment-society chess-club);
my @months = qw(January February March April May June July August September
  October November December);
my @shops = ("Corner Books", "Green Grocer", "City Cycles", "Blue Lagoon Travel",
  "Hardware Hub", "Paper & Ink", "Fresh Fields", "Northwind Traders");
my @words = qw(the a of to and in for on with from about after before during
  meeting office week team project house weekend morning evening coffee lunch
  train bus flight hotel room garden school kids dinner document table chart
  numbers quarter spring summer autumn winter please thanks regards attached
  shared folder link call phone agenda next last first final short long quick);
sub pick { $_[int rand @_] }
sub sentence {
    my $n = 6 + int rand 10;
    my $s = join ' ', map { pick(@words) } 1 .. $n;
    return ucfirst($s) . pick('.', '.', '.', '?', '!');
}
my @subjects = (
    sub { "Re: " . ucfirst(pick(@topics)) . " " . pick(@things) },
    sub { "Fwd: " . pick(@topics) . " " . pick(@things) . " for " . pick(@months) },
    sub { "[" . pick(@lists) . "] " . ucfirst(pick(@topics)) . " " . pick(@things) },
    sub { "Your " . pick(@shops) . " order " . (100000 + int rand 900000) . " has shipped" },
    sub { "Invoice " . (2000 + int rand 8000) . "-" . (10 + int rand 90) . " for " . pick(@months) },
    sub { "Meeting notes: " . pick(@topics) . " " . pick(@things) },
    sub { "Weekly digest: " . (2 + int rand 40) . " new posts in " . pick(@lists) },
    sub { ucfirst(pick(@topics)) . " " . pick(@things) . " (" . pick(@months) . ")" },
    sub { "Photos from the " . pick(@topics) . " weekend" },
    sub { "Reminder: " . pick(@topics) . " " . pick(@things) . " on " . pick(qw(Monday Tuesday Wednesday Thursday Friday)) },
    sub { "Question about the " . pick(@topics) },
    sub { "Your " . pick(@months) . " statement is ready" },
);
my @zones = (0, 60, 120, -300, -480, 330, 540, 600, -180);
my ($from_t, $to_t) = (1672531200, 1767225600);   # 2023-01-01 .. 2026-01-01 UTC
for my $i (1 .. $count) {
    my $t = $from_t + int rand($to_t - $from_t);
    my $z = pick(@zones);
    my $date = strftime('%a, %d %b %Y %H:%M:%S', gmtime($t + 60 * $z))
      . sprintf(' %s%02d%02d', $z < 0 ? '-' : '+', abs($z) / 60, abs($z) % 60);
    my ($fn, $ln) = (pick(@first), pick(@last));
    my $dom = pick(@domains);
    my $from = lc("$fn.$ln\@$dom");
    my $subject = pick(@subjects)->();
    my $body = join("\n", map { sentence() } 1 .. (2 + int rand 5)) . "\n\n"
      . pick(@first) . "\n";
    my $msg = "Return-Path: <$from>\n"
      . "From: $fn $ln <$from>\n"
      . "To: big\@big.lab.test\n"
      . "Subject: $subject\n"
      . "Date: $date\n"
      . "Message-ID: <$t." . ($seed + $i) . "." . int(rand 1e9) . "\@$dom>\n"
      . "MIME-Version: 1.0\n"
      . "Content-Type: text/plain; charset=us-ascii\n"
      . "Content-Transfer-Encoding: 7bit\n"
      . "\n" . $body;
    my $size = length $msg;
    my $vsize = $size + ($msg =~ tr/\n//);
    my $base = "$t.M" . ($seed + $i) . "P$$.bigfill,S=$size,W=$vsize";
    open(my $fh, '>', "$dir/tmp/$base") or die "$dir/tmp/$base: $!\n";
    print $fh $msg or die "$dir/tmp/$base: $!\n";
    close $fh or die "$dir/tmp/$base: $!\n";
    utime($t, $t, "$dir/tmp/$base") or die "$dir/tmp/$base: $!\n";
    rename("$dir/tmp/$base", "$dir/cur/$base:2,S") or die "$dir/cur/$base:2,S: $!\n";
}
PERL
}

cmd_fill_big() {
    local want=${1:-100000} i addr have todo dir field t0 index_s write_s import_s n=0
    [[ $want =~ ^[1-9][0-9]{0,6}$ ]] || die "fill-big: N must be a number from 1 to 9999999 (got '$want')"
    check_lab_dir
    need_root fill-big
    cmd_start # doveadm looks users up through the running Dovecot
    read_seeds
    lock
    for i in "${!SEED_ADDRS[@]}"; do
        [[ ${SEED_KINDS[$i]} == big ]] || continue
        n=$((n + 1))
        addr=${SEED_ADDRS[$i]}
        have=$(inbox_count "$addr") || die "fill-big: doveadm could not open the INBOX of $addr"
        if ((have >= want)); then
            log "fill-big: $addr: INBOX already holds $have messages (>= $want), nothing to do"
            continue
        fi
        # The INBOX is an mdbox (see userdb_fields): the messages are written
        # as a Maildir into a scratch directory, then `doveadm import` copies
        # them (flags \Seen, INTERNALDATE = file mtime) into the mdbox.
        dir=$LAB_DIR/fill-big.tmp
        rm -rf "${dir:?}"
        install -d -m 0750 -o mail -g mail "$dir" "$dir/cur" "$dir/new" "$dir/tmp"
        todo=$((want - have))
        t0=$EPOCHREALTIME
        write_filler "$dir" "$todo" "$have" ||
            die "fill-big: writing the messages into $dir failed"
        write_s=$(seconds_since "$t0")
        t0=$EPOCHREALTIME
        doveadm -c "$DC_CONF" import -u "$addr" "maildir:$dir" "" all ||
            die "fill-big: doveadm import from $dir failed for $addr"
        import_s=$(seconds_since "$t0")
        rm -rf "${dir:?}"
        t0=$EPOCHREALTIME
        doveadm -c "$DC_CONF" index -u "$addr" INBOX || die "fill-big: doveadm index failed for $addr"
        # A search on a header makes Dovecot cache it for every message (an
        # imported mdbox has no cache decisions yet): Subject, From, Message-ID.
        for field in subject from message-id; do
            doveadm -c "$DC_CONF" search -u "$addr" mailbox INBOX header "$field" fill-big-no-such-value >/dev/null ||
                die "fill-big: doveadm search ($field) failed for $addr"
        done
        index_s=$(seconds_since "$t0")
        # Dovecot gives \Recent to every message that no read-write SELECT has
        # seen yet, wherever its file lies: one (a preauthenticated imap
        # process, as the user) takes it off them.
        [[ $(printf 'a SELECT INBOX\r\nb LOGOUT\r\n' |
            /usr/lib/dovecot/imap -c "$DC_CONF" -u "$addr" 2>>"$LOG_DIR/start.log" 9>&-) == *$'\na OK'* ]] ||
            die "fill-big: could not SELECT the INBOX of $addr (see $LOG_DIR/start.log)"
        have=$(inbox_count "$addr") || die "fill-big: doveadm could not open the INBOX of $addr"
        log "fill-big: $addr: wrote $todo messages in ${write_s}s," \
            "doveadm import ${import_s}s, doveadm index ${index_s}s; INBOX holds $have"
    done
    unlock
    ((n > 0)) || die "fill-big: $SEEDS lists no seed of kind big"
}

cmd_restart_dovecot() {
    check_lab_dir
    need_root restart-dovecot
    lock
    # The whole process group, as a service manager restarting it would: the
    # master alone would leave logged-in IMAP sessions running.
    if dovecot_running; then
        kill -TERM -- "-$(<"$DC_PID")" 2>/dev/null || true
        wait_gone "$DC_PID" dovecot dovecot
    fi
    rm -f "$DC_PID"
    # As in start_daemons: never hand Dovecot a pipe or the lock.
    dovecot -c "$DC_CONF" </dev/null >>"$LOG_DIR/start.log" 2>&1 9>&- ||
        { show_logs; die "dovecot -c $DC_CONF failed to start"; }
    local deadline=$((SECONDS + START_TIMEOUT))
    until healthy; do
        if ((SECONDS >= deadline)); then
            describe >&2
            show_logs
            die "the lab did not become healthy within ${START_TIMEOUT}s after restarting Dovecot"
        fi
        sleep 0.1
    done
    unlock
    log "dovecot restarted"
}

main() {
    local cmd=${1:-}
    case $cmd in
    install) cmd_install && install_cyrus ;;
    install-chromium) cmd_install_chromium ;;
    install-promtool) cmd_install_promtool ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop && cmd_start ;;
    restart-dovecot) cmd_restart_dovecot ;;
    status) cmd_status ;;
    foreground) cmd_foreground ;;
    reset-mail) cmd_reset_mail ;;
    fill-big) cmd_fill_big "${2:-}" ;;
    -h | --help | help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" ;;
    *)
        echo "usage: lab.sh install|start|stop|restart|restart-dovecot|status|foreground|reset-mail|fill-big [N]" >&2
        exit 2
        ;;
    esac
}

main "$@"
