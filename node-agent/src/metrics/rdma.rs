//! RDMA port metrics (`fabricwatch_rdma_*`): identity, state, rate, counters and
//! congestion signals of every port, and the Ethernet side of RoCE ports (driver
//! statistics, PFC and DCQCN per priority, DCQCN parameters).

use crate::{
    exposition::Sink,
    rdma::{parse::Transport, PortView, CONGESTION_COUNTERS},
    snapshot::Snapshot,
};

/// Every port of the snapshot.
pub(super) fn render(f: &mut impl Sink, s: &Snapshot) {
    for p in &s.rdma_ports {
        let port = p.sample.port.to_string();
        let l: &[(&str, &str)] = &[("device", &p.sample.device), ("port", &port)];
        let info = &p.sample.info;
        let id = &p.sample.identity;
        f.gauge(
            "fabricwatch_rdma_port_info",
            "RDMA port identity; always 1.",
            &[
                ("device", &p.sample.device),
                ("port", &port),
                ("link_layer", &p.sample.link_layer),
                ("transport", p.sample.transport.as_str()),
                ("netdev", p.sample.netdev.as_deref().unwrap_or("")),
                ("fw_ver", info.fw_ver.as_deref().unwrap_or("")),
                ("board_id", info.board_id.as_deref().unwrap_or("")),
                ("hca_type", info.hca_type.as_deref().unwrap_or("")),
                ("node_guid", info.node_guid.as_deref().unwrap_or("")),
                ("lid", &opt(id.lid.map(|v| format!("{v:#x}")))),
                ("sm_lid", &opt(id.sm_lid.map(|v| format!("{v:#x}")))),
                ("sm_sl", &opt(id.sm_sl)),
                ("lmc", &opt(id.lmc)),
                ("link_width", id.link_width.as_deref().unwrap_or("")),
                ("link_speed", id.link_speed.as_deref().unwrap_or("")),
            ],
            1.0,
        );
        for g in &id.gids {
            f.gauge(
                "fabricwatch_rdma_port_gid_info",
                "A populated GID table entry (gids/<index>, gid_attrs/types, gid_attrs/ndevs); always 1.",
                &[
                    ("device", &p.sample.device),
                    ("port", &port),
                    ("index", &g.index.to_string()),
                    ("gid", &g.gid),
                    ("gid_type", g.gid_type.as_deref().unwrap_or("")),
                    ("netdev", g.netdev.as_deref().unwrap_or("")),
                ],
                1.0,
            );
        }
        if p.sample.transport == Transport::Roce {
            render_roce(f, p, &port);
        }
        if let Some((n, _)) = &p.sample.state {
            f.gauge(
                "fabricwatch_rdma_port_state",
                "Logical port state number (1 DOWN, 2 INIT, 3 ARMED, 4 ACTIVE, 5 ACTIVE_DEFER).",
                l,
                f64::from(*n),
            );
        }
        if let Some((n, _)) = &p.sample.phys_state {
            f.gauge(
                "fabricwatch_rdma_port_physical_state",
                "Physical port state number (2 Polling, 3 Disabled, 5 LinkUp, ...).",
                l,
                f64::from(*n),
            );
        }
        f.gauge(
            "fabricwatch_rdma_port_active",
            "1 when the port state is ACTIVE.",
            l,
            if p.is_active() { 1.0 } else { 0.0 },
        );
        if let Some(r) = p.sample.rate_gbps {
            f.gauge(
                "fabricwatch_rdma_port_rate_bytes_per_second",
                "Link rate from `rate`, in bytes per second.",
                l,
                r * 1e9 / 8.0,
            );
        }
        if let Some(b) = p.rx_bytes() {
            f.counter(
                "fabricwatch_rdma_port_received_bytes_total",
                "Bytes received (port_rcv_data x 4).",
                l,
                b as f64,
            );
        }
        if let Some(b) = p.tx_bytes() {
            f.counter(
                "fabricwatch_rdma_port_transmitted_bytes_total",
                "Bytes transmitted (port_xmit_data x 4).",
                l,
                b as f64,
            );
        }
        for (name, key) in [
            (
                "fabricwatch_rdma_port_receive_bytes_per_second",
                "port_rcv_data",
            ),
            (
                "fabricwatch_rdma_port_transmit_bytes_per_second",
                "port_xmit_data",
            ),
        ] {
            if let Some(r) = p.rates.get(key) {
                f.gauge(
                    name,
                    "Data rate over the last interval, bytes per second.",
                    l,
                    r * 4.0,
                );
            }
        }
        f.counter(
            "fabricwatch_rdma_port_link_flaps_total",
            "Link flaps seen since the agent started (link_downed increments and ACTIVE to non-ACTIVE transitions).",
            l,
            p.link_flaps_total as f64,
        );
        let all = p.all_counters();
        f.gauge(
            "fabricwatch_rdma_port_supported_counters",
            "Number of counters this port could read (names in /status).",
            l,
            all.len() as f64,
        );
        for (name, v) in all {
            if name == "port_rcv_data" || name == "port_xmit_data" {
                continue;
            }
            f.counter(
                "fabricwatch_rdma_port_counters_total",
                "Every readable counters/ and hw_counters/ file under its kernel name (data counters are in the *_bytes_total metrics).",
                &[("device", &p.sample.device), ("port", &port), ("counter", name)],
                *v as f64,
            );
        }
        for (kernel, suffix, help) in CONGESTION_COUNTERS {
            if let Some(v) = all.get(*kernel) {
                f.counter(
                    &format!("fabricwatch_rdma_congestion_{suffix}"),
                    help,
                    l,
                    *v as f64,
                );
            }
        }
    }
}

