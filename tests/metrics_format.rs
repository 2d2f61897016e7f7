//! A reader for the Prometheus text exposition format, to check `--metrics-file` output
//! (`lab::compare`) sample by sample, and the test that it reads the format right.

/// A sample: metric name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// Parses a `name{labels} value` sample line of the exposition format; `None` when malformed.
pub fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let name_ok = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if name.is_empty() || !name_ok {
        return None;
    }
    let mut chars = line[name_end..].chars().peekable();
    let mut labels = Vec::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        loop {
            if chars.peek() == Some(&'}') {
                chars.next();
                break;
            }
            let mut label = String::new();
            loop {
                match chars.next()? {
                    '=' => break,
                    c if c.is_ascii_alphanumeric() || c == '_' => label.push(c),
                    _ => return None,
                }
            }
            if label.is_empty() || chars.next()? != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()? {
                    '\\' => match chars.next()? {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        _ => return None,
                    },
                    '"' => break,
                    '\n' => return None,
                    c => value.push(c),
                }
            }
            labels.push((label, value));
            match chars.next()? {
                ',' => {}
                '}' => break,
                _ => return None,
            }
        }
    }
    if chars.next()? != ' ' {
        return None;
    }
    let value: f64 = chars.collect::<String>().parse().ok()?;
    Some((name.to_owned(), labels, value))
}

#[test]
fn the_sample_parser_follows_the_exposition_format() {
    let (n, l, v) = parse_sample(r#"a_b{x="1",y="q\"\\\n"} 2.5"#).unwrap();
    assert_eq!((n.as_str(), v), ("a_b", 2.5));
    assert_eq!(
        l,
        [("x".into(), "1".into()), ("y".into(), "q\"\\\n".into())]
    );
    assert_eq!(parse_sample("up 1").unwrap().2, 1.0);
    for bad in [
        "up",
        "up x",
        r#"a{x=1} 1"#,
        r#"a{x="1} 1"#,
        "9a 1",
        r#"a{x="1"y="2"} 1"#,
    ] {
        assert!(parse_sample(bad).is_none(), "{bad}");
    }
}
