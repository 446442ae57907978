//! Driver statistic names → driver-independent signals, with the priority lifted out.
//!
//! Only drivers whose names are documented are mapped; a statistic of an unknown driver,
//! or an unknown statistic of a known driver, maps to nothing (no guessing).
//!
//! Sources:
//! * `mlx5_core`: the kernel's
//!   `Documentation/networking/device_drivers/ethernet/mellanox/mlx5/counters.rst` and
//!   `drivers/net/ethernet/mellanox/mlx5/core/en_stats.c` (`pport_per_prio_pfc_stats_desc`,
//!   `pport_pfc_stall_stats_desc`, `pport_per_tc_prio_stats_desc`,
//!   `pport_per_tc_congest_prio_stats_desc`). The `prio<N>_pause*` statistics exist only for
//!   priorities with PFC enabled, so their presence tells which priorities have PFC.
//! * `bnxt_en`: `drivers/net/ethernet/broadcom/bnxt/bnxt_ethtool.c` (`bnxt_port_stats_arr`,
//!   `bnxt_port_stats_ext_arr`, `bnxt_rx_pfc_stats` …). Per-ring lines (`[N]: …`) and the
//!   per-CoS discard counters (a CoS queue is not a priority) are not mapped.
//! * `ice`: `drivers/net/ethernet/intel/ice/ice_ethtool.c` (`ice_gstrings_pf_stats`,
//!   `ice_get_strings` priority loops). XOFF frames are the pause frames; XON frames, which
//!   resume, are not mapped.

/// A driver-independent meaning of a statistic. The report key is
/// [`Signal::as_str`] (plus `/<priority>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Pause (PFC per priority, 802.3x without one) frames received: the peer paused us.
    PauseReceived,
    /// Pause frames sent: this port paused its peer.
    PauseTransmitted,
    /// Time the port was paused by its peer, microseconds.
    PauseDurationReceivedMicroseconds,
    /// Time the port paused its peer, microseconds.
    PauseDurationTransmittedMicroseconds,
    /// Transitions from paused to not paused, receive side.
    PauseTransitionsReceived,
    /// Transitions from pausing to not pausing, transmit side.
    PauseTransitionsTransmitted,
    /// MAC control frames with the pause opcode received (mlx5 `rx_pause_ctrl_phy`).
    PauseControlFramesReceived,
    /// MAC control frames with the pause opcode sent.
    PauseControlFramesTransmitted,
    /// Packets the port dropped on receive for lack of buffers.
    DiscardsReceived,
    /// Packets the port dropped on transmit.
    DiscardsTransmitted,
    /// Packets dropped for lack of per-host receive buffers (mlx5 `rx_prio[p]_buf_discard`).
    BufferDiscards,
    /// Packets dropped because of per-host congestion (mlx5 `rx_prio[p]_cong_discard`).
    CongestionDiscards,
    /// Packets received with (or given by the device) an ECN congestion mark.
    EcnMarked,
    /// Times the receive buffer was over its threshold (85 % full on mlx5).
    BufferPassedThreshold,
    /// Times the device kept sending pauses for a long time (mlx5 minor watermark).
    PauseStormWarningEvents,
    /// Times the device sent pauses so long that it stopped sending them (mlx5 critical
    /// watermark; drops may follow).
    PauseStormErrorEvents,
    /// Times a receive queue had no software buffer for incoming traffic.
    OutOfBuffer,
}

impl Signal {
    /// The report key / `signal` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PauseReceived => "pause_received",
            Self::PauseTransmitted => "pause_transmitted",
            Self::PauseDurationReceivedMicroseconds => "pause_duration_received_microseconds",
            Self::PauseDurationTransmittedMicroseconds => "pause_duration_transmitted_microseconds",
            Self::PauseTransitionsReceived => "pause_transitions_received",
            Self::PauseTransitionsTransmitted => "pause_transitions_transmitted",
            Self::PauseControlFramesReceived => "pause_control_frames_received",
            Self::PauseControlFramesTransmitted => "pause_control_frames_transmitted",
            Self::DiscardsReceived => "discards_received",
            Self::DiscardsTransmitted => "discards_transmitted",
            Self::BufferDiscards => "buffer_discards",
            Self::CongestionDiscards => "congestion_discards",
            Self::EcnMarked => "ecn_marked",
            Self::BufferPassedThreshold => "buffer_passed_threshold",
            Self::PauseStormWarningEvents => "pause_storm_warning_events",
            Self::PauseStormErrorEvents => "pause_storm_error_events",
            Self::OutOfBuffer => "out_of_buffer",
        }
    }
}

/// The drivers whose statistics are mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Driver {
    /// NVIDIA/Mellanox ConnectX (`mlx5_core`).
    Mlx5,
    /// Broadcom NetXtreme-C/E (`bnxt_en`).
    Bnxt,
    /// Intel E800 (`ice`).
    Ice,
}

