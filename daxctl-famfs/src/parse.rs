//! Parsers for sysfs attribute values and daxctl-style name filters.
//!
//! Every function takes untrusted text (a sysfs file or a command-line argument) and returns
//! `None` instead of panicking on anything unexpected.

/// Strips one trailing newline, as daxctl does for every attribute it reads.
pub fn attr_text(raw: &str) -> &str {
    raw.strip_suffix('\n').unwrap_or(raw)
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a dax device name `dax<region>.<instance>` in canonical form (no sign, no leading
/// zeros, nothing after it), the form the kernel's `new_id` accepts.
pub fn parse_dax_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("dax")?;
    let (r, i) = rest.split_once('.')?;
    Some((canonical_u32(r)?, canonical_u32(i)?))
}

fn canonical_u32(s: &str) -> Option<u32> {
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    u32::try_from(digits(s)?).ok()
}

/// Parses a decimal attribute (`size`, `align`, `available_size`, `dax_region/id`).
pub fn parse_dec_u64(raw: &str) -> Option<u64> {
    digits(attr_text(raw).trim())
}

/// Parses a number in either form sysfs prints: decimal, or hexadecimal with a `0x` prefix.
pub fn parse_u64(raw: &str) -> Option<u64> {
    let t = attr_text(raw).trim();
    if t.starts_with("0x") || t.starts_with("0X") {
        parse_hex_u64(t)
    } else {
        parse_dec_u64(t)
    }
}

/// Parses a signed decimal attribute (`target_node`, `numa_node`).
pub fn parse_dec_i64(raw: &str) -> Option<i64> {
    let t = attr_text(raw).trim();
    match t.strip_prefix('-') {
        Some(d) => digits(d).and_then(|v| i64::try_from(v).ok()).map(|v| -v),
        None => digits(t).and_then(|v| i64::try_from(v).ok()),
    }
}

/// Parses a hexadecimal attribute with or without a `0x` prefix (`resource`, `mappingN/start`,
/// `phys_index`, `block_size_bytes`).
pub fn parse_hex_u64(raw: &str) -> Option<u64> {
    let t = attr_text(raw).trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.is_empty() || t.len() > 16 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(t, 16).ok()
}

/// Parses a `dev` attribute `major:minor`.
pub fn parse_devnum(raw: &str) -> Option<(u32, u32)> {
    let (a, b) = attr_text(raw).trim().split_once(':')?;
    Some((
        u32::try_from(digits(a)?).ok()?,
        u32::try_from(digits(b)?).ok()?,
    ))
}

/// Splits a Linux `dev_t` into (major, minor) with glibc's encoding.
pub fn split_dev_t(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (major as u32, minor as u32)
}

/// Parses the name written to a driver's `new_id`/`remove_id`/`bind`/`unbind`, accepting the
/// encodings the kernel tolerates: a trailing newline (echo) or trailing NULs (libdaxctl).
pub fn parse_written_name(buf: &[u8]) -> Option<&str> {
    let mut end = buf.len();
    while end > 0 && buf[end - 1] == 0 {
        end -= 1;
    }
    let s = std::str::from_utf8(&buf[..end]).ok()?;
    Some(s.strip_suffix('\n').unwrap_or(s))
}

/// A daxctl device filter (`-d` / the positional device argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceFilter {
    /// `all`
    All,
    /// `daxX.Y` or `X.Y`.
    Id {
        /// Region id.
        region: u32,
        /// Instance id.
        instance: u32,
    },
    /// Anything else: matches nothing (daxctl then reports zero devices).
    NoMatch(String),
}

impl DeviceFilter {
    /// Parses a device argument; a path such as `/dev/dax0.0` is reduced to its basename.
    pub fn parse(arg: &str) -> Self {
        let base = arg.rsplit('/').next().unwrap_or(arg);
        if base == "all" {
            return DeviceFilter::All;
        }
        let name = if base.starts_with("dax") {
            base.to_string()
        } else {
            format!("dax{base}")
        };
        match parse_dax_name(&name) {
            Some((region, instance)) => DeviceFilter::Id { region, instance },
            None => DeviceFilter::NoMatch(arg.to_string()),
        }
    }

