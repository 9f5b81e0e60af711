//! READDIR / READDIRPLUS reply packing (and unpacking, for harnesses).
//!
//! A READDIR payload is a sequence of `fuse_dirent` records (24 bytes + name), a READDIRPLUS
//! payload a sequence of `fuse_direntplus` records (152 bytes + name); each record is padded with
//! zeros to a multiple of 8 bytes. The payload must not exceed the request's `size`.

use zerocopy::{FromBytes, IntoBytes};

use crate::abi::{Dirent, DirentPlus, EntryOut, FUSE_NAME_MAX, OutHeader, fuse_dirent_align};

/// Why an entry was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DirentError {
    /// No room left: send what is there; the kernel asks again from the last `off`.
    #[error("no room for this entry in the reply")]
    Full,
    /// Empty, longer than 1024 bytes, or containing `/` or NUL (the kernel fails such a reply with
    /// EIO).
    #[error("invalid directory entry name")]
    InvalidName,
    /// (Parsing) a record is truncated or carries an invalid name.
    #[error("malformed directory entry record")]
    Malformed,
}

fn check_name(name: &[u8]) -> Result<(), DirentError> {
    if name.is_empty() || name.len() > FUSE_NAME_MAX || name.iter().any(|&b| b == b'/' || b == 0) {
        Err(DirentError::InvalidName)
    } else {
        Ok(())
    }
}

/// Shared packing state: records go after the 16-byte out header.
struct Packer<'a> {
    out: &'a mut [u8],
    /// Payload bytes used.
    len: usize,
    /// Payload limit: min(request size, buffer room).
    limit: usize,
}

impl<'a> Packer<'a> {
    fn new(out: &'a mut [u8], request_size: u32) -> Self {
        let room = out.len().saturating_sub(OutHeader::SIZE);
        Packer {
            out,
            len: 0,
            limit: room.min(request_size as usize),
        }
    }

    fn push(&mut self, fixed: &[u8], name: &[u8]) -> Result<(), DirentError> {
        check_name(name)?;
        let rec = fuse_dirent_align(fixed.len() + name.len());
        if self.len + rec > self.limit {
            return Err(DirentError::Full);
        }
        let start = OutHeader::SIZE + self.len;
        let buf = &mut self.out[start..start + rec];
        buf[..fixed.len()].copy_from_slice(fixed);
        buf[fixed.len()..fixed.len() + name.len()].copy_from_slice(name);
        buf[fixed.len() + name.len()..].fill(0);
        self.len += rec;
        Ok(())
    }

    fn finish(self, unique: u64) -> usize {
        let h = OutHeader::success(unique, self.len);
        self.out[..OutHeader::SIZE].copy_from_slice(h.as_bytes());
        OutHeader::SIZE + self.len
    }
}

/// Packs a READDIR reply into a caller buffer.
pub struct ReaddirWriter<'a>(Packer<'a>);

impl<'a> ReaddirWriter<'a> {
    /// Starts a reply in `out` for a request of `request_size` bytes (`ReadIn::size`).
    pub fn new(out: &'a mut [u8], request_size: u32) -> Self {
        ReaddirWriter(Packer::new(out, request_size))
    }

    /// Appends an entry. `off` is the cookie the kernel sends back to continue after it; `typ` a
    /// `DT_*` value.
    pub fn push(&mut self, ino: u64, off: u64, typ: u32, name: &[u8]) -> Result<(), DirentError> {
        let d = Dirent {
            ino,
            off,
            namelen: name.len() as u32,
            typ,
        };
        self.0.push(d.as_bytes(), name)
    }

    /// Payload bytes so far.
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// Whether no entry has been added (an empty reply means end of directory).
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// Writes the header; returns the total reply length.
    pub fn finish(self, unique: u64) -> usize {
        self.0.finish(unique)
    }
}

/// Packs a READDIRPLUS reply into a caller buffer.
pub struct ReaddirPlusWriter<'a>(Packer<'a>);

impl<'a> ReaddirPlusWriter<'a> {
    /// Starts a reply in `out` for a request of `request_size` bytes.
    pub fn new(out: &'a mut [u8], request_size: u32) -> Self {
        ReaddirPlusWriter(Packer::new(out, request_size))
    }

    /// Appends an entry with its lookup result. The dirent's `ino` is `entry.attr.ino`. An entry
    /// with `nodeid` ≠ 0 counts as a lookup the kernel will FORGET later; `nodeid` 0 makes the
    /// kernel skip the lookup part (use it for "." and "..").
    pub fn push(
        &mut self,
        entry: &EntryOut,
        off: u64,
        typ: u32,
        name: &[u8],
    ) -> Result<(), DirentError> {
        let d = DirentPlus {
            entry_out: *entry,
            dirent: Dirent {
                ino: entry.attr.ino,
                off,
                namelen: name.len() as u32,
                typ,
            },
        };
        self.0.push(d.as_bytes(), name)
    }

    /// Payload bytes so far.
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// Whether no entry has been added.
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// Writes the header; returns the total reply length.
    pub fn finish(self, unique: u64) -> usize {
        self.0.finish(unique)
    }
}