impl Driver {
    /// The driver for an `ETHTOOL_GDRVINFO` driver name, `None` for unknown drivers.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "mlx5_core" => Some(Self::Mlx5),
            "bnxt_en" => Some(Self::Bnxt),
            "ice" => Some(Self::Ice),
            _ => None,
        }
    }
}

/// One mapped statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The driver's name for it, priority written as `[p]` as in the mlx5 document
    /// (`rx_prio[p]_pause`); the bounded `statistic` label.
    pub statistic: &'static str,
    /// What it means.
    pub signal: Signal,
    /// 802.1p priority 0–7, `None` for port-wide statistics.
    pub priority: Option<u8>,
}

type Rule = (&'static str, Signal);

/// Port-wide names, exact match.
const MLX5_PORT: &[Rule] = &[
    ("rx_global_pause", Signal::PauseReceived),
    ("tx_global_pause", Signal::PauseTransmitted),
    (
        "rx_global_pause_duration",
        Signal::PauseDurationReceivedMicroseconds,
    ),
    (
        "tx_global_pause_duration",
        Signal::PauseDurationTransmittedMicroseconds,
    ),
    (
        "rx_global_pause_transition",
        Signal::PauseTransitionsReceived,
    ),
    ("rx_pause_ctrl_phy", Signal::PauseControlFramesReceived),
    ("tx_pause_ctrl_phy", Signal::PauseControlFramesTransmitted),
    ("rx_discards_phy", Signal::DiscardsReceived),
    ("tx_discards_phy", Signal::DiscardsTransmitted),
    ("rx_ecn_mark", Signal::EcnMarked),
    ("rx_buffer_passed_thres_phy", Signal::BufferPassedThreshold),
    (
        "tx_pause_storm_warning_events",
        Signal::PauseStormWarningEvents,
    ),
    ("tx_pause_storm_error_events", Signal::PauseStormErrorEvents),
    ("rx_out_of_buffer", Signal::OutOfBuffer),
];

/// Per-priority names: `<prefix><digit><suffix>`, listed as the `[p]` form.
const MLX5_PRIO: &[Rule] = &[
    ("rx_prio[p]_pause", Signal::PauseReceived),
    ("tx_prio[p]_pause", Signal::PauseTransmitted),
    (
        "rx_prio[p]_pause_duration",
        Signal::PauseDurationReceivedMicroseconds,
    ),
    (
        "tx_prio[p]_pause_duration",
        Signal::PauseDurationTransmittedMicroseconds,
    ),
    (
        "rx_prio[p]_pause_transition",
        Signal::PauseTransitionsReceived,
    ),
    ("rx_prio[p]_buf_discard", Signal::BufferDiscards),
    ("rx_prio[p]_cong_discard", Signal::CongestionDiscards),
    ("rx_prio[p]_marked", Signal::EcnMarked),
    ("rx_prio[p]_discards", Signal::DiscardsReceived),
];

const BNXT_PORT: &[Rule] = &[
    ("rx_pause_frames", Signal::PauseReceived),
    ("tx_pause_frames", Signal::PauseTransmitted),
    ("rx_stat_discard", Signal::DiscardsReceived),
    ("tx_stat_discard", Signal::DiscardsTransmitted),
    ("rx_buffer_passed_threshold", Signal::BufferPassedThreshold),
];

const BNXT_PRIO: &[Rule] = &[
    ("rx_pfc_ena_frames_pri[p]", Signal::PauseReceived),
    ("tx_pfc_ena_frames_pri[p]", Signal::PauseTransmitted),
    (
        "pfc_pri[p]_rx_duration_us",
        Signal::PauseDurationReceivedMicroseconds,
    ),
    (
        "pfc_pri[p]_tx_duration_us",
        Signal::PauseDurationTransmittedMicroseconds,
    ),
    (
        "pfc_pri[p]_rx_transitions",
        Signal::PauseTransitionsReceived,
    ),
    (
        "pfc_pri[p]_tx_transitions",
        Signal::PauseTransitionsTransmitted,
    ),
];

const ICE_PORT: &[Rule] = &[
    ("link_xoff_rx.nic", Signal::PauseReceived),
    ("link_xoff_tx.nic", Signal::PauseTransmitted),
    ("rx_dropped.nic", Signal::DiscardsReceived),
];

const ICE_PRIO: &[Rule] = &[
    ("rx_priority_[p]_xoff.nic", Signal::PauseReceived),
    ("tx_priority_[p]_xoff.nic", Signal::PauseTransmitted),
];

fn rules(driver: Driver) -> (&'static [Rule], &'static [Rule]) {
    match driver {
        Driver::Mlx5 => (MLX5_PORT, MLX5_PRIO),
        Driver::Bnxt => (BNXT_PORT, BNXT_PRIO),
        Driver::Ice => (ICE_PORT, ICE_PRIO),
    }
}

/// Matches `name` against a `[p]` pattern: the same text with exactly one decimal digit
/// 0–7 in place of `[p]`.
fn match_prio(pattern: &str, name: &str) -> Option<u8> {
    let (pre, post) = pattern.split_once("[p]")?;
    let rest = name.strip_prefix(pre)?.strip_suffix(post)?;
    match rest.as_bytes() {
        [d @ b'0'..=b'7'] => Some(d - b'0'),
        _ => None,
    }
}

/// Maps one statistic name of `driver`; `None` when it is not one the agent exports.
pub fn classify(driver: Driver, name: &str) -> Option<Mapped> {
    let (port, prio) = rules(driver);
    if let Some((statistic, signal)) = port.iter().find(|(n, _)| *n == name) {
        return Some(Mapped {
            statistic,
            signal: *signal,
            priority: None,
        });
    }
    prio.iter().find_map(|(pattern, signal)| {
        match_prio(pattern, name).map(|p| Mapped {
            statistic: pattern,
            signal: *signal,
            priority: Some(p),
        })
    })
}

/// Priorities with PFC enabled, where the driver's name set reveals them: mlx5 emits
/// `rx_prio<N>_pause` only for priorities in `pfc_en_tx | pfc_en_rx`
/// (`mlx5e_grp_per_prio_pfc_fill_strings`). `None` for other drivers, which list every
/// priority whether enabled or not.
pub fn pfc_enabled_priorities<'a>(
    driver: Driver,
    names: impl IntoIterator<Item = &'a str>,
) -> Option<Vec<u8>> {
    if driver != Driver::Mlx5 {
        return None;
    }
    let mut out: Vec<u8> = names
        .into_iter()
        .filter_map(|n| match_prio("rx_prio[p]_pause", n))
        .collect();
    out.sort_unstable();
    out.dedup();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlx5_names_map_with_priority() {
        let m = classify(Driver::Mlx5, "rx_prio3_pause").expect("mapped");
        assert_eq!(m.statistic, "rx_prio[p]_pause");
        assert_eq!(m.signal, Signal::PauseReceived);
        assert_eq!(m.priority, Some(3));
        let m = classify(Driver::Mlx5, "tx_prio7_pause_duration").expect("mapped");
        assert_eq!(m.signal, Signal::PauseDurationTransmittedMicroseconds);
        assert_eq!(m.priority, Some(7));
        let m = classify(Driver::Mlx5, "tx_pause_storm_error_events").expect("mapped");
        assert_eq!(
            (m.signal, m.priority),
            (Signal::PauseStormErrorEvents, None)
        );
    }

    #[test]
    fn priorities_outside_0_to_7_and_odd_names_map_to_nothing() {
        for name in [
            "rx_prio8_pause",
            "rx_prio10_pause",
            "rx_prio_pause",
            "rx_prio3_pause ",
            "rx_prio3_pause_durationX",
            "rx_prioA_pause",
            "rx_prio[p]_pause",
            "",
            "rx_prio3_bytes",
            "rx0_packets",
        ] {
            assert_eq!(classify(Driver::Mlx5, name), None, "{name:?}");
        }
    }

    #[test]
    fn bnxt_and_ice_names_map() {
        let m = classify(Driver::Bnxt, "pfc_pri2_rx_duration_us").expect("mapped");
        assert_eq!(
            (m.signal, m.priority),
            (Signal::PauseDurationReceivedMicroseconds, Some(2))
        );
        let m = classify(Driver::Ice, "rx_priority_5_xoff.nic").expect("mapped");
        assert_eq!((m.signal, m.priority), (Signal::PauseReceived, Some(5)));
        assert_eq!(classify(Driver::Ice, "rx_priority_5_xon.nic"), None);
        assert_eq!(classify(Driver::Bnxt, "rx_discard_packets_cos0"), None);
    }

    #[test]
    fn unknown_drivers_are_not_mapped() {
        assert_eq!(Driver::from_name("e1000e"), None);
        assert_eq!(Driver::from_name("veth"), None);
        assert_eq!(Driver::from_name("mlx5_core"), Some(Driver::Mlx5));
    }

    #[test]
    fn pfc_priorities_come_from_mlx5_names_only() {
        let names = [
            "rx_prio3_pause",
            "rx_prio3_pause_duration",
            "rx_prio0_bytes",
        ];
        assert_eq!(
            pfc_enabled_priorities(Driver::Mlx5, names.iter().copied()),
            Some(vec![3])
        );
        assert_eq!(
            pfc_enabled_priorities(Driver::Bnxt, names.iter().copied()),
            None
        );
    }
}
