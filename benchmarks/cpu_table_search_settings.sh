# The CPU-table search of issue 5's experiments (sourced, not run): the demo's synthetic data and
# CPU latency table, an 8-layer F=4 space, one schedule, and the FPS windows tried with it.
# Needs DATA, LUT and OUT; sets the array `common` (search arguments) and one array per window.
# Windows in table FPS at 128x256: random students of this space span about 226-414 FPS (median
# 305; all skips at width 1/2: 546). [300, 360] was meant to be near what accuracy alone picks
# (it picked ~366: the latency term cannot slow a network down); the others need the latency
# term to push.
SLOW=(--set "search.fps_min={student: 300.0}" --set "search.fps_max={student: 360.0}")
MID=(--set "search.fps_min={student: 340.0}" --set "search.fps_max={student: 385.0}")
FAST=(--set "search.fps_min={student: 380.0}" --set "search.fps_max={student: 440.0}")
FASTER=(--set "search.fps_min={student: 460.0}" --set "search.fps_max={student: 560.0}")
common=(--config configs/search/tiny.yaml --data "synth:$DATA" --lut "$LUT" --out-dir "$OUT" --threads 1
        --set "latency_size=[128, 256]" --set supernet.layers=8
        --set pretrain.epochs=5 --set pretrain.iters_per_epoch=20
        --set search.epochs=20 --set search.iters_per_epoch=20 --set search.val_limit=20)
