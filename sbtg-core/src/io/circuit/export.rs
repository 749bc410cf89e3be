//! Circuit exports that Cytoscape, Gephi and networkx read:
//!
//! - **GraphML** (`circuit.graphml`): typed keys — nodes `cell_type`, `class` (string);
//!   edges `lag`, `sign` (int), `effect`, `weight` (= |effect|), `mu`, `t`, `p`, `q`
//!   (double), `test` (string), `directed` (boolean: false for same-frame lag-0 pairs,
//!   written once, source before target); graph `method` (string). Node ids are neuron
//!   names. `networkx.read_graphml` gives a `MultiDiGraph` when a pair has edges at
//!   several lags.
//! - **DOT** (`circuit.dot`, Graphviz): colour = sign (red positive, blue negative effect),
//!   pen width ∝ |effect|, label = lag, `dir=none` for lag-0 pairs.
//! - **node-link JSON** (`circuit.json`), as `networkx.node_link_data` writes it:
//!   `networkx.node_link_graph(data, edges="links")`.
//!
//! GraphML is written by hand with quick-xml escaping (the format is a dozen fixed
//! elements; no maintained crate writes typed GraphML attributes for petgraph 0.8) and
//! read back with quick-xml for the round-trip check.

use std::collections::BTreeMap;
use std::path::Path;

use petgraph::dot::{Config, Dot};
use petgraph::visit::EdgeRef;
use quick_xml::escape::escape;
use quick_xml::events::Event;

use super::graph::{Circuit, CircuitEdge, CircuitNode};
use crate::io::connectome::CellType;
use crate::stats::TestKind;
use crate::{Error, Result};

/// `(id, for, attr.name, attr.type)` of every GraphML key.
const KEYS: [(&str, &str, &str, &str); 16] = [
    ("method", "graph", "method", "string"),
    ("cell_type", "node", "cell_type", "string"),
    ("class", "node", "class", "string"),
    ("lag", "edge", "lag", "int"),
    ("test", "edge", "test", "string"),
    ("sign", "edge", "sign", "int"),
    ("effect", "edge", "effect", "double"),
    ("weight", "edge", "weight", "double"),
    ("se", "edge", "se", "double"),
    ("ci_low", "edge", "ci_low", "double"),
    ("ci_high", "edge", "ci_high", "double"),
    ("mu", "edge", "mu", "double"),
    ("t", "edge", "t", "double"),
    ("p", "edge", "p", "double"),
    ("q", "edge", "q", "double"),
    ("directed", "edge", "directed", "boolean"),
];

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v:e}")
    }
}

fn cell_type_name(t: CellType) -> &'static str {
    t.name()
}

/// The circuit as GraphML.
pub fn to_graphml(c: &Circuit) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
    );
    for (id, for_, name, ty) in KEYS {
        s.push_str(&format!(
            "  <key id=\"{id}\" for=\"{for_}\" attr.name=\"{name}\" attr.type=\"{ty}\"/>\n"
        ));
    }
    s.push_str("  <graph id=\"circuit\" edgedefault=\"directed\">\n");
    s.push_str(&format!(
        "    <data key=\"method\">{}</data>\n",
        escape(&c.method)
    ));
    for n in c.graph.node_weights() {
        s.push_str(&format!(
            "    <node id=\"{}\">\n      <data key=\"cell_type\">{}</data>\n      <data key=\"class\">{}</data>\n    </node>\n",
            escape(&n.name),
            cell_type_name(n.cell_type),
            escape(&n.class)
        ));
    }
    for (k, e) in c.graph.edge_references().enumerate() {
        let w = e.weight();
        let (a, b) = (&c.graph[e.source()].name, &c.graph[e.target()].name);
        s.push_str(&format!(
            "    <edge id=\"e{k}\" source=\"{}\" target=\"{}\">\n",
            escape(a),
            escape(b)
        ));
        let data = [
            ("lag", w.lag.to_string()),
            ("test", w.test.name().to_string()),
            ("sign", (if w.effect < 0.0 { -1 } else { 1 }).to_string()),
            ("effect", num(w.effect)),
            ("weight", num(w.effect.abs())),
            ("se", num(w.se)),
            ("ci_low", num(w.ci_low)),
            ("ci_high", num(w.ci_high)),
            ("mu", num(w.mu)),
            ("t", num(w.t)),
            ("p", num(w.p)),
            ("q", num(w.q)),
            ("directed", (w.lag > 0).to_string()),
        ];
        for (key, v) in data {
            s.push_str(&format!("      <data key=\"{key}\">{v}</data>\n"));
        }
        s.push_str("    </edge>\n");
    }
    s.push_str("  </graph>\n</graphml>\n");
    s
}

