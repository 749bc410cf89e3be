use sbtg_core::infer::{infer, InferConfig, TestKind};
use sbtg_core::metrics::auroc;
use sbtg_core::panel::{Panel, PanelConfig};
use sbtg_core::simulate::{null_ar1, tanh_network, NetworkSpec};

#[test]
#[ignore]
fn explore() {
    let epochs: usize = std::env::var("EP").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let stat = std::env::var("STAT").unwrap_or("orthogonal".into());
    let mut cfg = InferConfig::default();
    cfg.model.epochs = epochs;
    cfg.statistic = if stat == "product" { sbtg_core::edge_test::EdgeStatistic::Product } else { sbtg_core::edge_test::EdgeStatistic::Orthogonal };
    let t = std::time::Instant::now();
    let sim = tanh_network(&NetworkSpec::default()).unwrap();
    let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
    let inf = infer(&panel, &cfg, &|_| {}).unwrap();
    let sup = sim.support();
    let mut s = vec![]; let mut l = vec![]; let mut sign_ok = 0; let mut ntrue = 0;
    let eff = inf.effect_matrix();
    for j in 0..20 { for i in 0..20 { if i != j { s.push(eff[[j,i]].abs()); l.push(sup[[j,i]]);
        if sup[[j,i]] { ntrue += 1; if eff[[j,i]].signum() == sim.coupling[[j,i]].signum() { sign_ok += 1; } } } } }
    let mut fp = 0; let mut tp = 0;
    for e in inf.edges.iter().filter(|e| e.test == TestKind::Mean && e.selected) {
        let j: usize = e.target[1..].parse().unwrap(); let i: usize = e.source[1..].parse().unwrap();
        if sup[[j,i]] { tp += 1 } else { fp += 1; if std::env::var("FPS").is_err() { continue; } let a2 = sim.coupling.dot(&sim.coupling); println!("  FP {}->{} t {:.1} effect {:.4} A2 {:.3}", e.source, e.target, e.t, e.effect, a2[[j,i]]); }
    }
    println!("tp {tp} fp {fp}");
    println!("tanh: auroc {:.3} sign {}/{} selected mean {} vol {} bw {:.2} loss {:.3} time {:.1}s", auroc(&s,&l), sign_ok, ntrue,
        inf.selected_count(TestKind::Mean), inf.selected_count(TestKind::Volatility), inf.mean_test.bandwidth, inf.final_loss(), t.elapsed().as_secs_f64());
    if std::env::var("NONULL").is_ok() { return; }
    let mut tot = 0; let mut ps = vec![];
    for seed in 0..4 {
        let sim = null_ar1(30, 1000, 3, 0.95, 0.5, seed).unwrap();
        let panel = Panel::build(&sim.recordings, &PanelConfig::default()).unwrap();
        let inf = infer(&panel, &cfg, &|_| {}).unwrap();
        let m = inf.selected_count(TestKind::Mean); let v = inf.selected_count(TestKind::Volatility);
        tot += m + v;
        let pm: Vec<f64> = inf.edges.iter().filter(|e| e.test == TestKind::Mean).map(|e| e.p).collect();
        let pv: Vec<f64> = inf.edges.iter().filter(|e| e.test == TestKind::Volatility).map(|e| e.p).collect();
        let frac = |p: &Vec<f64>| p.iter().filter(|&&x| x < 0.05).count() as f64 / p.len() as f64;
        println!("null seed {seed}: sel mean {m} vol {v}; frac p<.05 mean {:.3} vol {:.3} bw {:.2}", frac(&pm), frac(&pv), inf.mean_test.bandwidth);
        ps.extend(pm);
    }
    println!("null total selected {tot}; {:.1}s", t.elapsed().as_secs_f64());
}
