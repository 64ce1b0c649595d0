//! Live metrics of a serving aggregator, as Prometheus text over HTTP.
//!
//! Counters (since the process started): `parbayes_messages_in_total`,
//! `parbayes_bytes_in_total`, `parbayes_messages_out_total`,
//! `parbayes_bytes_out_total` (MessagePack payloads as they cross the
//! wire), `parbayes_joins_total`, `parbayes_refused_total`, and the protocol's
//! `parbayes_rows_up_total` and `parbayes_rows_down_total`. Gauges, per
//! run: `parbayes_blocks_connected`, `parbayes_learners_connected`, and
//! `parbayes_block_last_heard_seconds{block="A..B"}` for each block of
//! learners.

use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::PrometheusBuilder;

use crate::error::RemoteError;
use crate::error::Result;

/// Serves the metrics at `http://addr/metrics` (any path answers), once per
/// process: a second call with the same address is a no-op, with another
/// an error. Needs a tokio runtime.
pub fn serve_metrics(addr: SocketAddr) -> Result<()> {
    static SERVING: OnceLock<SocketAddr> = OnceLock::new();
    if let Some(&at) = SERVING.get() {
        return if at == addr {
            Ok(())
        } else {
            Err(RemoteError::Transport {
                what: format!("metrics are already served at {at}"),
                problem: "one address per process".into(),
            }
            .into())
        };
    }
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| RemoteError::Transport {
            what: format!("cannot serve metrics at {addr}"),
            problem: e.to_string(),
        })?;
    let _ = SERVING.set(addr);
    tracing::info!(%addr, "serving Prometheus metrics");
    Ok(())
}
