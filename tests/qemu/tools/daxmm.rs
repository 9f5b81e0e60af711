//! `daxmm`: a tiny guest tool for the qemu test harness. It reads and writes a dax character device
//! (or any file) through a `MAP_SHARED` mapping, because devdax refuses read(2) and write(2).
//!
//! Built by `tests/qemu/setup.sh` with plain `rustc` (no dependencies) as a static binary:
//! `rustc --edition 2024 -O -C target-feature=+crt-static -o daxmm daxmm.rs`.
//!
//! Every mapping covers whole 2 MiB units around the requested range, as devdax requires.
//! Offsets and lengths accept K, M and G suffixes (powers of two); an offset `end-N` counts from
//! the end of the device.
//!
//! The pattern of `fill`, `check` and `gen` is xorshift64* seeded with `seed ^ 0x9E37_79B9_7F4A_7C15`,
//! each 64-bit output stored little-endian; the Rust test on the host computes the same bytes.

use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const ALIGN: u64 = 2 << 20;
const PROT_READ: i32 = 1;
const PROT_WRITE: i32 = 2;
const MAP_SHARED: i32 = 1;
const MS_SYNC: i32 = 4;

unsafe extern "C" {
    fn mmap(addr: *mut c_void, len: usize, prot: i32, flags: i32, fd: i32, off: i64)
    -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> i32;
    fn msync(addr: *mut c_void, len: usize, flags: i32) -> i32;
}

const USAGE: &str = "usage:
  daxmm size  DEV                       print the device size in bytes
  daxmm write DEV OFF STRING            store STRING at OFF
  daxmm read  DEV OFF LEN               print LEN bytes at OFF (up to the first NUL)
  daxmm wait  DEV OFF STRING SECS       poll until the bytes at OFF equal STRING (exit 1 on timeout)
  daxmm fill  DEV OFF LEN SEED          write the test pattern for SEED
  daxmm check DEV OFF LEN SEED          verify the test pattern (exit 1 and report the first mismatch)
  daxmm gen   LEN SEED                  write the test pattern to stdout";

/// A shared read-write mapping of whole 2 MiB units of a file.
struct Mapping {
    base: *mut u8,
    len: usize,
    /// Offset of the requested byte inside the mapping.
    skew: usize,
    /// msync only regular files: device dax has no fsync, so msync fails there with EINVAL
    /// (stores to devdax need no write-back to reach the device).
    needs_msync: bool,
}

impl Mapping {
    fn new(file: &File, off: u64, len: u64) -> Result<Self, String> {
        let start = off / ALIGN * ALIGN;
        let end = (off + len.max(1)).div_ceil(ALIGN) * ALIGN;
        let map_len = usize::try_from(end - start).map_err(|_| "range too large".to_string())?;
        let file_off = i64::try_from(start).map_err(|_| "offset too large".to_string())?;
        // SAFETY: a fresh mapping at an address the kernel picks; the fd is open for the whole call
        // and the arguments are plain integers. Failure is reported as MAP_FAILED and checked.
        let p = unsafe {
            mmap(
                std::ptr::null_mut(),
                map_len,
                PROT_READ | PROT_WRITE,
                MAP_SHARED,
                file.as_raw_fd(),
                file_off,
            )
        };
        if p as isize == -1 {
            return Err(format!(
                "mmap of {map_len} bytes at {start:#x}: {}",
                io::Error::last_os_error()
            ));
        }
        let needs_msync = file
            .metadata()
            .map(|m| m.file_type().is_file())
            .unwrap_or(true);
        Ok(Mapping {
            base: p.cast(),
            len: map_len,
            skew: (off - start) as usize,
            needs_msync,
        })
    }

    fn ptr(&self, i: usize) -> *mut u8 {
        assert!(self.skew + i < self.len);
        // SAFETY: the index was just checked to lie inside the mapping.
        unsafe { self.base.add(self.skew + i) }
    }

    fn get(&self, i: usize) -> u8 {
        // SAFETY: `ptr` bounds-checks; volatile because another VM may change the byte at any time.
        unsafe { self.ptr(i).read_volatile() }
    }

    fn set(&self, i: usize, v: u8) {
        // SAFETY: `ptr` bounds-checks; the mapping is writable and shared.
        unsafe { self.ptr(i).write_volatile(v) }
    }

