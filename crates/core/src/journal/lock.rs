//! The run lock beside a journal (`NAME.journal.sqlite.lock`): one avbatch run per journal, on
//! one machine or on many sharing a folder, and never blocked for good by a run that died.
//!
//! The lock is a byte-range lock of the lock file, taken per open file (`F_OFD_SETLK`), the kind
//! NFS, SMB, CephFS, Lustre and GPFS forward to their server, so it excludes runs on other hosts
//! too; the kernel drops it when its process dies. (On NFS `flock` is itself emulated with a lock
//! of the whole file; locking single bytes lets one file hold the record lock and the run lock
//! below, with the same meaning on a local disk and on NFS.) What a kernel cannot drop is a lock a
//! file server still keeps for a host that is gone: NFSv4 lets it lapse with the host's lease
//! (about 90 s), NFSv3 keeps it until that host restarts. So the file also records who holds it
//! (host, boot, pid namespace, pid and the pid's start time), and a run that finds the lock held
//! by a process of *this* host that is provably gone (another boot, or no such process any more)
//! takes it over; a holder on another host is named, with how to clear its lock, since from here
//! nothing proves it dead.
//!
//! Layout: byte 0 guards the record (held only while reading or writing it); the run holds byte
//! `1 + slot`, where `slot` is in the record. Taking over moves the run to the next slot, leaving
//! the dead holder's byte to its ghost: no file is deleted or renamed, so two runs that find one
//! dead holder at once cannot both win, as they could by deleting and re-creating the file.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

/// The byte guarding the record.
const RECORD_BYTE: u64 = 0;
/// How long to wait for the record: it is held for one small write and an fsync, so a longer
/// wait means a process died writing it (on a server that keeps a dead host's locks).
const RECORD_WAIT: Duration = Duration::from_secs(10);

/// The run that holds, or last held, a journal's lock, as its lock file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The host name of its machine (a pod's name in Kubernetes).
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// When it took the lock, RFC 3339 UTC.
    pub since: String,
    /// Its machine's boot (`/proc/sys/kernel/random/boot_id`): another boot means the process
    /// is gone.
    boot: String,
    /// Its pid namespace: a pid means something only within one.
    pid_ns: String,
    /// The process's start time in clock ticks after boot, which tells it from a later process
    /// given the same pid.
    start: u64,
    /// The byte it holds, less one.
    slot: u64,
}

impl Holder {
    fn to_record(&self) -> String {
        format!(
            "avbatch run lock: the run below holds it; delete this file only when no avbatch \
             run uses the journal\n\
             host {}\npid {}\nsince {}\nboot {}\npidns {}\nstart {}\nslot {}\n",
            self.host, self.pid, self.since, self.boot, self.pid_ns, self.start, self.slot
        )
    }

    fn from_record(text: &str) -> Option<Holder> {
        let field = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).map(str::to_owned)
        };
        Some(Holder {
            host: field("host")?,
            pid: field("pid")?.parse().ok()?,
            since: field("since")?,
            boot: field("boot")?,
            pid_ns: field("pidns")?,
            start: field("start")?.parse().ok()?,
            slot: field("slot")?.parse().ok()?,
        })
    }
}

/// Why the lock was not taken.
#[derive(Debug)]
pub(crate) enum LockFailure {
    /// Another run holds it; who, when the file says.
    Held(Option<Holder>),
    /// The filesystem takes no locks (NFS without its lock service, Lustre without `-o flock`).
    Unsupported(std::io::Error),
    /// The lock file cannot be opened, read or written.
    Io(std::io::Error),
}

impl From<std::io::Error> for LockFailure {
    fn from(e: std::io::Error) -> LockFailure {
        match e.raw_os_error() {
            Some(libc::ENOLCK | libc::ENOSYS | libc::EOPNOTSUPP) => LockFailure::Unsupported(e),
            _ => LockFailure::Io(e),
        }
    }
}

