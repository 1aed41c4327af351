//! The summary: a Markdown table, JSON, and the SVG chart of scenario 5.

use crate::network::Row;

pub(crate) fn print_table(rows: &[Row]) {
    println!(
        "\n| scenario | requests | accepted | rejected (by reason) | validations/s | p50 | p99 | max lead over clock |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|");
    for r in rows {
        let reasons = if r.rejected.is_empty() {
            "0".to_owned()
        } else {
            r.rejected.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        };
        let lead = r.max_lead_ms.map_or_else(|| "n/a".to_owned(), |l| format!("{l} ms"));
        println!(
            "| {} | {} | {} | {} | {} | {} ns | {} ns | {} |",
            r.name,
            r.requests,
            r.accepted,
            reasons,
            rate(r.validations_per_s),
            r.p50_ns,
            r.p99_ns,
            lead
        );
    }
}

pub(crate) fn print_json(rows: &[Row]) {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "scenario": r.name, "requests": r.requests, "accepted": r.accepted, "rejected": r.rejected,
                "replays_accepted": r.replays_accepted, "crate_duplicates": r.crate_duplicates,
                "naive_duplicates": r.naive_duplicates, "validations_per_s": r.validations_per_s,
                "p50_ns": r.p50_ns, "p99_ns": r.p99_ns, "max_lead_ms": r.max_lead_ms,
            })
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&rows).expect("JSON"));
}

/// A line chart of lead over the clock against time, one polyline per strategy.
pub(crate) fn svg_chart(series: &[(&str, Vec<(f64, f64)>)]) -> String {
    let (w, h, pad) = (720.0, 360.0, 60.0);
    let max_x = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.0)).fold(1e-9, f64::max);
    let max_y = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)).fold(1.0, f64::max);
    let min_y = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)).fold(0.0, f64::min);
    let x = |v: f64| pad + v / max_x * (w - 2.0 * pad);
    let y = |v: f64| h - pad - (v - min_y) / (max_y - min_y) * (h - 2.0 * pad);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">Nonce lead over the clock during a burst (scenario 5)</text>\n\
         <line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time since the burst began (ms), 0 to {max_x:.1}</text>\n\
         <text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">lead over the clock (ms)</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max_y:.0}</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{min_y:.0}</text>\n",
        w / 2.0,
        y(min_y.max(0.0)),
        w - pad,
        y(min_y.max(0.0)),
        h - pad,
        w / 2.0,
        h - 20.0,
        h / 2.0,
        h / 2.0,
        pad - 6.0,
        y(max_y) + 4.0,
        pad - 6.0,
        y(min_y) + 4.0,
    );
    for (i, (label, points)) in series.iter().enumerate() {
        let color = ["#d62728", "#1f77b4"][i % 2];
        let path: Vec<String> = points.iter().map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py))).collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n<text x=\"{}\" y=\"{}\" fill=\"{color}\">{label}</text>\n",
            path.join(" "),
            w - pad - 80.0,
            pad + 18.0 * (i as f64 + 1.0),
        ));
    }
    out.push_str("</svg>\n");
    out
}

/// Validations per second, in M or k.
fn rate(per_s: f64) -> String {
    if per_s >= 100_000.0 {
        format!("{:.1} M", per_s / 1e6)
    } else {
        format!("{:.1} k", per_s / 1e3)
    }
}
