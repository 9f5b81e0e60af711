//! Command-line definitions of `famfs` (clap derive). Option letters follow the reference CLI.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::parse::{
    MultiCreat, MultiVerify, parse_gid, parse_mode, parse_multi_creat, parse_multi_verify,
    parse_number, parse_seed, parse_size, parse_uid,
};

/// Explanation of the two ways every file command can work, shown in `famfs --help`.
pub const FORMS_HELP: &str = "\
Two ways to work:
  Mounted: paths are host paths inside a mounted famfs (e.g. /mnt/famfs/data/a.bin). The command
    finds the mount, appends to MOUNT/.meta/.log under its lock, and reads/writes file data
    through the mount. This is what the reference famfs CLI does.
  Offline: `--device DEV` (or -d DEV) works directly on an unmounted dax device (/dev/daxX.Y, in
    devdax mode) or a stand-in regular file. Paths are then famfs paths, relative to the file
    system root (a leading '/' is accepted: /data/a.bin and data/a.bin are the same file).
  `fsck` and `logplay` take DEV positionally (a char device or a regular file outside any famfs
  mount) or a path inside a mount.

Only the master host (whose system UUID is in the superblock) can create files and directories.
The system UUID comes from $FAMFS_SYSTEM_UUID, else the file $FAMFS_SYSTEM_UUID_FILE, else
/opt/famfs/system_uuid (created on first use).

Exit status: 0 success; 1 most failures, and a missing argument; 2 an unknown option or a bad
value, or a path that does not exist (ENOENT); 3 an unknown command; otherwise the errno of the
cause, as the reference does (e.g. 13 permission denied, 16 device mounted/busy, 22 invalid
argument, 28 no space, 107 a stale mount whose daemon died, 117 no valid famfs on the device).
Commands with codes of their own list them in their help: fsck (1-100 allocation collisions,
101-106 other outcomes), logplay (skipped entries), getmap, mount; mkfs.famfs exits 0, 1 or 2.";

/// `famfs`: create and inspect files in famfs, the fabric-attached memory file system.
#[derive(Debug, Parser)]
#[command(
    name = "famfs",
    version,
    about = "Create and inspect files in famfs, the fabric-attached memory file system",
    after_long_help = FORMS_HELP,
    subcommand_required = true,
    arg_required_else_help = false
)]
pub struct Famfs {
    /// More log output (repeat for more); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print help, as -h/--help (the reference's `-?`; on fsck, where -h is --human, use -?).
    #[arg(short = '?', action = ArgAction::Help, global = true, hide = true)]
    pub help_q: Option<bool>,
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Mount a famfs: validate it, start the famfs_fused daemon, wait for the meta files.
    Mount(MountArgs),
    /// Unmount a famfs and wait for its daemon to exit.
    Umount(UmountArgs),
    /// Check a famfs: superblock, log, allocation collisions, free space.
    #[command(disable_help_flag = true, after_help = FSCK_EXIT_HELP)]
    Fsck(FsckArgs),
    /// Create a directory.
    Mkdir(MkdirArgs),
    /// Copy files and directories from the host into famfs.
    Cp(CpArgs),
    /// Create (allocate) files, optionally filled with a verifiable pattern.
    Creat(CreatArgs),
    /// Check a file's contents against the pattern `famfs creat -r -S SEED` wrote.
    Verify(VerifyArgs),
    /// Write back (and drop) the CPU cache lines of files, for hosts without coherent memory.
    Flush(FlushArgs),
    /// Replay the log: list the tree (--ls) and report entries that were skipped.
    Logplay(LogplayArgs),
    /// Print where a file's bytes are on the device (its extents).
    Getmap(GetmapArgs),
    /// TESTING ONLY: log a second file with the same extents as SRC (cross-links the fs).
    Clone(CloneArgs),
    /// Check that a file reads the same through read(2) and mmap(2).
    Chkread(ChkreadArgs),
    /// Show or switch the mode of a dax device (devdax, famfs, system-ram).
    Daxmode(DaxmodeArgs),
    /// Report each famfs mount's daemon (counters, log, space); change its log level.
    Status(crate::cmd::status::StatusArgs),
}

