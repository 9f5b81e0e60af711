//! Every kernel rejection rule for GET_FMAP replies (reference §3.3, §3.4, §1.3 and §8), each
//! with the errno the kernel gives, for both ABI generations. Inputs are written byte by byte.

use fuse_famfs_proto::fmap::{
    Extent, FileOffset, FileType, FmapEncodeError, FmapReply, InterleavedExtent, parse_reply,
};
use fuse_famfs_proto::reply::ReplyRef;
use fuse_famfs_proto::{AbiGeneration, Errno, Fmap, FmapMessage, FmapWire};

const MIB: u64 = 1 << 20;
const V1: AbiGeneration = AbiGeneration::V1;
const DEV: AbiGeneration = AbiGeneration::Dev;

fn hdr(ext_type: u32, nextents: u32, word12: u32, file_size: u64) -> Vec<u8> {
    let mut b = vec![0u8, 0];
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&ext_type.to_le_bytes());
    b.extend_from_slice(&nextents.to_le_bytes());
    b.extend_from_slice(&word12.to_le_bytes());
    b.extend_from_slice(&file_size.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b
}

fn ext(b: &mut Vec<u8>, dev: u32, off: u64, len: u64) {
    b.extend_from_slice(&dev.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&off.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
}

fn iext(b: &mut Vec<u8>, nstrips: u32, chunk: u32, nbytes: u64) {
    b.extend_from_slice(&nstrips.to_le_bytes());
    b.extend_from_slice(&chunk.to_le_bytes());
    b.extend_from_slice(&nbytes.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
}

/// A simple fmap of `n` 2 MiB extents covering `n` × 2 MiB.
fn simple(n: u32) -> Vec<u8> {
    let mut b = hdr(0, n, 0, u64::from(n) * 2 * MIB);
    for i in 0..u64::from(n) {
        ext(&mut b, 0, i * 4 * MIB, 2 * MIB);
    }
    b
}

/// An interleaved fmap: one iext, `nstrips` strips of 4 MiB, 2 MiB chunks, file 8 MiB.
fn striped(nstrips: u32, chunk: u32, nbytes: u64) -> Vec<u8> {
    let mut b = hdr(1, 1, 0, 8 * MIB);
    iext(&mut b, nstrips, chunk, nbytes);
    for i in 0..u64::from(nstrips) {
        ext(&mut b, 0, i * 64 * MIB, 4 * MIB);
    }
    b
}

fn errno(bytes: &[u8], abi_gen: AbiGeneration) -> Errno {
    match FmapMessage::parse(bytes, abi_gen) {
        Ok(f) => panic!("accepted: {f:?}"),
        Err(e) => {
            // Display never panics and names the problem.
            assert!(!e.to_string().is_empty());
            e.errno()
        }
    }
}

fn ok(bytes: &[u8], abi_gen: AbiGeneration) -> Fmap {
    ok_message(bytes, abi_gen).fmap
}

fn ok_message(bytes: &[u8], abi_gen: AbiGeneration) -> FmapMessage {
    FmapMessage::parse(bytes, abi_gen).unwrap_or_else(|e| panic!("rejected: {e}"))
}

// ---- V3–V10 (V1) ----

#[test]
fn payload_shorter_than_header_is_einval() {
    assert_eq!(errno(&[], V1), Errno::EINVAL);
    assert_eq!(errno(&simple(1)[..31], V1), Errno::EINVAL);
}

#[test]
fn zero_extents_is_einval() {
    let mut b = simple(1);
    b[8] = 0;
    assert_eq!(errno(&b, V1), Errno::EINVAL);
    assert_eq!(errno(&hdr(1, 0, 0, 0), V1), Errno::EINVAL);
}

#[test]
fn more_than_32_extents_is_e2big() {
    assert_eq!(ok(&simple(32), V1).kind.nextents(), 32);
    // 33 extents would not fit in 4096 bytes anyway for interleave; the count check comes first.
    assert_eq!(errno(&simple(33), V1), Errno::E2BIG);
    assert_eq!(errno(&hdr(1, 33, 0, 0), V1), Errno::E2BIG);
    // E2BIG wins over an unknown type and over truncation, as the count is checked first.
    assert_eq!(errno(&hdr(7, 1000, 0, 0), V1), Errno::E2BIG);
}

#[test]
fn simple_extents_past_payload_is_einval() {
    let b = simple(3);
    assert_eq!(errno(&b[..b.len() - 1], V1), Errno::EINVAL);
    let mut lying = simple(2);
    lying[8] = 3;
    assert_eq!(errno(&lying, V1), Errno::EINVAL);
}

#[test]
fn nonzero_dev_index_is_einval() {
    let mut b = hdr(0, 1, 0, 2 * MIB);
    ext(&mut b, 1, 0, 2 * MIB);
    assert_eq!(errno(&b, V1), Errno::EINVAL);
    let mut s = striped(2, (2 * MIB) as u32, 8 * MIB);
    s[32 + 24 + 24] = 1; // second strip's se_devindex
    assert_eq!(errno(&s, V1), Errno::EINVAL);
}

#[test]
fn unaligned_offset_or_length_is_einval() {
    for (off, len) in [
        (4096, 2 * MIB),
        (0, 2 * MIB + 4096),
        (MIB, 2 * MIB),
        (0, MIB),
    ] {
        let mut b = hdr(0, 1, 0, MIB);
        ext(&mut b, 0, off, len);
        assert_eq!(errno(&b, V1), Errno::EINVAL, "simple {off:#x}/{len:#x}");
        let mut s = hdr(1, 1, 0, MIB);
        iext(&mut s, 1, (2 * MIB) as u32, MIB);
        ext(&mut s, 0, off, len);
        assert_eq!(errno(&s, V1), Errno::EINVAL, "strip {off:#x}/{len:#x}");
    }
}

#[test]
fn iext_header_or_strips_past_payload_is_einval() {
    // Header announces 2 interleaved extents, only 1 present.
    let mut b = striped(2, (2 * MIB) as u32, 8 * MIB);
    b[8] = 2;
    assert_eq!(errno(&b, V1), Errno::EINVAL);
    // Strip array cut short.
    let b = striped(2, (2 * MIB) as u32, 8 * MIB);
    assert_eq!(errno(&b[..b.len() - 8], V1), Errno::EINVAL);
    // iext header itself cut short.
    assert_eq!(errno(&b[..40], V1), Errno::EINVAL);
}

#[test]
fn unaligned_chunk_size_is_einval() {
    assert_eq!(errno(&striped(2, (MIB) as u32, 8 * MIB), V1), Errno::EINVAL);
    assert_eq!(
        errno(&striped(2, (3 * MIB) as u32, 8 * MIB), V1),
        Errno::EINVAL
    );
    assert_eq!(
        ok(&striped(2, (4 * MIB) as u32, 8 * MIB), V1).file_size,
        8 * MIB
    );
}

#[test]
fn chunk_size_zero_passes_like_the_kernel_but_fails_geometry() {
    // 0 is a multiple of 2 MiB: the kernel accepts it (and would divide by zero on a fault).
    let f = ok(&striped(2, 0, 8 * MIB), V1);
    assert!(f.check_geometry().is_err());
    assert_eq!(f.resolve(FileOffset(0)), None);
    assert_eq!(f.resolver().resolve(FileOffset(0)), None);
}

#[test]
fn zero_nbytes_is_einval() {
    assert_eq!(errno(&striped(2, (2 * MIB) as u32, 0), V1), Errno::EINVAL);
}

#[test]
fn strip_count_outside_1_to_32_is_einval() {
    // 0 strips: the strips fit trivially, then the count is an error.
    let mut b = hdr(1, 1, 0, 0);
    iext(&mut b, 0, (2 * MIB) as u32, 2 * MIB);
    assert_eq!(errno(&b, V1), Errno::EINVAL);
    // 32 strips are fine, 33 are not.
    let mut b = hdr(1, 1, 0, 8 * MIB);
    iext(&mut b, 32, (2 * MIB) as u32, 8 * MIB);
    for i in 0..32 {
        ext(&mut b, 0, i * 2 * MIB, 2 * MIB);
    }
    assert_eq!(ok(&b, V1).kind.nextents(), 1);
    let mut b = hdr(1, 1, 0, 8 * MIB);
    iext(&mut b, 33, (2 * MIB) as u32, 8 * MIB);
    for i in 0..33 {
        ext(&mut b, 0, i * 2 * MIB, 2 * MIB);
    }
    assert_eq!(errno(&b, V1), Errno::EINVAL);
}

#[test]
fn strips_shorter_than_file_is_einval() {
    // Two 4 MiB strips = 8 MiB; file 8 MiB + 1 byte.
    let mut b = striped(2, (2 * MIB) as u32, 8 * MIB);
    b[16..24].copy_from_slice(&(8 * MIB + 1).to_le_bytes());
    assert_eq!(errno(&b, V1), Errno::EINVAL);
}

#[test]
fn unknown_ext_type_is_einval() {
    let mut b = simple(1);
    b[4] = 2;
    assert_eq!(errno(&b, V1), Errno::EINVAL);
}

#[test]
fn simple_extents_shorter_than_file_is_einval() {
    let mut b = simple(2);
    b[16..24].copy_from_slice(&(4 * MIB + 1).to_le_bytes());
    assert_eq!(errno(&b, V1), Errno::EINVAL);
}

#[test]
fn extent_total_wraps_like_the_kernel() {
    // Lengths whose 64-bit sum wraps to 2 MiB: the kernel's size_t total is below file_size.
    let mut b = hdr(0, 2, 0, 4 * MIB);
    ext(&mut b, 0, 0, 0u64.wrapping_sub(2 * MIB));
    ext(&mut b, 0, 0, 4 * MIB);
    assert_eq!(errno(&b, V1), Errno::EINVAL);
}

#[test]
fn reply_larger_than_page_is_eio() {
    // The FUSE core refuses a payload beyond the 4096-byte out-arg: EIO for the opener.
    let mut b = simple(1);
    b.resize(4097, 0);
    assert_eq!(errno(&b, V1), Errno::EIO);
    assert_eq!(
        parse_reply(&b, V1, 4096, false).unwrap_err().errno(),
        Errno::EIO
    );
    // A typed fmap that would encode beyond 4096 bytes fails validation the same way.
    let big = Fmap::interleaved(
        2 * MIB,
        (0..6)
            .map(|_| InterleavedExtent {
                chunk_size: 2 * MIB,
                nbytes: 2 * MIB,
                strips: vec![Extent::new(0, 0, 2 * MIB); 32],
            })
            .collect(),
    );
    assert!(big.encoded_len() > 4096);
    assert_eq!(big.validate(V1).unwrap_err().errno(), Errno::EIO);
}

#[test]
fn chunk_sizes_past_the_u32_wire_field_cannot_be_encoded() {
    // The on-media chunk size is 64 bits, the wire's 32: a map with an 8 GiB chunk is refused
    // at encode time (famfs-server answers GET_FMAP with EINVAL), never truncated.
    let big = Fmap::striped(
        1,
        vec![InterleavedExtent::new(
            8 << 30,
            vec![Extent::new(0, 16 * MIB, 8 << 30)],
        )],
    );
    big.check_geometry().unwrap();
    let mut out = [0u8; 4096];
    assert_eq!(
        big.encode(FileType::Regular, V1, &mut out),
        Err(FmapEncodeError::ChunkTooLarge {
            iext: 0,
            chunk_size: 8 << 30
        })
    );
    assert!(big.to_bytes(FileType::Regular, V1).is_err());
}

#[test]
fn what_passes_silently() {
    // Any file_type, any fmap_version, non-zero reserved fields, trailing bytes.
    let mut b = simple(1);
    b[0] = 200; // file_type
    b[1] = 0xff; // reserved
    b[2] = 9; // fmap_version
    b[12] = 0xff; // reserved0
    b[24] = 0xff; // reserved1
    b[32 + 4] = 0xff; // extent reserved
    b.extend_from_slice(b"trailing");
    let f = ok_message(&b, V1);
    assert_eq!(u8::from(f.file_type), 200);
    // Strips too short for the stripe arithmetic: accepted by V1 (variant B would refuse).
    let mut s = hdr(1, 1, 0, 8 * MIB);
    iext(&mut s, 2, (2 * MIB) as u32, 8 * MIB);
    ext(&mut s, 0, 0, 8 * MIB);
    ext(&mut s, 0, 64 * MIB, 0);
    let f = ok(&s, V1);
    assert!(f.check_geometry().is_err());
}

// ---- dev variant ----

#[test]
fn dev_short_reply_is_eio() {
    assert_eq!(errno(&simple(1)[..31], DEV), Errno::EIO);
    assert_eq!(
        parse_reply(&[], DEV, 4096, false).unwrap_err().errno(),
        Errno::EIO
    );
}

#[test]
fn dev_zero_extents_is_erange() {
    let mut b = simple(1);
    b[8] = 0;
    assert_eq!(errno(&b, DEV), Errno::ERANGE);
}

#[test]
fn dev_has_no_extent_cap() {
    assert_eq!(ok(&simple(100), DEV).kind.nextents(), 100);
}

#[test]
fn dev_rejects_interleave() {
    assert_eq!(
        errno(&striped(2, (2 * MIB) as u32, 8 * MIB), DEV),
        Errno::EINVAL
    );
    let f = ok(&striped(2, (2 * MIB) as u32, 8 * MIB), V1);
    assert_eq!(f.validate(DEV).unwrap_err().errno(), Errno::EINVAL);
}

#[test]
fn dev_keeps_alignment_and_dev_index_rules() {
    let mut b = hdr(0, 1, 0, 2 * MIB);
    ext(&mut b, 1, 0, 2 * MIB);
    assert_eq!(errno(&b, DEV), Errno::EINVAL);
    let mut b = hdr(0, 1, 0, 2 * MIB);
    ext(&mut b, 0, 4096, 2 * MIB);
    assert_eq!(errno(&b, DEV), Errno::EINVAL);
}

#[test]
fn dev_grow_and_retry_once() {
    let full = {
        let mut b = simple(200);
        let len = b.len() as u32;
        b[12..16].copy_from_slice(&len.to_le_bytes());
        b
    };
    assert!(full.len() > 4096);
    // First answer: the header alone with fmap_size > 4096 -> retry with exactly that size.
    let head = &full[..32];
    assert_eq!(
        parse_reply(head, DEV, 4096, false).unwrap(),
        FmapReply::Retry { buffer: full.len() }
    );
    // The retry gets the whole fmap.
    let FmapReply::Fmap(f) = parse_reply(&full, DEV, full.len(), true).unwrap() else {
        panic!("no fmap")
    };
    assert_eq!(f.fmap.kind.nextents(), 200);
    // Growing again on the retry: EINVAL.
    let mut grown = head.to_vec();
    grown[12..16].copy_from_slice(&(full.len() as u32 + 24).to_le_bytes());
    assert_eq!(
        parse_reply(&grown, DEV, full.len(), true)
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    // More than 16 MiB: EFBIG.
    let mut huge = head.to_vec();
    huge[12..16].copy_from_slice(&(16 * 1024 * 1024 + 1u32).to_le_bytes());
    assert_eq!(
        parse_reply(&huge, DEV, 4096, false).unwrap_err().errno(),
        Errno::EFBIG
    );
    // A V1 server leaves word 12 zero: a dev kernel accepts it.
    assert!(matches!(
        parse_reply(&simple(2), DEV, 4096, false).unwrap(),
        FmapReply::Fmap(_)
    ));
}

// ---- FUSE core rules around the famfs replies ----

#[test]
fn daxdev_reply_must_be_exactly_280_bytes() {
    for len in [0usize, 279, 281] {
        let mut b = Vec::new();
        b.extend_from_slice(&(16 + len as u32).to_le_bytes());
        b.extend_from_slice(&0i32.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        b.resize(16 + len, 0);
        let r = ReplyRef::parse(&b).unwrap();
        assert_eq!(r.daxdev().unwrap_err().errno(), Errno::EIO, "{len}");
    }
}

#[test]
fn server_error_reply_fails_the_open_with_that_errno() {
    let mut b = Vec::new();
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&(-2i32).to_le_bytes());
    b.extend_from_slice(&2u64.to_le_bytes());
    let r = ReplyRef::parse(&b).unwrap();
    assert_eq!(r.fmap(V1, 4096, false).unwrap_err().errno(), Errno::ENOENT);
}
