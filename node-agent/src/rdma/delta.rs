//! Counter deltas, per-second rates and link-flap detection across two samples of a port.
//!
//! InfiniBand PMA counters saturate at their maximum rather than wrap (IBA spec vol. 1,
//! §16.1.3.5), but several drivers expose free-running 32-bit hardware counters that do
//! wrap, and every counter restarts at 0 after a driver reload or `perfquery -R`. A counter
//! that went down is therefore read as a 32-bit wrap when the previous value lay in the top
//! quarter of the 32-bit range and the new one in the bottom quarter, and as a reset
//! otherwise (no rate for that interval; the next interval starts from the new value).

use std::{collections::BTreeMap, sync::Arc};

/// Outcome of comparing two readings of one cumulative counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delta {
    /// The counter advanced by this much (wraps already unwound).
    Increase(u64),
    /// The counter went backwards for a reason other than a 32-bit wrap.
    Reset,
}

const U32_RANGE: u64 = 1 << 32;
const TOP_QUARTER: u64 = U32_RANGE / 4 * 3;
const BOTTOM_QUARTER: u64 = U32_RANGE / 4;

/// The increase from `prev` to `cur` (see the module doc for the wrap rule).
pub fn counter_delta(prev: u64, cur: u64) -> Delta {
    if cur >= prev {
        Delta::Increase(cur - prev)
    } else if (TOP_QUARTER..U32_RANGE).contains(&prev) && cur < BOTTOM_QUARTER {
        Delta::Increase(U32_RANGE - prev + cur)
    } else {
        Delta::Reset
    }
}

/// What the tracker remembers about one port between collections.
#[derive(Clone, Debug, Default)]
pub struct PortHistory {
    /// Counters of the previous sample, by kernel name.
    pub counters: Arc<BTreeMap<String, u64>>,
    /// Monotonic time of the previous sample, seconds.
    pub at_seconds: f64,
    /// `state` name of the previous sample (`ACTIVE`, `DOWN`, ...).
    pub state: String,
    /// Link flaps seen since the agent started.
    pub flaps_total: u64,
}

/// Result of one update.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortUpdate {
    /// Per-second rates by kernel counter name; empty on the first sample. Counters that
    /// reset in this interval have no entry.
    pub rates: BTreeMap<String, f64>,
    /// Counter names that reset in this interval.
    pub resets: Vec<String>,
    /// Flaps newly seen in this interval.
    pub new_flaps: u64,
    /// Flaps seen since start, including `new_flaps`.
    pub flaps_total: u64,
}

/// Folds a new sample of a port into its history and returns rates and flaps.
///
/// `history` is `None` for a port seen for the first time. A flap is counted for each
/// `link_downed` increment and for an `ACTIVE` → non-`ACTIVE` transition that
/// `link_downed` did not also count (the port may be quick enough to come back before the
/// next sample, which only the counter shows; or the counter may be unsupported, which only
/// the state shows), so one bounce is counted once.
pub fn update_port(
    history: Option<&PortHistory>,
    counters: &Arc<BTreeMap<String, u64>>,
    state: &str,
    now_seconds: f64,
) -> (PortHistory, PortUpdate) {
    let mut update = PortUpdate::default();
    let flaps_before = history.map_or(0, |h| h.flaps_total);
    if let Some(h) = history {
        let dt = now_seconds - h.at_seconds;
        let mut downed_increase = 0;
        for (name, &cur) in counters.iter() {
            let Some(&prev) = h.counters.get(name) else {
                continue;
            };
            match counter_delta(prev, cur) {
                Delta::Increase(d) => {
                    if name == "link_downed" {
                        downed_increase = d;
                    }
                    if dt > 0.0 {
                        update.rates.insert(name.clone(), d as f64 / dt);
                    }
                }
                Delta::Reset => update.resets.push(name.clone()),
            }
        }
        let went_down = h.state == "ACTIVE" && state != "ACTIVE";
        update.new_flaps = downed_increase.max(u64::from(went_down));
    }
    update.flaps_total = flaps_before + update.new_flaps;
    let next = PortHistory {
        // Shared with the port's view: the history needs no copy of its own.
        counters: Arc::clone(counters),
        at_seconds: now_seconds,
        state: state.to_string(),
        flaps_total: update.flaps_total,
    };
    (next, update)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pairs: &[(&str, u64)]) -> Arc<BTreeMap<String, u64>> {
        Arc::new(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }

    #[test]
    fn deltas_handle_wrap_and_reset() {
        assert_eq!(counter_delta(10, 15), Delta::Increase(5));
        assert_eq!(
            counter_delta(u64::from(u32::MAX) - 1, 3),
            Delta::Increase(5)
        );
        assert_eq!(counter_delta(1_000, 10), Delta::Reset);
        assert_eq!(
            counter_delta(1 << 40, 5),
            Delta::Reset,
            "64-bit counters do not wrap at 2^32"
        );
        assert_eq!(counter_delta(7, 7), Delta::Increase(0));
    }

    #[test]
    fn first_sample_has_no_rates() {
        let (h, u) = update_port(None, &c(&[("port_rcv_data", 100)]), "ACTIVE", 1.0);
        assert!(u.rates.is_empty());
        assert_eq!(u.flaps_total, 0);
        assert_eq!(h.counters["port_rcv_data"], 100);
    }

    #[test]
    fn rates_over_interval_and_backwards_counters() {
        let (h, _) = update_port(
            None,
            &c(&[("port_rcv_data", 100), ("symbol_error", 50)]),
            "ACTIVE",
            10.0,
        );
        let (h2, u) = update_port(
            Some(&h),
            &c(&[("port_rcv_data", 600), ("symbol_error", 2)]),
            "ACTIVE",
            20.0,
        );
        assert_eq!(u.rates.get("port_rcv_data"), Some(&50.0));
        assert_eq!(u.rates.get("symbol_error"), None, "a reset yields no rate");
        assert_eq!(u.resets, vec!["symbol_error".to_string()]);
        // After the reset, the next interval measures from the new value.
        let (_, u3) = update_port(
            Some(&h2),
            &c(&[("port_rcv_data", 600), ("symbol_error", 12)]),
            "ACTIVE",
            30.0,
        );
        assert_eq!(u3.rates.get("symbol_error"), Some(&1.0));
    }

    #[test]
    fn flaps_from_counter_and_state() {
        let (h, _) = update_port(None, &c(&[("link_downed", 3)]), "ACTIVE", 0.0);
        // Bounced twice between samples, back up: counter shows it.
        let (h, u) = update_port(Some(&h), &c(&[("link_downed", 5)]), "ACTIVE", 1.0);
        assert_eq!((u.new_flaps, u.flaps_total), (2, 2));
        // Went down and stayed down: counted once even though link_downed also moved.
        let (h, u) = update_port(Some(&h), &c(&[("link_downed", 6)]), "DOWN", 2.0);
        assert_eq!((u.new_flaps, u.flaps_total), (1, 3));
        // Still down: nothing new.
        let (h, u) = update_port(Some(&h), &c(&[("link_downed", 6)]), "DOWN", 3.0);
        assert_eq!(u.new_flaps, 0);
        // A port without link_downed (iWARP) flaps by state only.
        let (h, _) = update_port(Some(&h), &c(&[]), "ACTIVE", 4.0);
        let (_, u) = update_port(Some(&h), &c(&[]), "INIT", 5.0);
        assert_eq!((u.new_flaps, u.flaps_total), (1, 4));
    }
}
