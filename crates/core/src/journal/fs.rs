//! Which filesystem holds a journal, and so which SQLite journal mode is safe there.
//!
//! SQLite's write-ahead log keeps an index in memory shared by every process that opens the
//! database, through a memory-mapped `-shm` file; its documentation says WAL "does not work over
//! a network filesystem" (<https://sqlite.org/wal.html>): processes on two hosts do not share
//! that memory, and FUSE filesystems that promise coherence between clients refuse shared maps
//! outright. The rollback journal needs only the file locks that a network filesystem forwards
//! to its server, so a journal on one of those is kept in that mode instead.

use std::path::Path;

/// What kind of filesystem a path is on, as `statfs(2)` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filesystem {
    /// A disk of this machine (ext4, xfs, btrfs, tmpfs, overlay, …), or a kind avbatch does not
    /// know.
    Local,
    /// Shared with other machines or served by a process (NFS, SMB, CephFS, Lustre, GPFS, 9p,
    /// FUSE, …), named as in the message avbatch prints.
    Network(&'static str),
}

/// How SQLite keeps the journal's transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalMode {
    /// Write-ahead log (`journal_mode=WAL`): `avbatch status` reads while the run writes,
    /// through memory shared by processes of one host.
    Wal,
    /// Rollback journal (`journal_mode=DELETE`) without memory-mapped I/O: what SQLite documents
    /// for a database on a network filesystem, needing nothing but its locks.
    Rollback,
}

impl Filesystem {
    /// The journal mode that is safe on this filesystem.
    pub fn journal_mode(self) -> JournalMode {
        match self {
            Filesystem::Local => JournalMode::Wal,
            Filesystem::Network(_) => JournalMode::Rollback,
        }
    }
}

/// `statfs` magic numbers of filesystems whose files other machines, or a user-space server,
/// may hold (Linux's `include/uapi/linux/magic.h`, and the vendors' own for Lustre, GPFS,
/// BeeGFS and PanFS).
const NETWORK: &[(u32, &str)] = &[
    (0x6969, "nfs"),
    (0x517b, "smb"),
    (0xff53_4d42, "cifs"),
    (0xfe53_4d42, "smb2"),
    (0x00c3_6400, "ceph"),
    (0x0bd0_0bd0, "lustre"),
    (0x4750_4653, "gpfs"),
    (0x1983_0326, "beegfs"),
    (0xaad7_aaea, "panfs"),
    (0x2003_0528, "orangefs"),
    (0x0102_1997, "9p"),
    // FUSE: sshfs, GlusterFS, CephFS's and JuiceFS's clients, gcsfuse, s3fs, virtiofs, …
    (0x6573_5546, "fuse"),
    (0x5346_414f, "afs"),
    (0x6b41_4653, "afs"),
    (0x7375_7245, "coda"),
    (0x564c, "ncp"),
    // Cluster filesystems on a shared disk: every node mounts the same blocks.
    (0x7461_636f, "ocfs2"),
    (0x0116_1970, "gfs2"),
    (0x786f_4256, "vboxsf"),
];

/// The filesystem of a `statfs` magic number.
pub(crate) fn classify(magic: u32) -> Filesystem {
    NETWORK
        .iter()
        .find(|(m, _)| *m == magic)
        .map_or(Filesystem::Local, |(_, name)| Filesystem::Network(name))
}

/// The filesystem that holds `path`, or would hold it once created: the path itself when it
/// exists, else its folder. A path that cannot be examined (no such folder yet) counts as local;
/// opening the journal there then fails with its own error.
pub fn of(path: &Path) -> Filesystem {
    let folder = match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => path,
    };
    let probe = if path.exists() { path } else { folder };
    magic(probe).map_or(Filesystem::Local, classify)
}

#[cfg(target_os = "linux")]
fn magic(path: &Path) -> Option<u32> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` is writable storage of the type statfs fills.
    if unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    // `f_type` is a signed word whose width varies by architecture; the magic is its low 32 bits
    // (CIFS's 0xFF534D42 comes back negative where the word is 32 bits wide).
    Some(st.f_type as u32)
}

/// Elsewhere the kind is not looked up, and the journal keeps WAL as before.
#[cfg(not(target_os = "linux"))]
fn magic(_path: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_fuse_magics_are_recognised_and_the_rest_is_local() {
        let cases: &[(u32, Filesystem)] = &[
            (0x6969, Filesystem::Network("nfs")),
            (0xff53_4d42, Filesystem::Network("cifs")),
            (0xfe53_4d42, Filesystem::Network("smb2")),
            (0x00c3_6400, Filesystem::Network("ceph")),
            (0x0bd0_0bd0, Filesystem::Network("lustre")),
            (0x4750_4653, Filesystem::Network("gpfs")),
            (0x0102_1997, Filesystem::Network("9p")),
            (0x6573_5546, Filesystem::Network("fuse")),
            (0xef53, Filesystem::Local),      // ext4
            (0x5846_5342, Filesystem::Local), // xfs
            (0x9123_683e, Filesystem::Local), // btrfs
            (0x0102_1994, Filesystem::Local), // tmpfs
            (0x794c_7630, Filesystem::Local), // overlay
            (0x1234_5678, Filesystem::Local), // unknown
        ];
        for (magic, want) in cases {
            assert_eq!(classify(*magic), *want, "{magic:#x}");
        }
        // A 32-bit `f_type` holds CIFS's magic as a negative number.
        assert_eq!(classify(0xff53_4d42_u32 as i32 as u32), Filesystem::Network("cifs"));
    }

    #[test]
    fn wal_on_local_disks_the_rollback_journal_on_network_ones() {
        assert_eq!(Filesystem::Local.journal_mode(), JournalMode::Wal);
        assert_eq!(Filesystem::Network("nfs").journal_mode(), JournalMode::Rollback);
        assert_eq!(Filesystem::Network("fuse").journal_mode(), JournalMode::Rollback);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn statfs_is_read_and_a_path_not_yet_created_is_looked_up_by_its_folder() {
        // procfs has a magic of its own, so this shows the number is really read.
        assert_eq!(magic(Path::new("/proc")), Some(0x9fa0));
        assert_eq!(magic(Path::new("/proc/no-such-file")), None);
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("not-yet.sqlite");
        assert_eq!(of(&fresh), classify(magic(dir.path()).unwrap()), "the folder's filesystem");
        assert_eq!(
            of(Path::new("bare-name.sqlite")),
            classify(magic(Path::new(".")).unwrap()),
            "a bare name is in `.`"
        );
    }
}
