//! The calls into the C library Postier makes, each safe whatever its arguments: advice to
//! the kernel on how to back memory, and giving freed memory back. The only `unsafe` code of
//! the crate (the workspace denies it elsewhere).
#![allow(unsafe_code)]

/// Asks the kernel to back `buffer`'s allocation (its whole capacity) with transparent huge
/// pages, before anything is written to it. Best effort: refused (THP `never`, another page
/// size, an old kernel), nothing changes but speed.
#[cfg(target_os = "linux")]
pub(crate) fn advise_huge_pages<T>(buffer: &mut Vec<T>) {
    const PAGE: usize = 4096;
    let base = buffer.as_mut_ptr().cast::<u8>();
    let address = base as usize;
    let end = (address + buffer.capacity() * std::mem::size_of::<T>()) / PAGE * PAGE;
    let first = address.next_multiple_of(PAGE);
    if end > first {
        // SAFETY: `MADV_HUGEPAGE` is advice on how the kernel backs pages, never a change of
        // their contents or of what is mapped; the range lies within this Vec's allocation,
        // alive and borrowed for the call; the answer is ignored.
        unsafe {
            libc::madvise(
                base.wrapping_add(first - address).cast::<libc::c_void>(),
                end - first,
                libc::MADV_HUGEPAGE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn advise_huge_pages<T>(_buffer: &mut Vec<T>) {}

/// Gives the system back the free memory of every glibc arena. Start-up builds large values
/// once and drops them (the OpenAPI document, each worker's route table); glibc keeps what
/// they freed in the arena of the thread that freed it, resident for the life of the process.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn release_free_memory() {
    // SAFETY: malloc_trim only hands free pages of the allocator's own arenas back to the
    // kernel; it takes no pointer and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_free_memory() {}