/// `--device` for commands that take famfs paths.
#[derive(Debug, Clone, Args)]
pub struct DeviceOpt {
    /// Work offline on this unmounted device or stand-in file; paths are famfs paths
    /// (relative to the file system root).
    #[arg(short = 'd', long = "device", value_name = "DEV")]
    pub device: Option<PathBuf>,
    /// With --device on a dax device: switch it to devdax mode if it is in another mode
    /// (refused, EBUSY, while it is mounted, open or mapped).
    #[arg(long = "set-daxmode")]
    pub set_daxmode: bool,
}

/// Owner and mode options.
#[derive(Debug, Clone, Args)]
pub struct OwnerOpts {
    /// Octal mode (e.g. 0644).
    #[arg(short = 'm', long = "mode", value_parser = parse_mode, value_name = "MODE")]
    pub mode: Option<u32>,
    /// Owner: a uid or a user name.
    #[arg(short = 'u', long = "uid", value_parser = parse_uid, value_name = "UID")]
    pub uid: Option<u32>,
    /// Group: a gid or a group name.
    #[arg(short = 'g', long = "gid", value_parser = parse_gid, value_name = "GID")]
    pub gid: Option<u32>,
}

/// Interleave (striping) options; giving any one turns interleaved allocation on.
#[derive(Debug, Clone, Default, Args)]
pub struct InterleaveOpts {
    /// Strips per file (1..=16). Default: min(nbuckets, 16).
    #[arg(short = 'N', long = "nstrips", value_parser = parse_number, value_name = "N")]
    pub nstrips: Option<u64>,
    /// Buckets the device is cut into (1..=64, each at least 1 GiB). Default: device size /
    /// 1 GiB, at most 64.
    #[arg(short = 'B', long = "nbuckets", value_parser = parse_number, value_name = "N")]
    pub nbuckets: Option<u64>,
    /// Chunk size (a power of two, a multiple of 2 MiB). Default 2m.
    #[arg(short = 'C', long = "chunksize", value_parser = parse_size, value_name = "SIZE")]
    pub chunksize: Option<u64>,
}

