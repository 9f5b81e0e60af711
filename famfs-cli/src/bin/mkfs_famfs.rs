//! `mkfs-famfs`, the same program as `mkfs.famfs` (cargo cannot name a binary with a '.'; install
//! it, or `famfs`, as `mkfs.famfs`: both dispatch on the name they are invoked as).

fn main() {
    famfs_cli::restore_sigpipe();
    std::process::exit(famfs_cli::main_multicall(
        std::env::args_os().collect(),
        true,
    ));
}
