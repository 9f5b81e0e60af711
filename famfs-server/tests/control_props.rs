//! Property tests of the control channel's wire format: the request parser takes any bytes
//! without panicking, every request survives encode → parse, and frames split at any point
//! read back whole.

use famfs_server::control::proto::{
    Answer, ErrorKind, MAX_FRAME, Request, WireAttr, WireError, WireFmap, WirePath, WirePolicy,
    WireStripes, encode_reply, encode_request, parse_reply, parse_request, read_frame, write_frame,
};
use proptest::prelude::*;

fn path() -> impl Strategy<Value = WirePath> {
    prop_oneof![
        "[a-z./]{0,40}".prop_map(WirePath::Text),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(WirePath::Bytes),
    ]
}

fn attr() -> impl Strategy<Value = WireAttr> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(mode, uid, gid)| WireAttr {
        mode,
        uid,
        gid,
    })
}

fn fmap() -> impl Strategy<Value = WireFmap> {
    let ext = || proptest::collection::vec(any::<[u64; 3]>(), 0..4);
    prop_oneof![
        ext().prop_map(WireFmap::Simple),
        proptest::collection::vec(
            (any::<u64>(), ext())
                .prop_map(|(chunk_size, strips)| WireStripes { chunk_size, strips }),
            0..2
        )
        .prop_map(WireFmap::Interleaved),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        proptest::option::of("[0-9a-f-]{0,36}").prop_map(|host| Request::Hello { host }),
        path().prop_map(|path| Request::Lookup { path }),
        (
            path(),
            any::<u64>(),
            attr(),
            any::<(bool, bool)>(),
            any::<[u64; 3]>()
        )
            .prop_map(
                |(path, size, attr, (striped, existing), [nbuckets, nstrips, chunk_size])| {
                    Request::Create {
                        path,
                        size,
                        attr,
                        policy: if striped {
                            WirePolicy::Interleaved {
                                nbuckets,
                                nstrips,
                                chunk_size,
                            }
                        } else {
                            WirePolicy::Contiguous
                        },
                        existing,
                    }
                }
            ),
        (path(), attr(), any::<bool>()).prop_map(|(path, attr, parents)| Request::Mkdir {
            path,
            attr,
            parents
        }),
        (path(), any::<u64>(), any::<u32>(), attr(), fmap()).prop_map(
            |(path, size, flags, attr, fmap)| Request::AppendFile {
                path,
                size,
                flags,
                attr,
                fmap
            }
        ),
        Just(Request::Status),
        ".{0,20}".prop_map(|filter| Request::SetLogLevel { filter }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes: an answer (request or refusal), never a panic.
    #[test]
    fn any_bytes_parse_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Err(e) = parse_request(&bytes) {
            prop_assert!(!e.chain.is_empty());
        }
        let _ = parse_reply(&bytes);
    }

    /// JSON-shaped noise around the real field names.
    #[test]
    fn json_noise_is_refused_cleanly(
        v in any::<u32>(),
        op in prop_oneof![Just("create"), Just("mkdir"), Just("hello"), Just("x"), Just("")],
        fields in proptest::collection::vec(
            (prop_oneof![Just("path"), Just("size"), Just("attr"), Just("policy"), Just("fmap"),
                         Just("parents"), Just("host")],
             prop_oneof![Just("1"), Just("-1"), Just("\"a\""), Just("[]"), Just("{}"),
                         Just("null"), Just("[1,2,3]"), Just("{\"mode\":1}"),
                         Just("18446744073709551616"), Just("\"contiguous\"")]),
            0..6),
    ) {
        let mut members = vec![format!("\"v\":{v}"), format!("\"op\":\"{op}\"")];
        members.extend(fields.iter().map(|(k, val)| format!("\"{k}\":{val}")));
        let text = format!("{{{}}}", members.join(","));
        match parse_request(text.as_bytes()) {
            Ok(_) => prop_assert_eq!(v, 1),
            Err(e) if v != 1 => prop_assert_eq!(e.kind, ErrorKind::UnsupportedVersion),
            Err(_) => {}
        }
    }

    /// Every request reads back as sent; so does every reply.
    #[test]
    fn requests_round_trip(req in request(), errno in any::<i32>(), chain in proptest::collection::vec(".{0,10}", 1..3)) {
        prop_assert_eq!(parse_request(&encode_request(&req)).unwrap(), req);
        let err = Err(WireError { errno, kind: ErrorKind::Io, chain });
        prop_assert_eq!(parse_reply(&encode_reply(&err)).unwrap(), err);
        let ok = Ok(Answer::Done);
        prop_assert_eq!(parse_reply(&encode_reply(&ok)).unwrap(), ok);
    }

    /// A stream of frames reads back frame by frame, whatever the read sizes.
    #[test]
    fn frames_survive_any_split(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..5),
        step in 1usize..17,
    ) {
        let mut wire = Vec::new();
        for b in &bodies {
            write_frame(&mut wire, b).unwrap();
        }
        struct Trickle<'a>(&'a [u8], usize);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = Trickle(&wire, step);
        let mut buf = Vec::new();
        for b in &bodies {
            prop_assert!(read_frame(&mut r, &mut buf).unwrap());
            prop_assert_eq!(&buf, b);
        }
        prop_assert!(!read_frame(&mut r, &mut buf).unwrap());
    }
}

#[test]
fn oversized_frames_are_refused_both_ways() {
    let big = vec![b' '; MAX_FRAME + 1];
    assert!(write_frame(&mut Vec::new(), &big).is_err());
    let mut hdr = &((MAX_FRAME as u32 + 1).to_le_bytes())[..];
    assert!(read_frame(&mut hdr, &mut Vec::new()).is_err());
}
