//! Where a secret comes from, as written in the config, and reading it.
//!
//! A config never holds a password in clear: it names an environment variable, a file or a
//! command (as himalaya does), or an OAuth 2.0 grant. The config schema deserializes these
//! types; reading them happens here, without any knowledge of the config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::SecretString;

/// A password source, as written in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file (one trailing newline is dropped). Relative to the config file.
    File(PathBuf),
    /// The first line of a command's standard output, run with `sh -c`.
    Command(String),
    /// An OAuth 2.0 refresh token, traded for an access token before logging in with XOAUTH2
    /// (or OAUTHBEARER).
    Oauth2(OAuth2Source),
}

/// An OAuth 2.0 grant, as written in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Source {
    /// The provider's token endpoint (https only).
    pub token_url: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The client secret, for clients that have one.
    pub client_secret: Option<Box<SecretSource>>,
    /// The refresh token.
    pub refresh_token: Box<SecretSource>,
    /// SASL mechanism: `xoauth2` (default; Gmail, Outlook, Yahoo) or `oauthbearer` (RFC 7628).
    #[serde(default)]
    pub mechanism: BearerMechanism,
    /// Extra trust anchor (PEM) for the token endpoint.
    pub ca_file: Option<PathBuf>,
}

/// How a bearer token is presented over IMAP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BearerMechanism {
    /// Google's and Microsoft's SASL XOAUTH2.
    #[default]
    Xoauth2,
    /// RFC 7628 SASL OAUTHBEARER.
    Oauthbearer,
}

/// Why a secret could not be resolved. The texts never contain the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The variable is unset, empty or not valid UTF-8.
    #[error("environment variable {0} is not set (or is empty)")]
    EnvMissing(String),
    /// The file cannot be read.
    #[error("cannot read password file {path}: {source}")]
    File {
        /// The file as resolved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("password file {0} is empty")]
    FileEmpty(PathBuf),
    /// OAuth 2.0 needs a network exchange, which [`super::Credential::resolve`] makes; a
    /// grant nested in a grant (as its refresh token) has nobody to make it.
    #[error("an OAuth 2.0 grant is resolved by the token exchange")]
    NeedsExchange,
    /// A part of an OAuth 2.0 grant (`client_secret`, `refresh_token`) could not be read.
    #[error("{part}: {source}")]
    GrantPart {
        /// The field within the grant.
        part: &'static str,
        /// Why.
        source: Box<SecretError>,
    },
    /// The grant's `ca_file` is unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The token endpoint gave no access token.
    #[error(transparent)]
    OAuth2(#[from] super::oauth2::OAuth2Error),
    /// The command could not be run or failed.
    #[error("password command `{command}` failed: {reason}")]
    Command {
        /// The command as written.
        command: String,
        /// Exit status or spawn error (never its output).
        reason: String,
    },
}

impl SecretSource {
    /// Reads an environment variable or a file source. A command or an OAuth 2.0 grant needs
    /// the async runtime ([`SecretSource::read`], [`super::Credential::resolve`]): a command
    /// may hang, and only there can it be stopped. `base` is the directory of the config
    /// file, for relative paths.
    pub fn resolve(&self, base: &Path) -> Result<SecretString, SecretError> {
        match self {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(SecretString::new(v)),
                _ => Err(SecretError::EnvMissing(var.clone())),
            },
            SecretSource::File(path) => {
                let path = base.join(path);
                let text = std::fs::read_to_string(&path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if value.is_empty() {
                    return Err(SecretError::FileEmpty(path));
                }
                Ok(SecretString::new(value.to_owned()))
            }
            SecretSource::Oauth2(_) => Err(SecretError::NeedsExchange),
            SecretSource::Command(command) => Err(SecretError::Command {
                command: command.clone(),
                reason: "a password command is run only where it can be stopped".into(),
            }),
        }
    }

    /// Reads the secret, for every source but an OAuth 2.0 grant. A command that has not
    /// finished within `timeout` is stopped (with everything it started) and is an error; so
    /// is dropping this future (Ctrl-C), which stops it the same way.
    pub async fn read(&self, base: &Path, timeout: Duration) -> Result<SecretString, SecretError> {
        match self {
            SecretSource::Command(command) => run_command(command, base, timeout).await,
            other => other.resolve(base),
        }
    }
}

/// Runs `sh -c command` in its own process group and returns the first line it prints.
async fn run_command(
    command: &str,
    base: &Path,
    timeout: Duration,
) -> Result<SecretString, SecretError> {
    let fail = |reason: String| SecretError::Command {
        command: command.to_owned(),
        reason,
    };
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(base)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    // Its own group: what the shell starts (`sleep`, `gpg`) is stopped with it, and a Ctrl-C
    // at the terminal reaches probe, which decides, rather than the command alone.
    #[cfg(unix)]
    cmd.process_group(0);
    let child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    let group = KillGroup(child.id());
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => {
            return Err(fail(format!(
                "did not finish within {} (timing.imap_timeout); it was stopped",
                humantime::format_duration(timeout)
            )));
        }
        Ok(output) => output.map_err(|e| fail(e.to_string()))?,
    };
    group.disarm();
    if !output.status.success() {
        return Err(fail(output.status.to_string()));
    }
    let text = String::from_utf8(output.stdout).map_err(|_| fail("output is not UTF-8".into()))?;
    let value = text.lines().next().unwrap_or("").to_owned();
    if value.is_empty() {
        return Err(fail("printed nothing".into()));
    }
    Ok(SecretString::new(value))
}

/// Kills a command's process group when dropped, unless it ended on its own: a timeout, or
/// the run being dropped on Ctrl-C, leaves nothing of it running.
struct KillGroup(Option<u32>);

impl KillGroup {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // No signal API in std: the shell's `kill` takes a negative id as a group.
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("kill -KILL -{pgid} 2>/dev/null"))
                .stdin(std::process::Stdio::null())
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn command_first_line_failure_and_timeout() {
        let base = Path::new("/");
        let limit = Duration::from_secs(5);
        let ok = SecretSource::Command("printf 'abc\\nrest'".into())
            .read(base, limit)
            .await;
        assert_eq!(ok.unwrap().expose(), "abc");
        let err = SecretSource::Command("exit 3".into())
            .read(base, limit)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exit status: 3"), "{err}");
        let started = std::time::Instant::now();
        let err = SecretSource::Command("sleep 30".into())
            .read(base, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            err.to_string().contains("did not finish within 200ms"),
            "{err}"
        );
    }

    #[test]
    fn file_strips_one_newline() {
        let dir = std::env::temp_dir().join(format!("seedprobe-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
        let v = SecretSource::File("pw".into()).resolve(&dir).unwrap();
        assert_eq!(v.expose(), "s3cret");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
