//! `daxctl list` / `reconfigure-device` JSON, printed the way daxctl prints it (json-c's
//! "pretty" format): two-space indent, `"key":value` with no space, `/` escaped as `\/`, keys
//! in daxctl's order, `--human` sizes and hex strings, and a bare object instead of a
//! one-element array under `--human`.

use std::fmt::Write as _;

use crate::parse::{DeviceFilter, RegionFilter, human_size};
use crate::{DaxDev, DaxMode, Region, Result, Sysfs};

/// A JSON value with daxctl's number display rules.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// Integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// String.
    Str(String),
    /// A byte size: a number, or a human string under `--human` (≥ 5000 KiB).
    Size(u64),
    /// An address: a number, or a `0x` string under `--human`.
    Hex(u64),
    /// Array.
    Array(Vec<Json>),
    /// Object with ordered keys.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Renders in json-c's pretty format at nesting `level`.
    pub fn render(&self, human: bool) -> String {
        let mut out = String::new();
        self.write(&mut out, 0, human);
        out
    }

    fn write(&self, out: &mut String, level: usize, human: bool) {
        match self {
            Json::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Str(s) => escape(out, s),
            // json-c stores these as int64; daxctl prints them with %lld.
            Json::Size(v) => match human.then(|| human_size(*v)).flatten() {
                Some(h) => escape(out, &h),
                None => {
                    let _ = write!(out, "{}", *v as i64);
                }
            },
            Json::Hex(v) => {
                if human && *v == 0 {
                    // C's %#llx prints a bare 0 for zero.
                    out.push_str("\"0\"");
                } else if human {
                    let _ = write!(out, "\"{v:#x}\"");
                } else {
                    let _ = write!(out, "{}", *v as i64);
                }
            }
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('\n');
                    indent(out, level + 1);
                    item.write(out, level + 1, human);
                }
                if !items.is_empty() {
                    out.push('\n');
                    indent(out, level);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('\n');
                    indent(out, level + 1);
                    escape(out, k);
                    out.push(':');
                    v.write(out, level + 1, human);
                }
                if !fields.is_empty() {
                    out.push('\n');
                    indent(out, level);
                }
                out.push('}');
            }
        }
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// json-c's string escaping (including `\/`).
fn escape(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Prints a list the way daxctl does: nothing for an empty list, the bare object for one item
/// under `--human`, otherwise the array. Ends with a newline.
pub fn display_array(items: Vec<Json>, human: bool) -> String {
    if items.is_empty() {
        return String::new();
    }
    let v = if human && items.len() == 1 {
        items.into_iter().next().unwrap_or(Json::Array(Vec::new()))
    } else {
        Json::Array(items)
    };
    let mut s = v.render(human);
    s.push('\n');
    s
}

/// Options of `list`, as daxctl's.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `-r`: region filter.
    pub region: Option<String>,
    /// `-d`: device filter.
    pub dev: Option<String>,
    /// `-D`: include devices.
    pub devices: bool,
    /// `-R`: include regions.
    pub regions: bool,
    /// `-M`: include mappings.
    pub mappings: bool,
    /// `-i`: include idle (zero-size) devices.
    pub idle: bool,
    /// `-u`: human-friendly numbers.
    pub human: bool,
    /// List in numeric order instead of daxctl's (reverse directory) order.
    pub sorted: bool,
}

/// A device as daxctl prints it (keys: chardev, size, target_node, align, mode, and for
/// system-ram online_memblocks, total_memblocks, movable; state, mappings).
pub fn device_json(sysfs: &Sysfs, dev: &DaxDev, mappings: bool) -> Json {
    let mut f: Vec<(String, Json)> = Vec::new();
    let mut add = |k: &str, v: Json| f.push((k.to_string(), v));
    add("chardev", Json::Str(dev.name.clone()));
    add("size", Json::Size(dev.size));
    if let Some(n) = dev.target_node {
        add("target_node", Json::Int(n.into()));
    }
    if dev.align > 0 {
        add("align", Json::Size(dev.align));
    }
    let mode = dev.mode();
    add("mode", Json::Str(mode.list_name().to_string()));
    if mode == DaxMode::SystemRam && dev.resource != 0 {
        // daxctl prints the (negative) error code when counting fails.
        let neg = |e: crate::Error| -i64::from(e.errno().unwrap_or(libc::EIO));
        match sysfs.memory_status(dev) {
            Ok(st) => {
                add("online_memblocks", Json::Int(st.online as i64));
                add("total_memblocks", Json::Int(st.total as i64));
                if let Some(m) = st.movable {
                    add("movable", Json::Bool(m));
                }
            }
            Err(e) => {
                let code = neg(e);
                add("online_memblocks", Json::Int(code));
                add("total_memblocks", Json::Int(code));
            }
        }
    }
    if !dev.is_enabled() {
        add("state", Json::Str("disabled".into()));
    }
    if mappings && !dev.mappings.is_empty() {
        let maps = dev
            .mappings
            .iter()
            .map(|m| {
                Json::Object(vec![
                    ("page_offset".into(), Json::Hex(m.page_offset)),
                    ("start".into(), Json::Hex(m.start)),
                    ("end".into(), Json::Hex(m.end)),
                    ("size".into(), Json::Size(m.size())),
                ])
            })
            .collect();
        add("mappings", Json::Array(maps));
    }
    Json::Object(f)
}

