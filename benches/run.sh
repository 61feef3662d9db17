#!/bin/bash
# benches/run.sh [SCRIPT...]
#
# The one entry point of the benchmarks: builds the static release plugins and the netns-fixture
# CLI once, runs every benchmark script (or the named ones: loopback, bridge, eni, scale, tasks,
# ipam, ecs-ipam, branch-eni, startup...) one after the other, and collects the FIGURE and POINT
# lines they print (protocol: benches/lib.sh) into
#
#   OUT/figures.txt   one table: figure, ours, peer, floor, ratio, goal, met/missed
#   OUT/figures.md    the same as a Markdown table, with the date, kernel, CPUs and load average
#                     (what the README's figures table is made of)
#   OUT/scale.svg     cost against node size (links, ports, concurrent tasks...): one panel per
#                     plot, hand-written SVG, no dependencies
#   OUT/<script>.log  each script's full output
#
# OUT defaults to benches/out. QUICK=1 runs every script with few iterations (minutes instead of
# tens of minutes; figures noisier). A script that fails is reported in the table and the others
# still run; the exit status is 1 if any failed. SKIP="branch-eni ..." leaves scripts out
# (branch-eni runs inside user-mode-linux and takes longest).
#
# Benchmarks on a shared machine are noisy: every script measures ours, the peer and the floor
# interleaved in the same loop and reports medians; the load average is recorded with the table.
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
OUT=${OUT:-$ROOT/benches/out}
QUICK=${QUICK:-0}
export QUICK

