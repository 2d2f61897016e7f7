//! Greeting and mail transactions: EHLO (with the HELO fallback), then per
//! message MAIL, RCPT and DATA (RFC 5321 §3.3), preceded by RSET when the
//! connection carried an earlier one, pipelined when the server offers it
//! (RFC 2920), and QUIT at the end.
//!
//! EHLO lives here because the [`Extensions`] it announces decide what the
//! transaction may use: PIPELINING, and the MAIL and RCPT parameters.

use std::time::Duration;

use tokio::time::timeout;

use super::wire::phrases;
use super::{Session, failed};
use crate::send::data::encode_data_into;
use crate::send::dsn::xtext;
use crate::send::outcome::{Ending, Stage};
use crate::send::reply::{Reply, Severity};
use crate::send::{Envelope, Outgoing, QuitAfter, SendSettings};

/// The most we wait for QUIT's reply: the outcome is already known, so a
/// slow goodbye must not hold up the report.
pub(super) const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The ESMTP extensions a server announced in its EHLO reply (RFC 5321 §4.1.1.1).
#[derive(Debug, Default)]
pub(crate) struct Extensions {
    /// Upper-cased keywords with their parameters as sent.
    entries: Vec<(String, Vec<String>)>,
}

impl Extensions {
    pub(crate) fn from_ehlo(reply: &Reply) -> Extensions {
        // The first line is the server's name and greeting, not an extension.
        let entries = reply
            .lines
            .iter()
            .skip(1)
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let first = words.next()?;
                // "AUTH=PLAIN LOGIN": the pre-RFC 4954 form some servers still send.
                let (keyword, inline) = match first.split_once('=') {
                    Some((keyword, value)) => (keyword, Some(value)),
                    None => (first, None),
                };
                let params = inline
                    .into_iter()
                    .chain(words)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                Some((keyword.to_ascii_uppercase(), params))
            })
            .collect();
        Extensions { entries }
    }

    pub(crate) fn has(&self, keyword: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(keyword))
    }

    /// The parameters of every line with this keyword, upper-cased; `None`
    /// when the keyword is not offered.
    pub(crate) fn params(&self, keyword: &str) -> Option<Vec<String>> {
        self.has(keyword).then(|| {
            self.entries
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(keyword))
                .flat_map(|(_, params)| params.iter().map(|p| p.to_ascii_uppercase()))
                .collect()
        })
    }
}

/// The MAIL command, with the parameters the content and envelope call for
/// when the server supports them (RFC 6152 8BITMIME, RFC 6531 SMTPUTF8,
/// RFC 3461 DSN when an envelope id is given); without support, the plain
/// command goes out and the server decides.
pub(crate) fn mail_command(
    envelope: &Envelope,
    extensions: &Extensions,
    message: &[u8],
    envid: Option<&str>,
) -> String {
    let mut command = format!("MAIL FROM:<{}>", envelope.mail_from);
    if extensions.has("8BITMIME") && !message.is_ascii() {
        command.push_str(" BODY=8BITMIME");
    }
    if !(envelope.mail_from.is_ascii() && envelope.rcpt_to.is_ascii()) && extensions.has("SMTPUTF8")
    {
        command.push_str(" SMTPUTF8");
    }
    if let Some(envid) = envid.filter(|_| extensions.has("DSN")) {
        // Headers only: a bounce need not carry the probe back in full.
        command.push_str(" RET=HDRS ENVID=");
        command.push_str(&xtext(envid));
    }
    command
}

/// The RCPT command; with DSN, ask for failure and delay notices only (a
/// success notice would be noise) and name the original recipient (RFC 3461
/// §4.1, §4.2).
pub(crate) fn rcpt_command(envelope: &Envelope, dsn: bool) -> String {
    if dsn {
        format!(
            "RCPT TO:<{}> NOTIFY=FAILURE,DELAY ORCPT=rfc822;{}",
            envelope.rcpt_to,
            xtext(&envelope.rcpt_to)
        )
    } else {
        format!("RCPT TO:<{}>", envelope.rcpt_to)
    }
}

