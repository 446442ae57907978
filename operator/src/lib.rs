//! The fabricwatch operator: the controller ([`controller`]) and what its two binaries share
//! at start-up and exit ([`process`]).
//!
//! Binaries:
//! * `fabricwatch-operator` (`src/main.rs`): one binary for the three central workloads,
//!   `controller`, `analytics` and `notifier` subcommands; the chart runs analytics and the
//!   notifier from it.
//! * `fabricwatch-controller` (`src/bin/fabricwatch-controller.rs`): the controller alone, with
//!   the same flags as `fabricwatch-operator controller`; what the chart runs. Without the
//!   analytics, notifier and AI client code its binary is half the size, and the pages of code
//!   the kernel maps into the process are ~4 MiB fewer (BENCHMARKS.md, controller RSS).

pub mod controller;
pub mod process;

/// jemalloc instead of the system allocator: it hands freed memory back to the OS, which
/// glibc's malloc did not after bursts of reconciles (see BENCHMARKS.md, controller RSS).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's run-time options (its `malloc_conf` global, read before `main`; the
/// `_RJEM_MALLOC_CONF` environment variable is read after it and overrides it).
/// `tcache:false`: the per-thread caches kept ~6 MiB of freed objects after the controller's
/// start-up sync of 1,000 targets; `narenas:1`: one arena instead of four per CPU (each
/// holds its own free pages). Measured in BENCHMARKS.md (controller RSS); every workload
/// waits on the network far more than on `malloc`.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
// Exporting the symbol is how jemalloc is configured; nothing else defines it.
#[allow(unsafe_code)]
#[export_name = "_rjem_malloc_conf"]
pub static JEMALLOC_CONF: &u8 = &b"narenas:1,tcache:false\0"[0];
