#!/usr/bin/env python3
"""Writes a Postfix log of N lines for bench/maillog.sh, from the line shapes the lab's
Postfix writes (its maillog_file, /tmp/seedprobe-lab/log/relay.log and postfix.log): per
message connect, client=, message-id, queue active, one status line per attempt (sent,
deferred and retried, bounced), a bounce notice, removed, disconnect; now and then a
NOQUEUE reject and an expiry. Recipients spread over the big providers (their real MX
host names) and many small domains. Deterministic: the same N gives the same log.

usage: maillog_gen.py LINES > mail.log
"""
import random
import sys

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()

# (recipient domain, relay host, its IP), weights below.
ROUTES = [
    ("gmail.com", "gmail-smtp-in.l.google.com", "142.250.102.27"),
    ("googlemail.com", "alt1.gmail-smtp-in.l.google.com", "142.250.153.26"),
    ("customer-ws.example", "aspmx.l.google.com", "142.250.102.26"),
    ("outlook.com", "outlook-com.olc.protection.outlook.com", "52.101.68.16"),
    ("hotmail.com", "hotmail-com.olc.protection.outlook.com", "52.101.68.17"),
    ("customer-365.example", "customer-365-example.mail.protection.outlook.com", "52.101.8.4"),
    ("yahoo.com", "mta5.am0.yahoodns.net", "67.195.204.72"),
    ("aol.com", "mx-aol.mail.gm0.yahoodns.net", "67.195.204.77"),
    ("gmx.de", "mx00.emig.gmx.net", "212.227.15.9"),
    ("web.de", "mx-ha03.web.de", "212.227.17.8"),
    ("t-online.de", "mx00.t-online.de", "194.25.134.8"),
    ("icloud.com", "mx01.mail.icloud.com", "17.57.155.23"),
]
WEIGHTS = [30, 3, 4, 10, 6, 4, 8, 2, 6, 4, 3, 4]

DEFERRALS = {
    "gmail.com": "421-4.7.28 [203.0.113.5] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. https://support.google.com/mail/answer/81126",
    "yahoo.com": "421 4.7.0 [TSS04] Messages from 203.0.113.5 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
    "outlook.com": "451 4.7.500 Server busy. Please try again later from [203.0.113.5]. (S77714) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]",
    "gmx.de": "421-gmx.net (mxgmx117) Nemesis ESMTP Service not available 421-Service unavailable 421-Reject due to policy restrictions. 421 For explanation visit https://www.gmx.net/mail/senderguidelines?c=pi",
    "t-online.de": "421 4.7.0 Too many connections from 203.0.113.5",
}
BOUNCES = [
    ("5.1.1", "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser"),
    ("5.7.26", "550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM."),
    ("5.7.1", "550 5.7.1 Service unavailable, Client host [203.0.113.5] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/203.0.113.5 (AS3130). [AM4PEPF00027A5E.eurprd04.prod.outlook.com 2026-11-29T16:09:49.123Z 08DD0E1B2C3D4E5F]"),
    ("5.2.2", "552 5.2.2 Mailbox full"),
]


class Log:
    def __init__(self, out):
        self.out = out
        self.t = 0  # seconds since Nov 29 00:00:00
        self.n = 0
        self.pid = 10000

    def line(self, tag, text):
        s = self.t
        stamp = "Nov 29 %02d:%02d:%02d" % (s // 3600 % 24, s // 60 % 60, s % 60)
        self.out.write("%s mail postfix/%s[%d]: %s\n" % (stamp, tag, self.pid + sum(tag.encode()) % 500, text))
        self.n += 1


def qid(rng):
    return "%010X" % rng.getrandbits(40)


def main():
    target = int(sys.argv[1])
    rng = random.Random(11)
    out = sys.stdout
    log = Log(out)
    while log.n < target:
        if rng.random() < 0.2:
            log.t += 1
        if rng.random() < 0.04:
            log.line("smtpd", "NOQUEUE: reject: RCPT from unknown[198.51.100.%d]: 554 5.7.1 <x%d@elsewhere.example>: Relay access denied; from=<spam@bad.example> to=<x%d@elsewhere.example> proto=ESMTP helo=<bad.example>" % (rng.randrange(255), log.n, log.n))
            continue
        q = qid(rng)
        dom, host, ip = rng.choices(ROUTES, WEIGHTS)[0]
        if rng.random() < 0.15:
            # many small domains, each its own row
            dom = "d%d.example" % rng.randrange(2000)
            host, ip = "mx.%s" % dom, "192.0.2.%d" % rng.randrange(255)
        rcpt = "user%d@%s" % (rng.randrange(100000), dom)
        log.line("submission/smtpd", "connect from unknown[127.0.0.1]")
        log.line("submission/smtpd", "%s: client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=probe@sender.example" % q)
        log.line("cleanup", "%s: message-id=<%s.%d@sender.example>" % (q, q, log.n))
        log.line("qmgr", "%s: from=<probe@sender.example>, size=%d, nrcpt=1 (queue active)" % (q, 800 + rng.randrange(4000)))
        log.line("submission/smtpd", "disconnect from unknown[127.0.0.1] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8")
        roll = rng.random()
        relay = "%s[%s]:25" % (host, ip)
        if roll < 0.08 and dom in DEFERRALS:
            for attempt in range(rng.randrange(1, 4)):
                log.line("smtp", "%s: to=<%s>, relay=%s, delay=%d, delays=0.01/0/0.2/0.1, dsn=4.7.0, status=deferred (host %s said: %s (in reply to end of DATA command))" % (q, rcpt, relay, 300 * attempt + 1, relay.split(":")[0], DEFERRALS[dom]))
                log.line("qmgr", "%s: from=<probe@sender.example>, size=900, nrcpt=1 (queue active)" % q)
            if rng.random() < 0.2:
                log.line("qmgr", "%s: from=<probe@sender.example>, status=expired, returned to sender" % q)
                log.line("bounce", "%s: sender non-delivery notification: %s" % (q, qid(rng)))
                log.line("qmgr", "%s: removed" % q)
                continue
        if roll > 0.97:
            dsn, text = rng.choice(BOUNCES)
            log.line("smtp", "%s: to=<%s>, relay=%s, delay=0.4, delays=0.01/0/0.2/0.2, dsn=%s, status=bounced (host %s said: %s (in reply to RCPT TO command))" % (q, rcpt, relay, dsn, relay.split(":")[0], text))
            log.line("bounce", "%s: sender non-delivery notification: %s" % (q, qid(rng)))
        else:
            log.line("smtp", "%s: to=<%s>, relay=%s, delay=0.6, delays=0.01/0.01/0.3/0.3, dsn=2.0.0, status=sent (250 2.0.0 OK  1764432589 a640c23a62f3a-%s - gsmtp)" % (q, rcpt, relay, q.lower()))
        log.line("qmgr", "%s: removed" % q)


if __name__ == "__main__":
    main()
