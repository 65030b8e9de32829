#!/usr/bin/env bash
# HTTP benchmark (not a test): a throwaway callplane on loopback, then wrk against
#   GET /healthz        no auth, no database: the HTTP layer's floor
#   GET /v1/users/me    Bearer token (EdDSA JWT verify) + one PostgreSQL query
# with the same wrk settings for both, and their ratio (me / healthz) from the same run, since
# absolute numbers on a small shared machine move from run to run.
#
#   bash scripts/bench/http/run.sh            (npm run bench:http)
#
# Settings (environment; CALLPLANE_BENCH_* is ignored by the server's config loader):
#   CALLPLANE_BENCH_THREADS        wrk threads                       (default 1)
#   CALLPLANE_BENCH_CONNECTIONS    wrk connections                   (default 50)
#   CALLPLANE_BENCH_DURATION       measured run per endpoint         (default 10s)
#   CALLPLANE_BENCH_WARMUP         unmeasured run per endpoint first (default 3s; 0 skips)
#   CALLPLANE_BENCH_ROUNDS         healthz+me pairs to measure       (default 1)
#   CALLPLANE_BENCH_READY_TIMEOUT  seconds to wait for /readyz 200   (default 120)
#   CALLPLANE_BENCH_MEDIA_WORKERS  mediasoup workers of the server   (default 1, leaving cores to the load)
# Other CALLPLANE_* variables reach the server as usual (e.g. CALLPLANE_DATABASE_POOL_SIZE).
# The server always gets a fresh temp data dir with the embedded PostgreSQL (DATABASE_URL,
# CALLPLANE_CONFIG and CALLPLANE_API_KEY are cleared), loopback-only free ports, log level warn.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

threads="${CALLPLANE_BENCH_THREADS:-1}"
connections="${CALLPLANE_BENCH_CONNECTIONS:-50}"
duration="${CALLPLANE_BENCH_DURATION:-10s}"
warmup="${CALLPLANE_BENCH_WARMUP:-3s}"
rounds="${CALLPLANE_BENCH_ROUNDS:-1}"
ready_timeout="${CALLPLANE_BENCH_READY_TIMEOUT:-120}"
media_workers="${CALLPLANE_BENCH_MEDIA_WORKERS:-1}"

die() {
  echo "bench: $*" >&2
  exit 1
}

for tool in wrk curl node awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install wrk curl)"
done
[[ -f "$root/node_modules/.bin/tsx" ]] || die "node_modules is missing; run: npm run setup"

# ---------------------------------------------------------------------------------------------
# Server lifecycle

work="$(mktemp -d /tmp/callplane-bench.XXXXXX)"
# As root the embedded PostgreSQL runs as the postgres user, which must traverse the data dir.
chmod 0755 "$work"
data_dir="$work/data"
server_log="$work/server.log"
server_pid=""
server_exit=""

server_gone() {
  # A child that exited stays a zombie until reaped: count that as gone.
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [[ -z "$state" || "$state" == Z* ]]
}

