//! A real FUSE mount served by threads of this process (stock-kernel path): plain and striped
//! files read back, attributes, writes in place on the master, and what the mount refuses.
//! Needs root and /dev/fuse (fails under CI=true when missing, skips loudly otherwise).

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use famfs_log::alloc::AllocPolicy;
use famfs_server::{Config, DaxPolicy};
use famfs_tests::inproc::InProcessMount;
use famfs_tests::prereq;
use famfs_tests::standin::{FILE_ATTR, INTERLEAVE_3X2M, StandIn};

fn xattr_root(mpt: &Path, name: &str) -> Option<String> {
    famfs_tests::fused::xattr(mpt, name).map(|v| String::from_utf8_lossy(&v).into_owned())
}

#[test]
fn serves_files_through_a_real_mount() {
    if !prereq::root_and_fuse("serves_files_through_a_real_mount") {
        return;
    }
    let mut dev = StandIn::create(8 << 30).unwrap();
    dev.mkdir_p("d/e").unwrap();
    let size = (9u64 << 20) + 77;
    dev.add_file("d/e/plain", size, AllocPolicy::Contiguous)
        .unwrap();
    dev.add_file("striped", size, INTERLEAVE_3X2M).unwrap();
    let mpt = dev.dir().join("mnt");
    std::fs::create_dir(&mpt).unwrap();
    let mut cfg = Config::new(dev.path());
    cfg.system_uuid = Some(dev.master_uuid());
    cfg.dax = DaxPolicy::Off;
    let m = InProcessMount::start(cfg, &mpt).unwrap();
    let result = std::panic::catch_unwind(|| {
        for p in ["d/e/plain", "striped"] {
            let got = std::fs::read(mpt.join(p)).unwrap();
            assert!(got == dev.expected(p, 0, size), "{p}: bytes differ");
        }
        let md = std::fs::metadata(mpt.join("d/e/plain")).unwrap();
        assert_eq!(
            (md.len(), md.mode() & 0o7777, md.uid()),
            (size, FILE_ATTR.mode, FILE_ATTR.uid)
        );
        let mut names: Vec<_> = std::fs::read_dir(&mpt)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec![".meta", "d", "striped"]);
        assert_eq!(
            std::fs::metadata(mpt.join(".meta/.log")).unwrap().len(),
            8 << 20
        );
        // Writes in place work on the master, growing does not.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(mpt.join("striped"))
            .unwrap();
        f.write_all_at(b"HELLO", 5 << 20).unwrap();
        assert!(f.write_all_at(b"x", size).is_err());
        let back = std::fs::read(mpt.join("striped")).unwrap();
        assert_eq!(&back[5 << 20..(5 << 20) + 5], b"HELLO");
        assert!(std::fs::create_dir(mpt.join("newdir")).is_err());
        assert!(std::fs::write(mpt.join("newfile"), b"x").is_err());
        assert!(std::fs::remove_file(mpt.join("striped")).is_err());
        assert_eq!(
            xattr_root(&mpt, "user.famfs.role"),
            Some("master".to_string())
        );
    });
    m.stop().unwrap();
    result.unwrap();
}