/// `famfs mount`.
#[derive(Debug, Args)]
#[command(
    after_help = "The daemon runs in the foreground of its own session; its output goes to \
/run/famfs/<hash>.log (or $TMPDIR/famfs-<hash>.log when /run/famfs cannot be written), where \
<hash> names the mount point; `famfs mount -v` prints the file's name. The log is removed by a \
clean `famfs umount` and kept when the daemon fails. $FAMFS_FUSED overrides where famfs_fused \
is found (default: next to this program, then $PATH).\n\n\
The daemon reports on a pipe (`famfs_fused --ready-fd`) once it is mounted and serving, or \
the error that stopped it, which famfs mount prints as it is. With --foreground, famfs mount stays \
until the file system is unmounted (for systemd and other supervisors): the daemon's output goes \
to famfs mount's stdout/stderr, SIGTERM or SIGINT unmounts, and the exit status is the daemon's. \
Installed as /sbin/mount.fuse.famfs, this program is the mount(8) helper for \
`mount -t fuse.famfs DEV MPT` and fstab lines (options such as system_uuid=, dax=, transport=).\n\n\
A dax device in famfs mode (fsdev_dax) is handed to the daemon as it is: on a famfs-enabled \
kernel the daemon reads the superblock and log through its own mount and the kernel maps files \
straight onto the device; a kernel without famfs support fails the mount, naming the command \
that switches the device to devdax mode (or use -M). A device in devdax mode, or a stand-in \
file, is served by the daemon itself.\n\n\
Exit status: 0 mounted; 1 any failure (usage, not root, bad device or mount point, a stale or \
existing mount, the daemon failed or timed out: nothing is left mounted); 2 an unknown option. \
With --foreground: the daemon's exit status once unmounted (0 after an unmount)."
)]
pub struct MountArgs {
    /// Attribute/entry cache timeout of the daemon, in seconds.
    #[arg(short = 't', long = "timeout", value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Do not pass allow_other (only the mounting user can access the files).
    #[arg(short = 'u', long = "nouseraccess")]
    pub nouseraccess: bool,
    /// Do not pass default_permissions (no permission checks by the kernel).
    #[arg(short = 'p', long = "nodefaultperm")]
    pub nodefaultperm: bool,
    /// Debug: single-threaded daemon with debug logging.
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,
    /// Switch a dax device to devdax mode if needed (refused, EBUSY, while it is mounted, open
    /// or mapped).
    #[arg(short = 'M', long = "set-daxmode")]
    pub set_daxmode: bool,
    /// Offer the kernel file maps (GET_FMAP) when it supports them (`auto`), or always serve
    /// data through the daemon (`off`).
    #[arg(long = "dax", value_name = "auto|off", value_parser = ["auto", "off"])]
    pub dax: Option<String>,
    /// How often the daemon looks for new log entries, in milliseconds.
    #[arg(long = "poll-ms", value_name = "MS")]
    pub poll_ms: Option<u64>,
    /// Daemon worker threads.
    #[arg(long = "threads", value_name = "N")]
    pub threads: Option<u32>,
    /// Seconds to wait for the daemon to come up.
    #[arg(long = "wait", value_name = "SECS", default_value_t = 15.0)]
    pub wait: f64,
    /// This host's system UUID for the daemon (default: $FAMFS_SYSTEM_UUID, else
    /// /opt/famfs/system_uuid).
    #[arg(long = "system-uuid", value_name = "UUID")]
    pub system_uuid: Option<uuid::Uuid>,
    /// How requests reach the daemon: FUSE over io_uring if the kernel offers it (`auto`), only
    /// io_uring (`uring`), or the /dev/fuse loop (`dev`).
    #[arg(long = "transport", value_name = "auto|uring|dev", value_parser = ["auto", "uring", "dev"])]
    pub transport: Option<String>,
    /// Stay in the foreground until the file system is unmounted, supervising the daemon
    /// (systemd units): SIGTERM/SIGINT unmount it; the exit status is the daemon's.
    #[arg(long = "foreground")]
    pub foreground: bool,
    /// The dax device (/dev/daxX.Y) or stand-in file.
    #[arg(value_name = "DEV", required = true)]
    pub dev: PathBuf,
    /// The mount point (an existing directory).
    #[arg(value_name = "MPT", required = true)]
    pub mpt: PathBuf,
}

/// `famfs umount`.
#[derive(Debug, Args)]
#[command(
    after_help = "A stale mount (its daemon died) is detached. The daemon's log is removed after a \
clean stop and kept otherwise.\n\n\
Exit status: 0 unmounted; 1 MPT is not a famfs mount point, or is still mounted afterwards; 16 \
busy (files open or a working directory in it: use -l); other errno values of umount(2)."
)]
pub struct UmountArgs {
    /// Lazy: detach the mount even if it is busy.
    #[arg(short = 'l', long = "lazy")]
    pub lazy: bool,
    /// The mount point.
    #[arg(value_name = "MPT", required = true)]
    pub mpt: PathBuf,
}

