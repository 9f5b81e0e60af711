//! daxctl-famfs parsers of sysfs attribute values and device/region names (`parse` module),
//! which read what a (possibly emulated or hostile) sysfs tree holds. Input: the attribute text
//! (lossy UTF-8); its first 8 bytes also serve as a raw `dev_t` and a size.
//!
//! Invariants: never panics; every accepted value prints back to text that parses to the same
//! value; device names are accepted in canonical form only; the `dev_t` split is undone by
//! `makedev`; what libdaxctl writes to a driver file reads back as the name written.
#![no_main]

use daxctl_famfs::parse::{
    DeviceFilter, RegionFilter, attr_text, human_size, parse_dax_name, parse_dec_i64,
    parse_dec_u64, parse_devnum, parse_hex_u64, parse_u64, parse_written_name, split_dev_t,
};
use daxctl_famfs::{DaxMode, daxctl_encoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s: &str = &text;
    let _ = attr_text(s);
    if let Some(v) = parse_dec_u64(s) {
        assert_eq!(parse_dec_u64(&format!("{v}\n")), Some(v));
        assert_eq!(parse_u64(s), Some(v));
    }
    if let Some(v) = parse_hex_u64(s) {
        assert_eq!(parse_hex_u64(&format!("{v:#x}\n")), Some(v));
        assert_eq!(parse_u64(&format!("{v:#x}")), Some(v));
    }
    if let Some(v) = parse_u64(s) {
        assert!(parse_dec_u64(s) == Some(v) || parse_hex_u64(s) == Some(v));
    }
    if let Some(v) = parse_dec_i64(s) {
        assert_eq!(parse_dec_i64(&v.to_string()), Some(v));
    }
    if let Some((r, i)) = parse_dax_name(s) {
        assert_eq!(s, format!("dax{r}.{i}"));
    }
    if let Some((a, b)) = parse_devnum(s) {
        assert_eq!(parse_devnum(&format!("{a}:{b}\n")), Some((a, b)));
    }
    match DeviceFilter::parse(s) {
        DeviceFilter::Id { region, instance } => {
            assert!(DeviceFilter::parse(s).matches(region, instance));
            assert_eq!(
                DeviceFilter::parse(&format!("/dev/dax{region}.{instance}")),
                DeviceFilter::Id { region, instance }
            );
        }
        DeviceFilter::All => assert!(DeviceFilter::All.matches(0, 0)),
        DeviceFilter::NoMatch(a) => assert_eq!(a, s),
    }
    if let RegionFilter::Id(id) = RegionFilter::parse(s) {
        assert_eq!(RegionFilter::parse(&format!("region{id}")), RegionFilter::Id(id));
    }
    if let Ok(mode) = s.parse::<DaxMode>() {
        assert_eq!(mode.to_string(), s);
        assert_eq!(DaxMode::from_driver(mode.driver()), mode);
    }
    let _ = DaxMode::from_driver(Some(s)).list_name();

    let _ = parse_written_name(data);
    if !s.ends_with(['\n', '\0']) {
        assert_eq!(parse_written_name(&daxctl_encoding(s)), Some(s));
    }

    let mut raw = [0u8; 8];
    raw[..data.len().min(8)].copy_from_slice(&data[..data.len().min(8)]);
    let dev = u64::from_le_bytes(raw);
    let (major, minor) = split_dev_t(dev);
    assert_eq!(libc::makedev(major, minor), dev);
    if let Some(h) = human_size(dev) {
        assert!(h.contains("iB (") && h.ends_with("B)"));
    }
});
