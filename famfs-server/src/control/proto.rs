//! The control channel's wire format, version 1.
//!
//! A connection carries frames in both directions: a 4-byte little-endian length, then that
//! many bytes of JSON (at most [`MAX_FRAME`]). The client sends one request frame and reads one
//! reply frame, as often as it likes, on one connection.
//!
//! Request: `{"v":1,"op":"<op>", ...fields}`. Ops: `hello`, `lookup`, `create`, `mkdir`,
//! `append-file`, `status`, `set-log-level` (see [`Request`]). A request with another `v` is
//! answered `unsupported-version`; an unknown `op`, `unsupported-op`: a newer client can fall
//! back when an older daemon does not know what it asks.
//!
//! Reply: `{"v":1,"ok":{"kind":"<kind>", ...}}` ([`Answer`]) or `{"v":1,"err":{"errno":N,
//! "kind":"<kind>","chain":["message","cause",...]}}` ([`WireError`]). An error carries the
//! message of the error and of each of its causes, so a client prints exactly what the daemon's
//! code would have printed in its own process.
//!
//! Paths are relative to the famfs root ("" is the root), as the log stores them: a JSON string
//! when they are UTF-8, else an array of bytes ([`WirePath`]).
//!
//! Every frame is untrusted: [`parse_request`] and [`parse_reply`] never panic, and a frame
//! longer than [`MAX_FRAME`] is refused before it is read.

use std::io::{Read, Write};

use famfs_log::LogError;
use famfs_log::namespace::NsError;
use serde::{Deserialize, Serialize};

/// The protocol version this daemon speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side accepts (requests are a few hundred bytes).
pub const MAX_FRAME: usize = 1 << 20;

/// The extended attribute of a mount's root directory that holds the control socket's path.
pub const CONTROL_XATTR: &str = "user.famfs.control";

mod wire;
pub use wire::*;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Start a session. With `host` (this host's system UUID, as the client determined it), the
    /// session may append: the daemon refuses (`not-master`) unless `host` owns the file system
    /// and the daemon serves it as the master, as an in-process writer would.
    Hello {
        /// The client's system UUID (text form).
        host: Option<String>,
    },
    /// The node at `path`, or none.
    Lookup {
        /// The path.
        path: WirePath,
    },
    /// Allocate and log a new file.
    Create {
        /// The path (its parent must exist).
        path: WirePath,
        /// Size in bytes.
        size: u64,
        /// Owner and mode.
        attr: WireAttr,
        /// Placement.
        policy: WirePolicy,
        /// When something is at `path` already, answer [`Answer::Node`] with it instead of
        /// refusing (a lookup and a create in one request, under one lock). A path through a
        /// file is then refused as a lookup refuses it (`not-a-directory`).
        #[serde(default)]
        existing: bool,
    },
    /// Log a directory; with `parents`, also its missing parents (an existing directory is
    /// fine then).
    Mkdir {
        /// The path.
        path: WirePath,
        /// Owner and mode.
        attr: WireAttr,
        /// `mkdir -p`.
        parents: bool,
    },
    /// Log a file entry with a given map (`famfs clone`, a testing tool: it cross-links).
    AppendFile {
        /// The path.
        path: WirePath,
        /// Size in bytes.
        size: u64,
        /// `fm_flags`.
        flags: u32,
        /// Owner and mode.
        attr: WireAttr,
        /// The map.
        fmap: WireFmap,
    },
    /// The daemon's state.
    Status,
    /// Change the daemon's log filter (`RUST_LOG` syntax, e.g. `debug` or `famfs_server=trace`).
    SetLogLevel {
        /// The filter.
        filter: String,
    },
}

/// A request with its version, as sent.
#[derive(Debug, Serialize, Deserialize)]
struct RequestFrame {
    v: u32,
    #[serde(flatten)]
    req: Request,
}

/// What the daemon answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Answer {
    /// To `hello`.
    Hello {
        /// The protocol version.
        proto: u32,
        /// The daemon's process id.
        pid: u32,
        /// `master` or `client`.
        role: String,
        /// The device size from the superblock.
        dev_size: u64,
        /// The device served.
        device: WirePath,
    },
    /// To `lookup`, and to `create` with `existing` when something is there.
    Node {
        /// The node, or `None` when nothing is there.
        node: Option<WireNode>,
    },
    /// To `create` and `append-file`: the entry's log index and the node it made.
    Logged {
        /// Log index of the entry.
        index: u64,
        /// The file, as logged.
        node: Option<WireNode>,
    },
    /// To `mkdir`: the directories logged, in order; with `parents`, an error that stopped
    /// the walk after them.
    Dirs {
        /// Paths logged.
        created: Vec<WirePath>,
        /// What stopped `mkdir -p` (the directories before it stay logged).
        error: Option<WireError>,
    },
    /// To `status`.
    Status(Box<Status>),
    /// Done, nothing to report (`set-log-level`).
    Done,
}

