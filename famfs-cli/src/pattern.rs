//! The data pattern of `famfs creat -r -S SEED` and `famfs verify -S SEED`, byte-identical to the
//! reference's.
//!
//! The reference seeds xoroshiro128+ with two splitmix64 steps from the seed truncated to 32 bits,
//! and fills the file with 4-byte little-endian words, each the low 32 bits of one output; a
//! trailing partial word takes the low bytes of one more output. So byte `o` of a file is byte
//! `o % 4` (little-endian) of the low half of output number `o / 4`, for any size.
//!
//! Note the generator is the **2016** xoroshiro128+ (shift/rotate constants a=55, b=14, c=36), the
//! one the reference's test library carries — not the 2018 revision (24, 16, 37). Only the former
//! reproduces files the reference writes and verifies.
//!
//! Speed: the generator is a chain of dependent xor/shift/rotate steps, so one stream is
//! latency-bound. The state transition is linear over GF(2), so the state after `n` steps is a
//! 128×128 bit matrix power applied to the seed state; with the powers `T^(2^k)` precomputed, any
//! position of the stream is reachable in microseconds ([`Pattern::fill`] at any offset). [`Pattern::fill`]
//! uses this to run several independent lanes of one buffer in the same loop (instruction-level
//! parallelism), and callers split big files over threads the same way.

use std::sync::OnceLock;

/// Rotation/shift constants of the 2016 xoroshiro128+ (the reference's).
const ROT_A: u32 = 55;
const SHIFT_B: u32 = 14;
const ROT_C: u32 = 36;

/// Independent streams interleaved in [`Pattern::fill`]'s inner loop.
const LANES: usize = 8;

/// splitmix64: advance `x` by the golden-ratio increment and return the mixed value.
pub fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoroshiro128+ state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xoroshiro128Plus {
    s0: u64,
    s1: u64,
}

impl Xoroshiro128Plus {
    /// A generator with state `(s0, s1)`.
    pub fn from_state(s0: u64, s1: u64) -> Self {
        Xoroshiro128Plus { s0, s1 }
    }

    /// Seeded as the reference does: two splitmix64 outputs from `seed`.
    pub fn seeded(seed: u64) -> Self {
        let mut x = seed;
        let s0 = splitmix64(&mut x);
        let s1 = splitmix64(&mut x);
        Xoroshiro128Plus { s0, s1 }
    }

    /// The state `(s0, s1)`.
    pub fn state(&self) -> (u64, u64) {
        (self.s0, self.s1)
    }

    /// Next output (the sum of the state words before the step).
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        let s0 = self.s0;
        let result = s0.wrapping_add(self.s1);
        self.step();
        result
    }

    /// The state transition alone (linear over GF(2)).
    #[inline(always)]
    fn step(&mut self) {
        let s0 = self.s0;
        let s1 = self.s1 ^ s0;
        self.s0 = s0.rotate_left(ROT_A) ^ s1 ^ (s1 << SHIFT_B);
        self.s1 = s1.rotate_left(ROT_C);
    }

    /// Advance by `n` steps in O(log n) matrix applications.
    pub fn jump(&mut self, n: u64) {
        let pows = powers();
        let mut v = (self.s0, self.s1);
        let mut bits = n;
        while bits != 0 {
            let k = bits.trailing_zeros() as usize;
            v = apply(&pows[k], v);
            bits &= bits - 1;
        }
        self.s0 = v.0;
        self.s1 = v.1;
    }
}

/// A linear map on 128-bit states, as the images of the 128 basis vectors (bit j of s0 is basis
/// vector j, bit j of s1 is basis vector 64 + j).
type Matrix = [(u64, u64); 128];

fn apply(m: &Matrix, v: (u64, u64)) -> (u64, u64) {
    let mut r = (0u64, 0u64);
    for (half, base) in [(v.0, 0usize), (v.1, 64usize)] {
        let mut bits = half;
        while bits != 0 {
            let j = bits.trailing_zeros() as usize;
            let c = m[base + j];
            r.0 ^= c.0;
            r.1 ^= c.1;
            bits &= bits - 1;
        }
    }
    r
}