fn xml_err(label: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(label, "GraphML", format!("not well-formed XML: {e}"))
}

/// Reads a circuit written by [`to_graphml`] (`label` names the source in errors).
/// Every `<data key>` must be declared by a `<key>` element.
pub fn from_graphml(text: &str, label: &Path) -> Result<Circuit> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let mut method = String::new();
    let mut nodes: Vec<CircuitNode> = Vec::new();
    let mut edges: Vec<(String, String, BTreeMap<String, String>)> = Vec::new();
    let mut current_key: Option<String> = None;
    let mut in_edge = false;
    let mut in_node = false;
    let attr = |e: &quick_xml::events::BytesStart, name: &str| -> Option<String> {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == name.as_bytes())
            .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
    };
    loop {
        match reader.read_event().map_err(|e| xml_err(label, e))? {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"key" => {
                    let id = attr(&e, "id").ok_or_else(|| xml_err(label, "<key> without id"))?;
                    let ty = attr(&e, "attr.type").unwrap_or_default();
                    keys.insert(id, ty);
                }
                b"node" => {
                    let id = attr(&e, "id").ok_or_else(|| xml_err(label, "<node> without id"))?;
                    nodes.push(CircuitNode {
                        name: id,
                        cell_type: CellType::Other,
                        class: String::new(),
                    });
                    in_node = true;
                }
                b"edge" => {
                    let (Some(s), Some(t)) = (attr(&e, "source"), attr(&e, "target")) else {
                        return Err(xml_err(label, "<edge> without source or target"));
                    };
                    edges.push((s, t, BTreeMap::new()));
                    in_edge = true;
                }
                b"data" => {
                    let key =
                        attr(&e, "key").ok_or_else(|| xml_err(label, "<data> without key"))?;
                    if !keys.contains_key(&key) {
                        return Err(Error::format(
                            label,
                            format!("data key `{key}`"),
                            "used but not declared by a <key> element",
                        ));
                    }
                    current_key = Some(key);
                }
                _ => {}
            },
            Event::Text(t) => {
                if let Some(key) = &current_key {
                    let v = t.decode().map_err(|e| xml_err(label, e))?.into_owned();
                    let v = quick_xml::escape::unescape(&v)
                        .map_err(|e| xml_err(label, e))?
                        .into_owned();
                    if in_edge {
                        edges
                            .last_mut()
                            .expect("inside an edge")
                            .2
                            .insert(key.clone(), v);
                    } else if in_node {
                        let n = nodes.last_mut().expect("inside a node");
                        match key.as_str() {
                            "cell_type" => {
                                n.cell_type = CellType::ALL
                                    .into_iter()
                                    .find(|c| c.name() == v)
                                    .unwrap_or(CellType::Other)
                            }
                            "class" => n.class = v,
                            _ => {}
                        }
                    } else if key == "method" {
                        method = v;
                    }
                }
            }
            Event::End(e) => match e.name().as_ref() {
                b"data" => current_key = None,
                b"edge" => in_edge = false,
                b"node" => in_node = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    let mut graph = petgraph::graph::DiGraph::new();
    let idx: Vec<_> = nodes.iter().map(|n| graph.add_node(n.clone())).collect();
    let find = |name: &str| nodes.iter().position(|n| n.name == name);
    for (s, t, d) in edges {
        let (Some(i), Some(j)) = (find(&s), find(&t)) else {
            return Err(Error::format(
                label,
                "edge",
                format!("{s} → {t} names an undeclared node"),
            ));
        };
        let f = |k: &str| -> Result<f64> {
            d.get(k)
                .ok_or_else(|| {
                    Error::format(label, format!("edge {s} → {t}"), format!("missing `{k}`"))
                })?
                .parse::<f64>()
                .map_err(|_| Error::format(label, format!("edge {s} → {t}, {k}"), "not a number"))
        };
        // Written by every version that has them; NaN when a file lacks them.
        let optional = |k: &str| {
            if d.contains_key(k) {
                f(k)
            } else {
                Ok(f64::NAN)
            }
        };
        graph.add_edge(
            idx[i],
            idx[j],
            CircuitEdge {
                lag: f("lag")? as usize,
                test: if d.get("test").map(String::as_str) == Some("volatility") {
                    TestKind::Volatility
                } else {
                    TestKind::Mean
                },
                effect: f("effect")?,
                se: optional("se")?,
                ci_low: optional("ci_low")?,
                ci_high: optional("ci_high")?,
                mu: f("mu")?,
                t: f("t")?,
                p: f("p")?,
                q: f("q")?,
                members: 1,
            },
        );
    }
    Ok(Circuit { graph, method })
}

/// The circuit in Graphviz DOT (petgraph's writer with sbtg's attributes).
pub fn to_dot(c: &Circuit) -> String {
    let edge_attr = |_, e: petgraph::graph::EdgeReference<'_, CircuitEdge>| {
        let w = e.weight();
        format!(
            "label=\"{}\" lag={} test=\"{}\" effect={} color=\"{}\" penwidth={:.2}{}",
            w.lag,
            w.lag,
            w.test.name(),
            num(w.effect),
            if w.effect < 0.0 { "#2166ac" } else { "#b2182b" },
            1.0 + 3.0 * w.effect.abs().min(1.0),
            // Same-frame (lag-0) pairs are undirected: no arrowhead.
            if w.lag == 0 { " dir=none" } else { "" }
        )
    };
    let node_attr = |_, (_, n): (petgraph::graph::NodeIndex, &CircuitNode)| {
        format!(
            "label=\"{}\" cell_type=\"{}\"",
            n.name,
            cell_type_name(n.cell_type)
        )
    };
    format!(
        "{:?}",
        Dot::with_attr_getters(
            &c.graph,
            &[Config::NodeNoLabel, Config::EdgeNoLabel],
            &edge_attr,
            &node_attr
        )
    )
}

