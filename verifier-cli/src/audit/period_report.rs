//! `tongban-verify audit report`: the monthly, quarterly or annual report of region logs (月报、
//! 季报、年报) from the same replay as `audit replay`: per region and for the federation, the
//! period's figures beside the previous period's (环比) and the same period a year before (同比),
//! and for every region the log range and the signed checkpoint its period ends at, so a reader
//! can check each figure against the log. JSON for machines, CSV for spreadsheets, HTML (charts
//! drawn as SVG, no script, nothing fetched) for people.

use std::fmt::Write as _;

use serde_json::{Value, json};
use tongban_core::log::audit::AuditReport;
use tongban_core::log::ledger::{Ledger, Month, Period, Tally};

/// One region's part of the report.
pub struct RegionReport<'a> {
    pub source: String,
    pub report: &'a AuditReport,
}

/// The three columns of every figure.
struct Columns {
    period: Tally,
    previous: Tally,
    year_before: Tally,
}

fn columns(ledger: &Ledger, period: Period) -> Columns {
    Columns {
        period: ledger.period(period),
        previous: ledger.period(period.previous()),
        year_before: ledger.period(period.year_before()),
    }
}

/// The smallest verified checkpoint that covers entry `index`: where a reader checks the
/// period's last entry.
fn covering(report: &AuditReport, index: Option<u64>) -> Option<&(u64, String)> {
    let index = index?;
    report
        .verified_checkpoints
        .iter()
        .filter(|(size, _)| *size > index)
        .min_by_key(|(size, _)| *size)
}

fn tally_json(t: &Tally) -> Value {
    json!({
        "issued": t.issued, "issued_by_type": t.issued_by_type, "issued_by_agency": t.issued_by_agency,
        "renewed": t.renewed, "changed": t.changed, "transferred_in": t.transferred_in,
        "promise_based": t.promise_based, "promises_lapsed": t.promises_lapsed,
        "promises_fulfilled": t.promises_fulfilled, "status_changes": t.status_changes,
        "verifications": t.verifications, "verifications_cross_region": t.verifications_cross_region,
        "proofs_received": t.proofs_received,
        "copies_given": t.copies_given, "copies_given_cross_region": t.copies_given_cross_region,
        "copies_received": t.copies_received, "copies_received_cross_region": t.copies_received_cross_region,
        "presentations_made": t.presentations_made, "presentations_resolved": t.presentations_resolved,
        "presentations_resolved_cross_region": t.presentations_resolved_cross_region,
        "refusals": t.refusals, "cross_region_share": t.cross_region_share(),
        "entries": t.entries, "first_index": t.first_index, "last_index": t.last_index,
    })
}

fn columns_json(c: &Columns) -> Value {
    json!({
        "period": tally_json(&c.period),
        "previous": tally_json(&c.previous),
        "year_before": tally_json(&c.year_before),
    })
}

