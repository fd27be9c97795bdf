#pragma once
// Clang's thread-safety annotations (-Wthread-safety), as LevelDB's
// port/thread_annotations.h and Abseil's base/thread_annotations.h spell them.
// A member marked GUARDED_BY(mu_) may be touched only with mu_ held; a
// function marked REQUIRES(mu_) is called with it held. clang builds turn the
// analysis's findings into errors (cmake/MemkvOptions.cmake); on other
// compilers the macros expand to nothing.
//
// std::mutex carries no annotations in libstdc++: lock with memkv::Mutex
// (common/mutex.h), which does.

#if defined(__clang__)
#define MEMKV_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MEMKV_THREAD_ANNOTATION(x)
#endif

// A type that is a lock ("mutex" is the name clang prints).
#define CAPABILITY(x) MEMKV_THREAD_ANNOTATION(capability(x))
// An RAII type that holds a lock for its lifetime.
#define SCOPED_CAPABILITY MEMKV_THREAD_ANNOTATION(scoped_lockable)

// Data read or written only with the lock held (shared for reads, exclusive
// for writes when the lock is a reader-writer lock).
#define GUARDED_BY(x) MEMKV_THREAD_ANNOTATION(guarded_by(x))
// Pointer whose pointee is guarded by the lock (the pointer itself is not).
#define PT_GUARDED_BY(x) MEMKV_THREAD_ANNOTATION(pt_guarded_by(x))

// The caller holds the lock (exclusively / at least shared).
#define REQUIRES(...) MEMKV_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) MEMKV_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
// The caller does not hold the lock (the function takes it).
#define EXCLUDES(...) MEMKV_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

// The function takes / gives back the lock (exclusively or shared).
#define ACQUIRE(...) MEMKV_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) MEMKV_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) MEMKV_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) MEMKV_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
// Releases whichever way it was held (a scoped lock's destructor).
#define RELEASE_GENERIC(...) MEMKV_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
// Takes the lock when it returns the given value (try_lock).
#define TRY_ACQUIRE(...) MEMKV_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define TRY_ACQUIRE_SHARED(...) MEMKV_THREAD_ANNOTATION(try_acquire_shared_capability(__VA_ARGS__))

// Tells the analysis the lock is held here (checked at run time by the callee).
#define ASSERT_CAPABILITY(x) MEMKV_THREAD_ANNOTATION(assert_capability(x))
// Returns a reference to the given lock.
#define RETURN_CAPABILITY(x) MEMKV_THREAD_ANNOTATION(lock_returned(x))

// Turns the analysis off for one function: for code it cannot follow, with a
// comment saying why the locking is right.
#define NO_THREAD_SAFETY_ANALYSIS MEMKV_THREAD_ANNOTATION(no_thread_safety_analysis)
