-- wrk script: after the run, prints one machine-readable line that run.sh parses.
--   BENCH requests=<n> seconds=<s> rps=<req/s> p50_ms=<ms> p90_ms=<ms> p99_ms=<ms> max_ms=<ms>
--         http_errors=<responses with status >= 400> socket_errors=<connect+read+write+timeout>
-- Headers (Authorization) are passed with wrk's -H, so this script only reports.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f http_errors=%d socket_errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
