//! Parsing of command-line values with the reference's rules: sizes with k/m/g suffixes, C-style
//! numbers (decimal, `0x` hex, leading-`0` octal), octal modes, user and group ids.
//!
//! Where the reference accepts garbage by accident (an unknown size suffix silently means ×1, a
//! user name silently means uid 0), these parsers refuse it with a message instead.

use std::fmt;

/// A value that could not be parsed; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(msg: String) -> Result<T, ParseError> {
    Err(ParseError(msg))
}

/// Split a C-style unsigned number (as `strtoull(s, &end, 0)` reads it) from its suffix:
/// `0x`/`0X` followed by hex digits, `0` followed by octal digits, or decimal digits.
/// Returns the value and the unparsed rest. No sign and no whitespace are accepted.
fn split_c_number(s: &str) -> Result<(u64, &str), ParseError> {
    let (radix, digits_start) = if s.len() > 2 && (s.starts_with("0x") || s.starts_with("0X")) {
        (16, 2)
    } else if s.len() > 1 && s.starts_with('0') && s.as_bytes()[1].is_ascii_digit() {
        (8, 1)
    } else {
        (10, 0)
    };
    let body = &s[digits_start..];
    let end = body
        .char_indices()
        .find(|(_, c)| !c.is_digit(radix))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return err(format!("{s:?} is not a number"));
    }
    let value = u64::from_str_radix(&body[..end], radix)
        .map_err(|_| ParseError(format!("{s:?} is too large")))?;
    Ok((value, &body[end..]))
}

/// A C-style unsigned number without suffix: decimal, `0x` hex or leading-`0` octal.
pub fn parse_number(s: &str) -> Result<u64, ParseError> {
    let (v, rest) = split_c_number(s)?;
    if !rest.is_empty() {
        return err(format!(
            "{s:?} is not a number (decimal, 0x-hex or 0-octal)"
        ));
    }
    Ok(v)
}

/// A size in bytes: a C-style number optionally followed by one of `k`, `m`, `g` (either case;
/// powers of 1024), as the reference's `famfs creat -s` and `mkfs.famfs -l` take it.
pub fn parse_size(s: &str) -> Result<u64, ParseError> {
    let (v, rest) = split_c_number(s)?;
    let mult: u64 = match rest {
        "" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => {
            return err(format!(
                "{s:?}: unknown size suffix {rest:?} (use k, m or g, e.g. 64m)"
            ));
        }
    };
    v.checked_mul(mult)
        .ok_or_else(|| ParseError(format!("{s:?} is too large")))
}

/// A permission mode in octal (`644`, `0644`, `0o644`), at most `07777`.
pub fn parse_mode(s: &str) -> Result<u32, ParseError> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return err(format!("{s:?} is not an octal mode (e.g. 0644)"));
    }
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => err(format!("{s:?} is not a mode: at most 07777")),
    }
}

/// A user id: a number, or the name of a user on this host.
pub fn parse_uid(s: &str) -> Result<u32, ParseError> {
    parse_id(s, "user", |name| {
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    })
}

/// A group id: a number, or the name of a group on this host.
pub fn parse_gid(s: &str) -> Result<u32, ParseError> {
    parse_id(s, "group", |name| {
        nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    })
}

fn parse_id(s: &str, what: &str, lookup: impl Fn(&str) -> Option<u32>) -> Result<u32, ParseError> {
    if s.starts_with('-') {
        return err(format!("{s:?}: a {what} id cannot be negative"));
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        let v = parse_number(s)?;
        return u32::try_from(v)
            .ok()
            .filter(|&v| v != u32::MAX)
            .ok_or_else(|| ParseError(format!("{s:?} is not a valid {what} id")));
    }
    lookup(s).ok_or_else(|| ParseError(format!("{s:?}: no such {what}")))
}

/// A PRNG seed as the reference reads it (`strtoull(s, 0, 0)`), then truncated to 32 bits as its
/// pattern generator does. A seed whose low 32 bits are zero is refused: the reference would
/// silently seed from the clock and write a pattern nobody can verify.
pub fn parse_seed(s: &str) -> Result<u64, ParseError> {
    let v = parse_number(s)?;
    if v as u32 == 0 {
        return err(format!(
            "seed {s:?} is zero in its low 32 bits (the pattern uses only those); pick a non-zero seed"
        ));
    }
    Ok(v)
}

/// One `--multi` argument of `famfs creat`: `FILE,SIZE[,SEED]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiCreat {
    /// The file (a path as the command's other file arguments take it).
    pub file: String,
    /// Size in bytes (0 = keep the size of an existing file).
    pub size: u64,
    /// Seed for the data pattern, if any.
    pub seed: Option<u64>,
}

/// Parse `FILE,SIZE[,SEED]`.
pub fn parse_multi_creat(s: &str) -> Result<MultiCreat, ParseError> {
    let parts: Vec<&str> = s.split(',').collect();
    if !(2..=3).contains(&parts.len()) || parts[0].is_empty() {
        return err(format!("bad multi arg {s:?}: expected FILE,SIZE[,SEED]"));
    }
    let size = parse_size(parts[1]).map_err(|e| ParseError(format!("bad multi arg {s:?}: {e}")))?;
    let seed = match parts.get(2) {
        Some(x) => {
            Some(parse_seed(x).map_err(|e| ParseError(format!("bad multi arg {s:?}: {e}")))?)
        }
        None => None,
    };
    Ok(MultiCreat {
        file: parts[0].to_string(),
        size,
        seed,
    })
}

