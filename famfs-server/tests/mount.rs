//! A real FUSE mount of a stand-in device (needs root and /dev/fuse; fails under CI=true
//! when they are missing, skips loudly otherwise).

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use famfs_fsdev::{Access, DaxDevice, FileView};
use famfs_log::alloc::{AllocPolicy, InterleaveParams};
use famfs_log::namespace::Attr;
use famfs_log::{Famfs, MkfsOptions, OpenOptions, mkfs};
use famfs_server::mount::{self, MountOptions};
use famfs_server::{Config, DaxPolicy, Server, session};
use uuid::Uuid;

fn can_mount() -> bool {
    let ok = nix::unistd::geteuid().is_root() && Path::new("/dev/fuse").exists();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: this test needs root and /dev/fuse"
        );
        eprintln!("SKIPPED: needs root and /dev/fuse");
    }
    ok
}

#[test]
fn serves_files_through_a_real_mount() {
    if !can_mount() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("dev.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    let me = Uuid::new_v4();
    let dev = DaxDevice::open(&img, Access::ReadWrite).unwrap();
    let map = dev.map_all().unwrap();
    mkfs(
        &map,
        dev.size(),
        &MkfsOptions::new(me, img.to_str().unwrap()),
    )
    .unwrap();
    let data: Vec<u8> = (0..(9u64 << 20) + 77)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    {
        let mut fs = Famfs::open_device(
            &map,
            OpenOptions {
                system_uuid: Some(me),
                ..Default::default()
            },
        )
        .unwrap();
        let mut w = fs.writer().unwrap();
        let a = Attr {
            mode: 0o644,
            uid: 1000,
            gid: 1000,
        };
        w.mkdir_p("d/e".as_ref(), Attr { mode: 0o755, ..a })
            .unwrap();
        let (_, e) = w
            .create(
                "d/e/plain".as_ref(),
                data.len() as u64,
                a,
                &AllocPolicy::Contiguous,
            )
            .unwrap();
        FileView::new(&map, &e.fmap.to_wire(e.size).unwrap())
            .unwrap()
            .write_at(0, &data)
            .unwrap();
        let p = InterleaveParams {
            nbuckets: 4,
            nstrips: 3,
            chunk_size: 2 << 20,
        };
        let (_, e) = w
            .create(
                "striped".as_ref(),
                data.len() as u64,
                a,
                &AllocPolicy::Interleaved(p),
            )
            .unwrap();
        FileView::new(&map, &e.fmap.to_wire(e.size).unwrap())
            .unwrap()
            .write_at(0, &data)
            .unwrap();
    }
    let mpt = dir.path().join("mnt");
    std::fs::create_dir(&mpt).unwrap();
    let mut cfg = Config::new(&img);
    cfg.system_uuid = Some(me);
    cfg.dax = DaxPolicy::Off;
    let server = Server::open(cfg).unwrap();
    let fuse = mount::open_dev_fuse().unwrap();
    mount::mount(
        &fuse,
        &img,
        &mpt,
        MountOptions {
            allow_other: true,
            default_permissions: true,
        },
    )
    .unwrap();
    let clone = mount::clone_channel(&fuse).unwrap();
    let s2 = Arc::clone(&server);
    let t = std::thread::spawn(move || session::serve(&s2, vec![fuse, clone]));
    let result = std::panic::catch_unwind(|| {
        let got = std::fs::read(mpt.join("d/e/plain")).unwrap();
        assert!(got == data, "plain file bytes differ");
        let got = std::fs::read(mpt.join("striped")).unwrap();
        assert!(got == data, "striped file bytes differ");
        let md = std::fs::metadata(mpt.join("d/e/plain")).unwrap();
        assert_eq!(
            (md.len(), md.mode() & 0o7777, md.uid()),
            (data.len() as u64, 0o644, 1000)
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
        assert!(f.write_all_at(b"x", data.len() as u64).is_err());
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
    mount::unmount(&mpt, true).unwrap();
    let r = t.join().unwrap();
    result.unwrap();
    r.unwrap();
    std::thread::sleep(Duration::from_millis(10));
}

fn xattr_root(mpt: &Path, name: &str) -> Option<String> {
    let p = std::ffi::CString::new(mpt.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and a buffer of the given size.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| String::from_utf8_lossy(&buf[..r as usize]).into_owned())
}