stop_server() {
  [[ -n "$server_pid" ]] || return 0
  local pid="$server_pid"
  server_pid=""
  if ! server_gone "$pid"; then
    local started=$SECONDS
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
      server_gone "$pid" && break
      sleep 0.1
    done
    if ! server_gone "$pid"; then
      echo "bench: server did not stop within 30 s of SIGTERM; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "server stopped after SIGTERM in $((SECONDS - started)) s"
  fi
  server_exit=0
  wait "$pid" 2>/dev/null || server_exit=$?
  # An embedded PostgreSQL left behind by a server that did not shut down cleanly.
  local pidfile="$data_dir/postgres/postmaster.pid"
  if [[ -f "$pidfile" ]]; then
    local pg_pid
    pg_pid="$(head -n 1 "$pidfile")"
    # Only a postgres serving this run's data dir (the pid file may be stale and the pid reused).
    if [[ "$pg_pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pg_pid/cmdline" 2>/dev/null | grep -qF -- "-D $data_dir/postgres"; then
      echo "bench: embedded PostgreSQL (pid $pg_pid) still running after the server stopped; stopping it" >&2
      kill -INT "$pg_pid" 2>/dev/null || true
      for _ in $(seq 1 100); do
        kill -0 "$pg_pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
  fi
}

cleanup() {
  local status=$?
  trap - EXIT
  stop_server || true
  if [[ "$status" != 0 && -s "$server_log" ]]; then
    echo "bench: failed (exit $status); server exit code ${server_exit:-?}; the server's log:" >&2
    tail -n 50 "$server_log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'echo "bench: terminated" >&2; exit 143' TERM

read -r http_port pg_port media_base < <(node "$here/../lib/free-ports.mjs" 2 "$media_workers")
[[ -n "${media_base:-}" ]] || die "could not pick free ports"
base="http://127.0.0.1:$http_port"

cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)"
echo "machine: $(nproc) cores ($cpu_model), Debian $(cat /etc/debian_version 2>/dev/null || echo '?'), kernel $(uname -r)"
echo "node $(node --version), $(wrk --version 2>&1 | head -n 1 | awk '{ print $1, $2 }')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: -t$threads -c$connections -d$duration (warm-up $warmup per endpoint), rounds: $rounds"
echo "server: $base, embedded PostgreSQL on 127.0.0.1:$pg_port, $media_workers media worker(s) at $media_base, data dir $data_dir"

cd "$root"
env -u DATABASE_URL -u CALLPLANE_CONFIG -u CALLPLANE_API_KEY \
  CALLPLANE_DATA_DIR="$data_dir" \
  CALLPLANE_HTTP_HOST=127.0.0.1 \
  CALLPLANE_HTTP_PORT="$http_port" \
  CALLPLANE_DATABASE_EMBEDDED_PORT="$pg_port" \
  CALLPLANE_MEDIA_WORKERS="$media_workers" \
  CALLPLANE_MEDIA_PORT_BASE="$media_base" \
  CALLPLANE_MEDIA_LISTEN_IP=127.0.0.1 \
  CALLPLANE_LOG_LEVEL=warn \
  CALLPLANE_LOG_PRETTY=false \
  node bin/callplane.js serve >"$server_log" 2>&1 &
server_pid=$!

started=$SECONDS
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/readyz" || true)" == "200" ]]; do
  # On failure the EXIT trap prints the server's log.
  server_gone "$server_pid" && die "the server exited before it was ready"
  if ((SECONDS - started >= ready_timeout)); then
    echo "bench: /readyz not 200 after ${ready_timeout} s; its last answer:" >&2
    curl -s --max-time 5 "$base/readyz" >&2 || true
    echo >&2
    exit 1
  fi
  sleep 0.25
done
echo "server ready in $((SECONDS - started)) s (pid $server_pid)"

# ---------------------------------------------------------------------------------------------
# A user and an access token

api_key_file="$data_dir/keys/api-key"
[[ -s "$api_key_file" ]] || die "no API key at $api_key_file"
api_key="$(cat "$api_key_file")"

json_field() {
  # json_field <dotted path>: reads JSON on stdin, prints the field or fails.
  node -e '
    let text = "";
    process.stdin.on("data", (c) => (text += c)).on("end", () => {
      let value = JSON.parse(text);
      for (const key of process.argv[1].split(".")) value = value?.[key];
      if (typeof value !== "string") { console.error("missing " + process.argv[1] + " in " + text); process.exit(1); }
      console.log(value);
    });' "$1"
}

user_id="$(curl -sf --max-time 10 -X POST "$base/v1/users" -H "X-Api-Key: $api_key" -H 'Content-Type: application/json' \
  -d '{"display_name":"Bench User"}' | json_field user.id)" || die "POST /v1/users failed"
token="$(curl -sf --max-time 10 -X POST "$base/v1/auth/token" -H "X-Api-Key: $api_key" -H 'Content-Type: application/json' \
  -d "{\"user_id\":\"$user_id\"}" | json_field access_token)" || die "POST /v1/auth/token failed"
me_status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$base/v1/users/me" -H "Authorization: Bearer $token")"
[[ "$me_status" == "200" ]] || die "GET /v1/users/me answered $me_status, not 200"
echo "user $user_id, token minted, /v1/users/me answers 200"

# ---------------------------------------------------------------------------------------------
# Load

clk_tck="$(getconf CLK_TCK)"
server_cpu_ticks() {
  # utime + stime of the server process (all its threads), in clock ticks.
  [[ -r "/proc/$server_pid/stat" ]] && ! server_gone "$server_pid" || die "the server (pid $server_pid) is gone"
  awk '{ print $14 + $15 }' "/proc/$server_pid/stat"
}
pg_cpu_ticks() {
  # CPU ticks of the embedded PostgreSQL: the postmaster's own and its reaped children's
  # (backends that have exited, e.g. pool connections closed when idle), plus live children's.
  local pm
  pm="$(head -n 1 "$data_dir/postgres/postmaster.pid" 2>/dev/null || true)"
  [[ "$pm" =~ ^[0-9]+$ && -r "/proc/$pm/stat" ]] || { echo 0; return; }
  local total pid ticks
  total="$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")"
  for pid in $(ps -o pid= --ppid "$pm" 2>/dev/null); do
    ticks="$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)"
    total=$((total + ticks))
  done
  echo "$total"
}
percent() {
  # percent <ticks> <nanoseconds>: CPU time as a share of one core over the wall time.
  awk -v t="$1" -v hz="$clk_tck" -v ns="$2" 'BEGIN { printf "%.0f", 100 * (t / hz) / (ns / 1e9) }'
}

