//! A circuit as a petgraph `DiGraph`: one node per neuron, one edge per selected test
//! (a pair can carry several edges: one per lag and test).

use petgraph::graph::{DiGraph, NodeIndex};

use crate::io::connectome::{CellAtlas, CellType};
use crate::results::{EdgeRow, EdgeTable};
use crate::stats::TestKind;

/// A neuron of the circuit.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CircuitNode {
    pub name: String,
    /// Cook et al. (2019) cell type, `other` when unknown.
    pub cell_type: CellType,
    /// Cook et al. (2019) class, empty when none.
    pub class: String,
}

/// A directed edge `source → target` at one lag.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CircuitEdge {
    pub lag: usize,
    pub test: TestKind,
    /// Signed effect (Jacobian sign for SBTG mean tests).
    pub effect: f64,
    /// Standard error of the effect and its 95% interval.
    pub se: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub mu: f64,
    pub t: f64,
    pub p: f64,
    pub q: f64,
}

/// A signed, lag-resolved circuit.
#[derive(Clone, Debug)]
pub struct Circuit {
    pub graph: DiGraph<CircuitNode, CircuitEdge>,
    /// The method that produced it (`sbtg`, `lagged-correlation`, …).
    pub method: String,
}

impl Circuit {
    /// The circuit of `neurons` with the FDR-selected rows of `edges` (every neuron is
    /// a node, connected or not).
    pub fn from_edges(
        neurons: &[String],
        edges: &[EdgeRow],
        method: &str,
        atlas: &CellAtlas,
    ) -> Circuit {
        let mut graph = DiGraph::new();
        let index: Vec<NodeIndex> = neurons
            .iter()
            .map(|n| {
                graph.add_node(CircuitNode {
                    name: n.clone(),
                    cell_type: atlas.type_of(n),
                    class: atlas.class_of(n).unwrap_or("").to_string(),
                })
            })
            .collect();
        let pos = |name: &str| neurons.iter().position(|n| n == name);
        for e in edges.iter().filter(|e| e.selected) {
            if let (Some(i), Some(j)) = (pos(&e.source), pos(&e.target)) {
                graph.add_edge(
                    index[i],
                    index[j],
                    CircuitEdge {
                        lag: e.lag,
                        test: e.test,
                        effect: e.effect,
                        se: e.se,
                        ci_low: e.ci_low,
                        ci_high: e.ci_high,
                        mu: e.mu,
                        t: e.t,
                        p: e.p,
                        q: e.q,
                    },
                );
            }
        }
        Circuit {
            graph,
            method: method.to_string(),
        }
    }

    /// The circuit of an edge table.
    pub fn from_table(table: &EdgeTable, atlas: &CellAtlas) -> Circuit {
        Self::from_edges(table.neurons(), &table.rows, table.method().name(), atlas)
    }

    /// The circuit of one test's edges (every node kept).
    pub fn of_test(&self, test: TestKind) -> Circuit {
        let mut graph = self.graph.clone();
        graph.retain_edges(|g, e| g[e].test == test);
        Circuit {
            graph,
            method: self.method.clone(),
        }
    }

    /// Whether some ordered pair carries more than one edge (one per lag, say): a
    /// multigraph for networkx.
    pub fn has_parallel_edges(&self) -> bool {
        let mut seen = std::collections::HashSet::new();
        self.graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .any(|pair| !seen.insert(pair))
    }

    /// Lags present among the edges, ascending.
    pub fn lags(&self) -> Vec<usize> {
        let mut l: Vec<usize> = self.graph.edge_weights().map(|e| e.lag).collect();
        l.sort_unstable();
        l.dedup();
        l
    }

    /// Edges `(source, target, edge)` of one lag and test.
    pub fn edges_at(&self, lag: usize, test: TestKind) -> Vec<(usize, usize, &CircuitEdge)> {
        self.graph
            .edge_indices()
            .filter_map(|e| {
                let w = &self.graph[e];
                let (a, b) = self.graph.edge_endpoints(e)?;
                (w.lag == lag && w.test == test).then_some((a.index(), b.index(), w))
            })
            .collect()
    }

    /// In- and out-degree of every node at one lag (mean-test edges).
    pub fn degrees(&self, lag: usize) -> (Vec<usize>, Vec<usize>) {
        let n = self.graph.node_count();
        let (mut inn, mut out) = (vec![0; n], vec![0; n]);
        for (s, t, _) in self.edges_at(lag, TestKind::Mean) {
            out[s] += 1;
            inn[t] += 1;
        }
        (inn, out)
    }
}