/// The daemon's state, for `famfs status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The protocol version.
    pub proto: u32,
    /// The daemon's process id.
    pub pid: u32,
    /// The device served.
    pub device: WirePath,
    /// Where it is mounted, when the daemon knows.
    pub mountpoint: Option<WirePath>,
    /// `master` or `client`.
    pub role: String,
    /// Log entries used.
    pub log_entries: u64,
    /// Log capacity in entries.
    pub log_slots: u64,
    /// Files served.
    pub files: u64,
    /// Directories served (the root and `.meta` excluded).
    pub dirs: u64,
    /// Free space in bytes.
    pub free_bytes: u64,
    /// Entries skipped as unreadable or invalid.
    pub skipped_entries: u64,
    /// Requests this channel has answered since the daemon started.
    pub requests: u64,
    /// The current log filter, when the daemon can change it.
    pub log_filter: Option<String>,
}

/// A reply as sent.
#[derive(Debug, Serialize, Deserialize)]
struct ReplyFrame {
    v: u32,
    #[serde(flatten)]
    outcome: Outcome,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Outcome {
    Ok(Answer),
    Err(WireError),
}

/// What kind of error a [`WireError`] is (clients decide on this, print the chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// This host (or the daemon) is not the master.
    NotMaster,
    /// The name is taken.
    Exists,
    /// A parent is missing.
    Missing,
    /// A parent is a file.
    NotADirectory,
    /// Out of space, or the log is full.
    NoSpace,
    /// A bad path or parameter.
    Invalid,
    /// The path is reserved (`.meta` at the root).
    Reserved,
    /// Reading or writing the log failed.
    Io,
    /// Only root may use the channel.
    Permission,
    /// A request that does not parse.
    BadRequest,
    /// A protocol version this daemon does not speak.
    UnsupportedVersion,
    /// An op this daemon does not know (or cannot do).
    UnsupportedOp,
    /// An append before a `hello` with the host's UUID.
    NoSession,
    /// A bug.
    Internal,
}

/// An error as sent: its errno, its kind, and the message of it and of each of its causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// The errno.
    pub errno: i32,
    /// The kind.
    pub kind: ErrorKind,
    /// The message, then the messages of its causes.
    pub chain: Vec<String>,
}

impl WireError {
    /// An error with one message.
    pub fn new(kind: ErrorKind, errno: i32, msg: impl Into<String>) -> WireError {
        WireError {
            errno,
            kind,
            chain: vec![msg.into()],
        }
    }

    /// The error of a log operation, with its causes.
    pub fn of_log(e: &LogError) -> WireError {
        let kind = match e {
            LogError::NotMaster { .. } => ErrorKind::NotMaster,
            LogError::LogFull { .. } | LogError::Alloc(_) if e.errno() == libc::ENOSPC => {
                ErrorKind::NoSpace
            }
            LogError::Namespace(NsError::Exists(_)) => ErrorKind::Exists,
            LogError::Namespace(NsError::Missing(_)) => ErrorKind::Missing,
            LogError::Namespace(NsError::NotADirectory(_)) => ErrorKind::NotADirectory,
            LogError::Media(_) | LogError::LogHeader(_) | LogError::Rewritten(_) => ErrorKind::Io,
            LogError::Internal { .. } => ErrorKind::Internal,
            _ => ErrorKind::Invalid,
        };
        let mut chain = vec![e.to_string()];
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            chain.push(s.to_string());
            src = s.source();
        }
        WireError {
            errno: e.errno(),
            kind,
            chain,
        }
    }

    /// The message (the first of the chain).
    pub fn message(&self) -> &str {
        self.chain.first().map_or("", String::as_str)
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.chain.join(": "))
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (no maps with non-string keys, no I/O).
    serde_json::to_vec(value).unwrap_or_else(|e| {
        format!(r#"{{"v":1,"err":{{"errno":5,"kind":"internal","chain":["{e}"]}}}}"#).into_bytes()
    })
}

/// The bytes of a request frame's body.
pub fn encode_request(req: &Request) -> Vec<u8> {
    encode(&RequestFrame {
        v: PROTOCOL_VERSION,
        req: req.clone(),
    })
}

/// The bytes of a reply frame's body.
pub fn encode_reply(reply: &Result<Answer, WireError>) -> Vec<u8> {
    let outcome = match reply {
        Ok(a) => Outcome::Ok(a.clone()),
        Err(e) => Outcome::Err(e.clone()),
    };
    encode(&ReplyFrame {
        v: PROTOCOL_VERSION,
        outcome,
    })
}

/// Just the version and the op name, read first so that an unknown version or op gets its own
/// answer.
#[derive(Deserialize)]
struct Probe {
    v: u32,
    op: Option<String>,
}

const KNOWN_OPS: [&str; 7] = [
    "hello",
    "lookup",
    "create",
    "mkdir",
    "append-file",
    "status",
    "set-log-level",
];

