//! Counter directories (`counters/`, `counters_ext/`, `hw_counters/`): every regular file
//! read as a counter, a cached listing refreshed at once when a file it names has gone.

use std::{collections::BTreeMap, io, path::Path};

use super::{io_error, parse, truncate, FileError, FileErrorKind, ListKind, SysfsReader};

/// Reads every regular file in a counter directory. A missing directory (devices without a
/// PMA, `hw_counters` on older kernels) yields no counters and no error.
///
/// The listing is cached (see [`RELIST_EVERY`](super::RELIST_EVERY)); when a file of a cached listing has gone,
/// the directory is listed and read again at once, so a removed counter is not an error.
pub(super) fn read_counter_dir(
    reader: &mut SysfsReader,
    dir: &Path,
    errors: &mut Vec<FileError>,
) -> BTreeMap<String, u64> {
    match read_counter_files(reader, dir) {
        Ok((out, errs)) => {
            errors.extend(errs);
            out
        }
        Err(Stale) => {
            reader.forget_listing(dir);
            let (out, errs) = read_counter_files(reader, dir).unwrap_or_default();
            errors.extend(errs);
            out
        }
    }
}

/// A file named by a cached directory listing was not found.
struct Stale;

fn read_counter_files(
    reader: &mut SysfsReader,
    dir: &Path,
) -> Result<(BTreeMap<String, u64>, Vec<FileError>), Stale> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    let (names, cached) = match reader.list(dir, ListKind::Files) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((out, errors)),
        Err(e) => {
            errors.push(io_error(dir, &e));
            return Ok((out, errors));
        }
    };
    // One path buffer for the whole directory instead of an allocation per file.
    let mut path = dir.to_path_buf();
    for name in names.iter() {
        // `hw_counters/lifespan` is a setting (ms), not a counter.
        if name == "lifespan" {
            continue;
        }
        path.push(name);
        let parsed = reader.read_with(&path, |text| {
            parse::parse_counter(text).map_err(|bad| (bad, truncate(text)))
        });
        match parsed {
            Ok(Ok(v)) => {
                out.insert(name.clone(), v);
            }
            Ok(Err((bad, text))) => errors.push(FileError {
                path: path.clone(),
                kind: FileErrorKind::Bad(bad),
                message: format!("unexpected content {text:?}"),
            }),
            // ENODEV: a kept sysfs descriptor whose attribute was removed (kernfs).
            Err(e)
                if cached
                    && (e.kind() == io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::ENODEV)) =>
            {
                return Err(Stale)
            }
            Err(e) => errors.push(io_error(&path, &e)),
        }
        path.pop();
    }
    Ok((out, errors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdma::ReadMode;

    /// A counter removed while its listing is cached: the kernel invalidates the kept
    /// descriptor (ENODEV on kernfs; here the descriptor is dropped and the open fails with
    /// ENOENT). The directory is listed again at once and the counter is gone, not an error.
    #[test]
    fn a_counter_removed_under_a_cached_listing_is_not_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counters = dir.path().join("counters");
        std::fs::create_dir_all(&counters).expect("mkdir");
        for (name, v) in [("a", "1\n"), ("b", "2\n"), ("c", "3\n")] {
            std::fs::write(counters.join(name), v).expect("write");
        }
        let mut r = SysfsReader::new(ReadMode::KeepOpen);
        let mut errors = Vec::new();
        r.begin();
        let first = read_counter_dir(&mut r, &counters, &mut errors);
        assert_eq!(first.len(), 3);
        assert_eq!(r.cached_listings(), 1);
        std::fs::remove_file(counters.join("b")).expect("rm");
        r.drop_open_files();
        r.begin();
        let second = read_counter_dir(&mut r, &counters, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            second.into_iter().collect::<Vec<_>>(),
            [("a".to_string(), 1), ("c".to_string(), 3)]
        );
    }
}
