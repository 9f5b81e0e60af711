//! fmap wire encoding and decoding.
//!
//! Layout (V3–V10 and dev): a 32-byte [`FmapHeader`], then
//! - SIMPLE: `nextents` × 24-byte [`SimpleExt`], back to back;
//! - INTERLEAVE: for each of `nextents` interleaved extents, a 24-byte [`Iext`] immediately
//!   followed by its `ie_nstrips` × [`SimpleExt`].
//!
//! Trailing bytes after the last parsed piece are ignored, as the kernel does.

use zerocopy::{FromBytes, IntoBytes};

use super::error::{FmapEncodeError, FmapError};
use super::{
    ExtType, Extent, FileType, Fmap, FmapKind, FmapMessage, FmapWire, InterleavedExtent, ext_type,
};
use crate::abi::{FmapHeader, Iext, SimpleExt};
use crate::generation::{AbiGeneration, HeaderWord12};

const HDR: usize = FmapHeader::SIZE;
const EXT: usize = SimpleExt::SIZE;
const IEXT: usize = Iext::SIZE;

/// The 32-byte reply header for `fmap` (`fmap_size` left 0).
fn header(fmap: &Fmap, file_type: FileType) -> Result<FmapHeader, FmapEncodeError> {
    let nextents =
        u32::try_from(fmap.kind.nextents()).map_err(|_| FmapEncodeError::CountOverflow)?;
    Ok(FmapHeader::new(
        file_type.into(),
        ext_type(&fmap.kind).raw(),
        nextents,
        fmap.file_size,
    ))
}

/// [`FmapWire::encoded_len`].
pub(super) fn encoded_len(fmap: &Fmap) -> usize {
    HDR + match &fmap.kind {
        FmapKind::Simple(e) => e.len() * EXT,
        FmapKind::Interleaved(ie) => ie.iter().map(|i| IEXT + i.strips.len() * EXT).sum(),
    }
}

impl FmapWire for Fmap {
    fn encoded_len(&self) -> usize {
        encoded_len(self)
    }

    fn encode(
        &self,
        file_type: FileType,
        generation: AbiGeneration,
        out: &mut [u8],
    ) -> Result<usize, FmapEncodeError> {
        let len = encoded_len(self);
        let max = generation.rules().max_reply;
        if len > max {
            return Err(FmapEncodeError::TooLarge { len, max });
        }
        if out.len() < len {
            return Err(FmapEncodeError::BufferTooSmall {
                needed: len,
                available: out.len(),
            });
        }
        let mut hdr = header(self, file_type)?;
        if generation.header_word12() == HeaderWord12::FmapSize {
            // len <= max_reply (16 MiB) so it fits.
            hdr.fmap_size = len as u32;
        }
        let mut w = Writer { out, pos: 0 };
        w.put(hdr.as_bytes());
        match &self.kind {
            FmapKind::Simple(exts) => {
                for e in exts {
                    w.put(simple_ext(e).as_bytes());
                }
            }
            FmapKind::Interleaved(ies) => {
                for (iext, ie) in ies.iter().enumerate() {
                    w.put(iext_header(iext, ie)?.as_bytes());
                    for s in &ie.strips {
                        w.put(simple_ext(s).as_bytes());
                    }
                }
            }
        }
        debug_assert_eq!(w.pos, len);
        Ok(len)
    }

    fn to_bytes(
        &self,
        file_type: FileType,
        generation: AbiGeneration,
    ) -> Result<Vec<u8>, FmapEncodeError> {
        let mut v = vec![0u8; encoded_len(self)];
        let n = self.encode(file_type, generation, &mut v)?;
        v.truncate(n);
        Ok(v)
    }