/// Parse a request frame's body (untrusted bytes; never panics).
pub fn parse_request(body: &[u8]) -> Result<Request, WireError> {
    let bad = |e: serde_json::Error| {
        WireError::new(
            ErrorKind::BadRequest,
            libc::EINVAL,
            format!("bad request: {e}"),
        )
    };
    let probe: Probe = serde_json::from_slice(body).map_err(bad)?;
    if probe.v != PROTOCOL_VERSION {
        return Err(WireError::new(
            ErrorKind::UnsupportedVersion,
            libc::EPROTONOSUPPORT,
            format!(
                "control protocol version {} is not supported (this daemon speaks version {PROTOCOL_VERSION})",
                probe.v
            ),
        ));
    }
    match probe.op.as_deref() {
        Some(op) if !KNOWN_OPS.contains(&op) => {
            return Err(WireError::new(
                ErrorKind::UnsupportedOp,
                libc::EOPNOTSUPP,
                format!("unknown control request {op:?}"),
            ));
        }
        _ => {}
    }
    let frame: RequestFrame = serde_json::from_slice(body).map_err(bad)?;
    Ok(frame.req)
}

/// Parse a reply frame's body (never panics).
pub fn parse_reply(body: &[u8]) -> Result<Result<Answer, WireError>, String> {
    let frame: ReplyFrame =
        serde_json::from_slice(body).map_err(|e| format!("bad reply from the daemon: {e}"))?;
    if frame.v != PROTOCOL_VERSION {
        return Err(format!(
            "the daemon answered in control protocol version {}",
            frame.v
        ));
    }
    Ok(match frame.outcome {
        Outcome::Ok(a) => Ok(a),
        Outcome::Err(e) => Err(e),
    })
}

/// Send one frame.
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("control frame too large"))?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    w.write_all(&out)
}

/// Read one frame into `buf`; `Ok(false)` at a clean end of stream (before a frame started).
pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("control frame of {n} bytes (at most {MAX_FRAME})"),
        ));
    }
    buf.clear();
    buf.resize(n, 0);
    r.read_exact(buf)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use super::*;

    #[test]
    fn requests_round_trip_and_read_as_documented() {
        let req = Request::Create {
            path: WirePath::of(Path::new("a/b")),
            size: 4096,
            attr: WireAttr {
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
            policy: WirePolicy::Contiguous,
            existing: false,
        };
        let body = encode_request(&req);
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"v":1,"op":"create","path":"a/b","size":4096"#),
            "{text}"
        );
        assert_eq!(parse_request(&body).unwrap(), req);
        let odd = Path::new(OsStr::from_bytes(b"x/\xff"));
        assert_eq!(WirePath::of(odd), WirePath::Bytes(b"x/\xff".to_vec()));
        assert_eq!(WirePath::of(odd).to_path(), odd);
    }

    #[test]
    fn versions_and_ops_are_told_apart() {
        let e = parse_request(br#"{"v":2,"op":"hello"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedVersion);
        let e = parse_request(br#"{"v":1,"op":"defrag"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedOp);
        let e = parse_request(br#"{"v":1,"op":"create","path":"a"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(e.message().contains("size"), "{e}");
        assert_eq!(
            parse_request(br#"{"v":1,"op":"status","extra":[1,2]}"#).unwrap(),
            Request::Status
        );
        let e = parse_request(b"\xff\x00").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
    }

    #[test]
    fn replies_and_errors_round_trip() {
        let e = WireError::of_log(&LogError::Namespace(NsError::Exists("a".into())));
        assert_eq!(e.kind, ErrorKind::Exists);
        assert_eq!(e.errno, libc::EEXIST);
        assert_eq!(e.chain, ["a already exists", "a already exists"]);
        let full = WireError::of_log(&LogError::LogFull { slots: 3 });
        assert_eq!((full.kind, full.errno), (ErrorKind::NoSpace, libc::ENOSPC));
        for r in [
            Ok(Answer::Done),
            Err(e),
            Ok(Answer::Dirs {
                created: vec![WirePath::Text("a".into())],
                error: Some(full),
            }),
        ] {
            assert_eq!(parse_reply(&encode_reply(&r)).unwrap(), r);
        }
        assert!(parse_reply(br#"{"v":7,"ok":{"kind":"done"}}"#).is_err());
    }

    #[test]
    fn frames_are_length_prefixed_and_bounded() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"{}").unwrap();
        write_frame(&mut wire, b"[1]").unwrap();
        assert_eq!(&wire[..6], b"\x02\x00\x00\x00{}");
        let mut r = &wire[..];
        let mut buf = Vec::new();
        assert!(read_frame(&mut r, &mut buf).unwrap());
        assert_eq!(buf, b"{}");
        assert!(read_frame(&mut r, &mut buf).unwrap());
        assert_eq!(buf, b"[1]");
        assert!(!read_frame(&mut r, &mut buf).unwrap(), "clean end");
        let mut huge = &(u32::MAX.to_le_bytes())[..];
        assert!(read_frame(&mut huge, &mut buf).is_err());
        let mut cut = &b"\x05\x00\x00\x00ab"[..];
        assert!(read_frame(&mut cut, &mut buf).is_err());
        let mut half = &b"\x05\x00"[..];
        assert!(read_frame(&mut half, &mut buf).is_err());
    }
}
