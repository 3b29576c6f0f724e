//! Surviving a mapped file that shrinks under us.
//!
//! Reading a page of a file mapping past the file's end raises SIGBUS, which kills the process.
//! Another program may truncate a file while avbatch uploads it, so every map registers its
//! address range here, and a SIGBUS handler that finds the faulting address inside a registered
//! range maps a page of zeros over the missing page, counts the fault against that map, and
//! returns: the read goes on and sees zeros. [`crate::chunk::MappedFile::check`] reports a map
//! with faults (and the file's new size) as changed, and the engine refuses to finish a part
//! read from it, so the zeros never complete a video. A fault anywhere else is not ours: the
//! handler puts the previous disposition back and returns, so the fault repeats and ends the
//! process exactly as it would have without us.
//!
//! Most reads of the map happen inside the kernel (`write`/`sendmsg` copying from it), which
//! return `EFAULT` instead of raising a signal; the handler covers the reads made in user space
//! (TLS encryption, checksums).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Maps that can be guarded at once; further maps go unguarded (and are still checked by size).
const SLOTS: usize = 1024;

struct Slot {
    claimed: AtomicBool,
    start: AtomicUsize,
    len: AtomicUsize,
    faults: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    claimed: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faults: AtomicUsize::new(0),
};
static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
/// What SIGBUS did before us, put back for faults that are not ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A registered range; unregisters on drop. Drop it before unmapping the range.
#[derive(Debug)]
pub struct Guard {
    slot: usize,
}

impl Guard {
    /// Guards `len` bytes mapped at `start`, or `None` when every slot is taken (or `len` is 0).
    pub fn register(start: *const u8, len: usize) -> Option<Guard> {
        if len == 0 {
            return None;
        }
        install();
        let slot = TABLE.iter().position(|s| {
            s.claimed.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        })?;
        let s = &TABLE[slot];
        s.faults.store(0, Ordering::Relaxed);
        s.len.store(len, Ordering::Release);
        s.start.store(start as usize, Ordering::Release);
        Some(Guard { slot })
    }

    /// Pages of the range that faulted and now read as zeros.
    pub fn faults(&self) -> usize {
        TABLE[self.slot].faults.load(Ordering::Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let s = &TABLE[self.slot];
        s.start.store(0, Ordering::Release);
        s.len.store(0, Ordering::Release);
        s.claimed.store(false, Ordering::Release);
    }
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf and sigaction are called with valid arguments; the handler below only
        // uses atomics, mmap and sigaction, which are safe to call from a signal handler.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if page > 0 {
                PAGE.store(page as usize, Ordering::Relaxed);
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0 {
                let _ = PREVIOUS.set(previous);
            } else {
                tracing::warn!(
                    "could not install the SIGBUS guard: a file truncated while it is uploaded \
                     may end the process"
                );
            }
        }
    });
}

extern "C" fn on_sigbus(
    _signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for s in TABLE.iter() {
        let start = s.start.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= start + s.len.load(Ordering::Acquire) {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: `at` is a page inside a live read-only map that this process owns (the guard
        // is dropped before the map); replacing that page with zeros changes no other memory.
        let zeros = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeros != libc::MAP_FAILED {
            s.faults.fetch_add(1, Ordering::AcqRel);
            return;
        }
        break;
    }
    // Not ours: restore what was there and let the fault happen again.
    // SAFETY: sigaction with a disposition the kernel gave us, or the default one.
    unsafe {
        match PREVIOUS.get() {
            Some(previous) => libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut()),
            None => {
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
                0
            }
        };
    }
}