/// Exit status of `famfs fsck`: the collision count keeps the reference's meaning; every other
/// outcome has its own code above the collision range, so none can be read as a count.
pub const FSCK_EXIT_HELP: &str = "\
Exit status (ranges that cannot be confused):
  0        clean: no allocation collisions, no skipped log entries
  1-100    that many allocation collisions (100: 100 or more), as the reference; the report
           names the entries
  101      no collisions, but log entries were skipped (bad CRC or seqnum, invalid or
           reserved paths, maps outside the device, ...); the report names them
  102      usage: no DEV|PATH, an unknown option, -r together with -m
  103      DEV|PATH does not exist
  104      DEV is mounted (check the mount point instead, or use --force)
  105      DEV|PATH holds no valid famfs (no superblock or log header)
  106      cannot check: permission denied, I/O error, not a dax device or in the wrong dax
           mode, a directory outside any famfs mount, a stale mount whose daemon died";

/// `famfs fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Print help (-? also works; -h means --human here, as in the reference).
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Sizes in GiB.
    #[arg(short = 'h', long = "human")]
    pub human: bool,
    /// Check a device even if it is mounted (read-only, may see a log in flux).
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Switch a dax device to devdax mode if needed (refused, EBUSY, while it is mounted, open
    /// or mapped).
    #[arg(short = 'M', long = "set-daxmode")]
    pub set_daxmode: bool,
    /// Also print free-space statistics for N equal buckets of the device.
    #[arg(short = 'B', long = "nbuckets", value_parser = parse_number, value_name = "N")]
    pub nbuckets: Option<u64>,
    /// Read the superblock and log with read(2) (a stand-in file, or a mount's meta files).
    #[arg(short = 'r', long = "read")]
    pub read: bool,
    /// Map the superblock and log with mmap (the default for a device; a mount's meta files are
    /// read with read(2) unless -m).
    #[arg(short = 'm', long = "mmap")]
    pub mmap: bool,
    /// Print the report as JSON (schema: famfs-cli/README.md); the exit status is the same.
    #[arg(long = "json")]
    pub json: bool,
    /// An unmounted device / stand-in file, or a path inside a mounted famfs.
    #[arg(value_name = "DEV|PATH", required = true)]
    pub path: PathBuf,
}

/// `famfs mkdir`.
#[derive(Debug, Args)]
pub struct MkdirArgs {
    /// Make parent directories as needed; no error if the directory exists.
    #[arg(short = 'p', long = "parents")]
    pub parents: bool,
    #[command(flatten)]
    /// Mode (default 0755, logged as given), owner and group (default: effective ids).
    pub owner: OwnerOpts,
    #[command(flatten)]
    /// Offline device.
    pub dev: DeviceOpt,
    /// The directory.
    #[arg(value_name = "DIR", required = true)]
    pub path: String,
}

/// `famfs cp`.
#[derive(Debug, Args)]
#[command(
    override_usage = "famfs cp [OPTIONS] SRC... DEST\n       famfs cp --device DEV [OPTIONS] SRC... FAMFS_DEST",
    after_help = "SRC... DEST: like cp(1). DEST may be an existing famfs directory (files \
keep their names), or a new name. With several sources DEST must be a directory; with -r it is \
created if missing. An existing DEST file of exactly the source's size is overwritten (restartable \
copy); any other existing file is an error. Mode defaults to the source's mode; the umask applies."
)]
pub struct CpArgs {
    /// Copy directories recursively.
    #[arg(short = 'r', long = "recursive")]
    pub recursive: bool,
    #[command(flatten)]
    /// Mode (default: the source's), owner and group (default: real ids).
    pub owner: OwnerOpts,
    /// Compare the sources with existing destinations instead of copying.
    #[arg(short = 'c', long = "compare")]
    pub compare: bool,
    /// Accepted for compatibility (copies are pipelined; this has no effect).
    #[arg(short = 't', long = "threadct", value_name = "N", hide = true)]
    pub threadct: Option<i64>,
    #[command(flatten)]
    /// Interleave options.
    pub interleave: InterleaveOpts,
    #[command(flatten)]
    /// Offline device.
    pub dev: DeviceOpt,
    /// Host sources, then the famfs destination.
    #[arg(value_name = "SRC... DEST", num_args = 0..)]
    pub paths: Vec<PathBuf>,
}