# run_wrk <name> <path> [wrk args...]: sets BENCH_<field> variables from report.lua's line.
run_wrk() {
  local name="$1" path="$2"
  shift 2
  local before after pg_before pg_after started_ns ended_ns out line
  before="$(server_cpu_ticks)"
  pg_before="$(pg_cpu_ticks)"
  started_ns="$(date +%s%N)"
  # bash's `time` reports wrk's own CPU (user and system seconds) on the WRKCPU line.
  out="$( { TIMEFORMAT='WRKCPU %U %S'; time wrk -t"$threads" -c"$connections" -d"$duration" --timeout 5s -s "$here/report.lua" "$@" "$base$path"; } 2>&1)" ||
    die "wrk failed for $path: $out"
  ended_ns="$(date +%s%N)"
  after="$(server_cpu_ticks)"
  pg_after="$(pg_cpu_ticks)"
  line="$(grep '^BENCH ' <<<"$out")" || die "no BENCH line from wrk for $path: $out"
  for pair in ${line#BENCH }; do
    printf -v "BENCH_${pair%%=*}" '%s' "${pair#*=}"
  done
  BENCH_cpu="$(percent "$((after - before))" "$((ended_ns - started_ns))")"
  BENCH_pg_cpu="$(percent "$((pg_after - pg_before))" "$((ended_ns - started_ns))")"
  BENCH_wrk_cpu="$(awk -v ns="$((ended_ns - started_ns))" '/^WRKCPU / { printf "%.0f", 100 * ($2 + $3) / (ns / 1e9) }' <<<"$out")"
  if ((BENCH_http_errors > 0)); then
    die "$name: $BENCH_http_errors responses with status >= 400; the figures would measure errors"
  fi
  if ((BENCH_socket_errors > 0)); then
    echo "bench: warning: $name had $BENCH_socket_errors socket errors (connect/read/write/timeout)" >&2
  fi
}

warm() {
  [[ "$warmup" == "0" || "$warmup" == "0s" ]] && return 0
  wrk -t"$threads" -c"$connections" -d"$warmup" --timeout 5s "$@" >/dev/null || die "warm-up wrk failed"
}

auth=(-H "Authorization: Bearer $token")
warm "$base/healthz"
warm "${auth[@]}" "$base/v1/users/me"

printf '\n%-6s %-16s %10s %9s %9s %9s %9s %8s %8s %8s\n' round endpoint 'req/s' 'p50 ms' 'p90 ms' 'p99 ms' 'max ms' 'node CPU' 'PG CPU' 'wrk CPU'
for round in $(seq 1 "$rounds"); do
  run_wrk healthz /healthz
  h_rps=$BENCH_rps h_p50=$BENCH_p50_ms h_p90=$BENCH_p90_ms h_p99=$BENCH_p99_ms h_max=$BENCH_max_ms
  printf '%-6s %-16s %10s %9s %9s %9s %9s %7s%% %7s%% %7s%%\n' "$round" 'GET /healthz' "$h_rps" "$h_p50" "$h_p90" "$h_p99" "$h_max" "$BENCH_cpu" "$BENCH_pg_cpu" "$BENCH_wrk_cpu"
  run_wrk me /v1/users/me "${auth[@]}"
  m_rps=$BENCH_rps m_p50=$BENCH_p50_ms m_p90=$BENCH_p90_ms m_p99=$BENCH_p99_ms m_max=$BENCH_max_ms
  printf '%-6s %-16s %10s %9s %9s %9s %9s %7s%% %7s%% %7s%%\n' "$round" 'GET /v1/users/me' "$m_rps" "$m_p50" "$m_p90" "$m_p99" "$m_max" "$BENCH_cpu" "$BENCH_pg_cpu" "$BENCH_wrk_cpu"
  ratio="$(awk -v a="$m_rps" -v b="$h_rps" -v c="$m_p50" -v d="$h_p50" -v e="$m_p99" -v f="$h_p99" \
    'BEGIN { printf "req/s %.2f, p50 %.2f, p99 %.2f", a / b, c / d, e / f }')"
  printf '%-6s %-16s %s\n' "$round" 'me / healthz' "$ratio"
done

echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "CPU columns: share of one core used during each measured run by the server's Node process (all threads),"
echo "the embedded PostgreSQL's processes and wrk itself; they all share this machine's $(nproc) cores"

stop_server
echo "server exit code: $server_exit"
if [[ -s "$server_log" ]]; then
  echo "server log (warn and above), $(wc -l <"$server_log") line(s):"
  head -n 20 "$server_log" | sed 's/^/  /'
else
  echo "server log: empty (nothing at warn or above)"
fi
