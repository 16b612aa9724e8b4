# Shared by the bench-*.sh scripts (sourced, not run). Expects $work to be a
# scratch directory.

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

# Cargo features for the backends whose server URL is set.
features=()
[ -n "${SESSIONS_TEST_POSTGRES_URL:-}" ] && features=(--features postgres)

# A TCP port nobody listens on right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A new session on the bench app at PORT (POST /write); prints its id.
new_session() { curl -fs -X POST -c - "http://127.0.0.1:$1/write" | awk '$6 == "session_id" { print $7 }'; }

# `$SESSIONS_TEST_POSTGRES_URL` with its search_path set to SCHEMA.
postgres_schema_url() {
    local sep='?'
    [[ "$SESSIONS_TEST_POSTGRES_URL" == *\?* ]] && sep='&'
    echo "${SESSIONS_TEST_POSTGRES_URL}${sep}options=-csearch_path%3D$1"
}

# wrk script: each request carries the next session id from the file
# $SESSION_IDS, with method $WRK_METHOD (default GET).
cat >"$work/rotate.lua" <<'LUA'
local ids = {}
for line in io.lines(os.getenv("SESSION_IDS")) do ids[#ids + 1] = line end
local n = 0
request = function()
  n = n + 1
  local headers = { ["Cookie"] = "session_id=" .. ids[(n % #ids) + 1] }
  return wrk.format(os.getenv("WRK_METHOD") or "GET", nil, headers, nil)
end
LUA
