//! Evidence: reading a found message's header for what the receiving provider concluded,
//! authentication results, spam verdict headers and when it took the message. These are facts
//! for the report; [`crate::verdict`] uses the spam marks.

pub mod auth_results;
mod found;
pub mod received;
pub mod spam;

pub use auth_results::{AuthResults, MethodResult};
pub use found::{FolderRole, HeaderEvidence};
pub use spam::SpamSignals;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(raw: &str) -> HeaderEvidence {
        HeaderEvidence::from_header_block(raw.as_bytes()).unwrap().1
    }

    /// (fixture, authserv-id, dmarc result, spam marks, received at (Unix seconds))
    type Row<'a> = (&'a str, &'a str, Option<&'a str>, &'a [&'a str], u64);

    #[test]
    fn provider_samples() {
        let rows: &[Row] = &[
            (
                include_str!("../../tests/fixtures/headers/gmail-inbox.eml"),
                "mx.google.com",
                Some("pass"),
                &[],
                1_795_882_203,
            ),
            (
                include_str!("../../tests/fixtures/headers/outlook-junk.eml"),
                "",
                Some("fail"),
                &["Microsoft SCL 5", "Microsoft SFV:SPM"],
                1_795_882_204,
            ),
            (
                include_str!("../../tests/fixtures/headers/gmx-clean.eml"),
                "",
                None,
                &[],
                1_795_882_205,
            ),
            (
                include_str!("../../tests/fixtures/headers/gmx-junk.eml"),
                "",
                None,
                &["X-UI-Filterresults: junk"],
                1_795_882_205,
            ),
            (
                include_str!("../../tests/fixtures/headers/spamassassin-tagged.eml"),
                "",
                None,
                &[
                    "subject prefix ***SPAM***",
                    "X-Spam-Flag: YES",
                    "X-Spam-Status: Yes (score 7.4)",
                ],
                1_795_882_206,
            ),
            // OpenSMTPD's junk filter: the mark alone, no score.
            (
                include_str!("../../tests/fixtures/headers/opensmtpd-junk.eml"),
                "",
                None,
                &["X-Spam: Yes"],
                1_795_882_207,
            ),
            // rspamd with extended headers, action reject (delivered by a milter that does not
            // enforce it).
            (
                include_str!("../../tests/fixtures/headers/rspamd-reject.eml"),
                "",
                None,
                &[
                    "X-Spamd-Result: default: True (score 16.2)",
                    "X-Spam-Level: 16 stars",
                ],
                1_795_882_208,
            ),
        ];
        for (raw, authserv, dmarc, marks, received) in rows {
            let h = headers(raw);
            let results = auth_results::from_receiver(h.values("Authentication-Results"));
            let what = h.subject.clone().unwrap_or_default();
            match results.first() {
                Some(r) => {
                    assert_eq!(r.authserv_id, *authserv, "{what}");
                    assert_eq!(r.get("dmarc").map(|m| m.result.as_str()), *dmarc, "{what}");
                }
                None => assert_eq!(*dmarc, None, "{what}"),
            }
            assert_eq!(SpamSignals::from_headers(&h).marks(), *marks, "{what}");
            let at = received::received_at(&h).unwrap();
            let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            assert_eq!(secs, *received, "{what}");
        }
        // The forged field below the provider's own is not the provider's.
        let gmail = headers(include_str!("../../tests/fixtures/headers/gmail-inbox.eml"));
        assert_eq!(
            auth_results::from_receiver(gmail.values("Authentication-Results")).len(),
            1
        );
    }
}
