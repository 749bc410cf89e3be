#!/usr/bin/env bash
# Regenerates every run kept in notebooks-out/ with the current build, in one go:
# the default circuit (same-frame pairs and lag 1), the lagged-correlation baseline and the
# lag-resolved run on
# datasets/dag2023, their connectome reports (Cook et al. 2019, cell and class level)
# and figures. The benchmark tables come from `sbtg bench` (see docs/benchmark.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p sbtg-cli
sbtg=target/release/sbtg
si5="datasets/connectomes/SI 5 Connectome adjacency matrices, corrected July 2020.xlsx"
si7="datasets/connectomes/SI 7 Cell class connectome adjacency matrices, corrected July 2020.xlsx"
reversal=AVAL,AVAR,AVEL,AVER,RIML,RIMR,AIBL,AIBR,AVDL,AVDR

"$sbtg" infer datasets/dag2023 --out notebooks-out/dag2023 --force
"$sbtg" infer datasets/dag2023 --method lagged-correlation --out notebooks-out/dag2023-lagcorr --force
"$sbtg" infer datasets/dag2023 --method partial-correlation --out notebooks-out/dag2023-partialcorr --force
"$sbtg" infer datasets/dag2023 --method prewhitened-correlation --out notebooks-out/dag2023-prewhitened --force
"$sbtg" infer datasets/dag2023 --lags 1,2,3 --out notebooks-out/dag2023-lags --force
# The default circuit's reports carry the two correlation baselines beside it, with the
# paired worm-bootstrap difference of AUROC.
beside=(--beside notebooks-out/dag2023-lagcorr --beside notebooks-out/dag2023-prewhitened
    --beside notebooks-out/dag2023-partialcorr)
for run in dag2023 dag2023-lagcorr dag2023-prewhitened dag2023-partialcorr dag2023-lags; do
    extra=()
    [ "$run" = dag2023 ] && extra=("${beside[@]}")
    "$sbtg" compare "notebooks-out/$run" --connectome "$si5" "${extra[@]}" --force
    "$sbtg" compare "notebooks-out/$run" --connectome "$si7" "${extra[@]}" --force
done
# The same-frame pairs (lag 0) of the default runs, scored undirected.
for run in dag2023 dag2023-lagcorr dag2023-prewhitened dag2023-partialcorr; do
    extra=()
    [ "$run" = dag2023 ] && extra=("${beside[@]}")
    "$sbtg" compare "notebooks-out/$run" --lag 0 --connectome "$si5" "${extra[@]}" --force
    "$sbtg" compare "notebooks-out/$run" --lag 0 --connectome "$si7" "${extra[@]}" --force
done
# Worms as the unit: random-effects pooling of the recordings, each worm held out from the
# models that test it (--fold-by recordings), with the energy trained from the random start
# and the theoretical null, as docs/benchmark.md measured it.
"$sbtg" infer datasets/dag2023 --pooling random-effects --fold-by recordings \
    --start random --past 2 --patience 0 --null theoretical --same-frame precision --out notebooks-out/dag2023-random-effects --force
"$sbtg" compare notebooks-out/dag2023-random-effects --connectome "$si5" --force
"$sbtg" compare notebooks-out/dag2023-random-effects --lag 0 --connectome "$si5" --force
# Per-state and differential edges, reversals against forward locomotion, with whole worms
# held out and the energy trained from the random start with the theoretical null (as
# docs/method.md §9 measured them): the all-window circuit
# plus the state family. The shifted-labels twin tests the
# differential tests' level on these recordings: the behaviour columns circularly shifted by
# half a recording within each worm (bout structure kept, link to the neurons broken).
"$sbtg" infer datasets/dag2023 --states 'reversal_vec>0' --state-names reversal,forward \
    --fold-by recordings --start random --past 2 --patience 0 --null theoretical --same-frame precision --out notebooks-out/dag2023-states --force
"$sbtg" plot notebooks-out/dag2023-states --force
for state in reversal forward; do
    for lag in 0 1; do
        "$sbtg" compare notebooks-out/dag2023-states --state "$state" --lag "$lag" \
            --connectome "$si5" --force
    done
done
# A model per state (--state-model separate): its summary compares held-out losses.
"$sbtg" infer datasets/dag2023 --states 'reversal_vec>0' --state-names reversal,forward \
    --state-model separate --fold-by recordings --start random --past 2 --patience 0 --null theoretical --same-frame precision \
    --out notebooks-out/dag2023-states-separate --force
shifted=$(mktemp -d)
python3 scripts/shift_behaviour.py datasets/dag2023 "$shifted"
"$sbtg" infer "$shifted" --states 'reversal_vec>0' --state-names reversal,forward \
    --fold-by recordings --start random --past 2 --patience 0 --null theoretical --same-frame precision --out notebooks-out/dag2023-states-shifted --force
rm -rf "$shifted"
# figures/circuit_view.png: the reversal command interneurons only;
# figures/classes/circuit_view.png: the same, left/right merged into classes.
"$sbtg" plot notebooks-out/dag2023-lags --neurons "$reversal" --force
"$sbtg" plot notebooks-out/dag2023-lags --neurons AVA,AVE,RIM,AIB,AVD --classes \
    --out notebooks-out/dag2023-lags/figures/classes --force
