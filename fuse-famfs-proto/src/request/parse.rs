//! Parsing: a /dev/fuse read buffer into a [`Request`] — the framing (header, length,
//! extensions) and then each opcode's arguments.

use zerocopy::{FromBytes, IntoBytes};

use super::{ForgetList, Operation, Request, RequestError};
use crate::abi::{BatchForgetIn, ForgetOne, GetxattrIn, InHeader, InitIn, Opcode, WriteIn};

fn fixed<T: FromBytes>(
    header: &InHeader,
    body: &[u8],
    what: &'static str,
) -> Result<T, RequestError> {
    T::read_from_bytes(body).map_err(|_| RequestError::Malformed {
        header: *header,
        reason: what,
    })
}

fn fixed_prefix<'a, T: FromBytes>(
    header: &InHeader,
    body: &'a [u8],
    what: &'static str,
) -> Result<(T, &'a [u8]), RequestError> {
    T::read_from_prefix(body).map_err(|_| RequestError::Malformed {
        header: *header,
        reason: what,
    })
}

/// Requests that carry no arguments.
fn no_args(header: &InHeader, body: &[u8]) -> Result<(), RequestError> {
    if body.is_empty() {
        Ok(())
    } else {
        Err(RequestError::Malformed {
            header: *header,
            reason: "request takes no arguments",
        })
    }
}

/// A NUL-terminated name filling `body`; returns it without the NUL.
fn name<'a>(header: &InHeader, body: &'a [u8]) -> Result<&'a [u8], RequestError> {
    match body.iter().position(|&b| b == 0) {
        Some(n) if n + 1 == body.len() => Ok(&body[..n]),
        _ => Err(RequestError::Malformed {
            header: *header,
            reason: "name is not a single NUL-terminated string",
        }),
    }
}

impl<'a> Request<'a> {
    /// Parses one request. `buf` is what a read(2) of /dev/fuse returned (exactly `header.len`
    /// bytes; extra bytes after `header.len` are an error).
    pub fn parse(buf: &'a [u8]) -> Result<Request<'a>, RequestError> {
        let Ok((header, _)) = InHeader::read_from_prefix(buf) else {
            return Err(RequestError::ShortHeader { len: buf.len() });
        };
        if header.len as usize != buf.len() {
            return Err(RequestError::LengthMismatch {
                header,
                got: buf.len(),
            });
        }
        let args = &buf[InHeader::SIZE..];
        let ext = usize::from(header.total_extlen) * 8;
        if ext > args.len() {
            return Err(RequestError::BadExtensions { header, ext });
        }
        let (body, extensions) = args.split_at(args.len() - ext);
        let op = parse_operation(&header, body)?;
        Ok(Request {
            header,
            op,
            extensions,
        })
    }
}

/// The operation of a request whose framing [`Request::parse`] has checked: `body` is the
/// argument bytes between the header and the extensions.
fn parse_operation<'a>(h: &InHeader, body: &'a [u8]) -> Result<Operation<'a>, RequestError> {
    Ok(match Opcode(h.opcode) {
        Opcode::INIT => parse_init(h, body)?,
        Opcode::DESTROY => {
            no_args(h, body)?;
            Operation::Destroy
        }
        Opcode::LOOKUP => Operation::Lookup {
            name: name(h, body)?,
        },
        Opcode::FORGET => Operation::Forget(fixed(h, body, "FORGET needs fuse_forget_in")?),
        Opcode::BATCH_FORGET => parse_batch_forget(h, body)?,
        Opcode::GETATTR => Operation::Getattr(fixed(h, body, "GETATTR needs fuse_getattr_in")?),
        Opcode::SETATTR => Operation::Setattr(fixed(h, body, "SETATTR needs fuse_setattr_in")?),
        Opcode::OPEN => Operation::Open(fixed(h, body, "OPEN needs fuse_open_in")?),
        Opcode::OPENDIR => Operation::Opendir(fixed(h, body, "OPENDIR needs fuse_open_in")?),
        Opcode::CREATE => {
            let (arg, rest) = fixed_prefix(h, body, "CREATE needs fuse_create_in")?;
            Operation::Create {
                arg,
                name: name(h, rest)?,
            }
        }
        Opcode::READ => Operation::Read(fixed(h, body, "READ needs fuse_read_in")?),
        Opcode::WRITE => parse_write(h, body)?,
        Opcode::RELEASE => Operation::Release(fixed(h, body, "RELEASE needs fuse_release_in")?),
        Opcode::RELEASEDIR => {
            Operation::Releasedir(fixed(h, body, "RELEASEDIR needs fuse_release_in")?)
        }
        Opcode::READDIR => Operation::Readdir(fixed(h, body, "READDIR needs fuse_read_in")?),
        Opcode::READDIRPLUS => {
            Operation::Readdirplus(fixed(h, body, "READDIRPLUS needs fuse_read_in")?)
        }
        Opcode::STATFS => {
            no_args(h, body)?;
            Operation::Statfs
        }
        Opcode::FLUSH => Operation::Flush(fixed(h, body, "FLUSH needs fuse_flush_in")?),
        Opcode::FSYNC => Operation::Fsync(fixed(h, body, "FSYNC needs fuse_fsync_in")?),
        Opcode::FSYNCDIR => Operation::Fsyncdir(fixed(h, body, "FSYNCDIR needs fuse_fsync_in")?),
        Opcode::ACCESS => Operation::Access(fixed(h, body, "ACCESS needs fuse_access_in")?),
        Opcode::GETXATTR => {
            let (arg, rest) = fixed_prefix(h, body, "GETXATTR needs fuse_getxattr_in")?;
            Operation::Getxattr {
                arg,
                name: name(h, rest)?,
            }
        }
        Opcode::LISTXATTR => {
            Operation::Listxattr(fixed(h, body, "LISTXATTR needs fuse_getxattr_in")?)
        }
        Opcode::INTERRUPT => {
            Operation::Interrupt(fixed(h, body, "INTERRUPT needs fuse_interrupt_in")?)
        }
        Opcode::LSEEK => Operation::Lseek(fixed(h, body, "LSEEK needs fuse_lseek_in")?),
        Opcode::GETLK => Operation::Getlk(fixed(h, body, "GETLK needs fuse_lk_in")?),
        Opcode::SETLK => Operation::Setlk(fixed(h, body, "SETLK needs fuse_lk_in")?),
        Opcode::SETLKW => Operation::Setlkw(fixed(h, body, "SETLKW needs fuse_lk_in")?),
        Opcode::GET_FMAP => parse_get_fmap(h, body)?,
        Opcode::GET_DAXDEV => {
            // V3–V10 send no argument (the index is in nodeid); the uapi's 4-byte
            // fuse_get_daxdev_in is never sent, so anything else is refused.
            no_args(h, body)?;
            Operation::GetDaxdev { index: h.nodeid }
        }
        opcode => Operation::Other {
            opcode,
            payload: body,
        },
    })
}

