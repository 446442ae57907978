//! The target page (`GET /ui/targets/{ns}/{name}`: mesh heatmaps, suspects, problems, RDMA
//! ports, anomalies, nodes) and the node page (`.../nodes/{node}`: history charts, findings,
//! peers).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use chrono::Utc;
use fabricwatch_proto::ObjectRef;
use minijinja::{context, Value};
use serde::Serialize;

use super::{
    chart, heatmap,
    render::{message, render, respond, ser, Refused, Viewer, REFRESH_SECONDS},
};
use crate::{
    authz::{Caller, Scope},
    http::{anomaly_entries, Api},
    state::lock,
};

/// The MonitorTarget `ns/name`, once `caller` may read `ns`.
async fn readable_target(
    api: &Api,
    caller: &Caller,
    ns: String,
    name: String,
) -> Result<ObjectRef, Refused> {
    api.access.require_read(caller, &ns).await?;
    Ok(ObjectRef {
        namespace: ns,
        name,
    })
}

/// One RDMA port row of the target page.
#[derive(Debug, Serialize)]
struct PortRow {
    node: String,
    device: String,
    port: u32,
    state: String,
    phys_state: String,
    down: bool,
    rate_gbps: Option<f64>,
    errors_per_minute: Option<f64>,
    pause_percent: Option<f64>,
    discards_per_minute: Option<f64>,
    ecn_marked_per_second: Option<f64>,
    cnp_sent_per_second: Option<f64>,
}

pub(super) async fn target(
    State(api): State<Api>,
    Viewer(caller): Viewer<Caller>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, Refused> {
    let t = readable_target(&api, &caller, ns, name).await?;
    Ok(match target_html(&api, &t, &caller) {
        Some(rendered) => respond(StatusCode::OK, "target.html", rendered),
        None => message(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("analytics holds no data of MonitorTarget {t}"),
            false,
        ),
    })
}

/// The page of target `t` (`None` when analytics holds no data of it); access is the
/// caller's business.
pub fn target_html(api: &Api, t: &ObjectRef, caller: &Caller) -> Option<Result<String, String>> {
    let now = Utc::now();
    let (view, nodes) = {
        let fleet = lock(&api.shared.fleet);
        (fleet.view(t, now)?, fleet.nodes(t, now)?)
    };
    let loss = heatmap::svg(
        &heatmap::matrix(&nodes, heatmap::Measure::Loss),
        heatmap::Measure::Loss,
    );
    let rtt = heatmap::svg(
        &heatmap::matrix(&nodes, heatmap::Measure::RttP99),
        heatmap::Measure::RttP99,
    );
    let ports: Vec<PortRow> = nodes
        .iter()
        .flat_map(|n| {
            n.latest.ports.iter().map(|p| PortRow {
                node: n.node.clone(),
                device: p.device.clone(),
                port: p.port,
                state: p.state.clone(),
                phys_state: p.phys_state.clone(),
                down: p.is_down(),
                rate_gbps: p.rate_gbps,
                errors_per_minute: p.errors_per_minute,
                pause_percent: p.congestion.pause_percent,
                discards_per_minute: p.congestion.discards_per_minute,
                ecn_marked_per_second: p.congestion.ecn_marked_per_second,
                cnp_sent_per_second: p.congestion.cnp_sent_per_second,
            })
        })
        .collect();
    let anomalies = anomaly_entries(&api.shared, Some(t), &Scope::All, 50);
    let events = lock(&api.shared.events).latest(Some(t), 20);
    let bands = |b: &[heatmap::Band]| b.iter().map(|b| (b.colour, b.label)).collect::<Vec<_>>();
    Some(render(
        "target.html",
        context! {
            title => format!("{}/{}", t.namespace, t.name),
            refresh => REFRESH_SECONDS,
            user => caller.name(),
            signed_in => matches!(caller, Caller::User(_)),
            view => ser(&view),
            nodes => ser(&nodes),
            heatmap_loss => Value::from_safe_string(loss),
            heatmap_rtt => Value::from_safe_string(rtt),
            loss_bands => ser(bands(&heatmap::LOSS_BANDS)),
            rtt_bands => ser(bands(&heatmap::RTT_BANDS)),
            ports => ser(&ports),
            anomalies => ser(&anomalies),
            events => ser(&events),
        },
    ))
}

/// One chart of the node page.
#[derive(Debug, Serialize)]
struct ChartBox {
    series: &'static str,
    title: &'static str,
    /// The y axis's unit, prefix included.
    unit: String,
    svg: Option<String>,
}

pub(super) async fn node(
    State(api): State<Api>,
    Viewer(caller): Viewer<Caller>,
    Path((ns, name, node)): Path<(String, String, String)>,
) -> Result<Response, Refused> {
    let t = readable_target(&api, &caller, ns, name).await?;
    Ok(match node_html(&api, &t, &node, &caller) {
        Some(rendered) => respond(StatusCode::OK, "node.html", rendered),
        None => message(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("analytics holds no data of node {node} in MonitorTarget {t}"),
            false,
        ),
    })
}

/// The page of node `node` of target `t`: a history chart per windowed series
/// ([`chart::UNITS`]), findings and peers (`None` when analytics holds no data of the node);
/// access is the caller's business.
pub fn node_html(
    api: &Api,
    t: &ObjectRef,
    node: &str,
    caller: &Caller,
) -> Option<Result<String, String>> {
    let now = Utc::now();
    let (view, histories) = {
        let fleet = lock(&api.shared.fleet);
        let view = fleet.nodes(t, now)?.into_iter().find(|n| n.node == node)?;
        let histories: Vec<_> = chart::UNITS
            .iter()
            .map(|u| (u, fleet.history(t, node, u.series).unwrap_or_default()))
            .collect();
        (view, histories)
    };
    let charts: Vec<ChartBox> = histories
        .iter()
        .map(|(u, samples)| ChartBox {
            series: u.series,
            title: u.title,
            unit: chart::axis_unit(u, samples).0,
            svg: chart::line_chart(u, samples, now),
        })
        .collect();
    Some(render(
        "node.html",
        context! {
            title => format!("{} in {}/{}", node, t.namespace, t.name),
            refresh => REFRESH_SECONDS,
            user => caller.name(),
            signed_in => matches!(caller, Caller::User(_)),
            target => ser(t),
            node => ser(&view),
            charts => ser(&charts),
        },
    ))
}
