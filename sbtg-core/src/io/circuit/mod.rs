//! An inferred circuit as a petgraph graph ([`Circuit`]: one node per neuron, one edge
//! per selected test) and its exports ([`export`]: GraphML, DOT, node-link JSON).

pub mod export;
mod graph;

pub use graph::{Circuit, CircuitEdge, CircuitNode};