/// INIT: kernels before 7.36 send only the first 16 bytes; the rest is zero-filled.
fn parse_init<'a>(header: &InHeader, body: &[u8]) -> Result<Operation<'a>, RequestError> {
    if body.len() < 16 || body.len() > InitIn::SIZE {
        return Err(RequestError::Malformed {
            header: *header,
            reason: "INIT argument must be 16..=64 bytes",
        });
    }
    let mut init = InitIn::default();
    init.as_mut_bytes()[..body.len()].copy_from_slice(body);
    Ok(Operation::Init(init))
}

/// BATCH_FORGET: a count, then exactly that many 16-byte entries.
fn parse_batch_forget<'a>(h: &InHeader, body: &'a [u8]) -> Result<Operation<'a>, RequestError> {
    let (arg, rest): (BatchForgetIn, _) =
        fixed_prefix(h, body, "BATCH_FORGET needs fuse_batch_forget_in")?;
    let n = arg.count as usize;
    if !rest.len().is_multiple_of(ForgetOne::SIZE) || rest.len() / ForgetOne::SIZE != n {
        return Err(RequestError::Malformed {
            header: *h,
            reason: "BATCH_FORGET count disagrees with its length",
        });
    }
    Ok(Operation::BatchForget(ForgetList::new(rest)))
}

/// WRITE: the argument, then exactly `size` bytes of data.
fn parse_write<'a>(h: &InHeader, body: &'a [u8]) -> Result<Operation<'a>, RequestError> {
    let (arg, data): (WriteIn, _) = fixed_prefix(h, body, "WRITE needs fuse_write_in")?;
    if data.len() != arg.size as usize {
        return Err(RequestError::Malformed {
            header: *h,
            reason: "WRITE size disagrees with its data",
        });
    }
    Ok(Operation::Write { arg, data })
}

/// GET_FMAP: no argument (famfs V3–V10) or a `fuse_getxattr_in` with the reply size (dev ABI).
fn parse_get_fmap<'a>(h: &InHeader, body: &[u8]) -> Result<Operation<'a>, RequestError> {
    match body.len() {
        0 => Ok(Operation::GetFmap { size: None }),
        GetxattrIn::SIZE => {
            let arg: GetxattrIn = fixed(h, body, "GET_FMAP size argument")?;
            Ok(Operation::GetFmap {
                size: Some(arg.size),
            })
        }
        _ => Err(RequestError::Malformed {
            header: *h,
            reason: "GET_FMAP must have no argument (V3-V10) or 8 bytes (dev)",
        }),
    }
}