/// `famfs creat`.
#[derive(Debug, Args)]
#[command(
    after_help = "An existing file of the same size (or with -s omitted) is left as is \
(and re-filled with -r -S). The mode (default 0644) is masked by the umask."
)]
pub struct CreatArgs {
    /// File size, e.g. 4k, 64m, 2g, 0x800000.
    #[arg(short = 's', long = "size", value_parser = parse_size, value_name = "SIZE")]
    pub size: Option<u64>,
    /// Fill the file with the pattern of --seed (verify it later with `famfs verify`).
    #[arg(short = 'r', long = "randomize")]
    pub randomize: bool,
    /// Seed of the pattern (its low 32 bits are used, as by the reference).
    #[arg(short = 'S', long = "seed", value_parser = parse_seed, value_name = "SEED")]
    pub seed: Option<u64>,
    #[command(flatten)]
    /// Mode, owner and group.
    pub owner: OwnerOpts,
    /// Create several files, each given as FILE,SIZE or FILE,SIZE,SEED (repeatable; a seed fills
    /// that file).
    #[arg(short = 'M', long = "multi", value_parser = parse_multi_creat, value_name = "FILE,SIZE[,SEED]")]
    pub multi: Vec<MultiCreat>,
    /// Threads for filling files (1..=256; default: the CPUs available).
    #[arg(short = 't', long = "threadct", value_name = "N")]
    pub threadct: Option<i64>,
    #[command(flatten)]
    /// Interleave options.
    pub interleave: InterleaveOpts,
    #[command(flatten)]
    /// Offline device.
    pub dev: DeviceOpt,
    /// The file.
    #[arg(value_name = "FILE")]
    pub file: Option<String>,
}

/// `famfs verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Seed the file was filled with.
    #[arg(short = 'S', long = "seed", value_parser = parse_seed, value_name = "SEED")]
    pub seed: Option<u64>,
    /// The file (or give it as the last argument).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filename: Option<String>,
    /// Verify several files: FILE,SEED (repeatable).
    #[arg(short = 'm', long = "multi", value_parser = parse_multi_verify, value_name = "FILE,SEED")]
    pub multi: Vec<MultiVerify>,
    /// Threads (1..=256; default: the CPUs available).
    #[arg(short = 't', long = "threadct", value_name = "N")]
    pub threadct: Option<i64>,
    /// Print nothing on success.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    #[command(flatten)]
    /// Offline device.
    pub dev: DeviceOpt,
    /// The file (same as -f).
    #[arg(value_name = "FILE")]
    pub file: Option<String>,
}

/// `famfs flush`.
#[derive(Debug, Args)]
pub struct FlushArgs {
    #[command(flatten)]
    /// Offline device.
    pub dev: DeviceOpt,
    /// Files to flush.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
}