/// `T^(2^k)` for k in 0..64, where T is one generator step.
fn powers() -> &'static [Matrix; 64] {
    static POWERS: OnceLock<Box<[Matrix; 64]>> = OnceLock::new();
    POWERS.get_or_init(|| {
        let mut pows = Box::new([[(0u64, 0u64); 128]; 64]);
        for j in 0..128 {
            let mut g = if j < 64 {
                Xoroshiro128Plus::from_state(1 << j, 0)
            } else {
                Xoroshiro128Plus::from_state(0, 1 << (j - 64))
            };
            g.step();
            pows[0][j] = (g.s0, g.s1);
        }
        for k in 1..64 {
            let prev = pows[k - 1];
            for j in 0..128 {
                pows[k][j] = apply(&prev, prev[j]);
            }
        }
        pows
    })
}

/// The pattern of one seed: an endless byte stream that can be produced from any offset.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    origin: Xoroshiro128Plus,
}

impl Pattern {
    /// The pattern for `seed`, truncated to its low 32 bits as the reference does.
    pub fn new(seed: u64) -> Pattern {
        Pattern {
            origin: Xoroshiro128Plus::seeded(u64::from(seed as u32)),
        }
    }

    /// The generator positioned to produce word `w` next.
    fn at_word(&self, w: u64) -> Xoroshiro128Plus {
        let mut g = self.origin;
        g.jump(w);
        g
    }