    fn sync(&self) -> Result<(), String> {
        if !self.needs_msync {
            return Ok(());
        }
        // SAFETY: the whole range belongs to this live mapping.
        if unsafe { msync(self.base.cast(), self.len, MS_SYNC) } != 0 {
            return Err(format!("msync: {}", io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the range mmap returned; no references into it outlive self.
        unsafe { munmap(self.base.cast(), self.len) };
    }
}

/// The pattern generator shared with the host test.
struct Pattern(u64);

impl Pattern {
    fn new(seed: u64) -> Self {
        Pattern(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next(&mut self) -> [u8; 8] {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    }
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let w = self.next();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

fn parse_num(s: &str) -> Result<u64, String> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse(),
    }
    .map_err(|_| format!("bad number {s:?}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("number {s:?} too large"))
}

fn major_minor(rdev: u64) -> (u64, u64) {
    (
        ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff),
        (rdev & 0xff) | ((rdev >> 12) & !0xff),
    )
}

fn dev_size(path: &str, file: &File) -> Result<u64, String> {
    let md = file.metadata().map_err(|e| format!("{path}: {e}"))?;
    if md.file_type().is_char_device() {
        let (maj, min) = major_minor(md.rdev());
        let sys = format!("/sys/dev/char/{maj}:{min}/size");
        let text = std::fs::read_to_string(&sys).map_err(|e| format!("{sys}: {e}"))?;
        return text
            .trim()
            .parse()
            .map_err(|_| format!("{sys}: bad size {text:?}"));
    }
    Ok(md.len())
}

fn parse_off(s: &str, path: &str, file: &File) -> Result<u64, String> {
    match s.strip_prefix("end-") {
        Some(back) => {
            let size = dev_size(path, file)?;
            size.checked_sub(parse_num(back)?)
                .ok_or_else(|| format!("{s} is before the start of {path}"))
        }
        None => parse_num(s),
    }
}

fn open(path: &str) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("open {path}: {e}"))
}

fn run(args: &[String]) -> Result<bool, String> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["size", dev] => {
            let f = open(dev)?;
            println!("{}", dev_size(dev, &f)?);
        }
        ["write", dev, off, text] => {
            let f = open(dev)?;
            let m = Mapping::new(&f, parse_off(off, dev, &f)?, text.len() as u64 + 1)?;
            for (i, b) in text.bytes().chain(std::iter::once(0)).enumerate() {
                m.set(i, b);
            }
            m.sync()?;
        }
        ["read", dev, off, len] => {
            let f = open(dev)?;
            let len = parse_num(len)? as usize;
            let m = Mapping::new(&f, parse_off(off, dev, &f)?, len as u64)?;
            let bytes: Vec<u8> = (0..len).map(|i| m.get(i)).take_while(|&b| b != 0).collect();
            println!("{}", String::from_utf8_lossy(&bytes));
        }
        ["wait", dev, off, text, secs] => {
            let f = open(dev)?;
            let m = Mapping::new(&f, parse_off(off, dev, &f)?, text.len() as u64)?;
            let deadline = Instant::now() + Duration::from_secs(parse_num(secs)?);
            while !text.bytes().enumerate().all(|(i, b)| m.get(i) == b) {
                if Instant::now() > deadline {
                    eprintln!("daxmm: timed out waiting for {text:?} at {off} of {dev}");
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        ["fill", dev, off, len, seed] => {
            let f = open(dev)?;
            let len = parse_num(len)? as usize;
            let m = Mapping::new(&f, parse_off(off, dev, &f)?, len as u64)?;
            let mut buf = vec![0u8; len];
            Pattern::new(parse_num(seed)?).fill(&mut buf);
            // SAFETY: `Mapping::new` covered at least `len` bytes from `ptr(0)`; `buf` is a separate
            // heap allocation, so the ranges do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), m.ptr(0), len) };
            m.sync()?;
        }
        ["check", dev, off, len, seed] => {
            let f = open(dev)?;
            let len = parse_num(len)? as usize;
            let m = Mapping::new(&f, parse_off(off, dev, &f)?, len as u64)?;
            let mut want = vec![0u8; len];
            Pattern::new(parse_num(seed)?).fill(&mut want);
            if let Some(i) = (0..len).find(|&i| m.get(i) != want[i]) {
                eprintln!(
                    "daxmm: mismatch at +{i:#x}: got {:#04x}, want {:#04x}",
                    m.get(i),
                    want[i]
                );
                return Ok(false);
            }
            println!("verified {len} bytes");
        }
        ["gen", len, seed] => {
            let mut left = parse_num(len)? as usize;
            let mut pat = Pattern::new(parse_num(seed)?);
            let mut out = io::stdout().lock();
            let mut buf = vec![0u8; 1 << 20];
            while left > 0 {
                let n = left.min(buf.len());
                pat.fill(&mut buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(|e| format!("stdout: {e}"))?;
                left -= n;
            }
        }
        ["--help" | "-h"] => println!("{USAGE}"),
        _ => return Err(format!("bad arguments {a:?}\n{USAGE}")),
    }
    Ok(true)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("daxmm: {e}");
            ExitCode::from(2)
        }
    }
}