fn devices_of(
    sysfs: &Sysfs,
    region: &Region,
    filter: &DeviceFilter,
    opts: &ListOptions,
) -> Vec<Json> {
    region
        .devices
        .iter()
        .filter(|d| filter.matches(d.region_id, d.instance))
        .filter(|d| opts.idle || d.size != 0)
        .map(|d| device_json(sysfs, d, opts.mappings))
        .collect()
}

/// A region as daxctl prints it (path, id, size, available_size, align, devices). `None` when
/// the region is not under `<root>/devices` (daxctl drops it with an error).
pub fn region_json(
    sysfs: &Sysfs,
    region: &Region,
    filter: &DeviceFilter,
    opts: &ListOptions,
    with_devices: bool,
) -> Option<Json> {
    let devroot = std::fs::canonicalize(sysfs.sys_root().join("devices"))
        .unwrap_or_else(|_| sysfs.sys_root().join("devices"));
    let rel = region.path.strip_prefix(&devroot).ok()?;
    let mut f = vec![
        ("path".to_string(), Json::Str(format!("/{}", rel.display()))),
        ("id".to_string(), Json::Int(region.id.into())),
    ];
    if let Some(s) = region.size {
        f.push(("size".into(), Json::Size(s)));
    }
    if region.available_size != 0 {
        f.push(("available_size".into(), Json::Size(region.available_size)));
    }
    if let Some(a) = region.align {
        f.push(("align".into(), Json::Int(a as i64)));
    }
    if with_devices {
        let devs = devices_of(sysfs, region, filter, opts);
        if !devs.is_empty() {
            f.push(("devices".into(), Json::Array(devs)));
        }
    }
    Some(Json::Object(f))
}

/// Result of a `list`: the text to print and whether a region had to be dropped (daxctl then
/// exits with ENOMEM's status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOutput {
    /// What goes to stdout (possibly empty).
    pub text: String,
    /// Regions dropped because they are not under `/sys/devices`.
    pub dropped: Vec<String>,
}

/// `daxctl list` with the same selection rules: without -D/-R, `-r` selects regions and `-d`
/// devices, and neither selects devices; -R with -D nests devices in regions; zero-size
/// devices need `-i`.
pub fn list(sysfs: &Sysfs, opts: &ListOptions) -> Result<ListOutput> {
    let mut devices = opts.devices;
    let mut regions = opts.regions;
    if !devices && !regions {
        regions = opts.region.is_some();
        devices = opts.dev.is_some();
    }
    if !devices && !regions {
        devices = true;
    }
    let rfilter = opts
        .region
        .as_deref()
        .map(RegionFilter::parse)
        .unwrap_or(RegionFilter::All);
    let dfilter = opts
        .dev
        .as_deref()
        .map(DeviceFilter::parse)
        .unwrap_or(DeviceFilter::All);
    let mut items = Vec::new();
    let mut dropped = Vec::new();
    let regions_found = if opts.sorted {
        sysfs.list_sorted()?
    } else {
        sysfs.list()?
    };
    for region in regions_found {
        if !rfilter.matches(region.id) {
            continue;
        }
        if regions {
            match region_json(sysfs, &region, &dfilter, opts, devices) {
                Some(j) => items.push(j),
                None => dropped.push(region.path.display().to_string()),
            }
        } else {
            items.extend(devices_of(sysfs, &region, &dfilter, opts));
        }
    }
    Ok(ListOutput {
        text: display_array(items, opts.human),
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_c_pretty_format() {
        let v = Json::Array(vec![Json::Object(vec![
            ("path".into(), Json::Str("/platform/hmem.0".into())),
            ("id".into(), Json::Int(0)),
            (
                "devices".into(),
                Json::Array(vec![Json::Object(vec![
                    ("chardev".into(), Json::Str("dax0.0".into())),
                    ("size".into(), Json::Size(4 << 30)),
                    ("movable".into(), Json::Bool(true)),
                ])]),
            ),
            ("empty".into(), Json::Array(vec![])),
            ("eo".into(), Json::Object(vec![])),
        ])]);
        let expect = "[\n  {\n    \"path\":\"\\/platform\\/hmem.0\",\n    \"id\":0,\n    \
\"devices\":[\n      {\n        \"chardev\":\"dax0.0\",\n        \"size\":4294967296,\n        \
\"movable\":true\n      }\n    ],\n    \"empty\":[],\n    \"eo\":{}\n  }\n]";
        assert_eq!(v.render(false), expect);
        assert!(v.render(true).contains("\"size\":\"4.00 GiB (4.29 GB)\""));
    }

    #[test]
    fn human_hex_and_small_sizes() {
        let v = Json::Object(vec![
            ("start".into(), Json::Hex(0x1_0000_0000)),
            ("size".into(), Json::Size(2 << 20)),
        ]);
        assert_eq!(
            v.render(true),
            "{\n  \"start\":\"0x100000000\",\n  \"size\":2097152\n}"
        );
        assert_eq!(
            v.render(false),
            "{\n  \"start\":4294967296,\n  \"size\":2097152\n}"
        );
    }

    #[test]
    fn escapes_like_json_c() {
        let mut s = String::new();
        escape(&mut s, "a\"b\\c/d\n\u{1}");
        assert_eq!(s, "\"a\\\"b\\\\c\\/d\\n\\u0001\"");
    }

    #[test]
    fn display_array_rules() {
        let one = vec![Json::Object(vec![("id".into(), Json::Int(1))])];
        assert_eq!(display_array(one.clone(), true), "{\n  \"id\":1\n}\n");
        assert_eq!(display_array(one, false), "[\n  {\n    \"id\":1\n  }\n]\n");
        assert_eq!(display_array(vec![], false), "");
    }
}
