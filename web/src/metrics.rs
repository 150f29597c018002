//! Prometheus metrics: request counts and latencies per route (a middleware), and
//! bytes and records in and out per topic (recorded by the produce and consume paths).
//! Rendered as Prometheus text at `GET /metrics`, with the actors' own numbers read at
//! scrape time (partitions, the log cleaner, and supervision's counts per actor kind).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};

use troupe_actors::partition::PartitionStatus;
use troupe_actors::requests::metadata;
use troupe_actors::supervision::{self, KindTotals};

use troupe_actors::auth::acl::Operation;
use troupe_actors::quotas::{QuotaKind, QuotaUse};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;

/// `GET /metrics`: an operator's view of the whole node (Describe on the cluster).
pub async fn render(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    state
        .engine
        .authorize_cluster(&caller, Operation::Describe)
        .map_err(troupe_actors::BrokerError::from)?;
    Ok(match &state.metrics {
        Some(handle) => {
            let mut text = handle.render();
            text.push_str(&storage_gauges(&state, &caller).await);
            text.push_str(&cluster_gauges(&state, &caller).await);
            text.push_str(&quota_gauges(&state));
            text.push_str(&supervision_counters());
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4")
                .body(text)
        }
        None => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error_code": 50301,
            "message": "metrics are not enabled in this process"
        })),
    })
}

type StatusField = fn(&PartitionStatus) -> u64;

/// Per-partition storage state and the log cleaner's totals, read from the actors at
/// scrape time (they own these numbers; nothing is cached here).
async fn storage_gauges(state: &AppState, caller: &Caller) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let rows = metadata::all_statuses(&state.engine, caller).await;
    let gauges: [(&str, &str, StatusField); 8] = [
        ("troupe_partition_size_bytes", "gauge", |s| s.size_bytes),
        ("troupe_partition_log_end_offset", "gauge", |s| {
            s.log_end_offset.max(0) as u64
        }),
        ("troupe_partition_clean_bytes", "gauge", |s| s.clean_bytes),
        ("troupe_partition_dirty_bytes", "gauge", |s| s.dirty_bytes),
        ("troupe_partition_cleaner_runs_total", "counter", |s| {
            s.cleaner_runs
        }),
        ("troupe_partition_tail_chunks_total", "counter", |s| {
            s.tail_chunks
        }),
        ("troupe_partition_corrupt_batches_total", "counter", |s| {
            s.corrupt_batches
        }),
        (
            "troupe_partition_retention_deleted_segments_total",
            "counter",
            |s| s.retention_deleted_segments,
        ),
    ];
    for (name, kind, value) in gauges {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in &rows {
            let _ = writeln!(
                out,
                "{name}{{topic=\"{}\",partition=\"{}\"}} {}",
                s.topic,
                s.partition,
                value(s)
            );
        }
    }
    if let Some(stats) = metadata::cleaner_stats(&state.engine, caller).await {
        for (name, v) in [
            ("troupe_cleaner_runs_total", stats.runs),
            ("troupe_cleaner_failures_total", stats.failures),
            ("troupe_cleaner_bytes_read_total", stats.bytes_read),
            ("troupe_cleaner_bytes_written_total", stats.bytes_written),
        ] {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {v}");
        }
    }
    out
}

type QuotaField = fn(&QuotaUse) -> f64;

/// Each client quota's entity on this node: its quota, its rate at its last
/// request, and the time its answers were held back (Kafka's `throttle-time`).
fn quota_gauges(state: &AppState) -> String {
    use std::fmt::Write;
    let usage = state.engine.quotas.usage();
    let mut out = String::new();
    if usage.is_empty() {
        return out;
    }
    let labels = |u: &QuotaUse| {
        let kind = match u.kind {
            QuotaKind::Producer => "produce",
            QuotaKind::Consumer => "fetch",
        };
        let part = |p: &Option<troupe_actors::quotas::EntityName>| {
            p.as_ref()
                .map_or(String::new(), |n| label_value(n.display()))
        };
        format!(
            "kind=\"{kind}\",user=\"{}\",client_id=\"{}\"",
            part(&u.entity.user),
            part(&u.entity.client_id)
        )
    };
    let gauges: [(&str, &str, QuotaField); 3] = [
        ("troupe_quota_limit_bytes_per_second", "gauge", |u| {
            u.quota as f64
        }),
        ("troupe_quota_rate_bytes_per_second", "gauge", |u| u.rate),
        ("troupe_quota_throttle_seconds_total", "counter", |u| {
            u.throttled.as_secs_f64()
        }),
    ];
    for (name, kind, value) in gauges {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for u in &usage {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(u), value(u));
        }
    }
    out
}

