#!/usr/bin/env bash
# Opening time of HTML reports in headless Chromium (docs/report.md, "Size and opening time"):
# each page is loaded in an iframe of a timer page that reports when the page has loaded and
# rendered its first frame (open_ms); pages alternate over ROUNDS rounds; prints each page's
# median. Chromium's own start-up is not counted.
#
#   tools/bench/report_open_time.sh ROUNDS PAGE.html [PAGE2.html ...]
set -euo pipefail
rounds=${1:?rounds}
shift
timer=$(mktemp --suffix=.html)
trap 'rm -f "$timer"' EXIT
cat > "$timer" <<'HTML'
<!DOCTYPE html><html><body><div id="t">pending</div><iframe id="f" style="width:1400px;height:900px"></iframe>
<script>var t0=performance.now(),f=document.getElementById('f');f.onload=function(){var n=f.contentDocument.querySelectorAll('tr').length;
requestAnimationFrame(function(){document.getElementById('t').textContent='open_ms='+(performance.now()-t0).toFixed(0)+' rows='+n;});};
f.src=location.hash.slice(1);</script></body></html>
HTML
declare -A all
for ((r = 0; r < rounds; r++)); do
  for page in "$@"; do
    ms=$(chromium --headless --no-sandbox --disable-gpu --allow-file-access-from-files --virtual-time-budget=60000 \
           --dump-dom "file://$timer#file://$(realpath "$page")" 2>/dev/null | grep -o 'open_ms=[0-9]*' | cut -d= -f2)
    all[$page]+=" ${ms:-NaN}"
  done
done
for page in "$@"; do
  med=$(echo "${all[$page]}" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
  printf '%s: %s bytes, open_ms median %s (runs:%s)\n' "$page" "$(stat -c %s "$page")" "$med" "${all[$page]}"
done
