//! Compares the rdma collector's two file-reading strategies (keep open + `pread` vs
//! open/read/close) over a sysfs root.
//!
//! `cargo run --release -p fabricwatch-agent --example rdma_read_bench -- <sysfs_root> [iterations]`
//!
//! With `--kernfs`, builds a tree under a temp dir whose `counters/` directories are
//! symlinks to real kernfs attribute directories (`/sys/class/net/*/statistics`), so the
//! measurement includes the kernel's `show()` path as on real RDMA hosts.

use std::{path::PathBuf, time::Instant};

use fabricwatch_agent::rdma::{RdmaCollector, ReadMode};
use fabricwatch_proto::agent_config::RdmaConfig;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iterations: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let _tmp;
    let root = match args.first().map(String::as_str) {
        Some("--kernfs") => {
            let tmp = tempfile::tempdir().expect("tempdir");
            let nets: Vec<_> = std::fs::read_dir("/sys/class/net")
                .expect("/sys/class/net")
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .collect();
            for (i, net) in nets.iter().enumerate() {
                let port = tmp.path().join(format!("class/infiniband/dev{i}/ports/1"));
                std::fs::create_dir_all(&port).expect("mkdir");
                std::fs::write(port.join("state"), "4: ACTIVE\n").expect("write");
                std::fs::write(port.join("phys_state"), "5: LinkUp\n").expect("write");
                std::os::unix::fs::symlink(net.join("statistics"), port.join("counters"))
                    .expect("symlink");
            }
            let p = tmp.path().to_path_buf();
            _tmp = tmp;
            p
        }
        Some(p) => PathBuf::from(p),
        None => {
            eprintln!("usage: rdma_read_bench <sysfs_root>|--kernfs [iterations]");
            std::process::exit(2);
        }
    };
    let cfg = RdmaConfig::default();
    for mode in [
        ReadMode::OpenEachTime,
        ReadMode::KeepOpen,
        ReadMode::OpenEachTime,
        ReadMode::KeepOpen,
    ] {
        let mut c = RdmaCollector::new(mode);
        let warm = c.collect(&root, &cfg, 0.0);
        let files: usize = warm
            .ports
            .iter()
            .map(|p| p.sample.counters.len() + p.sample.hw_counters.len() + p.sample.errors.len())
            .sum();
        let t = Instant::now();
        for i in 0..iterations {
            let _ = c.collect(&root, &cfg, f64::from(i));
        }
        let per = t.elapsed() / iterations;
        println!(
            "{mode:?}: {} ports, {files} counter files, {:.1} µs per collection, {:.2} µs per counter file",
            warm.ports.len(),
            per.as_secs_f64() * 1e6,
            per.as_secs_f64() * 1e6 / files.max(1) as f64
        );
    }
}
