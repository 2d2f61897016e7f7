# seedprobe lab: global sieve_before script, run by Dovecot LMTP for every
# delivery. It simulates what providers do with accepted mail, keyed on the
# envelope recipient's domain (see ../seeds.list). Pigeonhole's editheader
# extension is enabled in dovecot.conf (sieve_extensions = +editheader).
require ["envelope", "fileinto", "editheader", "variables"];

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
}
# inbox.lab.test and everything else: implicit keep (INBOX).