/// A run lock, held until dropped.
#[derive(Debug)]
pub(crate) struct RunLock {
    /// Closing the file releases its locks.
    _file: File,
    /// The dead run whose lock this one took over.
    pub took_over: Option<Holder>,
}

impl RunLock {
    /// Takes the lock of the file at `path` (created if missing) without waiting for a live
    /// holder, taking over from a dead one of this host.
    pub(crate) fn acquire(path: &Path) -> Result<RunLock, LockFailure> {
        Self::acquire_as(path, &Identity::current())
    }

    fn acquire_as(path: &Path, me: &Identity) -> Result<RunLock, LockFailure> {
        // The owner's alone, as the journal ([`super::private`]); the umask can only take more.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        let waited = std::time::Instant::now();
        while !try_lock(&file, RECORD_BYTE)? {
            if waited.elapsed() > RECORD_WAIT {
                return Err(LockFailure::Held(read_record(&file).ok().flatten()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let taken = Self::take(&file, me);
        // Closing the file on an error releases this byte too; on success it must go now.
        unlock(&file, RECORD_BYTE)?;
        Ok(RunLock { took_over: taken?, _file: file })
    }

    /// With the record held: the recorded slot if free, else the next one if its holder is
    /// provably gone.
    fn take(file: &File, me: &Identity) -> Result<Option<Holder>, LockFailure> {
        let record = read_record(file)?;
        let slot = record.as_ref().map_or(0, |h| h.slot);
        if try_lock(file, 1 + slot)? {
            write_record(file, &me.holder(slot))?;
            return Ok(None);
        }
        let Some(holder) = record else { return Err(LockFailure::Held(None)) };
        if !me.outlived(&holder) {
            return Err(LockFailure::Held(Some(holder)));
        }
        // Only the run that holds the record byte gets here for this slot, and no slot past
        // the recorded one was ever taken, so the next one is free unless a ghost has both.
        if !try_lock(file, 2 + slot)? {
            return Err(LockFailure::Held(Some(holder)));
        }
        write_record(file, &me.holder(slot + 1))?;
        Ok(Some(holder))
    }
}

/// Whether a run holds the lock at `path` now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// No run holds it (or there is no lock file: no run ever did).
    Idle,
    /// A run holds it; who, when its record says (it may be between taking and recording).
    Active(Option<Holder>),
}

/// Finds whether a run holds the lock at `path`, without taking it or changing anything, so a
/// run going on is not disturbed and a run starting meanwhile is not refused: the file is opened
/// read-only (never created) and the kernel, or the file server, is asked which lock would
/// conflict with the run's byte (`F_OFD_GETLK`), which takes no lock.
pub(crate) fn probe(path: &Path) -> std::io::Result<RunState> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RunState::Idle),
        Err(e) => return Err(e),
    };
    let record = read_record(&file)?;
    // The recorded run's byte; without a record, any run byte.
    let (start, len) = record.as_ref().map_or((1, 0), |h| (1 + h.slot, 1));
    if held(&file, start, len)? {
        Ok(RunState::Active(record))
    } else {
        Ok(RunState::Idle)
    }
}

