#!/usr/bin/env bash
# Checks a live tongban-node against specs/api.yaml with schemathesis: no server error, and every
# status, content type and body the node answers is one the spec documents.
#
#   node/tests/schemathesis.sh <path to tongban-node> <python venv with schemathesis>
#
# It builds nothing: pass a built binary (e.g. target/debug/tongban-node) and a venv made with
# `python3 -m venv V && V/bin/pip install -r node/tests/requirements-schemathesis.txt`. It inits
# a node in a temporary directory, starts it on a free loopback port, registers an agency with a
# seal and one certificate (so that authenticated and certificate requests can succeed), runs
# schemathesis with a bounded number of examples, stops the node and exits non-zero if
# schemathesis failed.
#
# Environment: ST_MAX_EXAMPLES examples per operation and phase (default 100: 1.5 to several
# minutes on 2 cores with a debug build, as busy as the machine is); ST_SEED (default 1) for a
# reproducible run; ST_TIMEOUT seconds before schemathesis is stopped and the run fails (default
# 600); ST_EXTRA extra arguments for `st run`; ST_REPORT_DIR to keep schemathesis' report (an
# ndjson event log) there; ST_PG_URL a PostgreSQL server's URL to keep the node's logs in (a
# schema of its own) instead of redb files.
#
# Whatever happens (a failure, a signal, the timeout), the node is stopped and the temporary
# directory removed; the exit status is non-zero on any finding, any node error and any failure
# of the script itself. Needs bash, coreutils (timeout, mktemp, realpath), sed, grep, and Python 3.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 <tongban-node binary> <python venv>" >&2
    exit 2
fi
node_bin=$(realpath "$1")
venv=$(realpath "$2")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
spec=$(realpath "$here/../../specs/api.yaml")
python="$venv/bin/python"
st="$venv/bin/st"
for f in "$node_bin" "$python" "$st" "$spec"; do
    [[ -e $f ]] || { echo "schemathesis.sh: $f not found" >&2; exit 2; }
done
max_examples=${ST_MAX_EXAMPLES:-100}
seed=${ST_SEED:-1}
st_timeout=${ST_TIMEOUT:-600}

