//! The state machine and the notification requests, pass by pass.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use fabricwatch_crds::alert_rule::{Metric, Operator, Scope};
use fabricwatch_proto::{
    notify::{AlertStatus, SourceKind},
    ObjectRef, Severity,
};

use super::*;
use crate::derive::tests::t;

fn spec() -> RuleSpec {
    RuleSpec {
        rule: ObjectRef {
            namespace: "ns".into(),
            name: "high-loss".into(),
        },
        target: ObjectRef {
            namespace: "ns".into(),
            name: "fabric".into(),
        },
        metric: Metric::PingLossPercent,
        op: Operator::Gt,
        threshold: 5.0,
        for_: Duration::seconds(30),
        scope: Scope::PerNode,
        severity: Severity::Critical,
        resolve_for: Duration::zero(),
        flap: None,
        cooldown: Duration::zero(),
        repeat_interval: None,
        maintenance: vec![],
        silence: None,
        acknowledge: None,
        annotations: BTreeMap::from([("summary".into(), "loss {{ value }}% on {{node}}".into())]),
        analysis_ref: None,
    }
}

fn k(node: &str) -> SeriesKey {
    SeriesKey::node(node)
}

fn vals(pairs: &[(&str, f64)]) -> BTreeMap<SeriesKey, f64> {
    pairs
        .iter()
        .map(|(n, v)| {
            (
                if n.is_empty() {
                    SeriesKey::default()
                } else {
                    k(n)
                },
                *v,
            )
        })
        .collect()
}

fn fire_now() -> RuleSpec {
    RuleSpec {
        for_: Duration::zero(),
        ..spec()
    }
}

#[test]
fn pending_then_firing_after_for_then_resolved() {
    let mut e = RuleEngine::new(spec());
    let r = e.evaluate(&vals(&[("a", 10.0), ("b", 1.0)]), t(0));
    assert_eq!(r.state, RuleState::Pending);
    assert_eq!(r.active_since, Some(t(0)));
    assert!(r.events.is_empty());
    assert_eq!(
        e.evaluate(&vals(&[("a", 10.0), ("b", 1.0)]), t(29)).state,
        RuleState::Pending
    );
    let r = e.evaluate(&vals(&[("a", 11.0), ("b", 1.0)]), t(30));
    assert_eq!(r.state, RuleState::Firing);
    assert_eq!(
        r.firing,
        vec![FiringSeries {
            key: k("a"),
            since: t(30),
            value: Some(11.0)
        }]
    );
    assert_eq!(
        r.events,
        vec![AlertEvent::Firing {
            key: k("a"),
            value: Some(11.0),
            starts_at: t(30),
            index: 0
        }]
    );
    assert_eq!(r.last_value, Some(11.0));
    assert!(
        e.evaluate(&vals(&[("a", 12.0)]), t(40)).events.is_empty(),
        "no repeat without repeatInterval"
    );
    let r = e.evaluate(&vals(&[("a", 0.0)]), t(50));
    assert_eq!(r.state, RuleState::Inactive);
    assert_eq!(
        r.events,
        vec![AlertEvent::Resolved {
            key: k("a"),
            value: Some(0.0),
            starts_at: t(30),
            ends_at: t(50)
        }]
    );
}

#[test]
fn pending_interrupted_starts_over() {
    let mut e = RuleEngine::new(spec());
    e.evaluate(&vals(&[("a", 10.0)]), t(0));
    e.evaluate(&vals(&[("a", 1.0)]), t(20));
    e.evaluate(&vals(&[("a", 10.0)]), t(25));
    assert_eq!(
        e.evaluate(&vals(&[("a", 10.0)]), t(50)).state,
        RuleState::Pending,
        "for counts from 25 s"
    );
    assert_eq!(
        e.evaluate(&vals(&[("a", 10.0)]), t(55)).state,
        RuleState::Firing
    );
}

#[test]
fn threshold_edge_is_exclusive_for_gt() {
    let mut e = RuleEngine::new(fire_now());
    assert_eq!(
        e.evaluate(&vals(&[("a", 5.0)]), t(0)).state,
        RuleState::Inactive
    );
    assert_eq!(
        e.evaluate(&vals(&[("a", 5.000001)]), t(1)).state,
        RuleState::Firing
    );
}

