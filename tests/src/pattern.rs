//! Deterministic file contents: every byte is a function of a per-file seed and its offset, so a
//! test can check any range of a large file without keeping a copy of it.

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 8 bytes of word `word` (file offsets `8*word .. 8*word+8`) of the file with `seed`.
fn word(seed: u64, word: u64) -> [u8; 8] {
    mix(seed ^ word.wrapping_mul(0xd134_2543_de82_ef95)).to_le_bytes()
}

/// Fills `buf` with the bytes at file offsets `off..off + buf.len()` of the file with `seed`.
pub fn fill(seed: u64, off: u64, buf: &mut [u8]) {
    let mut pos = 0usize;
    let mut at = off;
    // Leading partial word.
    if !at.is_multiple_of(8) && !buf.is_empty() {
        let w = word(seed, at / 8);
        let skip = (at % 8) as usize;
        let n = (8 - skip).min(buf.len());
        buf[..n].copy_from_slice(&w[skip..skip + n]);
        pos = n;
        at += n as u64;
    }
    let mut chunks = buf[pos..].chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&word(seed, at / 8));
        at += 8;
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let n = rest.len();
        rest.copy_from_slice(&word(seed, at / 8)[..n]);
    }
}

/// The bytes at file offsets `off..off + len` of the file with `seed`.
pub fn bytes(seed: u64, off: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill(seed, off, &mut v);
    v
}

/// The first offset where `got` differs from the pattern at `off`, for error messages.
pub fn first_mismatch(seed: u64, off: u64, got: &[u8]) -> Option<u64> {
    let want = bytes(seed, off, got.len());
    want.iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .map(|i| off + i as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_split_gives_the_same_bytes() {
        let whole = bytes(7, 3, 1000);
        for (off, len) in [(3u64, 1usize), (4, 7), (10, 33), (11, 0), (500, 503)] {
            let part = bytes(7, off, len);
            let i = (off - 3) as usize;
            assert_eq!(part, whole[i..i + len], "{off}+{len}");
        }
        assert_ne!(bytes(7, 0, 64), bytes(8, 0, 64));
        assert_eq!(first_mismatch(7, 3, &whole), None);
        let mut bad = whole.clone();
        bad[17] ^= 1;
        assert_eq!(first_mismatch(7, 3, &bad), Some(20));
    }
}
