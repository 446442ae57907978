//! The fleet view in a real browser: analytics' own `run` (the code behind
//! `fabricwatch-operator analytics --without-kubernetes --insecure-skip-auth`) on 127.0.0.1,
//! fed synthetic agent reports over HTTP, every page loaded by headless Debian `chromium`:
//! DOM checks, the injected lossy pair in its heatmap cell, no console messages, the pages
//! work with JavaScript disabled, and screenshots at 1280×800 and phone width written to
//! `<target dir>/ui-screenshots/`. Skipped (passing, with a message) when `chromium` is not
//! installed (`apt-get install chromium`).

#[path = "support/synthetic.rs"]
mod synthetic;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use chrono::Utc;
use clap::Parser;
use fabricwatch_proto::{report::REPORT_PATH, ObjectRef};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: fabricwatch_analytics::Args,
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(b))
                    .find(|p| p.is_file())
            })
        })
}

fn artefacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir
}

/// Runs headless chromium with `extra` flags on `url`; (stdout, stderr + exit status).
/// Output goes through files, not pipes.
fn browse(chromium: &Path, extra: &[&str], url: &str) -> (String, String) {
    let dir = tempfile::tempdir().expect("scratch dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let status = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .args(extra)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .status()
        .expect("run chromium");
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    (
        read(&out_path),
        format!("{}\nexit: {status}", read(&err_path)),
    )
}

/// The page's DOM after load, asserting the browser logged no console message.
fn dom(chromium: &Path, url: &str) -> String {
    let (out, err) = browse(chromium, &["--dump-dom"], url);
    let console: Vec<&str> = err.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages on {url}: {console:#?}"
    );
    let noise = |l: &&str| !l.contains("bus") && !l.contains("Bus");
    let err: Vec<&str> = err.lines().filter(noise).collect();
    assert!(
        out.contains("</html>"),
        "no DOM from {url} ({} bytes: {out}): {err:#?}",
        out.len()
    );
    out
}

/// A PNG of the page at `size` (`W,H`); asserts it was written and that the browser logged
/// no console message. (Headless chromium's screenshot and DOM dump themselves need scripts,
/// so "works without JavaScript" is checked as "has no script" on the DOM instead.)
fn screenshot(chromium: &Path, url: &str, file: &str, size: &str) {
    let path = artefacts().join(file);
    let _ = std::fs::remove_file(&path);
    let shot = format!("--screenshot={}", path.display());
    let window = format!("--window-size={size}");
    let (_, err) = browse(
        chromium,
        &[shot.as_str(), window.as_str(), "--hide-scrollbars"],
        url,
    );
    let console: Vec<&str> = err.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages on {url}: {console:#?}"
    );
    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    assert!(len > 1000, "screenshot {file} not written: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: chromium not installed (apt-get install chromium)");
        return;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let cli = Cli::try_parse_from([
        "analytics",
        "--without-kubernetes",
        "--insecure-skip-auth",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--evaluation-interval",
        "1s",
    ])
    .expect("flags");
    tokio::spawn(fabricwatch_analytics::run(cli.args));
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "analytics did not start");

    // Six nodes probing each other; n2 loses 30 of 100 probes to n5; n3's port is down.
    let mesh = synthetic::Mesh {
        target: ObjectRef {
            namespace: "fw".into(),
            name: "fabric".into(),
        },
        nodes: 6,
        peers: 5,
        lossy: Some((2, 5, 30)),
        down: Some(3),
    };
    let start = Utc::now() - chrono::Duration::seconds(60);
    for seq in 1..=6u64 {
        let at = start + chrono::Duration::seconds(10 * seq as i64);
        for i in 1..=mesh.nodes {
            let r = http
                .post(format!("{base}{REPORT_PATH}"))
                .json(&mesh.report(i, seq, at))
                .send()
                .await
                .expect("push");
            assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
        }
    }
    // A second, healthy target for the overview.
    let calm = synthetic::Mesh {
        target: ObjectRef {
            namespace: "lab".into(),
            name: "calm".into(),
        },
        nodes: 3,
        peers: 2,
        lossy: None,
        down: None,
    };
    for i in 1..=calm.nodes {
        http.post(format!("{base}{REPORT_PATH}"))
            .json(&calm.report(i, 1, Utc::now()))
            .send()
            .await
            .expect("push");
    }
    // Let an evaluation cycle localize suspects.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The served HTML, kept next to the screenshots.
    for (file, path) in [
        ("overview.html", "/ui/"),
        ("target.html", "/ui/targets/fw/fabric"),
        ("node.html", "/ui/targets/fw/fabric/nodes/n2"),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.expect("get");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let html = r.text().await.expect("body");
        std::fs::write(artefacts().join(file), html).expect("write");
    }
    let (b, c) = (base.clone(), chromium.clone());
    let pages = tokio::task::spawn_blocking(move || {
        let target = dom(&c, &format!("{b}/ui/targets/fw/fabric"));
        let overview = dom(&c, &format!("{b}/ui/"));
        let node = dom(&c, &format!("{b}/ui/targets/fw/fabric/nodes/n2"));
        let alerts = dom(&c, &format!("{b}/ui/alerts"));
        let analyses = dom(&c, &format!("{b}/ui/analyses"));
        for (file, path, size) in [
            ("overview-1280x800.png", "/ui/", "1280,800"),
            ("target-1280x800.png", "/ui/targets/fw/fabric", "1280,800"),
            (
                "node-1280x800.png",
                "/ui/targets/fw/fabric/nodes/n2",
                "1280,800",
            ),
            ("alerts-1280x800.png", "/ui/alerts", "1280,800"),
            ("overview-390x844.png", "/ui/", "390,844"),
            ("target-390x844.png", "/ui/targets/fw/fabric", "390,844"),
        ] {
            screenshot(&c, &format!("{b}{path}"), file, size);
        }
        (overview, target, node, alerts, analyses)
    })
    .await
    .expect("browser");
    let (overview, target, node, alerts, analyses) = pages;
    // Nothing needs JavaScript: no page has a script or an inline event handler.
    for page in [&overview, &target, &node, &alerts, &analyses] {
        assert!(!page.contains("<script"), "a script");
        assert!(
            !page.contains(" onclick=") && !page.contains(" onload="),
            "a handler"
        );
    }

    // Overview: both targets, the degraded one with its port down and its loss.
    assert!(
        overview.contains(r#"data-target="fw/fabric""#),
        "{overview}"
    );
    assert!(overview.contains(r#"data-target="lab/calm""#));
    let row = overview
        .split(r#"data-target="fw/fabric""#)
        .nth(1)
        .and_then(|s| s.split("</tr>").next())
        .expect("fw/fabric row");
    assert!(row.contains(r#"data-field="ports-down">1<"#), "{row}");
    assert!(row.contains("30.00 %"), "worst loss: {row}");
    assert!(row.contains("/ 6 / 6"), "known / reporting: {row}");
    assert!(
        row.contains("health critical") || row.contains("health warning"),
        "{row}"
    );

    // Target: the lossy pair's cell is in row n2, column n5, in the worst band; the reverse
    // pair and the others are clean.
    let cell = |src: &str, dst: &str| -> Option<String> {
        let key = format!(r#"data-src="{src}" data-dst="{dst}""#);
        let at = target.find(&key)?;
        let begin = target[..at].rfind("<rect")?;
        let end = at + target[at..].find('>')?;
        Some(target[begin..=end].to_string())
    };
    let lossy = cell("n2", "n5").expect("n2→n5 cell");
    assert!(lossy.contains(r#"data-band="3""#), "{lossy}");
    assert!(lossy.contains(r#"data-value="30.000""#), "{lossy}");
    // Six nodes: 22-unit cells after a 40-unit label margin; row 2 (index 1), column 5 (4).
    assert!(lossy.contains(r#"x="128" y="62""#), "{lossy}");
    let clean = cell("n5", "n2").expect("n5→n2 cell");
    assert!(clean.contains(r#"data-band="0""#), "{clean}");
    assert_eq!(
        target.matches(r#"class="cell""#).count(),
        2 * 6 * 5,
        "30 pairs × 2 maps"
    );
    assert!(target.contains(r#"id="heatmap-loss""#) && target.contains(r#"id="heatmap-rtt""#));
    assert!(target.contains("≥ 5 %"), "legend");
    assert!(target.contains(r#"id="port-table""#));
    assert!(
        target.contains(r#"<tr class="down"><th scope="row">n3</th>"#),
        "down port row"
    );
    assert!(target.contains(r#"id="suspect-table""#) || target.contains("No suspect."));
    assert!(target.contains(r#"id="node-table""#));

    // Node: a chart per windowed series, axes with units, the lossy peer.
    let windowed = fabricwatch_analytics::fleet::SERIES
        .map(|s| s.0)
        .into_iter()
        .chain(fabricwatch_analytics::fleet::HISTORY_SERIES);
    for s in windowed {
        assert!(node.contains(&format!(r#"id="chart-{s}""#)), "chart {s}");
    }
    assert!(node.contains("minutes before now"));
    assert!(node.contains(">\nms\n</text>"), "RTT axis in ms");
    assert!(node.contains(">\n%\n</text>"), "loss/CPU axis in %");
    // 100 MB/s received, 50 MB/s sent: both byte-rate axes in MB/s.
    assert_eq!(
        node.matches(">\nMB/s\n</text>").count(),
        2,
        "RDMA rate axes"
    );
    // Loss, RTT p50 and p99, jitter, score, CPU, memory and the two RDMA byte rates have
    // samples; RDMA error and RoCE rates need error and congestion counters.
    assert!(node.matches("<polyline").count() >= 9, "lines drawn");
    // Six reports of 100 probes, 30 lost in each; RTT p50 beside p99.
    assert!(
        node.contains(
            r#"<th scope="row">n5</th><td class="num">30.00 %</td><td class="num">180 / 600</td><td class="num">0.200 ms</td><td class="num">4.000 ms</td>"#
        ),
        "n2→n5 probes: {node}"
    );

    assert!(alerts.contains("No AlertRule is evaluated."), "{alerts}");
    assert!(analyses.contains("AI analyses run only with a Kubernetes API"));
    eprintln!("screenshots in {}", artefacts().display());
}