#[test]
fn resolve_for_keeps_a_dipping_series_firing() {
    let mut e = RuleEngine::new(RuleSpec {
        resolve_for: Duration::seconds(60),
        ..fire_now()
    });
    e.evaluate(&vals(&[("a", 9.0)]), t(0));
    assert_eq!(
        e.evaluate(&vals(&[("a", 1.0)]), t(10)).state,
        RuleState::Firing
    );
    assert_eq!(
        e.evaluate(&vals(&[("a", 9.0)]), t(20)).state,
        RuleState::Firing,
        "clear timer resets"
    );
    assert_eq!(
        e.evaluate(&vals(&[("a", 1.0)]), t(30)).state,
        RuleState::Firing
    );
    assert_eq!(
        e.evaluate(&vals(&[("a", 1.0)]), t(89)).state,
        RuleState::Firing
    );
    let r = e.evaluate(&vals(&[("a", 1.0)]), t(90));
    assert_eq!(r.state, RuleState::Inactive);
    assert!(
        matches!(r.events.as_slice(), [AlertEvent::Resolved { starts_at, .. }] if *starts_at == t(0))
    );
}

#[test]
fn flapping_series_is_suppressed_until_it_settles() {
    let mut e = RuleEngine::new(RuleSpec {
        flap: Some((4, Duration::seconds(600))),
        ..fire_now()
    });
    let mut sent = 0;
    for (i, v) in [9.0, 0.0, 9.0, 0.0, 9.0, 0.0].iter().enumerate() {
        sent += e
            .evaluate(&vals(&[("a", *v)]), t(10 * i as i64))
            .events
            .len();
    }
    // Fire, resolve, fire, resolve are sent (4 events); the 4th transition marks flapping,
    // so the third Firing at 40 s is held back and its resolve is not sent either.
    assert_eq!(sent, 4);
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(60));
    assert_eq!(r.state, RuleState::Suppressed);
    assert!(r.events.is_empty());
    // Ten minutes later the old transitions left the window: it notifies again.
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(700));
    assert_eq!(r.state, RuleState::Firing);
    assert_eq!(r.events.len(), 1);
}

#[test]
fn cooldown_spaces_firing_notifications() {
    let mut e = RuleEngine::new(RuleSpec {
        cooldown: Duration::seconds(300),
        ..fire_now()
    });
    assert_eq!(e.evaluate(&vals(&[("a", 9.0)]), t(0)).events.len(), 1);
    assert_eq!(
        e.evaluate(&vals(&[("a", 0.0)]), t(10)).events.len(),
        1,
        "resolve is sent"
    );
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(20));
    assert_eq!(r.state, RuleState::Firing);
    assert!(
        r.events.is_empty(),
        "within cooldown of the last firing notification"
    );
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(300));
    assert!(
        matches!(r.events.as_slice(), [AlertEvent::Firing { starts_at, .. }] if *starts_at == t(20))
    );
}

