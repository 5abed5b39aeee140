#!/usr/bin/env bash
# Smoke test of the compose cluster: build the image, start the three nodes,
# create an operational intent reference on node 1, read it on node 2, tear
# everything down (volumes included). Without a reachable Docker daemon it
# prints "skipped: no docker daemon" and exits 0.
#
#   deploy/compose/smoke.sh
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
if ! docker info >/dev/null 2>&1; then
	echo "skipped: no docker daemon"
	exit 0
fi
command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }

project="raftdss-smoke-$$"
dc() { docker compose -p "$project" -f "$here/compose.yaml" "$@"; }
cleanup() { dc down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

dc up -d --build

# Wait until every node is ready (a member that knows a leader and has
# applied what it knows to be committed).
for port in 8081 8082 8083; do
	for i in $(seq 1 90); do
		if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz"; then
			break
		fi
		if [ "$i" = 90 ]; then
			echo "node on port $port not ready after 90 s" >&2
			dc logs >&2 || true
			exit 1
		fi
		sleep 1
	done
done
echo "all three nodes ready"

token="$(dc exec -T node1 /usr/local/bin/dssctl token --key /dev-key/dev-key.pem --sub uss1 --scope sc)"
id="0f8c1b6e-3c2d-4a5b-9c7d-1e2f3a4b5c6d"
start="$(date -u -d '+5 min' +%Y-%m-%dT%H:%M:%SZ)"
end="$(date -u -d '+65 min' +%Y-%m-%dT%H:%M:%SZ)"
body='{
  "extents": [{
    "volume": {
      "outline_circle": {"center": {"lat": 46.97, "lng": 7.47}, "radius": {"value": 300, "units": "M"}},
      "altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
      "altitude_upper": {"value": 120, "reference": "W84", "units": "M"}},
    "time_start": {"value": "'"$start"'", "format": "RFC3339"},
    "time_end": {"value": "'"$end"'", "format": "RFC3339"}}],
  "key": [],
  "state": "Accepted",
  "uss_base_url": "https://uss1.example.com/uss",
  "new_subscription": {"uss_base_url": "https://uss1.example.com/uss", "notify_for_constraints": false}}'

code="$(curl -sS -o /tmp/$project-put.json -w '%{http_code}' -X PUT \
	"http://127.0.0.1:8081/dss/v1/operational_intent_references/$id" \
	-H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$body")"
if [ "$code" != 201 ]; then
	echo "PUT on node 1 answered $code: $(cat /tmp/$project-put.json)" >&2
	exit 1
fi
echo "PUT on node 1: 201"

code="$(curl -sS -o /tmp/$project-get.json -w '%{http_code}' \
	"http://127.0.0.1:8082/dss/v1/operational_intent_references/$id" \
	-H "Authorization: Bearer $token")"
if [ "$code" != 200 ] || ! grep -q "$id" /tmp/$project-get.json; then
	echo "GET on node 2 answered $code: $(cat /tmp/$project-get.json)" >&2
	exit 1
fi
rm -f /tmp/$project-put.json /tmp/$project-get.json
echo "GET on node 2: 200, the reference node 1 created"
echo "ok"
