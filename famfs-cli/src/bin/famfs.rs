//! `famfs`: create and inspect files in famfs (see `famfs --help`). Invoked as `mkfs.famfs`
//! (e.g. through a symlink) it is `mkfs.famfs`.

fn main() {
    famfs_cli::restore_sigpipe();
    std::process::exit(famfs_cli::main_multicall(
        std::env::args_os().collect(),
        false,
    ));
}