    fn encode_reply(
        &self,
        file_type: FileType,
        generation: AbiGeneration,
        kernel_buffer: usize,
        out: &mut [u8],
    ) -> Result<usize, FmapEncodeError> {
        self.validate(generation)?;
        let len = encoded_len(self);
        if len > kernel_buffer && generation.retries_with_fmap_size() {
            if out.len() < HDR {
                return Err(FmapEncodeError::BufferTooSmall {
                    needed: HDR,
                    available: out.len(),
                });
            }
            let mut hdr = header(self, file_type)?;
            hdr.fmap_size = len as u32;
            out[..HDR].copy_from_slice(hdr.as_bytes());
            return Ok(HDR);
        }
        if len > kernel_buffer {
            return Err(FmapEncodeError::TooLarge {
                len,
                max: kernel_buffer,
            });
        }
        self.encode(file_type, generation, out)
    }

    fn validate(&self, generation: AbiGeneration) -> Result<(), FmapError> {
        super::validate::validate(self, generation)
    }
}

impl FmapMessage {
    /// Parses a GET_FMAP reply payload with exactly the kernel's validation for `generation`.
    ///
    /// The payload is what the kernel received into its largest buffer (V1: 4096 bytes; a longer
    /// payload fails with EIO as in the FUSE core). Dev-variant buffer growth is handled by
    /// [`parse_reply`]. Check order and errnos (V1 / dev):
    ///
    /// 1. payload < 32 bytes: EINVAL / EIO;
    /// 2. `nextents` 0: EINVAL / ERANGE;
    /// 3. `nextents` > 32: E2BIG / no cap;
    /// 4. unknown `ext_type` (and, dev, INTERLEAVE): EINVAL;
    /// 5. extents, iext headers or strips past the payload: EINVAL;
    /// 6. chunk size not 2 MiB-aligned, `ie_nbytes` 0: EINVAL;
    /// 7. any device index ≠ 0, unaligned offset/length, strip count outside 1..=32: EINVAL;
    /// 8. extents (strips) covering less than `file_size`: EINVAL.
    ///
    /// Not checked (as in the kernel): `file_type`, `fmap_version`, reserved fields, strip
    /// lengths against the stripe arithmetic (see [`Fmap::check_geometry`]), trailing bytes.
    /// Allocates only after the counts have been checked against the payload length.
    pub fn parse(payload: &[u8], generation: AbiGeneration) -> Result<FmapMessage, FmapError> {
        let rules = generation.rules();
        if payload.len() > rules.max_reply {
            return Err(FmapError::ReplyTooLarge {
                len: payload.len(),
                max: rules.max_reply,
            });
        }
        let Ok((hdr, _)) = FmapHeader::read_from_prefix(payload) else {
            return Err(FmapError::ShortReply {
                len: payload.len(),
                errno: rules.short_reply_errno,
            });
        };
        super::validate::check_counts(u64::from(hdr.nextents), rules)?;
        let kind = match ExtType::from_raw(hdr.ext_type) {
            Some(ExtType::Simple) => FmapKind::Simple(decode_simple(payload, hdr.nextents)?),
            Some(ExtType::Interleave) if rules.interleave => {
                FmapKind::Interleaved(decode_interleaved(payload, hdr.nextents)?)
            }
            Some(ExtType::Interleave) => return Err(FmapError::InterleaveUnsupported),
            None => return Err(FmapError::UnknownExtType(hdr.ext_type)),
        };
        let fmap = Fmap {
            file_size: hdr.file_size,
            kind,
        };
        super::validate::check_extents(&fmap, rules)?;
        Ok(FmapMessage {
            file_type: hdr.file_type.into(),
            fmap,
        })
    }
}

/// Outcome of [`parse_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FmapReply {
    /// A valid fmap.
    Fmap(FmapMessage),
    /// Dev generation: the fmap did not fit; resend GET_FMAP with a buffer of this many bytes.
    Retry {
        /// The buffer size to offer (the header's `fmap_size`).
        buffer: usize,
    },
}