/// `famfs logplay`.
#[derive(Debug, Args)]
#[command(
    after_help = "Our logplay never changes anything (the daemon plays the log by itself): \
it replays the log in memory and reports. Tree lines: TYPE MODE UID GID SIZE PATH (d = \
directory, with a trailing '/'; f = file). On a client host, or with -c, modes are shown \
without write bits, as a client mount serves them.\n\n\
Exit status: the number of skipped log entries (0 = clean, capped at 127); 1 usage (no \
DEV|PATH, -r with -m) or the file system cannot be read; 2 an unknown option or DEV|PATH does \
not exist."
)]
pub struct LogplayArgs {
    /// List the tree.
    #[arg(long = "ls")]
    pub ls: bool,
    /// Accepted for compatibility: logplay never changes anything.
    #[arg(short = 'n', long = "dryrun")]
    pub dryrun: bool,
    /// Switch a dax device to devdax mode if needed (refused, EBUSY, while it is mounted, open
    /// or mapped).
    #[arg(short = 'M', long = "set-daxmode")]
    pub set_daxmode: bool,
    /// Read the log with read(2) (a stand-in file, or a mount's meta files).
    #[arg(short = 'r', long = "read")]
    pub read: bool,
    /// Map the log with mmap (the default for a device; a mount's meta files are read with
    /// read(2) unless -m).
    #[arg(short = 'm', long = "mmap")]
    pub mmap: bool,
    /// Play as a client: show modes without write bits, as a client mount serves them.
    #[arg(short = 'c', long = "client")]
    pub client: bool,
    /// Print the result (and with --ls the tree) as JSON (schema: famfs-cli/README.md).
    #[arg(long = "json")]
    pub json: bool,
    /// The unmounted device (alternative to giving it positionally).
    #[arg(short = 'd', long = "device", alias = "daxdev", value_name = "DEV")]
    pub device: Option<PathBuf>,
    /// An unmounted device / stand-in file, or a path inside a mounted famfs.
    #[arg(value_name = "DEV|PATH")]
    pub path: Option<PathBuf>,
}

/// `famfs getmap`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 a mapped famfs file; 1 not in famfs; 2 in famfs but not in \
the log; 9 not found; 21 not a regular file; 22 no file given."
)]
pub struct GetmapArgs {
    /// Print only the final `good file` line.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Continue with the next file after an error.
    #[arg(short = 'c', long = "continue")]
    pub cont: bool,
    /// Print the maps (and errors) as JSON (schema: famfs-cli/README.md).
    #[arg(long = "json")]
    pub json: bool,
    #[command(flatten)]
    /// Offline device.
    pub dev: DeviceOpt,
    /// Files.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
}

/// `famfs clone`.
#[derive(Debug, Args)]
pub struct CloneArgs {
    #[command(flatten)]
    /// Offline device.
    pub dev: DeviceOpt,
    /// Existing famfs file.
    #[arg(value_name = "SRC", required = true)]
    pub src: String,
    /// New name for a file sharing SRC's extents.
    #[arg(value_name = "DST", required = true)]
    pub dst: String,
}

/// `famfs chkread`.
#[derive(Debug, Args)]
pub struct ChkreadArgs {
    /// The file is a famfs superblock (.meta/.superblock): also decode it.
    #[arg(short = 's', long = "superblock")]
    pub superblock: bool,
    /// The file is a famfs log (.meta/.log): also decode its header.
    #[arg(short = 'l', long = "log")]
    pub log: bool,
    /// The file (any regular file).
    #[arg(value_name = "FILE", required = true)]
    pub file: PathBuf,
}

/// `famfs daxmode`.
#[derive(Debug, Args)]
pub struct DaxmodeArgs {
    /// Switch to this mode: devdax, famfs or system-ram. Refused (EBUSY) while the device is
    /// mounted, open or mapped: switching under its users would crash them.
    #[arg(short = 'm', long = "mode", value_name = "MODE")]
    pub mode: Option<String>,
    /// The dax device (/dev/daxX.Y).
    #[arg(value_name = "DEV", required = true)]
    pub dev: PathBuf,
}

