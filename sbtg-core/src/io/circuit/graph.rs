//! A circuit as a petgraph `DiGraph`: one node per neuron, one edge per selected test
//! (a pair can carry several edges: one per lag and test).

use petgraph::graph::{DiGraph, NodeIndex};

use crate::io::connectome::{CellAtlas, CellType};
use crate::results::{EdgeRow, EdgeTable};
use crate::stats::TestKind;
use crate::{Error, Result};

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
    /// Selected edges this edge stands for (1; more in a class view, see
    /// [`Circuit::by_class`]).
    #[serde(default = "one")]
    pub members: usize,
}

fn one() -> usize {
    1
}

/// A signed, lag-resolved circuit.
#[derive(Clone, Debug)]
pub struct Circuit {
    pub graph: DiGraph<CircuitNode, CircuitEdge>,
    /// The method that produced it (`sbtg`, `lagged-correlation`, …).
    pub method: String,
}

impl Circuit {
    /// The circuit of `neurons` with the FDR-selected edge rows of `edges` (every neuron
    /// is a node, connected or not); direction tests are statements about pairs, not
    /// edges, and stay out.
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
        for e in edges
            .iter()
            .filter(|e| e.selected && e.test != TestKind::Direction)
        {
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
                        members: 1,
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

    /// The circuit of some neurons only (names as in the circuit, in that order); an
    /// error names a neuron the circuit does not have.
    pub fn restrict(&self, names: &[String]) -> Result<Circuit> {
        // A name as written (circuits of `--any-names` runs keep theirs), else in its
        // normalised spelling (`aval`, `VB02` → AVAL, VB2).
        let find = |n: &str| {
            let normal = crate::io::recording::names::normalise_label(n);
            let at = |m: &str| self.graph.node_indices().find(|&k| self.graph[k].name == m);
            at(n).or_else(|| at(&normal))
        };
        let mut graph = DiGraph::new();
        let mut map = std::collections::HashMap::new();
        for name in names {
            let k = find(name).ok_or_else(|| {
                Error::param(
                    "neurons",
                    format!(
                        "`{name}` is not a neuron of this circuit; its neurons are {}",
                        self.graph
                            .node_weights()
                            .map(|n| n.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            if map.contains_key(&k) {
                continue; // named twice
            }
            map.insert(k, graph.add_node(self.graph[k].clone()));
        }
        for e in self.graph.edge_indices() {
            let (a, b) = self.graph.edge_endpoints(e).expect("edge");
            if let (Some(&x), Some(&y)) = (map.get(&a), map.get(&b)) {
                graph.add_edge(x, y, self.graph[e].clone());
            }
        }
        Ok(Circuit {
            graph,
            method: self.method.clone(),
        })
    }

    /// The circuit of Cook et al. (2019) cell classes: left and right (and dorsal and
    /// ventral) members merged. A class edge `A → B` at a lag and test exists when some
    /// member edge was selected; its effect, t, p and q are those of its strongest
    /// member edge (by |t|), and `members` counts the member edges behind it. Edges
    /// within one class are left out; a neuron without a class keeps its name.
    pub fn by_class(&self, atlas: &CellAtlas) -> Circuit {
        let class_of = |name: &str| atlas.class_of(name).unwrap_or(name).to_string();
        let mut graph: DiGraph<CircuitNode, CircuitEdge> = DiGraph::new();
        let mut node_of: std::collections::BTreeMap<String, NodeIndex> = Default::default();
        for n in self.graph.node_weights() {
            let class = class_of(&n.name);
            node_of.entry(class.clone()).or_insert_with(|| {
                graph.add_node(CircuitNode {
                    name: class.clone(),
                    cell_type: atlas.type_of(&class),
                    class: class.clone(),
                })
            });
        }
        let mut best: std::collections::BTreeMap<
            (usize, usize, usize, TestKind),
            (CircuitEdge, usize),
        > = Default::default();
        for e in self.graph.edge_indices() {
            let (a, b) = self.graph.edge_endpoints(e).expect("edge");
            let (ca, cb) = (class_of(&self.graph[a].name), class_of(&self.graph[b].name));
            if ca == cb {
                continue;
            }
            let w = &self.graph[e];
            let key = (node_of[&ca].index(), node_of[&cb].index(), w.lag, w.test);
            let slot = best.entry(key).or_insert_with(|| (w.clone(), 0));
            slot.1 += 1;
            if w.t.abs() > slot.0.t.abs() {
                slot.0 = w.clone();
            }
        }
        for ((a, b, _, _), (mut w, members)) in best {
            w.members = members;
            graph.add_edge(NodeIndex::new(a), NodeIndex::new(b), w);
        }
        Circuit {
            graph,
            method: self.method.clone(),
        }
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
