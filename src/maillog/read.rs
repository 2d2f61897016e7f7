//! Reading logs: files, rotated `.gz` files (recognised by their first bytes, whatever their
//! name), and standard input, in chunks, each complete line handed on as bytes.
//!
//! Memory stays flat in the log's size: one buffer, reused; a line longer than the buffer (no
//! Postfix line is) is skipped rather than grown into.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The chunk size: large enough that a read call is rare, small enough to stay in cache.
const CHUNK: usize = 256 * 1024;

/// A log could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", name(path))]
pub struct ReadError {
    /// The file (`-` for standard input).
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

fn name(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Reads `path` (`-`: standard input), gunzipping it when it is gzip data, and calls `line`
/// for each line without its line end. Returns the number of lines.
pub fn each_line(path: &Path, line: &mut dyn FnMut(&[u8])) -> Result<u64, ReadError> {
    let fail = |source| ReadError {
        path: path.to_owned(),
        source,
    };
    if path == Path::new("-") {
        let stdin = std::io::stdin().lock();
        return lines(BufReader::with_capacity(CHUNK, stdin), line).map_err(fail);
    }
    let file = std::fs::File::open(path).map_err(fail)?;
    let mut reader = BufReader::with_capacity(CHUNK, file);
    let gzip = reader.fill_buf().map_err(fail)?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        let decoder = flate2::bufread::MultiGzDecoder::new(reader);
        lines(decoder, line).map_err(fail)
    } else {
        lines(reader, line).map_err(fail)
    }
}

/// The chunk loop: complete lines from the buffer, the incomplete tail moved to its front.
fn lines(mut input: impl Read, line: &mut dyn FnMut(&[u8])) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    let mut count = 0u64;
    // Inside a line too long for the buffer: drop bytes up to its end.
    let mut skipping = false;
    loop {
        let n = match input.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if filled > 0 && !skipping {
                count += 1;
                line(trim_cr(&buf[..filled]));
            }
            return Ok(count);
        }
        let end = filled + n;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[filled..end]) {
            let at = filled + nl;
            if skipping {
                skipping = false;
            } else {
                count += 1;
                line(trim_cr(&buf[start..at]));
            }
            start = at + 1;
        }
        if start == 0 && end == buf.len() {
            // One line fills the whole buffer: it is no log line; skip to its end.
            skipping = true;
            filled = 0;
            count += 1;
            continue;
        }
        buf.copy_within(start..end, 0);
        filled = end - start;
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8]) -> (u64, Vec<String>) {
        let mut seen = Vec::new();
        let n = lines(input, &mut |l| {
            seen.push(String::from_utf8_lossy(l).into_owned())
        })
        .unwrap();
        (n, seen)
    }

    #[test]
    fn lines_across_chunks_and_ends() {
        let rows: &[(&[u8], &[&str])] = &[
            (b"", &[]),
            (b"a\nb\n", &["a", "b"]),
            (b"a\r\nb", &["a", "b"]),
            (b"\n\n", &["", ""]),
        ];
        for (input, want) in rows {
            let (n, got) = collect(input);
            assert_eq!(got, *want, "{input:?}");
            assert_eq!(n, want.len() as u64);
        }
        // Lines that straddle chunk boundaries arrive whole.
        let many: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        let (n, got) = collect(many.as_bytes());
        assert_eq!(n, 50_000);
        assert_eq!(got[49_999], "line 49999");
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, l)| *l == format!("line {i}"))
        );
        // A line longer than the buffer is skipped, the next one kept.
        let mut long = vec![b'x'; CHUNK * 2 + 7];
        long.extend_from_slice(b"\nafter\n");
        let (_, got) = collect(&long);
        assert_eq!(got, ["after"]);
    }

    #[test]
    fn gzip_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let plain = "one\ntwo\n";
        let gz = dir.path().join("mail.log.1.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, plain.as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let mut seen = Vec::new();
        let n = each_line(&gz, &mut |l| seen.push(l.to_vec())).unwrap();
        assert_eq!((n, seen), (2, vec![b"one".to_vec(), b"two".to_vec()]));

        let broken = dir.path().join("broken.gz");
        std::fs::write(&broken, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
        let err = each_line(&broken, &mut |_| {}).unwrap_err().to_string();
        assert!(err.starts_with(&broken.display().to_string()), "{err}");

        let missing = dir.path().join("missing.log");
        let err = each_line(&missing, &mut |_| {}).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: ", missing.display())),
            "{err}"
        );
    }
}
