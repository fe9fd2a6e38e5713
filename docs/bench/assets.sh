#!/usr/bin/env bash
# Bytes on the wire for the portal's home page: a first visit (HTML and every asset it links) and a
# repeat visit (hashed assets are immutable, so the browser does not ask for them again; the favicon,
# at its legacy URL, is revalidated with If-None-Match and gets a 304).
# Needs: curl, and the site built (`cargo leptos build --release`, or `--frontend-only` for target/site
# with a server binary built otherwise: set COUNTERSIGN=path/to/countersign).
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNTERSIGN=${COUNTERSIGN:-target/release/countersign}
SITE=${SITE:-target/site}
ENCODING=${ENCODING:-br, gzip}   # what a browser sends (Chrome: "gzip, deflate, br, zstd")
data=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$data"' EXIT

"$COUNTERSIGN" serve --data-dir "$data" --policies policies --namespaces deploy/local-namespaces.yaml \
  --site-root "$SITE" --listen 127.0.0.1:3901 --webhook-listen 127.0.0.1:9845 \
  --public-url http://localhost:3901 >"$data/serve.log" 2>&1 &
for _ in $(seq 1 300); do grep -q '^ready$' "$data/serve.log" 2>/dev/null && break; sleep 0.1; done
sleep "${WARMUP:-20}"   # brotli of the wasm is made in the background after start-up
base=http://127.0.0.1:3901

# One GET: prints "<body bytes on the wire> <header bytes> <status> <content-encoding>".
get() { # url [extra curl args...]
  local url=$1; shift
  curl -s -o /dev/null -H "Accept-Encoding: $ENCODING" "$@" \
    -w '%{size_download} %{size_header} %{http_code} %header{content-encoding}\n' "$url"
}

html=$(curl -s -H 'Accept: text/html' "$base/")
# Files only (a name with an extension), not links to other pages.
mapfile -t urls < <(grep -oE '(href|src)="/[^"]+\.[a-z0-9]+"' <<<"$html" | sed -E 's/^[a-z]+="//; s/"$//' | sort -u)
# The wasm is fetched by the hydration script, not linked by an attribute (only preloaded).
wasm=$(grep -oE '"/assets/[0-9a-f]+/pkg/[^"]+\.wasm"' <<<"$html" | tr -d '"' | head -1 || true)
[[ -n "$wasm" && ! " ${urls[*]} " =~ " $wasm " ]] && urls+=("$wasm")

total=0
headers=0
printf '%-58s %9s %9s %6s %s\n' "first visit" "body" "identity" "status" "coding"
read -r b h s e < <(get "$base/" -H 'Accept: text/html')
printf '%-58s %9s %9s %6s %s\n' "/" "$b" "-" "$s" "${e:--}"
total=$((total + b)); headers=$((headers + h))
for u in "${urls[@]}"; do
  read -r b h s e < <(get "$base$u")
  identity=$(curl -s -o /dev/null -w '%{size_download}' "$base$u")
  printf '%-58s %9s %9s %6s %s\n' "$u" "$b" "$identity" "$s" "${e:--}"
  total=$((total + b)); headers=$((headers + h))
done
echo "first visit: $total body bytes + $headers header bytes"

# Repeat visit: the page again, and a conditional request for every URL that is not immutable.
rtotal=0
rheaders=0
read -r b h s e < <(get "$base/" -H 'Accept: text/html')
rtotal=$((rtotal + b)); rheaders=$((rheaders + h))
for u in "${urls[@]}"; do
  cache=$(curl -s -o /dev/null -H "Accept-Encoding: $ENCODING" -w '%header{cache-control}' "$base$u")
  if [[ "$cache" == *immutable* ]]; then
    continue   # served from the browser cache without a request
  fi
  etag=$(curl -s -o /dev/null -H "Accept-Encoding: $ENCODING" -w '%header{etag}' "$base$u")
  read -r b h s e < <(get "$base$u" -H "If-None-Match: $etag")
  printf 'repeat %-51s %9s %6s\n' "$u" "$b" "$s"
  rtotal=$((rtotal + b)); rheaders=$((rheaders + h))
done
echo "repeat visit: $rtotal body bytes + $rheaders header bytes (hashed assets not requested)"