/// One `--multi` argument of `famfs verify`: `FILE,SEED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiVerify {
    /// The file.
    pub file: String,
    /// Its seed.
    pub seed: u64,
}

/// Parse `FILE,SEED`.
pub fn parse_multi_verify(s: &str) -> Result<MultiVerify, ParseError> {
    let parts: Vec<&str> = s.split(',').collect();
    if parts.len() != 2 || parts[0].is_empty() {
        return err(format!("bad multi arg {s:?}: expected FILE,SEED"));
    }
    let seed = parse_seed(parts[1]).map_err(|e| ParseError(format!("bad multi arg {s:?}: {e}")))?;
    Ok(MultiVerify {
        file: parts[0].to_string(),
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_follow_the_reference() {
        assert_eq!(parse_size("8192"), Ok(8192));
        assert_eq!(parse_size("0x800000"), Ok(0x80_0000));
        assert_eq!(parse_size("0X10"), Ok(16));
        assert_eq!(parse_size("010"), Ok(8), "leading 0 is octal, as strtoull");
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("0x10k"), Ok(16 << 10));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        for bad in [
            "", "k", "10x", "10MB", "1.5g", "-1", " 1", "08", "0x", "abc", "4kk",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_size("18446744073709551615").is_ok());
        assert!(parse_size("18446744073709551616").is_err());
        assert!(
            parse_size("17179869184g").is_err(),
            "overflow after the multiplier"
        );
        let e = parse_size("10MB").unwrap_err();
        assert!(e.to_string().contains("suffix"), "{e}");
    }

    #[test]
    fn numbers_modes_ids_seeds() {
        assert_eq!(parse_number("42"), Ok(42));
        assert_eq!(parse_number("0x2a"), Ok(42));
        assert_eq!(parse_number("052"), Ok(42));
        assert!(parse_number("42k").is_err());
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("0o4755"), Ok(0o4755));
        assert_eq!(parse_mode("0"), Ok(0));
        for bad in ["", "8", "0x1ff", "17777", "rw", "-644"] {
            assert!(parse_mode(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_uid("0"), Ok(0));
        assert_eq!(parse_uid("1000"), Ok(1000));
        assert_eq!(parse_uid("0x10"), Ok(16));
        assert_eq!(parse_uid("root"), Ok(0));
        assert_eq!(parse_gid("root"), Ok(0));
        assert!(
            parse_uid("-1")
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert!(parse_uid("4294967295").is_err(), "(uid_t)-1 is not an id");
        assert!(parse_uid("4294967296").is_err());
        assert!(parse_uid("no-such-user-hopefully").is_err());
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed("0x100000001"), Ok(0x1_0000_0001));
        assert!(parse_seed("0").is_err());
        assert!(parse_seed("0x100000000").is_err(), "low 32 bits zero");
    }

    #[test]
    fn multi_args() {
        assert_eq!(
            parse_multi_creat("a/b,4k,7"),
            Ok(MultiCreat {
                file: "a/b".into(),
                size: 4096,
                seed: Some(7)
            })
        );
        assert_eq!(
            parse_multi_creat("f,0").unwrap(),
            MultiCreat {
                file: "f".into(),
                size: 0,
                seed: None
            }
        );
        for bad in ["f", "f,1,2,3", ",1", "f,x", "f,1,0"] {
            assert!(parse_multi_creat(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_multi_verify("f,3"),
            Ok(MultiVerify {
                file: "f".into(),
                seed: 3
            })
        );
        for bad in ["f", "f,1,extra", "f,0", ",1"] {
            assert!(parse_multi_verify(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn size_parser_never_panics(s in ".{0,24}") {
            let _ = parse_size(&s);
            let _ = parse_mode(&s);
            let _ = parse_number(&s);
            let _ = parse_seed(&s);
            let _ = parse_multi_creat(&s);
            let _ = parse_multi_verify(&s);
        }

        #[test]
        fn sizes_round_trip(n in 0u64..(1 << 40), suffix in 0usize..4) {
            let (sfx, mult) = [("", 1u64), ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)][suffix];
            let n = n / mult;
            prop_assert_eq!(parse_size(&format!("{n}{sfx}")), Ok(n * mult));
            prop_assert_eq!(parse_size(&format!("{n:#x}{sfx}")), Ok(n * mult));
            prop_assert_eq!(parse_size(&format!("0{n:o}{}", sfx.to_uppercase())), Ok(n * mult));
        }

        #[test]
        fn modes_round_trip(m in 0u32..=0o7777) {
            prop_assert_eq!(parse_mode(&format!("{m:o}")), Ok(m));
            prop_assert_eq!(parse_mode(&format!("0{m:04o}")), Ok(m));
        }
    }
}