/// The federation: every region's tallies added, month by month.
fn federation(regions: &[RegionReport<'_>]) -> Ledger {
    let mut all = Ledger::default();
    for r in regions {
        all.merge(&r.report.ledger);
    }
    all
}

pub fn to_json(period: Period, regions: &[RegionReport<'_>]) -> Value {
    let logs: Vec<Value> = regions
        .iter()
        .map(|r| {
            let c = columns(&r.report.ledger, period);
            let checkpoint = covering(r.report, c.period.last_index);
            json!({
                "region": r.report.region.as_ref().map(|c| c.as_str().to_owned()),
                "source": r.source,
                "figures": columns_json(&c),
                "log": {
                    "entries": c.period.entries,
                    "first_index": c.period.first_index,
                    "last_index": c.period.last_index,
                    "checkpoint": checkpoint.map(|(size, name)| json!({"size": size, "name": name})),
                },
            })
        })
        .collect();
    let all = federation(regions);
    json!({
        "period": period.to_string(),
        "previous": period.previous().to_string(),
        "year_before": period.year_before().to_string(),
        "time_zone": "UTC+08:00",
        "regions": logs,
        "federation": columns_json(&columns(&all, period)),
        "months": trend(&all, period).iter().map(|(m, t)| json!({
            "month": m.to_string(), "issued": t.issued, "verifications": t.verifications,
            "copies_given": t.copies_given, "presentations_resolved": t.presentations_resolved,
        })).collect::<Vec<_>>(),
    })
}

/// The twelve months up to the period's last: what the charts draw.
fn trend(ledger: &Ledger, period: Period) -> Vec<(Month, Tally)> {
    let Some(last) = period.months().last().copied() else {
        return Vec::new();
    };
    let mut months = vec![last];
    while months.len() < 12 {
        let before = months[months.len() - 1].previous();
        months.push(before);
    }
    months.reverse();
    months
        .into_iter()
        .map(|m| (m, ledger.period(Period::Month(m))))
        .collect()
}

/// The three columns' rows joined by name (a figure absent from a column is 0 there).
fn joined(c: &Columns) -> Vec<(String, [f64; 3])> {
    let mut names: Vec<String> = Vec::new();
    let tables = [
        c.period.figures(),
        c.previous.figures(),
        c.year_before.figures(),
    ];
    for table in &tables {
        for (name, _) in table {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let value = |i: usize| {
                tables[i]
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0.0, |(_, v)| *v)
            };
            let values = [value(0), value(1), value(2)];
            (name, values)
        })
        .collect()
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

/// CSV (RFC 4180): region, figure, and the three periods' values.
pub fn to_csv(period: Period, regions: &[RegionReport<'_>]) -> String {
    let mut out = format!(
        "region,figure,{period},{},{}\r\n",
        period.previous(),
        period.year_before()
    );
    let mut emit = |region: &str, c: &Columns| {
        for (name, [a, b, y]) in joined(c) {
            let name = name.replace('"', "\"\"");
            let _ = write!(
                out,
                "{region},\"{name}\",{},{},{}\r\n",
                number(a),
                number(b),
                number(y)
            );
        }
    };
    for r in regions {
        let region = r.report.region.as_ref().map_or("?", |c| c.as_str());
        emit(region, &columns(&r.report.ledger, period));
    }
    emit("federation", &columns(&federation(regions), period));
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What a figure is called in the report, in Chinese with the key for machines.
fn label(name: &str) -> String {
    let (key, detail) = name.split_once(':').unwrap_or((name, ""));
    let words = match key {
        "issued" => "发证",
        "renewed" => "换证（续期）",
        "changed" => "变更",
        "transferred_in" => "迁入",
        "promise_based" => "告知承诺发证",
        "promises_lapsed" => "承诺逾期失效",
        "promises_fulfilled" => "承诺已履行",
        "verifications" => "核验",
        "verifications_cross_region" => "为外地区核验",
        "proofs_received" => "收到核验回执",
        "copies_given" => "提供加注件",
        "copies_given_cross_region" => "向外地区提供加注件",
        "copies_received" => "收到加注件",
        "copies_received_cross_region" => "收到外地区加注件",
        "presentations_made" => "生成亮证码",
        "presentations_resolved" => "亮证码核验",
        "presentations_resolved_cross_region" => "外地区亮证码核验",
        "entries" => "日志条目",
        "issued_by_type" => "发证（按证照类型）",
        "issued_by_agency" => "发证（按机关）",
        "status_changes" => "状态变更",
        "refusals" => "拒绝（按代码）",
        "cross_region_share" => "跨区域办理占比",
        other => other,
    };
    match detail {
        "" => format!("{words} <small>{}</small>", escape(key)),
        d => format!("{words}：{} <small>{}</small>", escape(d), escape(key)),
    }
}

/// A bar chart of one figure over the trend's months, as inline SVG.
fn chart(title: &str, months: &[(Month, Tally)], value: fn(&Tally) -> u64) -> String {
    let (width, height, left, bottom) = (640.0, 220.0, 48.0, 40.0);
    let max = months
        .iter()
        .map(|(_, t)| value(t))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = (width - left - 10.0) / months.len().max(1) as f64;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">",
        escape(title),
        escape(title)
    );
    let plot = height - bottom - 10.0;
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#4a4a4a\"/><text x=\"{2}\" y=\"18\" text-anchor=\"end\" font-size=\"12\">{3}</text>",
        height - bottom,
        width - 10.0,
        left - 6.0,
        max as u64
    );
    for (i, (month, tally)) in months.iter().enumerate() {
        let v = value(tally) as f64;
        let h = v / max * plot;
        let x = left + i as f64 * step + step * 0.15;
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#0b4f9c\"><title>{month}: {v}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{:02}</text>",
            height - bottom - h,
            step * 0.7,
            x + step * 0.35,
            height - bottom + 16.0,
            month.month
        );
        if v > 0.0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{v}</text>",
                x + step * 0.35,
                height - bottom - h - 4.0
            );
        }
    }
    svg.push_str("</svg></figure>");
    svg
}