#[test]
fn repeat_interval_sends_numbered_repeats() {
    let mut e = RuleEngine::new(RuleSpec {
        repeat_interval: Some(Duration::seconds(60)),
        ..fire_now()
    });
    assert_eq!(e.evaluate(&vals(&[("a", 9.0)]), t(0)).events.len(), 1);
    assert!(e.evaluate(&vals(&[("a", 9.0)]), t(59)).events.is_empty());
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(61));
    assert!(matches!(
        r.events.as_slice(),
        [AlertEvent::Firing { index: 1, .. }]
    ));
    let ids: Vec<String> = [0, 1]
        .iter()
        .map(|i| notification_id("fp", AlertStatus::Firing, t(0), *i))
        .collect();
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn maintenance_window_suppresses_then_releases() {
    // Every day at 00:00 UTC for one hour.
    let mut e = RuleEngine::new(RuleSpec {
        maintenance: vec![MaintenanceWindow::parse("0 0 * * *", 3600.0).expect("cron")],
        ..fire_now()
    });
    let midnight = DateTime::parse_from_rfc3339("2023-11-15T00:10:00Z")
        .expect("t")
        .with_timezone(&Utc);
    let r = e.evaluate(&vals(&[("a", 9.0)]), midnight);
    assert_eq!(r.state, RuleState::Suppressed);
    assert!(r.events.is_empty());
    let r = e.evaluate(
        &vals(&[("a", 9.0)]),
        midnight + Duration::minutes(50) - Duration::seconds(1),
    );
    assert_eq!(r.state, RuleState::Suppressed, "window ends at 01:00");
    let r = e.evaluate(&vals(&[("a", 9.0)]), midnight + Duration::minutes(50));
    assert_eq!(r.state, RuleState::Firing);
    assert!(
        matches!(r.events.as_slice(), [AlertEvent::Firing { starts_at, .. }] if *starts_at == midnight)
    );
    assert!(MaintenanceWindow::parse("61 * * * *", 60.0).is_err());
    assert!(MaintenanceWindow::parse("0 0 * * *", 0.0).is_err());
    // A window ending past the last representable date (`2500000000h` passes the CRD's
    // duration pattern) is active, not a panic.
    let endless = MaintenanceWindow::parse("0 0 * * *", 9.0e15).expect("cron");
    assert!(endless.active(midnight));
}

#[test]
fn silence_holds_back_firing_until_it_ends() {
    let mut e = RuleEngine::new(RuleSpec {
        silence: Some(SilenceWindow {
            until: t(100),
            node: None,
            by: Some("alice".into()),
        }),
        ..fire_now()
    });
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(0));
    assert_eq!(r.state, RuleState::Silenced);
    assert!(r.events.is_empty(), "nothing leaves during the silence");
    assert_eq!(r.firing.len(), 1, "still evaluated");
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(99));
    assert!(r.events.is_empty());
    // The silence is over and the alert still fires: it is notified, with its real start.
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(100));
    assert_eq!(r.state, RuleState::Firing);
    assert!(
        matches!(r.events.as_slice(), [AlertEvent::Firing { starts_at, .. }] if *starts_at == t(0))
    );
}

#[test]
fn silence_of_one_node_leaves_the_others_notified() {
    let mut e = RuleEngine::new(RuleSpec {
        silence: Some(SilenceWindow {
            until: t(100),
            node: Some("a".into()),
            by: None,
        }),
        ..fire_now()
    });
    let r = e.evaluate(&vals(&[("a", 9.0), ("b", 9.0)]), t(0));
    assert_eq!(r.state, RuleState::Firing, "b fires unsilenced");
    let notified: Vec<_> = r
        .events
        .iter()
        .map(|ev| match ev {
            AlertEvent::Firing { key, .. } | AlertEvent::Resolved { key, .. } => key.node.clone(),
        })
        .collect();
    assert_eq!(notified, vec![Some("b".to_string())]);
    // Only the silenced node fires: the rule shows Silenced.
    let r = e.evaluate(&vals(&[("a", 9.0), ("b", 1.0)]), t(10));
    assert_eq!(r.state, RuleState::Silenced);
    // b was notified, so its resolve is too; a (never notified) resolves silently.
    assert!(
        matches!(r.events.as_slice(), [AlertEvent::Resolved { key, .. }] if key.node.as_deref() == Some("b"))
    );
    let r = e.evaluate(&vals(&[("a", 1.0), ("b", 1.0)]), t(20));
    assert!(r.events.is_empty(), "{:?}", r.events);
    assert_eq!(r.state, RuleState::Inactive);
}

#[test]
fn restart_resends_same_id_and_resolves_once() {
    let mut before = RuleEngine::new(fire_now());
    let r = before.evaluate(&vals(&[("a", 9.0)]), t(0));
    let first = before.request(&r.events[0]);
    // Restart: a new engine restored from status.
    let mut after = RuleEngine::new(fire_now());
    after.restore(&r.firing);
    let r2 = after.evaluate(&vals(&[("a", 9.0)]), t(10));
    assert_eq!(r2.state, RuleState::Firing);
    assert_eq!(r2.firing[0].since, t(0), "the firing alert is not lost");
    assert_eq!(
        after.request(&r2.events[0]).id,
        first.id,
        "re-send is recognised by id"
    );
    assert!(after
        .evaluate(&vals(&[("a", 9.0)]), t(20))
        .events
        .is_empty());
    let r3 = after.evaluate(&vals(&[("a", 0.0)]), t(30));
    let resolved = after.request(&r3.events[0]);
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.fingerprint, first.fingerprint);
    assert_ne!(resolved.id, first.id);
    assert_eq!(resolved.ends_at, Some(t(30)));
}