/// `mkfs.famfs`: make a famfs file system.
#[derive(Debug, Parser)]
#[command(
    name = "mkfs.famfs",
    version,
    about = "Make a famfs file system on a dax device or a stand-in file",
    after_long_help = "DEV is a dax device (/dev/daxX.Y; devdax mode, see -M) or a regular file \
standing in for one (at least 4 GiB, a multiple of 2 MiB; a sparse file is fine: \
`truncate -s 8G dev.img`). This host becomes the master: its system UUID ($FAMFS_SYSTEM_UUID, \
$FAMFS_SYSTEM_UUID_FILE or /opt/famfs/system_uuid) is written to the superblock.\n\n\
Exit status: 0 success, 1 usage, 2 failure."
)]
pub struct Mkfs {
    /// Overwrite an existing file system (even one owned by another host).
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// With -f: only destroy the superblock (zero its magic).
    #[arg(short = 'k', long = "kill")]
    pub kill: bool,
    /// Log length: a power of two, at least 8m (default 8m).
    #[arg(short = 'l', long = "loglen", value_parser = parse_size, value_name = "LEN")]
    pub loglen: Option<u64>,
    /// Switch a dax device to devdax mode if needed (refused, EBUSY, while it is mounted, open
    /// or mapped).
    #[arg(short = 'M', long = "set-daxmode")]
    pub set_daxmode: bool,
    /// More log output.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
    /// Print help, as -h/--help (the reference's `-?`).
    #[arg(short = '?', action = ArgAction::Help, hide = true)]
    pub help_q: Option<bool>,
    /// The device or stand-in file.
    #[arg(value_name = "DEV")]
    pub dev: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Famfs::command().debug_assert();
        Mkfs::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Famfs, clap::Error> {
        Famfs::try_parse_from(std::iter::once("famfs").chain(args.iter().copied()))
    }

    #[test]
    fn reference_option_letters() {
        let Cmd::Creat(c) = parse(&[
            "creat", "-s", "4k", "-r", "-S", "7", "-m", "0600", "-u", "5", "-g", "6", "-N", "4",
            "-B", "8", "-C", "4m", "f",
        ])
        .unwrap()
        .cmd
        else {
            panic!()
        };
        assert_eq!(c.size, Some(4096));
        assert!(c.randomize);
        assert_eq!(c.seed, Some(7));
        assert_eq!(c.owner.mode, Some(0o600));
        assert_eq!((c.owner.uid, c.owner.gid), (Some(5), Some(6)));
        assert_eq!(c.interleave.nstrips, Some(4));
        assert_eq!(c.interleave.nbuckets, Some(8));
        assert_eq!(c.interleave.chunksize, Some(4 << 20));
        assert_eq!(c.file.as_deref(), Some("f"));

        let Cmd::Fsck(f) = parse(&["fsck", "-h", "-v", "/dev/dax0.0"]).unwrap().cmd else {
            panic!()
        };
        assert!(f.human);
        let e = parse(&["fsck", "-?"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);

        let Cmd::Cp(c) = parse(&["cp", "-r", "-m", "644", "-d", "img", "a", "b", "/c"])
            .unwrap()
            .cmd
        else {
            panic!()
        };
        assert!(c.recursive);
        assert_eq!(c.paths.len(), 3);
        assert_eq!(c.dev.device, Some(PathBuf::from("img")));

        let Cmd::Verify(v) = parse(&["verify", "-S", "1", "-f", "x"]).unwrap().cmd else {
            panic!()
        };
        assert_eq!(v.filename.as_deref(), Some("x"));
        let Cmd::Verify(v) = parse(&["verify", "-m", "a,1", "-m", "b,2"]).unwrap().cmd else {
            panic!()
        };
        assert_eq!(v.multi.len(), 2);

        let Cmd::Logplay(l) = parse(&["logplay", "--ls", "--daxdev", "img"]).unwrap().cmd else {
            panic!()
        };
        assert!(l.ls && l.device.is_some());

        // -S swallowing -s is refused (the reference would take "-s" as the seed).
        assert!(parse(&["creat", "-S", "-s", "10", "f"]).is_err());
        assert!(parse(&["creat", "-s", "10MB", "f"]).is_err());
        assert!(parse(&["cp", "--uid=-1"]).is_err());
        assert_eq!(
            parse(&["bogus"]).unwrap_err().kind(),
            clap::error::ErrorKind::InvalidSubcommand
        );
        let m = Mkfs::try_parse_from(["mkfs.famfs", "-f", "-k", "-l", "16m", "img"]).unwrap();
        assert!(m.force && m.kill);
        assert_eq!(m.loglen, Some(16 << 20));
    }
}