fn table(c: &Columns, period: Period) -> String {
    let mut out = format!(
        "<table><thead><tr><th scope=\"col\">指标</th><th scope=\"col\">{period}</th><th scope=\"col\">{}（环比）</th><th scope=\"col\">{}（同比）</th></tr></thead><tbody>",
        period.previous(),
        period.year_before()
    );
    for (name, [a, b, y]) in joined(c) {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            label(&name),
            number(a),
            number(b),
            number(y)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// A self-contained HTML page: no script, nothing fetched.
pub fn to_html(period: Period, regions: &[RegionReport<'_>]) -> String {
    let all = federation(regions);
    let months = trend(&all, period);
    let mut body = format!(
        "<h1>通办 · 证照业务报告 {period}</h1><p>统计期 {period}（北京时间），与上期 {} 及上年同期 {} 对比。每个数字都可用 <code>tongban-verify audit replay</code> 按下表的日志范围和签名检查点复算。</p>",
        period.previous(),
        period.year_before()
    );
    body.push_str("<h2>全联盟</h2>");
    body.push_str(&chart("发证（近 12 个月）", &months, |t| t.issued));
    body.push_str(&chart("核验（近 12 个月）", &months, |t| {
        t.verifications
    }));
    body.push_str(&table(&columns(&all, period), period));
    body.push_str("<h2>可追溯性：各地区日志范围与检查点</h2><table><thead><tr><th scope=\"col\">地区</th><th scope=\"col\">来源</th><th scope=\"col\">本期条目</th><th scope=\"col\">日志范围</th><th scope=\"col\">覆盖本期的签名检查点</th></tr></thead><tbody>");
    for r in regions {
        let t = r.report.ledger.period(period);
        let range = match (t.first_index, t.last_index) {
            (Some(a), Some(b)) => format!("{a}–{b}"),
            _ => "—".into(),
        };
        let checkpoint = covering(r.report, t.last_index)
            .map_or("—".to_owned(), |(size, name)| {
                format!("大小 {size}（{}）", escape(name))
            });
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{range}</td><td>{checkpoint}</td></tr>",
            r.report.region.as_ref().map_or("?", |c| c.as_str()),
            escape(&r.source),
            t.entries
        );
    }
    body.push_str("</tbody></table>");
    for r in regions {
        let region = r.report.region.as_ref().map_or("?", |c| c.as_str());
        let _ = write!(body, "<h2>地区 {region}</h2>");
        body.push_str(&table(&columns(&r.report.ledger, period), period));
    }
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>通办 · 证照业务报告 {period}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
}

const STYLE: &str = "body{font-family:\"Noto Sans CJK SC\",\"PingFang SC\",\"Microsoft YaHei\",sans-serif;color:#1a1a1a;max-width:60rem;margin:1rem auto;padding:0 1rem}h1{border-bottom:3px solid #0b4f9c}table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}th,td{border-bottom:1px solid #c8ccd2;padding:.25rem .4rem;text-align:right}th[scope=row],td:first-child{text-align:left}small{color:#4a4a4a}figure{margin:.5rem 0}figcaption{font-weight:600}";