work=$(mktemp -d "${TMPDIR:-/tmp}/tongban-st.XXXXXX")
node_pid=
st_pid=
# Stops schemathesis (through `timeout`, which passes the signal on) if it still runs.
stop_st() {
    if [[ -n $st_pid ]] && kill -0 "$st_pid" 2>/dev/null; then
        kill -TERM "$st_pid" 2>/dev/null || true
        wait "$st_pid" 2>/dev/null || true
    fi
    st_pid=
}
stop_node() {
    if [[ -n $node_pid ]] && kill -0 "$node_pid" 2>/dev/null; then
        kill -TERM "$node_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$node_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    node_pid=
}
cleanup() {
    stop_st
    stop_node
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# --- a node -----------------------------------------------------------------------------------
"$node_bin" init --region 341200 --name 阜阳市 --dir "$work/node" --listen 127.0.0.1:0 \
    >"$work/init.out"
operator=$(sed -n 's/^operator token.*: \(tb_[0-9a-f]*\)$/\1/p' "$work/init.out")
[[ -n $operator ]] || { echo "schemathesis.sh: no operator token in init output" >&2; cat "$work/init.out" >&2; exit 1; }

if [[ -n ${ST_PG_URL:-} ]]; then
    # [storage] is the last table `init` writes.
    sed -i '/^\[storage\]$/,$d' "$work/node/config.toml"
    printf '[storage]\nengine = "postgres"\nurl = "%s"\nschema = "st_%s_%s"\n' \
        "$ST_PG_URL" "$$" "$(date +%s)" >>"$work/node/config.toml"
fi

: >"$work/node.out"
RUST_LOG=${RUST_LOG:-warn} "$node_bin" run --dir "$work/node" --listen 127.0.0.1:0 \
    >"$work/node.out" 2>"$work/node.err" &
node_pid=$!
base=
for _ in $(seq 200); do
    base=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/node.out")
    [[ -n $base ]] && break
    kill -0 "$node_pid" 2>/dev/null || break
    sleep 0.05
done
if [[ -z $base ]]; then
    echo "schemathesis.sh: the node did not start" >&2
    cat "$work/node.err" >&2
    exit 1
fi
echo "node at $base"

# --- an agency, its seal and one certificate --------------------------------------------------
# The certificate is the one the spec's examples name (serial 2026000001 of agency
# 11341200MB0000001F), so the examples of the certificate routes reach a real record.
setup=$(
    BASE=$base OPERATOR=$operator "$python" - <<'PY'
import json, os, shlex, sys, urllib.request, urllib.error

base, operator = os.environ["BASE"], os.environ["OPERATOR"]

def post(path, token, body):
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.load(reply)
    except urllib.error.HTTPError as e:
        sys.exit(f"POST {path}: {e.code} {e.read().decode(errors='replace')}")

agency = post("/v1/admin/agencies", operator, {"uscc": "11341200MB0000001F", "name": "阜阳市市场监督管理局"})
seal = post("/v1/admin/seals", operator, {
    "agency_uscc": "11341200MB0000001F", "seal_id": "FY-AMR-1", "seal_type": "approval",
    "name": "行政审批专用章", "valid_until": 4000000000, "picture": "iVBORw0KGgo=",
    "media_type": "image/png"})
cert = post("/v1/certificates", agency["token"], {
    "seal": seal["kid"], "type_code": "11100000000013338W001", "serial": "2026000001",
    "type_name": "营业执照", "level": "A",
    "holder": {"name": "阜阳市通办示范科技有限公司", "id_type": "USCC", "id_number": "91341200MA2T00001L"},
    "licence": {"capital": 1000000, "scope": "软件开发"}})
print(" ".join(f"{k}={shlex.quote(v)}" for k, v in
               (("agency", agency["token"]), ("kid", seal["kid"]), ("cert_id", cert["id"]))))
PY
)
eval "$setup"
echo "agency token made, seal $kid, certificate $cert_id"

# --- schemathesis -----------------------------------------------------------------------------
# Tokens by security scheme: the operator's for /v1/admin/*, the agency's for its certificates.
cat >"$work/schemathesis.toml" <<'TOML'
[auth.openapi.operatorToken]
bearer = "${TONGBAN_OPERATOR_TOKEN}"

[auth.openapi.agencyToken]
bearer = "${TONGBAN_AGENCY_TOKEN}"
TOML

# Hooks: the spec's request examples use a placeholder seal key id, and generated bodies are random
# enough that issuance nearly never succeeds. These make the examples use the real seal, and offer
# for each generated issuance body also a copy stamped with the real seal and a copy whose fields
# that random data gets wrong (seal, type code, holder, times) are made valid, so that issuance,
# renewal and change succeed often enough to check their answers and to feed the stateful phase.
cat >"$work/hooks.py" <<'PY'
import os
import re

import schemathesis
from hypothesis import strategies as st

KID = os.environ["TONGBAN_SEAL_KID"]
PLACEHOLDER = "00112233445566778899aabbccddeeff"
HOLDER = {"name": "阜阳市通办示范科技有限公司", "id_type": "USCC", "id_number": "91341200MA2T00001L"}


def _replace(value):
    if isinstance(value, dict):
        return {k: (KID if k == "seal" and v == PLACEHOLDER else _replace(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v) for v in value]
    return value


@schemathesis.hook
def before_load_schema(context, raw_schema):
    for path in raw_schema.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                for media in operation["requestBody"].get("content", {}).values():
                    if "example" in media:
                        media["example"] = _replace(media["example"])


def _repaired(body):
    fixed = {**body, "seal": KID, "holder": HOLDER, "decoys": 0}
    for field in ("valid_from", "valid_until", "promise_deadline"):
        fixed[field] = None
    if not isinstance(fixed.get("licence"), dict):
        fixed["licence"] = {}
    if not isinstance(fixed.get("type_name"), str) or not fixed["type_name"].strip():
        fixed["type_name"] = "营业执照"
    if fixed.get("level") not in ("A", "B", "C", "D"):
        fixed["level"] = "A"
    if "type_code" in body and isinstance(body.get("type_code"), str):
        fixed["type_code"] = "11100000000013338W001"
        if not (isinstance(body.get("serial"), str) and re.fullmatch("[0-9A-Z]{1,32}", body["serial"])):
            fixed["serial"] = "S1"
    return fixed


@schemathesis.hook
def before_call(context, case, kwargs):
    # Revoking the seal every issuance relies on (schemathesis finds its kid in the examples and in
    # GET /v1/admin/seals) would turn the rest of the run into SEAL_NOT_VALID_AT_ISSUE; other
    # seals, made by the examples and the stateful phase, are revoked instead.
    params = case.path_parameters
    if params and str(params.get("kid", "")).lower() == KID:
        params["kid"] = PLACEHOLDER


@schemathesis.hook
def flatmap_body(context, body):
    if isinstance(body, dict) and isinstance(body.get("seal"), str):
        options = [body, {**body, "seal": KID}]
        if isinstance(body.get("holder"), dict):
            options += [_repaired(body)] * 2
        return st.sampled_from(options)
    return st.just(body)
PY

report_args=()
if [[ -n ${ST_REPORT_DIR:-} ]]; then
    mkdir -p "$ST_REPORT_DIR"
    report_args=(--report ndjson --report-dir "$(realpath "$ST_REPORT_DIR")")
fi
# shellcheck disable=SC2206
extra=(${ST_EXTRA:-})
status=0
# In the background, waited for: a signal to this script then interrupts the wait and the EXIT trap
# stops schemathesis and the node (a foreground command would delay the trap until it ended).
# Schemathesis keeps its hypothesis database in the working directory: the temporary one.
# One worker: with two, CPython 3.11 before 3.11.8 can fail hypothesis' concurrent `ast.parse`
# calls with "AST constructor recursion depth mismatch" (CPython issue 106905), a crash of the
# tool, not a finding.
cd "$work"
TONGBAN_OPERATOR_TOKEN=$operator TONGBAN_AGENCY_TOKEN=$agency TONGBAN_SEAL_KID=$kid \
    SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$work" \
    timeout --kill-after=10 "$st_timeout" "$st" --config-file "$work/schemathesis.toml" run "$spec" \
        --url "$base" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing,stateful \
        --max-examples "$max_examples" \
        --seed "$seed" \
        --workers 1 \
        --request-timeout 30 \
        --suppress-health-check all \
        --warnings off \
        "${report_args[@]}" "${extra[@]}" &
st_pid=$!
wait "$st_pid" || status=$?
st_pid=
if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "schemathesis.sh: schemathesis did not finish within ${st_timeout}s" >&2
fi

stop_node
if [[ -s $work/node.err ]] && grep -q -E 'panicked|ERROR' "$work/node.err"; then
    echo "--- node errors (stderr) ---" >&2
    grep -E 'panicked|ERROR' "$work/node.err" | head -50 >&2
    [[ $status -ne 0 ]] || status=1
fi
if [[ $status -ne 0 ]]; then
    echo "schemathesis.sh: FAILED (exit $status)" >&2
else
    echo "schemathesis.sh: passed"
fi
exit "$status"