#[test]
fn request_renders_annotations_and_labels() {
    let mut e = RuleEngine::new(fire_now());
    let key = SeriesKey {
        node: Some("node-7".into()),
        peer: Some("node-9".into()),
        ..Default::default()
    };
    let r = e.evaluate(&BTreeMap::from([(key, 12.5)]), t(0));
    let req = e.request(&r.events[0]);
    assert_eq!(
        req.annotations["summary"],
        "loss 12.5000% on node-7 → node-9"
    );
    assert_eq!(req.labels["node"], "node-7");
    assert_eq!(req.labels["peer"], "node-9");
    assert_eq!(req.labels["alertname"], "high-loss");
    assert!(!req.labels.contains_key("port"));
    assert_eq!(req.source_kind, SourceKind::AlertRule);
    assert_eq!(req.id.len(), 32);
    assert_eq!(req.fingerprint.len(), 16);
}

#[test]
fn target_scope_and_missing_data() {
    let mut e = RuleEngine::new(RuleSpec {
        scope: Scope::Target,
        ..fire_now()
    });
    assert_eq!(
        e.evaluate(&vals(&[("", 9.0)]), t(0)).state,
        RuleState::Firing
    );
    let r = e.evaluate(&BTreeMap::new(), t(10));
    assert_eq!(r.state, RuleState::Inactive, "no data resolves");
    assert!(matches!(r.events.as_slice(), [AlertEvent::Resolved { .. }]));
}

#[test]
fn render_keeps_unknown_placeholders() {
    let v = BTreeMap::from([("a", "1".to_string())]);
    assert_eq!(render("x{{a}}y{{ b }}z{{", &v), "x1y{{ b }}z{{");
}

fn acknowledged(at: i64, until: Option<i64>, notify_resolved: bool) -> Option<Acknowledgement> {
    Some(Acknowledgement {
        at: t(at),
        until: until.map(t),
        by: Some("alice".into()),
        notify_resolved,
    })
}

fn firing_events(r: &Evaluation) -> Vec<DateTime<Utc>> {
    r.events
        .iter()
        .filter_map(|ev| match ev {
            AlertEvent::Firing { starts_at, .. } => Some(*starts_at),
            AlertEvent::Resolved { .. } => None,
        })
        .collect()
}

#[test]
fn acknowledgement_stops_repeats_until_resolved_and_a_new_episode_notifies() {
    let repeating = RuleSpec {
        repeat_interval: Some(Duration::seconds(60)),
        ..fire_now()
    };
    let mut e = RuleEngine::new(repeating.clone());
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(0));
    assert_eq!(firing_events(&r), vec![t(0)], "first notification");
    e.update_spec(RuleSpec {
        acknowledge: acknowledged(10, None, true),
        ..repeating
    });
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(20));
    assert_eq!(r.state, RuleState::Acknowledged);
    // Without the acknowledgement a repeat would leave at t(60) and t(120).
    for at in [60, 120] {
        let r = e.evaluate(&vals(&[("a", 9.0)]), t(at));
        assert!(r.events.is_empty(), "no repeat at {at}: {:?}", r.events);
        assert_eq!(r.state, RuleState::Acknowledged);
    }
    // The resolve is notified (notifyResolved defaults to true).
    let r = e.evaluate(&vals(&[("a", 1.0)]), t(130));
    assert!(matches!(r.events.as_slice(), [AlertEvent::Resolved { .. }]));
    assert_eq!(r.state, RuleState::Inactive);
    // A new episode began after the acknowledgement: notified, and shown Firing.
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(140));
    assert_eq!(firing_events(&r), vec![t(140)]);
    assert_eq!(r.state, RuleState::Firing);
}