    /// Fill `buf` with bytes `[offset, offset + buf.len())` of the stream.
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        if buf.is_empty() {
            return;
        }
        let mut word = offset / 4;
        let skip = (offset % 4) as usize;
        let mut rest: &mut [u8] = buf;
        if skip != 0 {
            let v = (self.at_word(word).next_u64() as u32).to_le_bytes();
            let n = (4 - skip).min(rest.len());
            rest[..n].copy_from_slice(&v[skip..skip + n]);
            rest = &mut rest[n..];
            word += 1;
        }
        let whole = rest.len() / 4;
        let (body, tail) = rest.split_at_mut(whole * 4);
        self.fill_words(word, body);
        if !tail.is_empty() {
            let v = (self.at_word(word + whole as u64).next_u64() as u32).to_le_bytes();
            let n = tail.len();
            tail.copy_from_slice(&v[..n]);
        }
    }

    /// Fill `body` (a multiple of 4 bytes) with words `first..`, in [`LANES`] interleaved streams.
    fn fill_words(&self, first: u64, body: &mut [u8]) {
        let words = body.len() / 4;
        if words < LANES * 64 {
            let mut g = self.at_word(first);
            for w in body.chunks_exact_mut(4) {
                w.copy_from_slice(&(g.next_u64() as u32).to_le_bytes());
            }
            return;
        }
        let per = words / LANES;
        let mut gens = [self.origin; LANES];
        for (l, g) in gens.iter_mut().enumerate() {
            *g = self.at_word(first + (l * per) as u64);
        }
        let (lanes_part, rem) = body.split_at_mut(per * LANES * 4);
        {
            let mut chunks = lanes_part.chunks_exact_mut(per * 4);
            let lanes: [&mut [u8]; LANES] =
                std::array::from_fn(|_| chunks.next().expect("LANES chunks of per*4 bytes"));
            for i in 0..per {
                let at = i * 4;
                for l in 0..LANES {
                    let v = gens[l].next_u64() as u32;
                    lanes[l][at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        // The last lane's generator is now exactly at word `first + LANES * per`.
        let g = &mut gens[LANES - 1];
        for w in rem.chunks_exact_mut(4) {
            w.copy_from_slice(&(g.next_u64() as u32).to_le_bytes());
        }
    }

    /// The first index in `data` that differs from bytes `[offset, offset + data.len())` of the
    /// stream, using `scratch` (any non-empty size) for the expected bytes.
    pub fn first_mismatch(&self, offset: u64, data: &[u8], scratch: &mut Vec<u8>) -> Option<usize> {
        const STEP: usize = 1 << 20;
        scratch.resize(STEP.min(data.len()).max(1), 0);
        let mut done = 0usize;
        while done < data.len() {
            let n = (data.len() - done).min(scratch.len());
            let exp = &mut scratch[..n];
            self.fill(offset + done as u64, exp);
            let got = &data[done..done + n];
            if got != exp {
                let i = got.iter().zip(exp.iter()).position(|(a, b)| a != b);
                return Some(done + i.unwrap_or(0));
            }
            done += n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64 outputs from the definition (x += golden; two xor-shift-multiply rounds; a final
    /// xor-shift), evaluated independently with big-integer arithmetic mod 2^64.
    #[test]
    fn splitmix64_vectors() {
        // Well-known first outputs of splitmix64 seeded with 0 and 1.
        let mut x = 0u64;
        assert_eq!(splitmix64(&mut x), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut x), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(splitmix64(&mut x), 0x06C4_5D18_8009_454F);
        let mut x = 1u64;
        assert_eq!(splitmix64(&mut x), 0x910A_2DEC_8902_5CC1);
    }

    #[test]
    fn xoroshiro_step_by_hand() {
        // State (1, 0): result 1; s1' = 0 ^ 1 = 1;
        // s0' = rotl(1, 55) ^ 1 ^ (1 << 14) = 2^55 + 2^14 + 1; s1' = rotl(1, 36) = 2^36.
        let mut g = Xoroshiro128Plus::from_state(1, 0);
        assert_eq!(g.next_u64(), 1);
        assert_eq!(g.state(), ((1 << 55) | (1 << 14) | 1, 1 << 36));
        // Next: result = s0 + s1 = 2^55 + 2^36 + 2^14 + 1.
        assert_eq!(g.next_u64(), (1 << 55) | (1 << 36) | (1 << 14) | 1);
        // s1 = 2^36 ^ (2^55 + 2^14 + 1) = 2^55 + 2^36 + 2^14 + 1;
        // s0 = rotl(2^55 + 2^14 + 1, 55) ^ s1 ^ (s1 << 14)
        //    = (2^46 + 2^5 + 2^55... ) -- computed below term by term.
        let s0_prev: u64 = (1 << 55) | (1 << 14) | 1;
        let s1: u64 = (1 << 55) | (1 << 36) | (1 << 14) | 1;
        // rotl(2^55, 55) = 2^46 (110 mod 64); rotl(2^14, 55) = 2^5 (69 mod 64); rotl(1, 55) = 2^55.
        let rot = (1u64 << 46) | (1 << 5) | (1 << 55);
        // s1 << 14: 2^69 (dropped), 2^50, 2^28, 2^14.
        let shl = (1u64 << 50) | (1 << 28) | (1 << 14);
        assert_eq!(s0_prev.rotate_left(55), rot);
        let s0 = rot ^ s1 ^ shl;
        // rotl(s1, 36): 2^91->2^27, 2^72->2^8, 2^50, 2^36.
        let s1n = (1u64 << 27) | (1 << 8) | (1 << 50) | (1 << 36);
        assert_eq!(g.state(), (s0, s1n));
    }

    #[test]
    fn seeded_pattern_matches_the_definition() {
        // Seed 1: state = (splitmix #1, splitmix #2) from x = 1.
        let mut x = 1u64;
        let (a, b) = (splitmix64(&mut x), splitmix64(&mut x));
        let mut g = Xoroshiro128Plus::from_state(a, b);
        let p = Pattern::new(1);
        let mut buf = [0u8; 10];
        p.fill(0, &mut buf);
        let w0 = (g.next_u64() as u32).to_le_bytes();
        let w1 = (g.next_u64() as u32).to_le_bytes();
        let w2 = (g.next_u64() as u32).to_le_bytes();
        assert_eq!(&buf[0..4], &w0);
        assert_eq!(&buf[4..8], &w1);
        assert_eq!(
            &buf[8..10],
            &w2[..2],
            "tail takes the low bytes of one more output"
        );
        // Hand-derived: output 0 = a + b (wrapping), low 32 bits little-endian.
        assert_eq!(w0, (a.wrapping_add(b) as u32).to_le_bytes());
        // Pinned vectors (evaluated independently from the definitions with big-integer
        // arithmetic mod 2^64): the first 16 bytes for seeds 1 and 42.
        let mut v = [0u8; 16];
        Pattern::new(1).fill(0, &mut v);
        assert_eq!(
            v,
            [
                0x28, 0x49, 0x91, 0xee, 0x66, 0xb6, 0xfb, 0x34, 0x3a, 0x87, 0xca, 0x18, 0xde, 0x44,
                0x17, 0x78
            ]
        );
        Pattern::new(42).fill(0, &mut v);
        assert_eq!(
            v,
            [
                0x98, 0x5f, 0x52, 0xe2, 0x7a, 0xfb, 0x0c, 0x3d, 0xf8, 0x8c, 0x82, 0x2b, 0x40, 0x22,
                0x49, 0xe5
            ]
        );
        assert_eq!(
            Xoroshiro128Plus::seeded(1).state(),
            (0x910A_2DEC_8902_5CC1, 0xBEEB_8DA1_658E_EC67)
        );
        // The seed is truncated to 32 bits.
        let mut b1 = [0u8; 64];
        let mut b2 = [0u8; 64];
        Pattern::new(0x7_0000_0001).fill(0, &mut b1);
        Pattern::new(1).fill(0, &mut b2);
        assert_eq!(b1, b2);
    }

    #[test]
    fn jump_equals_stepping() {
        let mut g = Xoroshiro128Plus::seeded(42);
        let mut j = g;
        for n in [0u64, 1, 2, 3, 63, 64, 1000, 4097] {
            let mut s = g;
            for _ in 0..n {
                s.next_u64();
            }
            j = g;
            j.jump(n);
            assert_eq!(s, j, "jump({n})");
        }
        // Jumps compose.
        j.jump(1 << 40);
        let mut k = g;
        k.jump((1 << 40) + 4097);
        assert_eq!(j, k);
        g.jump(0);
    }

    #[test]
    fn fill_at_any_offset_and_length_agrees_with_the_sequential_stream() {
        let p = Pattern::new(0xdead_beef);
        let n = 4 * LANES * 64 * 12 + 13;
        let mut whole = vec![0u8; n];
        // Sequential reference: one generator, words in order.
        let mut g = Xoroshiro128Plus::seeded(0xdead_beef);
        for w in whole.chunks_mut(4) {
            let v = (g.next_u64() as u32).to_le_bytes();
            let len = w.len();
            w.copy_from_slice(&v[..len]);
        }
        let mut got = vec![0u8; n];
        p.fill(0, &mut got);
        assert_eq!(got, whole);
        for (off, len) in [
            (1usize, 5usize),
            (3, 1),
            (2, 4000),
            (7, n - 7),
            (4, 16384),
            (5, 16385),
        ] {
            let mut part = vec![0u8; len];
            p.fill(off as u64, &mut part);
            assert_eq!(part, &whole[off..off + len], "offset {off} len {len}");
        }
        let mut scratch = Vec::new();
        assert_eq!(p.first_mismatch(0, &whole, &mut scratch), None);
        let mut bad = whole.clone();
        bad[9999] ^= 1;
        assert_eq!(p.first_mismatch(0, &bad, &mut scratch), Some(9999));
        assert_eq!(
            p.first_mismatch(9000, &bad[9000..], &mut scratch),
            Some(999)
        );
        assert_eq!(p.first_mismatch(0, &[], &mut scratch), None);
    }
}
