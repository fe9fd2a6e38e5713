#!/usr/bin/env bash
# Webhook throughput over TLS with keep-alive, Countersign against a bare axum handler that only
# parses the review and echoes an allow, in the same run on the same machine.
# Needs: wrk (Debian), `.ci/site` and `cargo build --release -p server --bin countersign` done, and the example built:
#   cargo build --release -p server --example bare_webhook
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
# COUNTERSIGN_BIN=path runs another build (an older commit's, for a head-to-head) on the same rows.
# SERVE_ARGS adds flags to `serve` (`SERVE_ARGS="--traffic-days 0"`: the rows without recording traffic).
# SWAP_EVERY=0.1 edits a copy of the guardrail files that often during the runs, so every row runs
# while files mode reloads and swaps the snapshot (at most every 0.5 s).
data=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$data"' EXIT

policies=policies
if [ -n "${SWAP_EVERY:-}" ]; then
  cp -r policies "$data/policies"
  policies="$data/policies"
  (while sleep "$SWAP_EVERY"; do echo "# swap $(date +%s%N)" >>"$policies/library/images.yaml"; done) &
fi
"${COUNTERSIGN_BIN:-target/release/countersign}" serve --data-dir "$data" --policies "$policies" --namespaces deploy/local-namespaces.yaml \
  --listen 127.0.0.1:3900 --webhook-listen 127.0.0.1:9843 --public-url http://localhost:3900 ${SERVE_ARGS:-} >"$data/serve.log" 2>&1 &
target/release/examples/bare_webhook 127.0.0.1:9844 "$data/bare-tls" >"$data/bare.log" 2>&1 &
for _ in $(seq 1 100); do
  grep -q '^ready$' "$data/serve.log" 2>/dev/null && grep -q 'bare webhook' "$data/bare.log" 2>/dev/null && break
  sleep 0.1
done

run() { # label url review
  echo "== $1 ($3)"
  REVIEW="$3" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s docs/bench/admit.lua "$2" \
    | grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx'
}

run "bare axum echo" https://127.0.0.1:9844/k8s/admit server/tests/reviews/deployment-create.json
run "countersign, no guardrail matches" https://127.0.0.1:9843/k8s/admit server/tests/reviews/widget-create.json
run "countersign, library guardrails evaluated (CEL), allowed" https://127.0.0.1:9843/k8s/admit server/tests/reviews/deployment-create.json
run "countersign, step-up without grant (exec into payments: challenge)" https://127.0.0.1:9843/k8s/admit server/tests/reviews/pod-exec.json
# A Deployment as Helm renders it (3 containers, 20 env vars each, probes, resources; 8.6 KB object,
# 17.9 KB review with oldObject): what issue 16 measures CEL on.
run "countersign, Helm-sized Deployment update in dev, library CEL, allowed" https://127.0.0.1:9843/k8s/admit server/tests/reviews/deployment-update-helm.json
# The unmatched rows before the recorded ones: the decision log's writer works through the recorded
# rows' backlog after they end, on the same two cores.
# The unmatched row of the same size, for the ratios issue 16 asks for: a ConfigMap of ~18 KB.
run "countersign, Helm-sized review no guardrail matches" https://127.0.0.1:9843/k8s/admit server/tests/reviews/configmap-update-large.json
# The same Deployment body as a custom resource no guardrail matches: the same bytes to parse (a
# ConfigMap's few long strings parse faster than a Deployment's many small maps), so the ratio of
# the Helm-sized rows to this one is what the guardrails cost.
run "countersign, Helm-sized Deployment body as a Widget, no guardrail matches" https://127.0.0.1:9843/k8s/admit server/tests/reviews/widget-update-helm-sized.json
# The same with `:latest` images: the images warn guardrail matches and every review is recorded.
run "countersign, Helm-sized Deployment update in dev, :latest, warned and recorded" https://127.0.0.1:9843/k8s/admit server/tests/reviews/deployment-update-helm-latest.json
# The same in prod-eu: prod-workloads asks for step-up (the open challenge answered from memory).
run "countersign, Helm-sized Deployment update in prod-eu, challenged" https://127.0.0.1:9843/k8s/admit server/tests/reviews/deployment-update-helm-prod.json
if [ -n "${SWAP_EVERY:-}" ]; then
  echo "guardrail swaps during the runs: $(grep -c 'guardrails reloaded' "$data/serve.log")"
fi
echo "RSS of countersign after the runs: $(grep VmRSS /proc/$(pgrep -f "countersign serve --data-dir $data" | head -1)/status)"