#[test]
fn an_expired_acknowledgement_notifies_again() {
    let mut e = RuleEngine::new(RuleSpec {
        acknowledge: acknowledged(5, Some(50), true),
        ..fire_now()
    });
    // Fired at t(0), before the acknowledgement at t(5): covered from the start.
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(0));
    assert!(r.events.is_empty());
    assert_eq!(r.state, RuleState::Acknowledged);
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(49));
    assert!(r.events.is_empty());
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(50));
    assert_eq!(
        firing_events(&r),
        vec![t(0)],
        "expired: notified, with its real start"
    );
    assert_eq!(r.state, RuleState::Firing);
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(60));
    assert!(r.events.is_empty(), "once");
}

#[test]
fn lifting_an_acknowledgement_of_a_notified_alert_notifies_it_again() {
    let mut e = RuleEngine::new(fire_now());
    assert_eq!(
        firing_events(&e.evaluate(&vals(&[("a", 9.0)]), t(0))),
        vec![t(0)]
    );
    e.update_spec(RuleSpec {
        acknowledge: acknowledged(1, None, true),
        ..fire_now()
    });
    assert!(e.evaluate(&vals(&[("a", 9.0)]), t(2)).events.is_empty());
    e.update_spec(fire_now());
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(3));
    assert_eq!(firing_events(&r), vec![t(0)]);
}

#[test]
fn acknowledged_resolves_can_be_kept_quiet() {
    let mut e = RuleEngine::new(fire_now());
    e.evaluate(&vals(&[("a", 9.0), ("b", 9.0)]), t(0));
    e.update_spec(RuleSpec {
        acknowledge: acknowledged(1, None, false),
        ..fire_now()
    });
    let r = e.evaluate(&vals(&[("a", 1.0), ("b", 9.0)]), t(2));
    assert!(
        r.events.is_empty(),
        "a's resolve is not notified: {:?}",
        r.events
    );
    assert_eq!(r.state, RuleState::Acknowledged, "b is acknowledged too");
}

#[test]
fn an_acknowledgement_survives_a_restart() {
    let spec = RuleSpec {
        acknowledge: acknowledged(5, None, true),
        ..fire_now()
    };
    let mut e = RuleEngine::new(spec);
    e.restore(&[FiringSeries {
        key: k("a"),
        since: t(0),
        value: Some(9.0),
    }]);
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(30));
    assert!(
        r.events.is_empty(),
        "nothing re-sent after the restart: {:?}",
        r.events
    );
    assert_eq!(r.state, RuleState::Acknowledged);
}

#[test]
fn who_handled_the_rule_is_reported_while_it_is_in_effect() {
    let handled = |by: &str, until: Option<i64>| {
        Some(Handling {
            by: Some(by.into()),
            until: until.map(t),
        })
    };
    let mut e = RuleEngine::new(RuleSpec {
        acknowledge: acknowledged(5, Some(50), true),
        silence: Some(SilenceWindow {
            until: t(30),
            node: Some("b".into()),
            by: Some("bob".into()),
        }),
        ..fire_now()
    });
    let r = e.evaluate(&vals(&[("a", 1.0)]), t(0));
    assert_eq!(r.acknowledged, None, "nothing fires: nothing acknowledged");
    assert_eq!(
        r.silenced,
        handled("bob", Some(30)),
        "a silence is in effect"
    );
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(1));
    assert_eq!(r.state, RuleState::Acknowledged);
    assert_eq!(r.acknowledged, handled("alice", Some(50)));
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(30));
    assert_eq!(r.silenced, None, "the silence ended at t(30)");
    assert_eq!(r.acknowledged, handled("alice", Some(50)));
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(50));
    assert_eq!(
        (r.state, r.acknowledged),
        (RuleState::Firing, None),
        "expired"
    );

    // An episode that began after `at` is not covered, so the acknowledgement is not shown.
    let mut e = RuleEngine::new(RuleSpec {
        acknowledge: acknowledged(5, None, true),
        ..fire_now()
    });
    let r = e.evaluate(&vals(&[("a", 9.0)]), t(6));
    assert_eq!((r.state, r.acknowledged), (RuleState::Firing, None));
}
