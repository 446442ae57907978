//! The `fabricwatch.io/v1alpha1` API: MonitorTarget, AlertRule, AIAnalysis.
