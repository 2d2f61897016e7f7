# seedprobe lab: global sieve_before script, run by Dovecot LMTP for every
# delivery. It simulates what providers do with accepted mail, keyed on the
# envelope recipient's domain (see ../seeds.list). Pigeonhole's editheader
# extension is enabled in dovecot.conf (sieve_extensions = +editheader).
# "reject" (RFC 5429) is on by default; Dovecot LMTP carries it out by
# accepting the message (250) and sending its own rejection notice (an MDN) to
# the envelope sender through submission_host (dovecot.conf, protocol lmtp).
require ["envelope", "fileinto", "editheader", "variables", "reject"];

if envelope :domain :is "to" "junk.lab.test" {
    # Accepted into the spam folder. The folder is deliberately NOT called
    # Spam/Junk: clients must find it by its RFC 6154 \Junk attribute.
    fileinto "Filtered";
} elsif envelope :domain :is "to" "tagged.lab.test" {
    # Accepted but marked, as a SpamAssassin-style filter would.
    set "subject" "";
    if header :matches "Subject" "*" {
        set "subject" "${1}";
    }
    deleteheader "Subject";
    addheader "Subject" "[SPAM] ${subject}";
    addheader "X-Spam-Flag" "YES";
    addheader "X-Spam-Status" "Yes, score=9.1 required=5.0";
} elsif envelope :domain :is "to" "sievereject.lab.test" {
    # Accepted by Postfix and LMTP, then refused by the delivery agent: the
    # sender gets Dovecot's "Rejected: <subject>" notice, the mailbox nothing.
    reject "Message refused by the recipient's mail filter: seedprobe lab simulates a Sieve reject";
} elsif envelope :domain :is "to" "authjunk.lab.test" {
    # A judged provider (rspamd, 127.0.0.4:2525): junk when rspamd's own
    # Authentication-Results (authserv-id mx.lab.test) say SPF or DKIM failed.
    if header :matches "Authentication-Results"
            ["mx.lab.test;*spf=fail*", "mx.lab.test;*spf=softfail*", "mx.lab.test;*dkim=fail*"] {
        fileinto "Filtered";
    }
} elsif envelope :domain :is "to" "yahoolike.lab.test" {
    # Provider-like spam folders (kinds yahoo, gmx, gmail, umlaut): every
    # message goes there. The folders exist from the first login on (per-user
    # auto = subscribe, see ../dovecot/dovecot.conf and lab.sh). Yahoo-like:
    # "Bulk", no \Junk attribute on any folder.
    fileinto "Bulk";
} elsif envelope :domain :is "to" "gmxlike.lab.test" {
    # GMX-like: "Spamverdacht", no \Junk attribute on any folder.
    fileinto "Spamverdacht";
} elsif envelope :domain :is "to" "gmaillike.lab.test" {
    # Gmail-like: "[Gmail]/Spam" with \Junk ("[Gmail]" is a \Noselect parent).
    fileinto "[Gmail]/Spam";
} elsif envelope :domain :is "to" "umlaut.lab.test" {
    # A non-ASCII name, "Unerw&APw-nscht" on the wire; no \Junk attribute.
    fileinto "Unerwünscht";
}
# inbox.lab.test, big.lab.test, judged.lab.test, dmarc.lab.test and everything
# else: implicit keep (INBOX).
