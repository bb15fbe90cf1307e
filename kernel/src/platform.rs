//! Arch-neutral platform glue: the heap and the linker-provided tables.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Bytes of the kernel heap.
const HEAP_SIZE: usize = 8 * 1024 * 1024;

#[repr(align(4096))]
struct HeapSpace(#[expect(dead_code, reason = "only its address is used")] [u8; HEAP_SIZE]);

static mut HEAP_SPACE: HeapSpace = HeapSpace([0; HEAP_SIZE]);

/// Hands the static heap region to the allocator. Called once at boot.
pub fn heap_init() {
    // SAFETY: called once, before any allocation; HEAP_SPACE is used by
    // nothing else, so the allocator owns it from here on.
    unsafe { HEAP.lock().init(core::ptr::addr_of_mut!(HEAP_SPACE).cast(), HEAP_SIZE) }
}

unsafe extern "C" {
    static __ftrace_sites_start: usize;
    static __ftrace_sites_stop: usize;
}

/// The compiler-generated site table: one address per patchable entry.
pub fn sites() -> &'static [usize] {
    // SAFETY: the linker script places the __patchable_function_entries
    // input sections, an array of pointer-sized addresses, between these two
    // symbols; the table is never written.
    unsafe {
        let start = core::ptr::addr_of!(__ftrace_sites_start);
        let stop = core::ptr::addr_of!(__ftrace_sites_stop);
        let len = (stop as usize - start as usize) / core::mem::size_of::<usize>();
        core::slice::from_raw_parts(start, len)
    }
}
