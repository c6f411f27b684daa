-- wrk script: POST one fixed chat completion request; print a JSON summary line at the end.
--
-- Environment:
--   BENCH_BODY     request body (JSON); default: a small non-streaming chat request
--   BENCH_API_KEY  sent as "Authorization: Bearer <key>" when set and not empty
--   BENCH_PATH     request path; default /v1/chat/completions
--
-- The summary is one line starting with "BENCH_JSON " (latencies in microseconds).
-- wrk counts responses with status > 399 as errors.status; connect/read/write/timeout are
-- socket errors.

local default_body = '{"model":"bench-model","messages":[{"role":"user","content":'
  .. '"What color is the sky?"}],"max_tokens":16}'

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
wrk.body = os.getenv("BENCH_BODY") or default_body
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_API_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  ))
end
