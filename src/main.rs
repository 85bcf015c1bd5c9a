//! The `seqgrad` binary: see `seqgrad --help`.

#[cfg(target_os = "linux")]
use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;

use seqgrad::cli::{self, ParseOutcome};

#[cfg(target_os = "linux")]
/// Allocations of at least this many bytes are advised onto transparent huge pages.
///
/// glibc serves every allocation above 32 MiB (its largest mmap threshold) with a fresh `mmap`
/// and unmaps it on free, so W3's big per-step buffers (the 125 MB conv output and max-pool
/// gradient, the recurrent `dA`) were faulted in 4 KiB at a time on every step: 20% of a W3
/// training profile. Advised to 2 MiB pages they take 512× fewer faults; peak RSS is
/// unchanged (measured, docs/performance.md). Smaller allocations are left alone.
const HUGE_PAGE_MIN: usize = 32 << 20;

#[cfg(target_os = "linux")]
/// The system allocator, plus `madvise(MADV_HUGEPAGE)` on allocations of at least
/// [`HUGE_PAGE_MIN`] bytes. The same as running with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`
/// for the big buffers, without needing the environment variable.
struct HugePageAlloc;

#[cfg(target_os = "linux")]
/// Advises the whole 4 KiB pages inside `[ptr, ptr + size)` onto transparent huge pages.
fn advise_huge(ptr: *mut u8, size: usize) {
    if ptr.is_null() || size < HUGE_PAGE_MIN {
        return;
    }
    const PAGE: usize = 4096;
    let start = (ptr as usize).div_ceil(PAGE) * PAGE;
    let end = (ptr as usize + size) / PAGE * PAGE;
    if end > start {
        // SAFETY: `madvise(MADV_HUGEPAGE)` is advice only: it changes neither the mapping nor
        // its contents (a page keeps its data when khugepaged or a fault backs it with a huge
        // page), so no Rust-visible memory changes. The range is page-aligned and lies inside
        // the `size` bytes just returned to us by the system allocator, which this allocation
        // owns. A failure (e.g. THP disabled) is harmless and ignored.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(target_os = "linux")]
// SAFETY: every method forwards to `std::alloc::System` with the caller's own arguments and
// returns its result unchanged, so `System`'s guarantees (alignment, size, zeroing, realloc
// contents) hold; the only addition is `advise_huge` on the returned block, which does not
// alter memory contents (see there).
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout (the caller upholds `alloc`'s contract).
        let p = unsafe { System.alloc(layout) };
        advise_huge(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        advise_huge(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr`/`layout` come from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr`/`layout` come from `System` (via this allocator); caller's contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        advise_huge(p, new_size);
        p
    }
}

#[cfg(target_os = "linux")]
#[global_allocator]
static GLOBAL: HugePageAlloc = HugePageAlloc;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(ParseOutcome::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(ParseOutcome::Error(line)) => {
            eprintln!("seqgrad: error: {line}");
            return ExitCode::from(2);
        }
    };
    if cli.command.is_none() {
        eprintln!(
            "seqgrad: no command given, so running the demo (the main job): training the built-in splice model (models/splice.json) on the built-in splice data (data/splice.csv) into runs/splice. See the commands with `seqgrad --help`."
        );
    }
    let result = cli::run(cli);
    // Test hook: the process's own peak resident set (VmHWM), which a parent cannot read
    // reliably (a vfork-spawned child's rusage inherits the parent's high-water mark).
    if let Some(path) = std::env::var_os("SEQGRAD_PEAK_RSS_FILE") {
        if let Some(mb) = seqgrad::run::bench::peak_rss_mb() {
            let _ = std::fs::write(path, format!("{}\n", (mb * 1024.0).round() as u64));
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A check that ran and failed (gradcheck) is exit 1; user errors stay exit 2.
        Err(e @ seqgrad::Error::ChecksFailed(_)) => {
            eprintln!("seqgrad: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("seqgrad: error: {e}");
            ExitCode::from(2)
        }
    }
}