/// A Prometheus label value: backslashes, quotes and newlines escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The cluster as this node sees it: brokers by state, the active controller, and
/// the metadata quorum (the leader's view of each voter's lag).
async fn cluster_gauges(state: &AppState, caller: &Caller) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let Ok(d) = metadata::describe_cluster(&state.engine, caller).await else {
        return out;
    };
    let _ = writeln!(out, "# TYPE troupe_cluster_brokers gauge");
    for label in ["alive", "fenced", "shutting_down"] {
        let count = d
            .brokers
            .iter()
            .filter(|b| {
                serde_json::to_value(b.state)
                    .ok()
                    .as_ref()
                    .and_then(|v| v.as_str())
                    == Some(label)
            })
            .count();
        let _ = writeln!(out, "troupe_cluster_brokers{{state=\"{label}\"}} {count}");
    }
    // Kafka's OfflinePartitionsCount: partitions with no leader, cluster-wide.
    let image = state.engine.image();
    let offline = image
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.leader.get() < 0)
        .count();
    let _ = writeln!(
        out,
        "# TYPE troupe_cluster_offline_partitions gauge\ntroupe_cluster_offline_partitions {offline}"
    );
    // Kafka's UnderReplicatedPartitions, AtMinIsrPartitionCount and
    // UnderMinIsrPartitionCount, over the partitions that have a leader.
    let (mut under_replicated, mut at_min_isr, mut under_min_isr) = (0, 0, 0);
    for topic in image.topics.values() {
        for p in topic.partitions.iter().filter(|p| p.leader.get() >= 0) {
            under_replicated += usize::from(p.isr.len() < p.replicas.len());
            at_min_isr += usize::from(p.isr.len() == topic.min_insync_replicas);
            under_min_isr += usize::from(p.isr.len() < topic.min_insync_replicas);
        }
    }
    let _ = writeln!(
        out,
        "# TYPE troupe_cluster_under_replicated_partitions gauge\ntroupe_cluster_under_replicated_partitions {under_replicated}"
    );
    let _ = writeln!(
        out,
        "# TYPE troupe_cluster_at_min_isr_partitions gauge\ntroupe_cluster_at_min_isr_partitions {at_min_isr}"
    );
    let _ = writeln!(
        out,
        "# TYPE troupe_cluster_under_min_isr_partitions gauge\ntroupe_cluster_under_min_isr_partitions {under_min_isr}"
    );
    let controller = d.controller_id.map_or(-1, |c| c.get());
    let _ = writeln!(
        out,
        "# TYPE troupe_cluster_active_controller_id gauge\ntroupe_cluster_active_controller_id {controller}"
    );
    let _ = writeln!(
        out,
        "# TYPE troupe_metadata_applied_offset gauge\ntroupe_metadata_applied_offset {}",
        d.metadata_offset
    );
    let _ = writeln!(
        out,
        "# TYPE troupe_quorum_term gauge\ntroupe_quorum_term {}",
        d.quorum.term
    );
    let _ = writeln!(out, "# TYPE troupe_quorum_voter_lag_entries gauge");
    for (id, voter) in &d.quorum.voters {
        if let Some(lag) = voter.lag_entries {
            let _ = writeln!(
                out,
                "troupe_quorum_voter_lag_entries{{voter=\"{id}\"}} {lag}"
            );
        }
    }
    out
}

type KindField = fn(&KindTotals) -> u64;

/// Panics contained, restarts and give-ups per actor kind (`troupe_actors::supervision`).
fn supervision_counters() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let totals = supervision::totals();
    let counters: [(&str, KindField); 3] = [
        ("troupe_actor_panics_total", |t| t.panics),
        ("troupe_actor_restarts_total", |t| t.restarts),
        ("troupe_actor_gave_up_total", |t| t.gave_up),
    ];
    for (name, value) in counters {
        let _ = writeln!(out, "# TYPE {name} counter");
        for t in &totals {
            let _ = writeln!(out, "{name}{{kind=\"{}\"}} {}", t.kind.label(), value(t));
        }
    }
    out
}

/// Counts and times every request by method, route pattern and status.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let res = next.call(req).await?;
    let status = res.status().as_u16().to_string();
    metrics::counter!("troupe_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("troupe_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(res)
}

pub fn record_in(topic: &str, records: u64, bytes: u64) {
    metrics::counter!("troupe_records_in_total", "topic" => topic.to_string()).increment(records);
    metrics::counter!("troupe_bytes_in_total", "topic" => topic.to_string()).increment(bytes);
}

pub fn record_out(topic: &str, records: u64, bytes: u64) {
    metrics::counter!("troupe_records_out_total", "topic" => topic.to_string()).increment(records);
    metrics::counter!("troupe_bytes_out_total", "topic" => topic.to_string()).increment(bytes);
}