/// Whether another open file holds a lock on `len` bytes from `start` (0: to the end).
fn held(file: &File, start: u64, len: u64) -> std::io::Result<bool> {
    // SAFETY: all-zero is a valid `flock` (plain integers), and OFD locks require `l_pid` 0.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as _;
    range.l_whence = libc::SEEK_SET as _;
    range.l_start = start as _;
    range.l_len = len as _;
    // SAFETY: the descriptor is open for as long as `file` is borrowed, and `range` outlives
    // the call, which writes into it.
    if unsafe { libc::fcntl(file.as_raw_fd(), GET_LOCK, &mut range) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(i32::from(range.l_type) != libc::F_UNLCK)
}

fn read_record(file: &File) -> std::io::Result<Option<Holder>> {
    let mut text = String::new();
    // `&File` reads from the current offset, which nothing else moves: writes go through
    // `write_all_at`.
    let mut reader = file;
    std::io::Seek::rewind(&mut reader)?;
    reader.take(64 * 1024).read_to_string(&mut text)?;
    Ok(Holder::from_record(&text))
}

fn write_record(file: &File, holder: &Holder) -> std::io::Result<()> {
    file.set_len(0)?;
    file.write_all_at(holder.to_record().as_bytes(), 0)?;
    // Another host reads the record when it finds the lock held; on NFS it sees it once it is
    // on the server.
    file.sync_all()
}

/// Open-file-description locks (Linux 3.15+) belong to the open file, not the process, so two
/// opens in one process exclude each other as two processes do. Other systems have only POSIX
/// locks, which a process never conflicts with itself over.
#[cfg(target_os = "linux")]
const SET_LOCK: libc::c_int = libc::F_OFD_SETLK;
#[cfg(not(target_os = "linux"))]
const SET_LOCK: libc::c_int = libc::F_SETLK;
/// Asks which lock would conflict, of the same kind as [`SET_LOCK`].
#[cfg(target_os = "linux")]
const GET_LOCK: libc::c_int = libc::F_OFD_GETLK;
#[cfg(not(target_os = "linux"))]
const GET_LOCK: libc::c_int = libc::F_GETLK;

fn set_lock(file: &File, byte: u64, kind: libc::c_int) -> std::io::Result<bool> {
    // SAFETY: all-zero is a valid `flock` (plain integers), and OFD locks require `l_pid` 0.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = kind as _;
    range.l_whence = libc::SEEK_SET as _;
    range.l_start = byte as _;
    range.l_len = 1;
    // SAFETY: the descriptor is open for as long as `file` is borrowed, and `range` outlives
    // the call.
    if unsafe { libc::fcntl(file.as_raw_fd(), SET_LOCK, &range) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

fn try_lock(file: &File, byte: u64) -> std::io::Result<bool> {
    set_lock(file, byte, libc::F_WRLCK)
}

fn unlock(file: &File, byte: u64) -> std::io::Result<()> {
    set_lock(file, byte, libc::F_UNLCK).map(drop)
}

/// This process, as a lock record names it.
#[derive(Debug, Clone)]
struct Identity {
    host: String,
    pid: u32,
    boot: String,
    pid_ns: String,
    start: u64,
}

impl Identity {
    fn current() -> Identity {
        let pid = std::process::id();
        Identity {
            host: hostname(),
            pid,
            boot: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            start: start_time(pid).unwrap_or(0),
        }
    }

    fn holder(&self, slot: u64) -> Holder {
        Holder {
            host: self.host.clone(),
            pid: self.pid,
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            boot: self.boot.clone(),
            pid_ns: self.pid_ns.clone(),
            start: self.start,
            slot,
        }
    }

    /// Whether `holder` is provably gone: a process of this host (same name, and a boot and
    /// pid namespace this process can see) that ended with an earlier boot or no longer runs.
    /// Anything else, another host above all, may still be running.
    fn outlived(&self, holder: &Holder) -> bool {
        if holder.host != self.host || self.boot.is_empty() || holder.boot.is_empty() {
            return false;
        }
        if holder.boot != self.boot {
            return true;
        }
        if holder.pid_ns != self.pid_ns || self.pid_ns.is_empty() {
            return false;
        }
        start_time(holder.pid) != Some(holder.start)
    }
}

/// This machine's host name.
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is what we pass.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A process's start time (ticks after boot, `/proc/PID/stat` field 22), if it runs.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 is the command in parentheses, which may hold spaces and parentheses itself.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn lock_file() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite.lock");
        (dir, path)
    }

    /// A process that held the lock and is still "held" by a file server: its byte taken by
    /// another open file of this process, its record saying who it was.
    fn ghost(path: &Path, who: &Holder) -> File {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap();
        assert!(try_lock(&file, 1 + who.slot).unwrap());
        write_record(&file, who).unwrap();
        file
    }

    #[test]
    fn the_record_names_the_holder_and_reads_back() {
        let (_dir, path) = lock_file();
        let me = Identity::current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start > 0 && !me.boot.is_empty() && me.pid_ns.starts_with("pid:["), "{me:?}");
        let lock = RunLock::acquire(&path).unwrap();
        assert!(lock.took_over.is_none());
        let text = std::fs::read_to_string(&path).unwrap();
        let holder = Holder::from_record(&text).unwrap();
        assert_eq!(
            (holder.host.as_str(), holder.pid, holder.slot),
            (me.host.as_str(), me.pid, 0),
            "{text}"
        );
        assert_eq!(Holder::from_record("garbage"), None);
    }

    #[test]
    fn a_probe_tells_a_live_run_without_taking_its_lock() {
        let (_dir, path) = lock_file();
        assert_eq!(probe(&path).unwrap(), RunState::Idle, "no lock file: no run");
        assert!(!path.exists(), "the probe creates nothing");
        let run = RunLock::acquire(&path).unwrap();
        match probe(&path).unwrap() {
            RunState::Active(Some(h)) => assert_eq!(h.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        drop(run);
        assert_eq!(probe(&path).unwrap(), RunState::Idle, "the run ended");
        let again = RunLock::acquire(&path).unwrap();
        assert!(again.took_over.is_none(), "the probes left nothing to take over");
    }

    #[test]
    fn a_live_holder_keeps_the_lock_and_is_named() {
        let (_dir, path) = lock_file();
        let first = RunLock::acquire(&path).unwrap();
        match RunLock::acquire(&path) {
            Err(LockFailure::Held(Some(h))) => assert_eq!(h.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        drop(first);
        RunLock::acquire(&path).expect("free once its holder is gone");
    }

    #[test]
    fn a_dead_holder_of_this_host_is_taken_over_once() {
        let me = Identity::current();
        // Another boot of this host; then a pid of this boot that no longer runs (a child that
        // exited); then a pid that runs but started at another time (reused).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = [
            Holder { boot: "an-earlier-boot".into(), ..me.holder(0) },
            Holder { pid: dead_pid, ..me.holder(0) },
            Holder { start: me.start + 1, ..me.holder(0) },
        ];
        for who in dead {
            let (_dir, path) = lock_file();
            let _ghost = ghost(&path, &who);
            let lock = RunLock::acquire(&path).unwrap_or_else(|e| panic!("{who:?}: {e:?}"));
            assert_eq!(lock.took_over.as_ref(), Some(&who));
            let record = Holder::from_record(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(
                (record.pid, record.slot),
                (me.pid, 1),
                "the new run is recorded in the next slot"
            );
            // The run that took over is alive: a third run is refused, not a second take-over.
            match RunLock::acquire(&path) {
                Err(LockFailure::Held(Some(h))) => assert_eq!((h.pid, h.slot), (me.pid, 1)),
                other => panic!("{other:?}"),
            }
            drop(lock);
            // Once it ends, its slot is free and the ghost's stays behind.
            let again = RunLock::acquire(&path).unwrap();
            assert!(again.took_over.is_none());
        }
    }

    #[test]
    fn a_holder_on_another_host_or_another_pid_namespace_is_never_taken_over() {
        let me = Identity::current();
        for who in [
            Holder { host: "node-that-vanished".into(), boot: "other".into(), ..me.holder(0) },
            Holder { pid_ns: "pid:[1]".into(), pid: 999_999, ..me.holder(0) },
        ] {
            let (_dir, path) = lock_file();
            let _ghost = ghost(&path, &who);
            match RunLock::acquire(&path) {
                Err(LockFailure::Held(Some(h))) => assert_eq!(h, who),
                other => panic!("{other:?}"),
            }
        }
    }
}