/// The kernel's handling of a GET_FMAP reply received into a `buffer_len`-byte buffer, including
/// the dev generation's grow-and-retry-once rule (`retried`: this reply answers the retry).
///
/// For V1 this is [`FmapMessage::parse`] after checking the payload against the buffer.
pub fn parse_reply(
    payload: &[u8],
    generation: AbiGeneration,
    buffer_len: usize,
    retried: bool,
) -> Result<FmapReply, FmapError> {
    let rules = generation.rules();
    let buffer_len = buffer_len.min(rules.max_reply);
    if payload.len() > buffer_len {
        return Err(FmapError::ReplyTooLarge {
            len: payload.len(),
            max: buffer_len,
        });
    }
    if generation.retries_with_fmap_size() {
        let Ok((hdr, _)) = FmapHeader::read_from_prefix(payload) else {
            return Err(FmapError::ShortReply {
                len: payload.len(),
                errno: rules.short_reply_errno,
            });
        };
        let size = hdr.fmap_size as usize;
        if size > buffer_len {
            if size > rules.max_reply {
                return Err(FmapError::FmapSizeTooLarge {
                    fmap_size: hdr.fmap_size,
                    max: rules.max_reply,
                });
            }
            if retried {
                return Err(FmapError::GrewOnRetry {
                    fmap_size: hdr.fmap_size,
                    buffer: buffer_len,
                });
            }
            return Ok(FmapReply::Retry { buffer: size });
        }
    }
    FmapMessage::parse(payload, generation).map(FmapReply::Fmap)
}

fn iext_header(iext: usize, ie: &InterleavedExtent) -> Result<Iext, FmapEncodeError> {
    Ok(Iext {
        ie_nstrips: u32::try_from(ie.strips.len()).map_err(|_| FmapEncodeError::CountOverflow)?,
        ie_chunk_size: u32::try_from(ie.chunk_size).map_err(|_| {
            FmapEncodeError::ChunkTooLarge {
                iext,
                chunk_size: ie.chunk_size,
            }
        })?,
        ie_nbytes: ie.nbytes,
        reserved: 0,
    })
}

fn simple_ext(e: &Extent) -> SimpleExt {
    SimpleExt {
        se_devindex: e.dev_index,
        reserved: 0,
        se_offset: e.offset,
        se_len: e.len,
    }
}

fn extent(s: &SimpleExt) -> Extent {
    Extent::new(s.se_devindex, s.se_offset, s.se_len)
}

/// Reads `n` simple extents starting at `pos`, after checking they fit.
fn read_exts(payload: &[u8], pos: usize, n: u32) -> Result<Vec<Extent>, FmapError> {
    let needed = pos as u64 + u64::from(n) * EXT as u64;
    if needed > payload.len() as u64 {
        return Err(FmapError::Truncated {
            needed,
            len: payload.len(),
        });
    }
    payload[pos..needed as usize]
        .chunks_exact(EXT)
        .map(|c| {
            SimpleExt::read_from_bytes(c)
                .map(|s| extent(&s))
                .map_err(|_| FmapError::Truncated {
                    needed,
                    len: payload.len(),
                })
        })
        .collect()
}

fn decode_simple(payload: &[u8], nextents: u32) -> Result<Vec<Extent>, FmapError> {
    read_exts(payload, HDR, nextents)
}

fn decode_interleaved(payload: &[u8], niext: u32) -> Result<Vec<InterleavedExtent>, FmapError> {
    // Each iext needs at least 24 bytes, so a count the payload cannot hold fails in the loop
    // before much is allocated; cap the initial capacity by what can fit.
    let mut out = Vec::with_capacity((niext as usize).min(payload.len() / IEXT));
    let mut pos = HDR;
    for _ in 0..niext {
        let Some(Ok((ie, _))) = payload.get(pos..).map(Iext::read_from_prefix) else {
            return Err(FmapError::Truncated {
                needed: (pos + IEXT) as u64,
                len: payload.len(),
            });
        };
        pos += IEXT;
        let strips = read_exts(payload, pos, ie.ie_nstrips)?;
        pos += strips.len() * EXT;
        out.push(InterleavedExtent {
            chunk_size: u64::from(ie.ie_chunk_size),
            nbytes: ie.ie_nbytes,
            strips,
        });
    }
    Ok(out)
}

struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        self.out[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
}