fn opt(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The Ethernet side of a RoCE port: mapped driver statistics, and per priority whether
/// PFC and DCQCN are on (`unknown` when the driver does not say).
fn render_roce(f: &mut impl Sink, p: &PortView, port: &str) {
    let netdev = p.sample.netdev.as_deref().unwrap_or("");
    let eth = p.ethtool.as_deref();
    if let Some(e) = eth {
        for st in &e.statistics {
            f.counter(
                "fabricwatch_rdma_ethtool_statistics_total",
                "Ethernet driver statistics of the RoCE netdev (ETHTOOL_GSTATS) under the driver's name (priority written [p]), with the driver-independent signal.",
                &[
                    ("device", &p.sample.device),
                    ("port", port),
                    ("netdev", netdev),
                    ("driver", &e.driver),
                    ("statistic", st.statistic),
                    ("signal", st.signal),
                    ("priority", &opt(st.priority)),
                ],
                st.value as f64,
            );
        }
    }
    let dcqcn = eth.and_then(|e| e.dcqcn.as_ref());
    let pfc = eth.and_then(|e| e.pfc_enabled_priorities.as_ref());
    for prio in 0u8..8 {
        let state = |known: bool, on: bool| match (known, on) {
            (false, _) => "unknown",
            (true, true) => "enabled",
            (true, false) => "disabled",
        };
        let unknown = dcqcn.is_none_or(|d| d.unknown_priorities.contains(&prio));
        f.gauge(
            "fabricwatch_rdma_roce_priority_info",
            "Per 802.1p priority of a RoCE port: PFC (from the driver's statistics names, mlx5) and DCQCN reaction/notification point (ecn/ sysfs of MLNX_OFED); unknown where the driver does not expose it. Always 1.",
            &[
                ("device", &p.sample.device),
                ("port", port),
                ("netdev", netdev),
                ("priority", &prio.to_string()),
                ("pfc", state(pfc.is_some(), pfc.is_some_and(|v| v.contains(&prio)))),
                (
                    "dcqcn_reaction_point",
                    state(!unknown, dcqcn.is_some_and(|d| d.rp_enabled_priorities.contains(&prio))),
                ),
                (
                    "dcqcn_notification_point",
                    state(!unknown, dcqcn.is_some_and(|d| d.np_enabled_priorities.contains(&prio))),
                ),
            ],
            1.0,
        );
    }
    if let Some(d) = dcqcn {
        for (name, v) in &d.parameters {
            f.gauge(
                "fabricwatch_rdma_dcqcn_parameter",
                "DCQCN parameter files under ecn/roce_rp/ and ecn/roce_np/ (MLNX_OFED), as read.",
                &[
                    ("device", &p.sample.device),
                    ("port", port),
                    ("netdev", netdev),
                    ("parameter", name),
                ],
                *v as f64,
            );
        }
    }
}
