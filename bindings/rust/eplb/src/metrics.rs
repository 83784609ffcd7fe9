//! Metrics and bounds of a placement under a load matrix (header section "metrics").
//!
//! The load model: a logical expert's load is split evenly over its replicas, and a GPU's load
//! is the sum over its slots of load / replicas. A layer whose total load is zero counts as
//! perfectly balanced (1.0) and has bound 0.
use crate::{check, sys, Placement, Result};

/// Metrics of a placement over the layers that carry load (`eplb_metrics`). A layer whose loads
/// are all zero is left out of every field but `num_layers` and `loaded_layers`; when no layer
/// has load, every layer counts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    pub num_layers: u32,
    /// The most replicas of one expert in a layer counted.
    pub max_replicas: u32,
    /// Layers with a nonzero total load.
    pub loaded_layers: u32,
    /// (layer, GPU) pairs holding two replicas of one expert.
    pub duplicate_pairs: u64,
    /// Mean of the layers' balancedness (mean GPU load / max GPU load, in (0, 1]).
    pub balancedness: f64,
    /// The worst layer's balancedness.
    pub min_balancedness: f64,
    /// Mean of the layers' mean node load / max node load.
    pub node_balancedness: f64,
    /// Mean of max GPU load / lower bound ([`LayerMetrics::lower_bound`]).
    pub max_load_over_bound: f64,
    /// The largest max GPU load / lower bound.
    pub worst_max_load_over_bound: f64,
    /// Mean of max GPU load / mean GPU load.
    pub max_over_mean: f64,
    /// Mean of max GPU load / node bound (1 when the bound is 0): how close GPUs are to the node
    /// ceiling.
    pub max_load_over_node_bound: f64,
    /// Sum of [`LayerMetrics::cross_node_replicas`].
    pub cross_node_replicas: u64,
}

impl Metrics {
    fn from_raw(raw: &sys::eplb_metrics) -> Metrics {
        Metrics {
            num_layers: raw.num_layers,
            max_replicas: raw.max_replicas,
            loaded_layers: raw.loaded_layers,
            duplicate_pairs: raw.duplicate_pairs,
            balancedness: raw.balancedness,
            min_balancedness: raw.min_balancedness,
            node_balancedness: raw.node_balancedness,
            max_load_over_bound: raw.max_load_over_bound,
            worst_max_load_over_bound: raw.worst_max_load_over_bound,
            max_over_mean: raw.max_over_mean,
            max_load_over_node_bound: raw.max_load_over_node_bound,
            cross_node_replicas: raw.cross_node_replicas,
        }
    }
}

/// Metrics of one layer (`eplb_layer_metrics`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LayerMetrics {
    /// GPUs holding two or more replicas of one expert.
    pub duplicate_gpus: u32,
    /// The most replicas of one expert.
    pub max_replicas: u32,
    /// Replicas not on their expert's main node (the node holding most of its replicas, lowest
    /// index on ties).
    pub cross_node_replicas: u32,
    /// Sum of the layer's loads.
    pub total_load: f64,
    /// `total_load` / num_gpus.
    pub mean_gpu_load: f64,
    /// The busiest GPU's load.
    pub max_gpu_load: f64,
    /// No placement with this R and topology has a lower max GPU load.
    pub lower_bound: f64,
    /// `mean_gpu_load` / `max_gpu_load`, in (0, 1].
    pub balancedness: f64,
    /// Mean node load / max node load.
    pub node_balancedness: f64,
    /// `max_gpu_load` / `lower_bound`, >= 1 (1 when the bound is 0).
    pub max_load_over_bound: f64,
    /// The busiest node's load / GPUs per node: no packing of this placement's node contents
    /// onto GPUs does better.
    pub node_bound: f64,
}

impl LayerMetrics {
    fn from_raw(raw: &sys::eplb_layer_metrics) -> LayerMetrics {
        LayerMetrics {
            duplicate_gpus: raw.duplicate_gpus,
            max_replicas: raw.max_replicas,
            cross_node_replicas: raw.cross_node_replicas,
            total_load: raw.total_load,
            mean_gpu_load: raw.mean_gpu_load,
            max_gpu_load: raw.max_gpu_load,
            lower_bound: raw.lower_bound,
            balancedness: raw.balancedness,
            node_balancedness: raw.node_balancedness,
            max_load_over_bound: raw.max_load_over_bound,
            node_bound: raw.node_bound,
        }
    }
}

impl Placement {
    /// Balance metrics under `loads` `[layers][logical experts]` (the load it was planned on, or
    /// any other), finite and >= 0.
    pub fn metrics(&self, loads: &[f64]) -> Result<Metrics> {
        // SAFETY: zeroed plain-data struct with struct_size set; the slice is valid.
        let mut metrics: sys::eplb_metrics = unsafe { std::mem::zeroed() };
        metrics.struct_size = std::mem::size_of::<sys::eplb_metrics>() as u32;
        check(unsafe {
            sys::eplb_metrics_compute(self.raw, loads.as_ptr(), loads.len(), &mut metrics)
        })?;
        Ok(Metrics::from_raw(&metrics))
    }

    /// `[layers][gpus]`: each GPU's load under `loads` `[layers][logical experts]`.
    pub fn gpu_loads(&self, loads: &[f64]) -> Result<Vec<f64>> {
        let info = self.info()?;
        let mut out = vec![0.0; info.num_layers as usize * info.num_gpus as usize];
        // SAFETY: both slices are valid for their lengths.
        check(unsafe {
            sys::eplb_metrics_gpu_loads(
                self.raw,
                loads.as_ptr(),
                loads.len(),
                out.as_mut_ptr(),
                out.len(),
            )
        })?;
        Ok(out)
    }

    /// The metrics of `layer` under its loads `layer_loads` `[num_logical_experts]`.
    pub fn layer_metrics(&self, layer: u32, layer_loads: &[f64]) -> Result<LayerMetrics> {
        // SAFETY: zeroed plain-data struct with struct_size set; the slice is valid.
        let mut metrics: sys::eplb_layer_metrics = unsafe { std::mem::zeroed() };
        metrics.struct_size = std::mem::size_of::<sys::eplb_layer_metrics>() as u32;
        check(unsafe {
            sys::eplb_metrics_compute_layer(
                self.raw,
                layer,
                layer_loads.as_ptr(),
                layer_loads.len(),
                &mut metrics,
            )
        })?;
        Ok(LayerMetrics::from_raw(&metrics))
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
