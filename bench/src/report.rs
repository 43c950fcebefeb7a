//! The report of a run: the table of every scenario's figures, in Markdown, and the targets
//! checked against them, one line each.

use crate::suite::Row;

fn fmt(v: Option<f64>, decimals: usize) -> String {
    v.filter(|v| v.is_finite())
        .map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// The table, in Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| backend | scenario | rate | CPU ms/event (server+db) | p50 ms | p95 ms | p99 ms | p99 from send ms | peak RSS MiB | ratio | note |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let split = r
            .cpu_split
            .map_or(String::new(), |(s, d)| format!(" ({s:.1}+{d:.1} s)"));
        out.push_str(&format!(
            "| {} | {} | {} {} | {}{} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.backend,
            r.scenario,
            fmt(r.rate, 0),
            if r.rate.is_some() { r.unit.as_str() } else { "" },
            fmt(r.cpu_ms, 3),
            split,
            fmt(r.p50_ms, 2),
            fmt(r.p95_ms, 2),
            fmt(r.p99_ms, 2),
            fmt(r.p99_from_send_ms, 2),
            fmt(r.rss_mib, 0),
            fmt(r.ratio, 2),
            r.note
        ));
    }
    out
}

/// The targets against the rows, one line each.
pub fn targets(rows: &[Row]) -> String {
    let find = |backend: &str, prefix: &str| {
        rows.iter()
            .find(|r| r.backend == backend && r.scenario.starts_with(prefix))
    };
    let mut out = String::from("Targets:\n");
    // `decimals` and `unit` say how the value is shown.
    let mut check = |name: &str, value: Option<f64>, ok: &dyn Fn(f64) -> bool, decimals: usize, unit: &str| {
        let shown = format!("{}{unit}", fmt(value, decimals));
        let verdict = match value {
            Some(v) if v.is_finite() => {
                if ok(v) {
                    "met"
                } else {
                    "MISSED"
                }
            }
            _ => "not measured",
        };
        out.push_str(&format!("- {name}: {shown} -> {verdict}\n"));
    };
    let pg_max = find("PostgreSQL", "(b) end to end, max");
    check(
        "PostgreSQL end to end >= 2400 delivered/s",
        pg_max.and_then(|r| r.rate),
        &|v| v >= 2400.0,
        0,
        "",
    );
    check(
        "PostgreSQL end to end >= 70 % of the publishing ceiling",
        pg_max.and_then(|r| r.ratio),
        &|v| v >= 0.7,
        2,
        "",
    );
    check(
        "p99 <= 15 ms at 16 clients, full load (PostgreSQL)",
        pg_max.and_then(|r| r.p99_ms),
        &|v| v <= 15.0,
        2,
        "",
    );
    let sq_max = find("SQLite", "(b) end to end, max");
    check(
        "p99 <= 15 ms at 16 clients, full load (SQLite)",
        sq_max.and_then(|r| r.p99_ms),
        &|v| v <= 15.0,
        2,
        "",
    );
    let cpu_max = rows
        .iter()
        .filter(|r| r.unit == "delivered/s")
        .filter_map(|r| r.cpu_ms)
        .fold(f64::NAN, f64::max);
    check(
        "CPU per delivered event <= 0.8 ms (worst delivery scenario)",
        Some(cpu_max),
        &|v| v <= 0.8,
        3,
        "",
    );
    let pg500 = find("PostgreSQL", "(b) end to end, 500/s");
    check(
        "PostgreSQL at 500/s p50 <= 3 ms",
        pg500.and_then(|r| r.p50_ms),
        &|v| v <= 3.0,
        2,
        "",
    );
    check(
        "PostgreSQL at 500/s p99 <= 15 ms",
        pg500.and_then(|r| r.p99_ms),
        &|v| v <= 15.0,
        2,
        "",
    );
    let sq500 = find("SQLite", "(b) end to end, 500/s");
    check(
        "SQLite at 500/s p50 <= 2 ms",
        sq500.and_then(|r| r.p50_ms),
        &|v| v <= 2.0,
        2,
        "",
    );
    let pg_drain = find("PostgreSQL", "(c) drain");
    check(
        "PostgreSQL drain >= 8000/s",
        pg_drain.and_then(|r| r.rate),
        &|v| v >= 8000.0,
        0,
        "",
    );
    let sq_drain = find("SQLite", "(c) drain");
    check(
        "SQLite drain >= 10000/s",
        sq_drain.and_then(|r| r.rate),
        &|v| v >= 10000.0,
        0,
        "",
    );
    for (name, row) in [("PostgreSQL", pg_drain), ("SQLite", sq_drain)] {
        check(
            &format!("{name} drain >= 60 % of the raw HTTP ceiling"),
            row.and_then(|r| r.ratio),
            &|v| v >= 0.6,
            2,
            "",
        );
        check(
            &format!("{name} server RSS <= 150 MB while draining"),
            row.and_then(|r| r.rss_mib),
            &|v| v * 1.048_576 <= 150.0,
            0,
            " MiB",
        );
    }
    for row in rows.iter().filter(|r| r.scenario.starts_with("(e)")) {
        check(
            &format!("{} {}: <= 1.5x a fresh table", row.backend, row.scenario),
            row.ratio,
            &|v| v <= 1.5,
            2,
            "",
        );
    }
    for backend in ["PostgreSQL", "SQLite"] {
        let big = rows
            .iter()
            .filter(|r| r.backend == backend && r.scenario.starts_with("(d)"))
            .filter_map(|r| r.ratio)
            .next_back();
        check(
            &format!("{backend} claim cost at the largest size <= 1.5x the smallest"),
            big,
            &|v| v <= 1.5,
            2,
            "",
        );
    }
    out
}