    /// Whether a device name passes the filter.
    pub fn matches(&self, region: u32, instance: u32) -> bool {
        match self {
            DeviceFilter::All => true,
            DeviceFilter::Id {
                region: r,
                instance: i,
            } => *r == region && *i == instance,
            DeviceFilter::NoMatch(_) => false,
        }
    }
}

/// A daxctl region filter (`-r`): `all`, `N` or `regionN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionFilter {
    /// `all`
    All,
    /// A region id.
    Id(u32),
    /// Anything else: matches nothing.
    NoMatch(String),
}

impl RegionFilter {
    /// Parses a region argument.
    pub fn parse(arg: &str) -> Self {
        if arg == "all" {
            return RegionFilter::All;
        }
        let n = arg.strip_prefix("region").unwrap_or(arg);
        match digits(n).and_then(|v| u32::try_from(v).ok()) {
            Some(id) => RegionFilter::Id(id),
            None => RegionFilter::NoMatch(arg.to_string()),
        }
    }

    /// Whether a region id passes the filter.
    pub fn matches(&self, id: u32) -> bool {
        match self {
            RegionFilter::All => true,
            RegionFilter::Id(r) => *r == id,
            RegionFilter::NoMatch(_) => false,
        }
    }
}

/// daxctl's `--human` size text: plain digits below 5000 KiB, otherwise
/// `"X.YY MiB (X.YY MB)"` below 2 GiB and `"X.YY GiB (X.YY GB)"` above, with daxctl's rounding
/// (centi-units, rounded half up). Returns `None` when the value stays a plain number.
pub fn human_size(bytes: u64) -> Option<String> {
    if bytes < 5000 * 1024 {
        return None;
    }
    // Computed as daxctl does: centi-units, then (x + 1) / 2 (= ceil(x / 2)) to round half up.
    let b = bytes as u128;
    let two_gib = 2u128 << 30;
    let (unit, iec_unit): (u128, &str) = if b < two_gib {
        (1 << 20, "MiB")
    } else {
        (1 << 30, "GiB")
    };
    let iec = (b * 200 / unit).div_ceil(2);
    let (jedec, jedec_unit) = if b < two_gib {
        ((b / (1_000_000 / 200)).div_ceil(2), "MB")
    } else {
        ((b / (1_000_000_000 / 200)).div_ceil(2), "GB")
    };
    Some(format!(
        "{}.{:02} {iec_unit} ({}.{:02} {jedec_unit})",
        iec / 100,
        iec % 100,
        jedec / 100,
        jedec % 100
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dax_names() {
        assert_eq!(parse_dax_name("dax0.0"), Some((0, 0)));
        assert_eq!(parse_dax_name("dax12.3"), Some((12, 3)));
        for bad in [
            "dax0", "dax.0", "dax0.", "dax-1.0", "dax00.0", "dax0.0x", "dax0.0\n", "mem0.0", "",
        ] {
            assert_eq!(parse_dax_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_dec_u64("4294967296\n"), Some(4 << 30));
        assert_eq!(parse_dec_u64("0x10"), None);
        assert_eq!(parse_dec_i64("-1\n"), Some(-1));
        assert_eq!(parse_dec_i64("3"), Some(3));
        assert_eq!(parse_hex_u64("0x100000000\n"), Some(1 << 32));
        assert_eq!(parse_hex_u64("8000000\n"), Some(128 << 20));
        assert_eq!(parse_hex_u64("00000020"), Some(32));
        assert_eq!(parse_hex_u64("0x"), None);
        assert_eq!(parse_hex_u64("0x1g"), None);
        assert_eq!(parse_hex_u64("0x10000000000000000"), None);
        assert_eq!(parse_devnum("252:3\n"), Some((252, 3)));
        assert_eq!(parse_devnum("252"), None);
    }

    #[test]
    fn written_names() {
        assert_eq!(parse_written_name(b"dax0.0\0"), Some("dax0.0"));
        assert_eq!(parse_written_name(b"dax0.0\n"), Some("dax0.0"));
        assert_eq!(parse_written_name(b"dax0.0"), Some("dax0.0"));
        assert_eq!(parse_written_name(b"\xff"), None);
    }

    #[test]
    fn dev_t_split() {
        // makedev(252, 3) with glibc's encoding
        let dev = (252u64 << 8) | 3;
        assert_eq!(split_dev_t(dev), (252, 3));
        let big = ((0x1234u64 & 0xfffff000) << 32) | ((0x1234 & 0xfff) << 8) | 0x56;
        assert_eq!(split_dev_t(big), (0x1234, 0x56));
    }

    #[test]
    fn filters() {
        assert_eq!(DeviceFilter::parse("all"), DeviceFilter::All);
        assert_eq!(
            DeviceFilter::parse("/dev/dax1.2"),
            DeviceFilter::Id {
                region: 1,
                instance: 2
            }
        );
        assert_eq!(
            DeviceFilter::parse("1.2"),
            DeviceFilter::Id {
                region: 1,
                instance: 2
            }
        );
        assert!(matches!(
            DeviceFilter::parse("foo"),
            DeviceFilter::NoMatch(_)
        ));
        assert_eq!(RegionFilter::parse("region3"), RegionFilter::Id(3));
        assert_eq!(RegionFilter::parse("3"), RegionFilter::Id(3));
        assert_eq!(RegionFilter::parse("all"), RegionFilter::All);
        assert!(!RegionFilter::parse("x").matches(0));
    }

    #[test]
    fn human_sizes_like_daxctl() {
        assert_eq!(human_size(4096), None);
        assert_eq!(human_size(5000 * 1024 - 1), None);
        assert_eq!(human_size(4 << 30).as_deref(), Some("4.00 GiB (4.29 GB)"));
        assert_eq!(
            human_size(128 << 30).as_deref(),
            Some("128.00 GiB (137.44 GB)")
        );
        assert_eq!(
            human_size(16_777_216_000).as_deref(),
            Some("15.63 GiB (16.78 GB)")
        );
        assert_eq!(
            human_size(256 << 20).as_deref(),
            Some("256.00 MiB (268.44 MB)")
        );
        assert_eq!(
            human_size(1 << 30).as_deref(),
            Some("1024.00 MiB (1073.74 MB)")
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".*", b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_dax_name(&s);
            let _ = parse_dec_u64(&s);
            let _ = parse_dec_i64(&s);
            let _ = parse_hex_u64(&s);
            let _ = parse_u64(&s);
            let _ = parse_devnum(&s);
            let _ = parse_written_name(&b);
            let _ = DeviceFilter::parse(&s);
            let _ = RegionFilter::parse(&s);
        }

        #[test]
        fn dec_roundtrip(v in any::<u64>()) {
            prop_assert_eq!(parse_dec_u64(&format!("{v}\n")), Some(v));
        }

        /// Both forms a sysfs number comes in (moved from famfs-fsdev's device sizes).
        #[test]
        fn either_form_roundtrips(v in any::<u64>()) {
            prop_assert_eq!(parse_u64(&format!("{v}\n")), Some(v));
            prop_assert_eq!(parse_u64(&format!("0x{v:x}")), Some(v));
            prop_assert_eq!(parse_u64(&format!(" {v:#X} ")), Some(v));
        }

        #[test]
        fn hex_roundtrip(v in any::<u64>()) {
            prop_assert_eq!(parse_hex_u64(&format!("{v:#x}\n")), Some(v));
            prop_assert_eq!(parse_hex_u64(&format!("{v:08x}")), Some(v));
        }

        #[test]
        fn name_roundtrip(r in any::<u32>(), i in any::<u32>()) {
            let n = format!("dax{r}.{i}");
            prop_assert_eq!(parse_dax_name(&n), Some((r, i)));
            let mut w = n.clone().into_bytes();
            w.push(0);
            prop_assert_eq!(parse_written_name(&w), Some(n.as_str()));
        }

        #[test]
        fn human_size_total(v in any::<u64>()) {
            if let Some(s) = human_size(v) {
                prop_assert!(s.ends_with("B)"));
            }
        }
    }
}
