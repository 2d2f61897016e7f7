#!/usr/bin/env python3
"""Regenerate the DSN samples in this directory from the running lab (root not needed).

Sends probe-like messages (X-Probe-Id, Message-ID <token.seedprobe@...>) as
probe@sender.lab.test through the lab's relay (127.0.0.1:2587, STARTTLS, AUTH PLAIN),
then fetches the DSNs the relay returns to probe@sender.lab.test's INBOX over IMAPS
(127.0.0.1:1993) and writes them here byte for byte as IMAP returned them (CRLF):

  dsn-failed.eml               reject@reject.lab.test, RET=HDRS ENVID=token NOTIFY=FAILURE,DELAY
                               -> 550 on RCPT, "failed" DSN (5.7.1) with text/rfc822-headers
  dsn-failed-full-message.eml  reject@reject.lab.test, no DSN parameters
                               -> "failed" DSN with the whole message as message/rfc822
  dsn-delayed.eml              defer@defer.lab.test, RET=HDRS ENVID=token NOTIFY=FAILURE,DELAY
                               -> 450 on RCPT, "delayed" DSN (4.7.1) after about 5 s
  dsn-expired.eml              (only with --expired) the same message once the relay gives up
                               after maximal_queue_lifetime (2 min): "failed" DSN, Status 4.7.1
  dovecot-sieve-reject.eml     sievereject@sievereject.lab.test, RET=HDRS ENVID=token
                               NOTIFY=FAILURE,DELAY -> 250 everywhere, then the global Sieve
                               script's `reject`: Dovecot LMTP's own rejection notice (MDN,
                               report-type=disposition-notification, "Rejected: <subject>"),
                               not a DSN of the relay

Usage: make-samples.py [--expired] [SAMPLE...]   (SEEDPROBE_LAB_DIR as for lab.sh)
  SAMPLE: failed, failed-full-message, delayed, sieve-reject (default: all of them);
  --expired implies delayed.
"""
import email.utils
import imaplib
import os
import re
import smtplib
import ssl
import sys
import time
import uuid

LAB = os.environ.get("SEEDPROBE_LAB_DIR", "/tmp/seedprobe-lab")
HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = "probe@sender.lab.test"
CTX = ssl.create_default_context(cafile=f"{LAB}/tls/ca.pem")


def password(local):
    with open(f"{LAB}/secrets/{local}.pass") as f:
        return f.read().strip()


def send(to, dsn):
    token = uuid.uuid4().hex[:16]
    msg = (
        f"From: Deliverability Probe <{SENDER}>\r\nTo: {to}\r\n"
        f"Subject: Deliverability check {token}\r\n"
        f"Message-ID: <{token}.seedprobe@sender.lab.test>\r\nX-Probe-Id: {token}\r\n"
        f"User-Agent: seedprobe/0.1.0\r\nDate: {email.utils.formatdate()}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
        f"Lab test message for seed {to.split('@')[0]}.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", 2587, local_hostname="probe.sender.lab.test") as s:
        s.starttls(context=CTX)
        s.login(SENDER, password("probe"))
        s.mail(SENDER, ["RET=HDRS", f"ENVID={token}"] if dsn else [])
        code, resp = s.rcpt(to, ["NOTIFY=FAILURE,DELAY"] if dsn else [])
        if code != 250:
            sys.exit(f"RCPT {to}: {code} {resp!r}")
        code, resp = s.data(msg.encode())
    qid = re.search(rb"queued as ([0-9A-F]+)", resp).group(1).decode()
    print(f"{to}: token {token}, relay queue id {qid}")
    return token, time.monotonic()


def wait_dsn(token, subject, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = imaplib.IMAP4_SSL("127.0.0.1", 1993, ssl_context=CTX)
        c.login(SENDER, password("probe"))
        c.select("INBOX", readonly=True)
        _, data = c.search(None, "TEXT", token, "SUBJECT", f'"{subject}"')
        ids = data[0].split()
        if ids:
            _, msg = c.fetch(ids[-1], "(BODY.PEEK[])")
            c.logout()
            return msg[0][1]
        c.logout()
        time.sleep(0.2)
    sys.exit(f"no '{subject}' DSN for {token} within {timeout} s")


def save(name, raw, since):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(raw)
    print(f"  {name}: after {time.monotonic() - since:.1f} s")


SAMPLES = ("failed", "failed-full-message", "delayed", "sieve-reject")


def main():
    args = sys.argv[1:]
    expired = "--expired" in args
    wanted = [a for a in args if a != "--expired"]
    for a in wanted:
        if a not in SAMPLES:
            sys.exit(f"unknown sample {a!r} (one of: {', '.join(SAMPLES)}, --expired)")
    if not wanted:
        wanted = list(SAMPLES)
    if expired and "delayed" not in wanted:
        wanted.append("delayed")

    sent = {}
    if "failed" in wanted:
        sent["failed"] = send("reject@reject.lab.test", dsn=True)
    if "failed-full-message" in wanted:
        sent["failed-full-message"] = send("reject@reject.lab.test", dsn=False)
    if "delayed" in wanted:
        sent["delayed"] = send("defer@defer.lab.test", dsn=True)
    if "sieve-reject" in wanted:
        sent["sieve-reject"] = send("sievereject@sievereject.lab.test", dsn=True)

    if "failed" in sent:
        save("dsn-failed.eml", wait_dsn(sent["failed"][0], "Undelivered Mail", 30), sent["failed"][1])
    if "failed-full-message" in sent:
        t = sent["failed-full-message"]
        save("dsn-failed-full-message.eml", wait_dsn(t[0], "Undelivered Mail", 30), t[1])
    if "sieve-reject" in sent:
        # Dovecot's notice: Subject "Rejected: <original subject>" (rejection_subject).
        t = sent["sieve-reject"]
        save("dovecot-sieve-reject.eml", wait_dsn(t[0], "Rejected: Deliverability check", 30), t[1])
    if "delayed" in sent:
        t = sent["delayed"]
        save("dsn-delayed.eml", wait_dsn(t[0], "Delayed Mail", 30), t[1])
        if expired:
            save("dsn-expired.eml", wait_dsn(t[0], "Undelivered Mail", 200), t[1])
        else:
            print(f"(defer@ stays in the relay queue until it expires after 2 min, or:"
                  f" postsuper -c {LAB}/relay -d ALL)")


if __name__ == "__main__":
    main()
