#!/bin/bash
# Incremental watch tick vs plain backup of the same 1% day, sample agent scale 50.
set -e
cd "${1:?usage: bench_watch.sh DIR (holding a sample agent in DIR/agent)}"
S=${SNAPSTORE:-snapstore}
rm -rf repoW repoB; $S init -r repoW >/dev/null; $S init -r repoB >/dev/null
( $S -r repoW watch --config agent/mirix.yaml --interval 1h --json > watch.out 2> watch.err & echo $! > watch.pid )
until [ -s watch.out ]; do sleep 0.2; done
/usr/bin/time -f "initial backup wall %e s, user %U s, sys %S s, maxrss %M KB" $S -r repoB backup --config agent/mirix.yaml --json > b0.json
for i in 1 2 3; do
  $S sample-agent agent --mutate 0.01 --seed $(( $(date +%s) * 10 + i ))
  n=$(wc -l < watch.out); kill -USR1 $(cat watch.pid)
  until [ $(wc -l < watch.out) -gt $n ]; do sleep 0.1; done
  /usr/bin/time -f "round $i backup wall %e s, user %U s, sys %S s, maxrss %M KB" $S -r repoB backup --config agent/mirix.yaml --json > b$i.json
  python3 -c "import json;d=json.load(open('b$i.json'));print('round $i backup duration_s',d['duration_s'],'added_bytes',d['added_bytes'])"
done
kill -TERM $(cat watch.pid); sleep 2
python3 - <<'P'
import json
for line in open('watch.out'):
    d = json.loads(line)
    print('watch', d['capture'], 'pages_read', d['pages_read'], 'of', d['page_count'], 'tick_s', d['tick_s'], 'duration_s', d.get('duration_s'), 'added_bytes', d.get('added_bytes'))
P
