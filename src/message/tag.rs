use std::fmt;
use std::str::FromStr;

/// A unique message tag: a ULID, so tokens sort by sending time and never collide across runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(ulid::Ulid);

impl Token {
    /// A fresh token.
    pub fn generate() -> Self {
        Token(ulid::Ulid::new())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Token {
    type Err = ulid::DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ulid::Ulid::from_string(s.trim()).map(Token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unique() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<Token>().unwrap(), a);
        assert_eq!(a.to_string().len(), 26);
    }
}
