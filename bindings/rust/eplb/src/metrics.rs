//! Per-layer metrics and bounds of a placement (header section "metrics").
use crate::{check, sys, Placement, Result};

/// Metrics of one layer (`eplb_layer_metrics`).
pub type LayerMetrics = sys::eplb_layer_metrics;

impl Placement {
    /// The metrics of `layer` under its loads `layer_loads` `[num_logical_experts]`.
    pub fn layer_metrics(&self, layer: u32, layer_loads: &[f64]) -> Result<LayerMetrics> {
        // SAFETY: zeroed plain-data struct with struct_size set; the slice is valid.
        let mut metrics: LayerMetrics = unsafe { std::mem::zeroed() };
        metrics.struct_size = std::mem::size_of::<LayerMetrics>() as u32;
        check(unsafe {
            sys::eplb_metrics_compute_layer(
                self.raw,
                layer,
                layer_loads.as_ptr(),
                layer_loads.len(),
                &mut metrics,
            )
        })?;
        Ok(metrics)
    }

    /// The exact smallest possible busiest-GPU load for one layer's loads on this placement's
    /// topology (any replica counts, no two replicas of an expert on a GPU), or `None` when the
    /// instance is too large to solve exactly (more than two slots per GPU, or two with more
    /// than 16 slots).
    pub fn exact_optimum(&self, layer_loads: &[f64]) -> Result<Option<f64>> {
        let mut optimum = 0.0;
        // SAFETY: the slice is valid for its length; valid output pointer.
        check(unsafe {
            sys::eplb_metrics_exact_optimum(
                self.raw,
                layer_loads.as_ptr(),
                layer_loads.len(),
                &mut optimum,
            )
        })?;
        Ok((optimum >= 0.0).then_some(optimum))
    }

    /// A lower bound on the busiest GPU's load of any balanced-relaxed plan of one layer's loads
    /// with at most `cross_node_budget` replicas off their group's node; never below the global
    /// bound ([`LayerMetrics::lower_bound`]).
    pub fn relaxed_bound(&self, layer_loads: &[f64], cross_node_budget: u32) -> Result<f64> {
        let mut bound = 0.0;
        // SAFETY: the slice is valid for its length; valid output pointer.
        check(unsafe {
            sys::eplb_metrics_relaxed_bound(
                self.raw,
                layer_loads.as_ptr(),
                layer_loads.len(),
                cross_node_budget,
                &mut bound,
            )
        })?;
        Ok(bound)
    }

    /// The mean number of distinct nodes the rows `[rows][top_k]` (logical ids of `layer`, -1
    /// masked, e.g. [`crate::Tracker::samples`]) are served from, with the header's replica
    /// choice rule; rows without a valid id are left out (0 if none).
    pub fn nodes_touched(&self, layer: u32, rows: &[i32], top_k: u32) -> Result<f64> {
        let num_rows = rows.len().checked_div(top_k as usize).unwrap_or(0);
        if top_k == 0 || num_rows * top_k as usize != rows.len() {
            return Err(crate::invalid(format!(
                "rows length {} is not a whole number of rows of top_k {top_k}",
                rows.len()
            )));
        }
        let mut mean = 0.0;
        // SAFETY: the slice holds rows.len() / top_k whole rows.
        check(unsafe {
            sys::eplb_metrics_nodes_touched(
                self.raw,
                layer,
                rows.as_ptr(),
                num_rows,
                top_k,
                &mut mean,
            )
        })?;
        Ok(mean)
    }
}
