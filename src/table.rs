//! The data tables compiled into the binary: the `*.tsv` files beside the code that reads
//! each (provider replies, reason phrases, status codes, report markers, DNS lists). They
//! change more often than the code, so they share one rule for what is a row: a line that is
//! neither blank nor a comment (`#`, after any indentation). Columns are tab-separated; what
//! they mean is each reader's own.

/// The rows of a table, each with its line number (from 1) for errors that name the line.
pub fn rows(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| {
            let t = line.trim();
            !t.is_empty() && !t.starts_with('#')
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn blank_and_comment_lines_are_no_rows() {
        let text = "# a comment\n\na\tb\n  # indented comment\n \t \nc\n";
        let rows: Vec<_> = super::rows(text).collect();
        assert_eq!(rows, [(3, "a\tb"), (6, "c")]);
    }
}