die() { echo "bench-run: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (the benchmarks create network namespaces)"
mkdir -p "$OUT" || die "cannot create $OUT"

if [ $# -gt 0 ]; then
  scripts=("$@")
else
  scripts=()
  for f in "$ROOT"/benches/*.sh; do
    s=$(basename "$f" .sh)
    case $s in lib | run) continue ;; esac
    scripts+=("$s")
  done
fi
for s in ${SKIP:-}; do
  for k in "${!scripts[@]}"; do [ "${scripts[$k]}" = "$s" ] && unset 'scripts[k]'; done
done

echo "bench-run: building the release plugins and the fixture CLI" >&2
REL=$(release_dir loopback ipam bridge eni branch-eni) || die "cargo xtask release failed"
need_fixture || die "cannot build the netns-fixture CLI"
export OURS_DIR=$REL FIXTURE

# per-script environment: our binary, and fewer iterations with QUICK=1
script_env() {
  local s=$1 q=$QUICK
  case $s in
    loopback) echo "OURS=$REL/loopback $([ "$q" = 1 ] && echo N=60)" ;;
    bridge) echo "OURS=$REL/bridge $([ "$q" = 1 ] && echo N=15 GO_DS_N=3)" ;;
    eni) echo "OURS=$REL/eni $([ "$q" = 1 ] && echo N=10)" ;;
    branch-eni) echo "OURS=$REL/branch-eni $([ "$q" = 1 ] && echo N=8)" ;;
    ipam | ecs-ipam) echo "OURS=$REL/ipam $([ "$q" = 1 ] && echo N=30)" ;;
    startup) echo "BIN_DIR=$REL $([ "$q" = 1 ] && echo N=60)" ;;
    *) echo "OURS_DIR=$REL" ;;
  esac
}

START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
: > "$OUT/lines"
failed=()
for s in "${scripts[@]}"; do
  f=$ROOT/benches/$s.sh
  [ -f "$f" ] || { echo "bench-run: no benches/$s.sh" >&2; failed+=("$s"); continue; }
  echo "bench-run: $s (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  read -ra envs <<< "$(script_env "$s")"
  if env "${envs[@]}" bash "$f" > "$OUT/$s.log" 2>&1; then
    n=$(grep -c '^FIGURE|' "$OUT/$s.log")
    echo "bench-run: $s done, $n figure(s)" >&2
  else
    echo "bench-run: $s FAILED (see $OUT/$s.log):" >&2
    tail -n 5 "$OUT/$s.log" | sed 's/^/  /' >&2
    failed+=("$s")
  fi
  grep -E '^(FIGURE|POINT)\|' "$OUT/$s.log" | sed "s/^/$s|/" >> "$OUT/lines"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table ------------------------------------------------------------------------------------
{
  printf 'benchmarks of %s, %s, kernel %s, %s CPUs, load average %s at the start, %s at the end%s\n' \
    "$START" "$([ "$QUICK" = 1 ] && echo "QUICK=1 (few iterations)" || echo "full iterations")" \
    "$(uname -r)" "$(nproc)" "$LOAD_START" "$LOAD_END" ""
  awk -F'|' '
    BEGIN { printf "%-62s %10s %10s %10s %7s %-16s %s\n", "figure", "ours", "peer", "floor", "ratio", "goal", "met" }
    $2 == "FIGURE" { printf "%-62s %10s %10s %10s %7s %-16s %s\n", $4 " (" $5 ")", $6, $7, $8, $9, $10, $11 }
  ' "$OUT/lines"
  for s in "${failed[@]}"; do printf '%-62s FAILED (see %s.log)\n' "benches/$s.sh" "$s"; done
  for s in "${scripts[@]}"; do
    grep -q "^$s|FIGURE|" "$OUT/lines" || [[ " ${failed[*]} " == *" $s "* ]] ||
      printf '%-62s printed no FIGURE lines (see %s.log)\n' "benches/$s.sh" "$s"
  done
} > "$OUT/figures.txt"
{
  printf 'Measured %s with `benches/run.sh`%s on kernel %s, %s CPUs shared with other work (load average %s at the start, %s at the end); medians.\n\n' \
    "$START" "$([ "$QUICK" = 1 ] && echo " (QUICK=1)")" "$(uname -r)" "$(nproc)" "$LOAD_START" "$LOAD_END"
  echo '| figure | unit | ours | peer (Go) | floor | ratio | goal | met |'
  echo '|---|---|---:|---:|---:|---:|---|---|'
  awk -F'|' '$2 == "FIGURE" { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $4, $5, $6, $7, $8, $9, $10, $11 }' "$OUT/lines"
} > "$OUT/figures.md"

# --- the plot -------------------------------------------------------------------------------------
awk -F'|' '
  function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
  $2 == "POINT" {
    p = $3
    if (!(p in seen)) { seen[p] = 1; order[++np] = p; xname[p] = $4; unit[p] = $8 }
    k = p SUBSEP $6
    if (!(k in sseen)) { sseen[k] = 1; ns[p]++; sname[p, ns[p]] = $6 }
    n = ++cnt[k]; px[k, n] = $5 + 0; py[k, n] = $7 + 0
    if (!(p in xmin) || $5 + 0 < xmin[p]) xmin[p] = $5 + 0
    if (!(p in xmax) || $5 + 0 > xmax[p]) xmax[p] = $5 + 0
    if (!(p in ymin) || $7 + 0 < ymin[p]) ymin[p] = $7 + 0
    if (!(p in ymax) || $7 + 0 > ymax[p]) ymax[p] = $7 + 0
  }
  END {
    W = 460; H = 280; L = 60; R = 110; T = 36; B = 44; cols = 2
    color["ours"] = "#1f77b4"; color["go"] = "#d62728"; color["floor"] = "#7f7f7f"
    extra[1] = "#2ca02c"; extra[2] = "#9467bd"; extra[3] = "#ff7f0e"
    rows = int((np + cols - 1) / cols); if (rows < 1) rows = 1
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", cols * W, rows * H + 24
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    printf "<text x=\"8\" y=\"16\" font-size=\"13\">%s</text>\n", esc(title)
    if (np == 0) printf "<text x=\"20\" y=\"60\">no POINT lines</text>\n"
    for (i = 1; i <= np; i++) {
      p = order[i]; ox = ((i - 1) % cols) * W; oy = 24 + int((i - 1) / cols) * H
      pw = W - L - R; ph = H - T - B
      y0 = (ymin[p] < 0) ? ymin[p] : 0; y1 = ymax[p]; if (y1 <= y0) y1 = y0 + 1; y1 = y1 * 1.1
      x0 = xmin[p]; x1 = xmax[p]; if (x1 <= x0) { x0 = x0 - 1; x1 = x1 + 1 }
      printf "<g transform=\"translate(%d,%d)\">\n", ox, oy
      printf "<text x=\"%d\" y=\"18\" font-size=\"12\" font-weight=\"bold\">%s</text>\n", L, esc(p)
      printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T + ph, L + pw, T + ph
      printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T, L, T + ph
      for (t = 0; t <= 4; t++) {
        yv = y0 + (y1 - y0) * t / 4; yy = T + ph - ph * t / 4
        printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, yy, L + pw, yy
        printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", L - 4, yy + 4, yv
        xv = x0 + (x1 - x0) * t / 4; xx = L + pw * t / 4
        printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.4g</text>\n", xx, T + ph + 14, xv
      }
      if (y0 < 0) { yz = T + ph - ph * (0 - y0) / (y1 - y0); printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\" stroke-dasharray=\"3,3\"/>\n", L, yz, L + pw, yz }
      printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", L + pw / 2, T + ph + 32, esc(xname[p])
      printf "<text transform=\"translate(14,%d) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", T + ph / 2, esc(unit[p])
      e = 0
      for (s = 1; s <= ns[p]; s++) {
        name = sname[p, s]; k = p SUBSEP name
        c = (name in color) ? color[name] : extra[(e++ % 3) + 1]
        # sort the points of the series by x (insertion sort: a handful of points)
        m = cnt[k]
        for (a = 1; a <= m; a++) { sx[a] = px[k, a]; sy[a] = py[k, a] }
        for (a = 2; a <= m; a++) { vx = sx[a]; vy = sy[a]; b = a - 1
          while (b >= 1 && sx[b] > vx) { sx[b + 1] = sx[b]; sy[b + 1] = sy[b]; b-- }
          sx[b + 1] = vx; sy[b + 1] = vy }
        pts = ""
        for (a = 1; a <= m; a++) {
          xx = L + pw * (sx[a] - x0) / (x1 - x0); yy = T + ph - ph * (sy[a] - y0) / (y1 - y0)
          pts = pts sprintf("%.1f,%.1f ", xx, yy)
          printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s %s=%s: %s %s</title></circle>\n", xx, yy, c, esc(name), esc(xname[p]), sx[a], sy[a], esc(unit[p])
        }
        if (m > 1) printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", pts, c
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n", L + pw + 10, T + 10 + 16 * s, L + pw + 28, T + 10 + 16 * s, c
        printf "<text x=\"%d\" y=\"%d\">%s</text>\n", L + pw + 32, T + 14 + 16 * s, esc(name)
      }
      printf "</g>\n"
    }
    printf "</svg>\n"
  }
' title="cost against node size ($START, load average $LOAD_START .. $LOAD_END)" "$OUT/lines" > "$OUT/scale.svg"

cat "$OUT/figures.txt"
echo "bench-run: table in $OUT/figures.txt and $OUT/figures.md, plot in $OUT/scale.svg, logs in $OUT/*.log" >&2
[ ${#failed[@]} -eq 0 ]