/// One parsed directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirentEntry<'a> {
    /// The lookup part (READDIRPLUS only).
    pub entry: Option<EntryOut>,
    /// Inode number.
    pub ino: u64,
    /// Continuation cookie.
    pub off: u64,
    /// `DT_*` type.
    pub typ: u32,
    /// Name.
    pub name: &'a [u8],
}

/// A record's fixed part, its dirent, and its name.
type RawRecord<'a> = (&'a [u8], Dirent, &'a [u8]);

fn next_record<'a>(
    buf: &mut &'a [u8],
    fixed: usize,
    dirent_at: usize,
) -> Option<Result<RawRecord<'a>, DirentError>> {
    if buf.is_empty() {
        return None;
    }
    let Some(head) = buf.get(..fixed) else {
        *buf = &[];
        return Some(Err(DirentError::Malformed));
    };
    let Ok(d) = Dirent::read_from_bytes(&head[dirent_at..]) else {
        *buf = &[];
        return Some(Err(DirentError::Malformed));
    };
    let namelen = d.namelen as usize;
    let rec = fuse_dirent_align(fixed + namelen);
    // The kernel accepts a last record whose padding is missing; so do we.
    let Some(name) = buf.get(fixed..fixed + namelen) else {
        *buf = &[];
        return Some(Err(DirentError::Malformed));
    };
    if check_name(name).is_err() {
        *buf = &[];
        return Some(Err(DirentError::Malformed));
    }
    *buf = buf.get(rec..).unwrap_or_default();
    Some(Ok((head, d, name)))
}

/// Iterates over a READDIR payload; yields [`DirentError::Malformed`] once and stops on a malformed record.
pub struct DirentIter<'a>(&'a [u8]);

impl<'a> DirentIter<'a> {
    /// Iterates over `payload`.
    pub fn new(payload: &'a [u8]) -> Self {
        DirentIter(payload)
    }
}

impl<'a> Iterator for DirentIter<'a> {
    type Item = Result<DirentEntry<'a>, DirentError>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = next_record(&mut self.0, Dirent::SIZE, 0)?;
        Some(r.map(|(_, d, name)| DirentEntry {
            entry: None,
            ino: d.ino,
            off: d.off,
            typ: d.typ,
            name,
        }))
    }
}

/// Iterates over a READDIRPLUS payload; yields [`DirentError::Malformed`] once and stops on a malformed record.
pub struct DirentPlusIter<'a>(&'a [u8]);

impl<'a> DirentPlusIter<'a> {
    /// Iterates over `payload`.
    pub fn new(payload: &'a [u8]) -> Self {
        DirentPlusIter(payload)
    }
}

impl<'a> Iterator for DirentPlusIter<'a> {
    type Item = Result<DirentEntry<'a>, DirentError>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = next_record(&mut self.0, DirentPlus::SIZE, EntryOut::SIZE)?;
        Some(r.and_then(|(head, d, name)| {
            let e = EntryOut::read_from_bytes(&head[..EntryOut::SIZE])
                .map_err(|_| DirentError::Malformed)?;
            Ok(DirentEntry {
                entry: Some(e),
                ino: d.ino,
                off: d.off,
                typ: d.typ,
                name,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{Attr, DT_DIR, DT_REG};

    #[test]
    fn readdir_packs_with_padding_and_respects_size() {
        let mut buf = [0xffu8; 256];
        let mut w = ReaddirWriter::new(&mut buf, 64);
        w.push(1, 1, DT_DIR, b".").unwrap(); // 24 + 1 -> 32
        w.push(1, 2, DT_DIR, b"..").unwrap(); // 32 -> 64
        assert_eq!(w.push(5, 3, DT_REG, b"x"), Err(DirentError::Full));
        assert_eq!(w.push(5, 3, DT_REG, b"a/b"), Err(DirentError::InvalidName));
        assert_eq!(w.len(), 64);
        let n = w.finish(8);
        assert_eq!(n, 80);
        assert_eq!(&buf[16 + 25..16 + 32], &[0; 7]);
        let names: Vec<_> = DirentIter::new(&buf[16..80])
            .map(|e| e.unwrap().name.to_vec())
            .collect();
        assert_eq!(names, vec![b".".to_vec(), b"..".to_vec()]);
    }

    #[test]
    fn readdirplus_round_trip() {
        let mut buf = [0u8; 1024];
        let mut w = ReaddirPlusWriter::new(&mut buf, 4096);
        let e = EntryOut {
            nodeid: 77,
            attr: Attr {
                ino: 12,
                ..Default::default()
            },
            ..Default::default()
        };
        w.push(&e, 1, DT_REG, b"file").unwrap();
        let n = w.finish(2);
        assert_eq!(n, 16 + 160);
        let got: Vec<_> = DirentPlusIter::new(&buf[16..n]).collect();
        assert_eq!(got.len(), 1);
        let g = got[0].clone().unwrap();
        assert_eq!((g.ino, g.off, g.typ, g.name), (12, 1, DT_REG, &b"file"[..]));
        assert_eq!(g.entry.unwrap().nodeid, 77);
        // Truncated record.
        assert_eq!(
            DirentPlusIter::new(&buf[16..100]).next(),
            Some(Err(DirentError::Malformed))
        );
    }
}
