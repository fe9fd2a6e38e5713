-- wrk script: POST one real AdmissionReview to /k8s/admit, over and over (keep-alive).
-- Usage: wrk -t2 -c32 -d20s --latency -s docs/bench/admit.lua https://127.0.0.1:8443/k8s/admit
-- REVIEW=path/to/review.json selects the payload (default: an unguarded Deployment update).
local path = os.getenv("REVIEW") or "server/tests/reviews/deployment-create.json"
local f = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