impl Session<'_> {
    /// EHLO, falling back to HELO when the server rejects EHLO with a 5xx
    /// (RFC 5321 §3.2: a pre-ESMTP server answers "500 command unrecognized").
    pub(super) async fn greet(&mut self, name: &str) -> Result<Extensions, Ending> {
        let reply = self.command(&format!("EHLO {name}"), Stage::Ehlo).await?;
        if reply.severity() != Severity::PermanentNegative {
            let reply = self.expect(reply, Stage::Ehlo, Severity::PositiveCompletion)?;
            return Ok(Extensions::from_ehlo(&reply));
        }
        let reply = self.command(&format!("HELO {name}"), Stage::Ehlo).await?;
        self.expect(reply, Stage::Ehlo, Severity::PositiveCompletion)?;
        Ok(Extensions::default())
    }

    /// One mail transaction, up to the reply to the final ".". `reset`
    /// precedes it with RSET: the connection carried an earlier one.
    pub(super) async fn transaction(
        &mut self,
        item: &Outgoing,
        reset: bool,
        settings: &SendSettings,
    ) -> Result<Reply, Ending> {
        let dsn = item.envid.as_deref().filter(|_| self.extensions.has("DSN"));
        let mail = mail_command(&item.envelope, &self.extensions, &item.message, dsn);
        let rcpt = rcpt_command(&item.envelope, dsn.is_some());
        let stop = settings
            .quit_after
            .filter(|q| matches!(q, QuitAfter::Mail | QuitAfter::Rcpt));
        let mut group: Vec<(&str, Stage, Severity)> = Vec::with_capacity(4);
        if reset {
            // RFC 5321 §4.1.1.5: whatever the last transaction left behind
            // (a refused RCPT after an accepted MAIL) is cleared first.
            group.push(("RSET", Stage::MailFrom, Severity::PositiveCompletion));
        }
        group.push((&mail, Stage::MailFrom, Severity::PositiveCompletion));
        if stop != Some(QuitAfter::Mail) {
            group.push((&rcpt, Stage::RcptTo, Severity::PositiveCompletion));
        }
        if stop.is_none() {
            group.push(("DATA", Stage::Data, Severity::PositiveIntermediate));
        }
        if self.extensions.has("PIPELINING") {
            self.pipelined(&group).await?;
        } else {
            for &(line, stage, want) in &group {
                let reply = self.command(line, stage).await?;
                self.expect(reply, stage, want)?;
            }
        }
        if let Some(after) = stop {
            return Err(self.stopped(after));
        }
        self.send_data(&item.message).await
    }

    /// Sends a command group in one write (RFC 2920 §3.1), then reads every
    /// reply in order, so the dialogue stays in step even after a refusal.
    /// Returns the first refusal, if any.
    async fn pipelined(&mut self, group: &[(&str, Stage, Severity)]) -> Result<(), Ending> {
        let tls = self.in_tls();
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        for &(line, _, _) in group {
            self.transcript.sent(line, tls);
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let first_stage = group
            .first()
            .map_or(Stage::MailFrom, |&(_, stage, _)| stage);
        let written = self
            .write(
                &out,
                self.timeouts.command,
                "the pipelined commands to be sent",
            )
            .await;
        self.out = out;
        written.map_err(|error| failed(first_stage, error))?;

        let mut refusal: Option<Ending> = None;
        for &(line, stage, want) in group {
            let (_, awaiting) = phrases(line);
            let reply = self
                .read_reply(self.timeouts.command, awaiting)
                .await
                .map_err(|error| failed(stage, error))?;
            if reply.code == 421 {
                // The server is closing the channel (RFC 5321 §3.8): no more replies will come.
                return Err(Ending::Refused { stage, reply });
            }
            if refusal.is_some() {
                if stage == Stage::Data && reply.severity() == Severity::PositiveIntermediate {
                    // DATA accepted although MAIL or RCPT failed: end the
                    // empty message at once (RFC 2920 §3.1).
                    self.end_empty_data().await?;
                }
                continue;
            }
            if let Err(ending) = self.expect(reply, stage, want) {
                refusal = Some(ending);
            }
        }
        refusal.map_or(Ok(()), Err)
    }

    async fn end_empty_data(&mut self) -> Result<(), Ending> {
        self.transcript.sent(".", self.in_tls());
        self.write(
            b".\r\n",
            self.timeouts.command,
            "the end of data to be sent",
        )
        .await
        .map_err(|error| failed(Stage::DataEnd, error))?;
        self.read_reply(self.timeouts.data_end, "the reply to the end of data")
            .await
            .map(drop)
            .map_err(|error| failed(Stage::DataEnd, error))
    }

    /// The message content and the final ".", in one write, then the verdict on it.
    async fn send_data(&mut self, message: &[u8]) -> Result<Reply, Ending> {
        let tls = self.in_tls();
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        encode_data_into(message, &mut out);
        // Only the size: transcripts must never carry message content.
        self.transcript
            .info(format!("{} bytes of message data", out.len()));
        self.transcript.observe_content(&out, tls);
        self.transcript.sent(".", tls);
        out.extend_from_slice(b".\r\n");
        let written = self
            .write(&out, self.timeouts.command, "the message data to be sent")
            .await;
        self.out = out;
        // A write that failed never got the whole terminator out, so the
        // server cannot have taken the message: that is a failure in DATA,
        // not after it (RFC 1047's uncertainty starts with the last byte).
        written.map_err(|error| failed(Stage::Data, error))?;
        let reply = self
            .read_reply(self.timeouts.data_end, "the reply to the end of data")
            .await
            .map_err(|error| failed(Stage::DataEnd, error))?;
        self.expect(reply, Stage::DataEnd, Severity::PositiveCompletion)
    }

    /// QUIT, best-effort: its reply or failure does not change the ending.
    pub(super) async fn quit(&mut self) {
        let limit = self.timeouts.command.min(QUIT_TIMEOUT);
        self.transcript.sent("QUIT", self.in_tls());
        let result = match self.write(b"QUIT\r\n", limit, "QUIT to be sent").await {
            Ok(()) => self.read_reply(limit, "the reply to QUIT").await.map(drop),
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            self.transcript.error(error.to_string());
        }
        // For TLS this sends close_notify; a server that ignores it is harmless.
        let _ = timeout(limit, self.stream.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::Envelope;

    fn reply(lines: &[&str]) -> Reply {
        Reply::parse(lines).unwrap()
    }

    #[test]
    fn ehlo_keywords() {
        let ext = Extensions::from_ehlo(&reply(&[
            "250-mx.lab.test Hello STARTTLS friend",
            "250-PIPELINING",
            "250-SIZE 10240000",
            "250-starttls",
            "250 8BITMIME",
        ]));
        assert!(ext.has("STARTTLS"));
        assert!(ext.has("SIZE"));
        assert!(ext.has("8bitmime"));
        assert!(!ext.has("SMTPUTF8"));
        // The greeting line's words are not extensions.
        assert!(!Extensions::from_ehlo(&reply(&["250 mx STARTTLS"])).has("STARTTLS"));
    }

    #[test]
    fn mail_command_parameters() {
        let ascii = Envelope {
            mail_from: "probe@lab.test".into(),
            rcpt_to: "seed@lab.test".into(),
        };
        let utf8 = Envelope {
            mail_from: "probe@lab.test".into(),
            rcpt_to: "séed@lab.test".into(),
        };
        let none = Extensions::default();
        let all = Extensions::from_ehlo(&reply(&["250-mx", "250-8BITMIME", "250 SMTPUTF8"]));
        let cases = [
            (
                &ascii,
                &none,
                "plain".as_bytes(),
                "MAIL FROM:<probe@lab.test>",
            ),
            (
                &ascii,
                &all,
                "plain".as_bytes(),
                "MAIL FROM:<probe@lab.test>",
            ),
            (
                &ascii,
                &none,
                "café".as_bytes(),
                "MAIL FROM:<probe@lab.test>",
            ),
            (
                &ascii,
                &all,
                "café".as_bytes(),
                "MAIL FROM:<probe@lab.test> BODY=8BITMIME",
            ),
            (
                &utf8,
                &all,
                "plain".as_bytes(),
                "MAIL FROM:<probe@lab.test> SMTPUTF8",
            ),
            (
                &utf8,
                &none,
                "plain".as_bytes(),
                "MAIL FROM:<probe@lab.test>",
            ),
        ];
        for (envelope, ext, message, want) in cases {
            assert_eq!(mail_command(envelope, ext, message, None), want);
        }
        let bounce = Envelope {
            mail_from: String::new(),
            rcpt_to: "seed@lab.test".into(),
        };
        assert_eq!(mail_command(&bounce, &none, b"", None), "MAIL FROM:<>");
    }

    #[test]
    fn dsn_parameters_only_when_offered() {
        let envelope = Envelope {
            mail_from: "probe@lab.test".into(),
            rcpt_to: "seed+tag@lab.test".into(),
        };
        let dsn = Extensions::from_ehlo(&reply(&["250-mx", "250 DSN"]));
        let none = Extensions::default();
        assert_eq!(
            mail_command(&envelope, &dsn, b"x", Some("run=1+a")),
            "MAIL FROM:<probe@lab.test> RET=HDRS ENVID=run+3D1+2Ba"
        );
        assert_eq!(
            mail_command(&envelope, &none, b"x", Some("run=1+a")),
            "MAIL FROM:<probe@lab.test>"
        );
        assert_eq!(
            rcpt_command(&envelope, true),
            "RCPT TO:<seed+tag@lab.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;seed+2Btag@lab.test"
        );
        assert_eq!(
            rcpt_command(&envelope, false),
            "RCPT TO:<seed+tag@lab.test>"
        );
    }

    #[test]
    fn auth_parameters() {
        let ext = Extensions::from_ehlo(&reply(&[
            "250-mx",
            "250-AUTH PLAIN login",
            "250-AUTH=XOAUTH2",
            "250 SIZE 100",
        ]));
        assert_eq!(
            ext.params("auth"),
            Some(vec!["PLAIN".into(), "LOGIN".into(), "XOAUTH2".into()])
        );
        assert_eq!(ext.params("STARTTLS"), None);
        let bare = Extensions::from_ehlo(&reply(&["250-mx", "250 AUTH"]));
        assert_eq!(bare.params("AUTH"), Some(Vec::new()));
    }
}