#[derive(serde::Serialize, serde::Deserialize)]
struct NodeLinkNode {
    id: String,
    cell_type: CellType,
    class: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct NodeLinkEdge {
    source: String,
    target: String,
    key: usize,
    lag: usize,
    /// False for same-frame (lag-0) pairs, which are undirected.
    #[serde(default = "directed_default")]
    directed: bool,
    test: TestKind,
    sign: i32,
    effect: Option<f64>,
    weight: Option<f64>,
    #[serde(default)]
    se: Option<f64>,
    #[serde(default)]
    ci_low: Option<f64>,
    #[serde(default)]
    ci_high: Option<f64>,
    mu: Option<f64>,
    t: Option<f64>,
    p: Option<f64>,
    q: Option<f64>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct NodeLink {
    directed: bool,
    multigraph: bool,
    graph: BTreeMap<String, String>,
    nodes: Vec<NodeLinkNode>,
    links: Vec<NodeLinkEdge>,
}

fn directed_default() -> bool {
    true
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The circuit as node-link JSON (NaN written as `null`).
pub fn to_json(c: &Circuit) -> String {
    let mut seen: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let doc = NodeLink {
        directed: true,
        multigraph: c.has_parallel_edges(),
        graph: BTreeMap::from([("method".to_string(), c.method.clone())]),
        nodes: c
            .graph
            .node_weights()
            .map(|n| NodeLinkNode {
                id: n.name.clone(),
                cell_type: n.cell_type,
                class: n.class.clone(),
            })
            .collect(),
        links: c
            .graph
            .edge_references()
            .map(|e| {
                let w = e.weight();
                let key = seen
                    .entry((e.source().index(), e.target().index()))
                    .or_insert(0);
                *key += 1;
                NodeLinkEdge {
                    source: c.graph[e.source()].name.clone(),
                    target: c.graph[e.target()].name.clone(),
                    key: *key - 1,
                    lag: w.lag,
                    directed: w.lag > 0,
                    test: w.test,
                    sign: if w.effect < 0.0 { -1 } else { 1 },
                    effect: finite(w.effect),
                    weight: finite(w.effect.abs()),
                    se: finite(w.se),
                    ci_low: finite(w.ci_low),
                    ci_high: finite(w.ci_high),
                    mu: finite(w.mu),
                    t: finite(w.t),
                    p: finite(w.p),
                    q: finite(w.q),
                }
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).expect("serialisable")
}

/// Reads node-link JSON written by [`to_json`].
pub fn from_json(text: &str, label: &Path) -> Result<Circuit> {
    let doc: NodeLink = serde_json::from_str(text)
        .map_err(|e| Error::format(label, "JSON", format!("not a node-link circuit: {e}")))?;
    let mut graph = petgraph::graph::DiGraph::new();
    let idx: Vec<_> = doc
        .nodes
        .iter()
        .map(|n| {
            graph.add_node(CircuitNode {
                name: n.id.clone(),
                cell_type: n.cell_type,
                class: n.class.clone(),
            })
        })
        .collect();
    let find = |name: &str| doc.nodes.iter().position(|n| n.id == name);
    for l in &doc.links {
        let (Some(i), Some(j)) = (find(&l.source), find(&l.target)) else {
            return Err(Error::format(
                label,
                "links",
                format!("{} → {} names an undeclared node", l.source, l.target),
            ));
        };
        let v = |x: Option<f64>| x.unwrap_or(f64::NAN);
        graph.add_edge(
            idx[i],
            idx[j],
            CircuitEdge {
                lag: l.lag,
                test: l.test,
                effect: v(l.effect),
                se: v(l.se),
                ci_low: v(l.ci_low),
                ci_high: v(l.ci_high),
                mu: v(l.mu),
                t: v(l.t),
                p: v(l.p),
                q: v(l.q),
                members: 1,
            },
        );
    }
    Ok(Circuit {
        graph,
        method: doc.graph.get("method").cloned().unwrap_or_default(),
    })
}

/// The exports of a circuit: the mean-test (Jacobian) edges as `circuit.graphml`,
/// `circuit.dot` and `circuit.json`, and, when the run had a volatility-transfer test,
/// its edges on their own as `volatility.graphml` and `volatility.json` (the two tests'
/// effects are on different scales and must not share one `weight`).
pub fn files(c: &Circuit, volatility_tested: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mean = c.of_test(TestKind::Mean);
    let mut out = vec![
        ("circuit.graphml", to_graphml(&mean).into_bytes()),
        ("circuit.dot", to_dot(&mean).into_bytes()),
        ("circuit.json", to_json(&mean).into_bytes()),
    ];
    if volatility_tested {
        let vol = c.of_test(TestKind::Volatility);
        out.push(("volatility.graphml", to_graphml(&vol).into_bytes()));
        out.push(("volatility.json", to_json(&vol).into_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::connectome::CellAtlas;
    use crate::results::EdgeRow;

    fn small() -> Circuit {
        let neurons: Vec<String> = ["AVAL", "AVBL", "ASHL", "DA1"].map(String::from).to_vec();
        let row = |s: &str, t: &str, lag, test, effect: f64, sel| EdgeRow {
            source: s.into(),
            target: t.into(),
            lag,
            mu: -effect,
            effect,
            se: 0.1,
            ci_low: effect - 0.196,
            ci_high: effect + 0.196,
            t: 3.5 * effect.signum(),
            p: 1e-4,
            q: 0.01,
            test,
            selected: sel,
            variance_floored: false,
            state: "all".into(),
        };
        let edges = vec![
            row("ASHL", "AVAL", 1, TestKind::Mean, 0.4, true),
            row("ASHL", "AVAL", 2, TestKind::Mean, -0.1, true),
            row("AVAL", "DA1", 1, TestKind::Volatility, 0.2, true),
            row("AVBL", "AVAL", 1, TestKind::Mean, -0.3, false),
        ];
        Circuit::from_edges(&neurons, &edges, "sbtg", &CellAtlas::cook2019().unwrap())
    }

    fn same(a: &Circuit, b: &Circuit) {
        assert_eq!(a.method, b.method);
        let nodes = |c: &Circuit| c.graph.node_weights().cloned().collect::<Vec<_>>();
        assert_eq!(nodes(a), nodes(b));
        let edges = |c: &Circuit| {
            c.graph
                .edge_references()
                .map(|e| (e.source().index(), e.target().index(), e.weight().clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(edges(a), edges(b));
    }

    #[test]
    fn graphml_round_trips_with_declared_typed_keys() {
        let c = small();
        assert_eq!(c.graph.node_count(), 4);
        assert_eq!(c.graph.edge_count(), 3, "only selected edges");
        assert_eq!(c.graph[petgraph::graph::NodeIndex::new(0)].class, "AVA");
        assert_eq!(
            c.graph[petgraph::graph::NodeIndex::new(3)].cell_type,
            CellType::Motor
        );
        let text = to_graphml(&c);
        assert!(text.contains(
            "<key id=\"effect\" for=\"edge\" attr.name=\"effect\" attr.type=\"double\"/>"
        ));
        assert!(text.contains("<key id=\"lag\" for=\"edge\" attr.name=\"lag\" attr.type=\"int\"/>"));
        same(&c, &from_graphml(&text, Path::new("x.graphml")).unwrap());
        // An undeclared key is an error.
        let bad = text.replace(
            "<key id=\"q\" for=\"edge\" attr.name=\"q\" attr.type=\"double\"/>",
            "",
        );
        let err = from_graphml(&bad, Path::new("x.graphml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`q`") && err.contains("not declared"), "{err}");
        // Mismatched tags are not well-formed XML.
        let err = from_graphml("<graphml><node id=\"a\"></edge></graphml>", Path::new("x"));
        assert!(err.unwrap_err().to_string().contains("well-formed"));
    }

    #[test]
    fn json_round_trips_and_dot_names_every_edge() {
        let c = small();
        let text = to_json(&c);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["directed"], true);
        assert_eq!(v["multigraph"], true, "ASHL → AVAL at two lags");
        assert_eq!(v["links"].as_array().unwrap().len(), 3);
        // Two edges ASHL → AVAL (lags 1 and 2): keys 0 and 1, as networkx numbers them.
        assert_eq!(v["links"][1]["key"], 1);
        same(&c, &from_json(&text, Path::new("x.json")).unwrap());
        let dot = to_dot(&c);
        assert!(dot.starts_with("digraph {"));
        assert_eq!(dot.matches(" -> ").count(), 3);
        assert!(dot.contains("color=\"#2166ac\""), "a negative edge is blue");
    }

    /// The exports keep the two tests apart, and a circuit without parallel edges is no
    /// multigraph.
    #[test]
    fn mean_and_volatility_edges_go_to_their_own_files() {
        let c = small();
        let files = files(&c, true);
        let names: Vec<&str> = files.iter().map(|f| f.0).collect();
        assert_eq!(
            names,
            [
                "circuit.graphml",
                "circuit.dot",
                "circuit.json",
                "volatility.graphml",
                "volatility.json"
            ]
        );
        let text = |k: usize| String::from_utf8(files[k].1.clone()).unwrap();
        let mean = from_graphml(&text(0), Path::new("c")).unwrap();
        assert_eq!(mean.graph.edge_count(), 2);
        assert!(mean.graph.edge_weights().all(|e| e.test == TestKind::Mean));
        let vol: serde_json::Value = serde_json::from_str(&text(4)).unwrap();
        assert_eq!(vol["links"].as_array().unwrap().len(), 1);
        assert_eq!(vol["links"][0]["test"], "volatility");
        assert_eq!(vol["multigraph"], false);
        let lag1 = {
            let mut g = mean.graph.clone();
            g.retain_edges(|g, e| g[e].lag == 1);
            Circuit {
                graph: g,
                method: "sbtg".into(),
            }
        };
        assert!(!lag1.has_parallel_edges());
        assert_eq!(files_without_volatility_count(&c), 3);
    }

    fn files_without_volatility_count(c: &Circuit) -> usize {
        files(c, false).len()
    }
}
