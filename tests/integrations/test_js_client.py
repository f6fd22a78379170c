"""The JavaScript client (costwatch-js/, npm package `costwatch`) against a LIVE costwatch.

`node --test` runs the package's tests with COSTWATCH_URL and COSTWATCH_API_KEY pointing at
this test's live server; they drive the real `openai`, `@anthropic-ai/sdk` and `@google/genai`
packages (installed with `npm ci` from the committed package-lock.json) against a local
stand-in of each provider's HTTP API, and write one line per check to a results file. The
rows they stored are asserted here, with expected tokens and costs from plain arithmetic,
and compared field by field with what the Python client stores for the same responses.
"""

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tarfile
from decimal import Decimal
from pathlib import Path

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types
from werkzeug import Response

from costwatch.projects.services import api_key_issue
from costwatch_client import Client as PythonClient
from ingest.models import Event, Price
from tests.integrations.sse import sse

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "costwatch-js"
CASES = json.loads((PACKAGE / "test" / "fixtures" / "provider-cases.json").read_text())
CASES_BY_NAME = {case["name"]: case for case in CASES}
MESSAGES = [{"role": "user", "content": "Where is my refund?"}]

# Project prices per 1M tokens: input, cached input, cache write, output, reasoning output.
PRICES = {
    "gpt-5-mini-2025-08-07": ("0.25", "0.025", None, "2.00", None),
    ("gpt-5-mini-2025-08-07", "flex"): ("0.125", "0.0125", None, "1.00", None),
    "gpt-5-2025-08-07": ("1.25", "0.125", None, "10.00", None),
    "claude-sonnet-4-6": ("3.00", "0.30", "3.75", "15.00", None),
    "gemini-2.5-flash": ("0.30", "0.03", None, "2.50", "3.50"),
    "llama-3.1-8b": ("0.05", None, None, "0.08", None),
}


def estimate(text):
    return math.ceil(len(text) / 4)


REQUEST_TEXT = json.dumps([MESSAGES], ensure_ascii=False)  # what a stream without usage estimates input from
# case: (model, input, cached, cache_write, output, reasoning, cap, finish_reason, usage estimated)
# (plus service tier and status where they are not standard and ok)
EXPECTED = {
    "chat": ("gpt-5-mini-2025-08-07", 1500, 1024, 0, 420, 256, 512, "stop", False),
    "chat_stream": ("gpt-5-mini-2025-08-07", 90, 64, 0, 64, 0, 64, "length", False),
    "chat_stream_no_usage": ("gpt-5-mini-2025-08-07", estimate(REQUEST_TEXT), 0, 0,
                             max(2, estimate("Your refund was sent on Monday.")), 0, 128, "stop", True),
    "responses": ("gpt-5-2025-08-07", 3000, 2048, 0, 900, 700, 900, "length", False),
    "responses_stream": ("gpt-5-2025-08-07", 1200, 0, 0, 300, 250, 2048, "stop", False),
    "anthropic": ("claude-sonnet-4-6", 30 + 2000 + 400, 2000, 400, 80, 0, 80, "length", False),
    "anthropic_stream": ("claude-sonnet-4-6", 25 + 100, 100, 0, 15, 0, 1024, "stop", False),
    "anthropic_stream_cut": ("claude-sonnet-4-6", 25, 0, 0,
                             estimate("Your refund was sent on Monday, it should arrive"), 0, 1024, "", True),
    "google": ("gemini-2.5-flash", 600, 512, 0, 70 + 30, 30, 100, "length", False),
    "google_stream": ("gemini-2.5-flash", 40, 0, 0, 12 + 8, 8, 256, "stop", False),
    "chat_tools_flex": ("gpt-5-mini-2025-08-07", 700, 0, 0, 40, 0, None, "tool_calls", False),
    "responses_failed": ("gpt-5-2025-08-07", 500, 0, 0, 0, 0, None, "error", False),
    "google_tool_call": ("gemini-2.5-flash", 300, 0, 0, 12, 0, None, "tool_calls", False),
}
SERVICE_TIER = {"chat_tools_flex": "flex"}
STATUS = {"responses_failed": "error"}
# Fields that describe the call; identical for the JS and the Python client.
MAPPED_FIELDS = ("model", "provider", "tier", "service_tier", "input_tokens", "cached_input_tokens",
                 "cache_write_input_tokens", "output_tokens", "reasoning_tokens", "max_output_tokens", "cap_known",
                 "finish_reason", "status", "environment", "role", "route_reason", "parent_event_id", "quality",
                 "confidence", "attributes", "cost_usd", "cost_source", "price_id")


def expected_cost(model, input_tokens, cached, cache_write, output, reasoning, service_tier="standard"):
    key = model if service_tier == "standard" else (model, service_tier)
    price_in, price_cached, price_write, price_out, price_reasoning = (
        Decimal(p) if p is not None else None for p in PRICES[key])
    price_cached = price_in if price_cached is None else price_cached
    price_write = price_in if price_write is None else price_write
    price_reasoning = price_out if price_reasoning is None else price_reasoning
    uncached = input_tokens - cached - cache_write
    return (uncached * price_in + cached * price_cached + cache_write * price_write
            + (output - reasoning) * price_out + reasoning * price_reasoning) / Decimal(1_000_000)


# --- the package and its dev dependencies ------------------------------------------------
def _tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: the JavaScript client's tests need Node.js >= 18 and npm on PATH")
    return path


def _run(args, *, env=None, timeout=600, cwd=PACKAGE):
    proc = subprocess.run(args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="session")
def node_package():
    """`npm ci` from the committed package-lock.json (again only when the lock file changed)."""
    node, npm = _tool("node"), _tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 18, f"Node.js {version} is too old (>= 18)"
    lock = hashlib.sha256((PACKAGE / "package-lock.json").read_bytes()).hexdigest()
    stamp = PACKAGE / "node_modules" / ".costwatch-lock-sha256"
    if not stamp.exists() or stamp.read_text() != lock:
        _run([npm, "ci", "--no-audit", "--no-fund"])
        stamp.write_text(lock)
    return {"node": node, "npm": npm}


# --- the live run ------------------------------------------------------------------------
@pytest.fixture
def priced_project(project):
    for key, (price_in, cached, write, out, reasoning) in PRICES.items():
        model, service_tier = key if isinstance(key, tuple) else (key, "standard")
        Price.objects.create(project=project, model=model, service_tier=service_tier, input_per_mtok=price_in,
                             cached_input_per_mtok=cached,
                             cache_write_input_per_mtok=write, output_per_mtok=out,
                             reasoning_output_per_mtok=reasoning, effective_from="2000-01-01T00:00Z")
    return project


def run_node_tests(node_package, live_server, key, results):
    files = sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "test").glob("*.test.js"))
    # node's own summary stays in the captured output (shown only on failure): CI reads pytest's.
    proc = _run([node_package["node"], "--test", "--test-reporter=spec", *files], timeout=600, env={
        "COSTWATCH_URL": live_server.url, "COSTWATCH_API_KEY": key, "CW_RESULTS": str(results), "NO_COLOR": "1"})
    assert re.search(r"^\S*\s*fail 0$", proc.stdout, re.M) and re.search(r"^\S*\s*skipped 0$", proc.stdout, re.M), \
        proc.stdout[-4000:]
    return {entry["check"]: entry for entry in map(json.loads, results.read_text().splitlines())}


def record_with_python_client(cw, case, httpserver):
    """The same provider answer through the Python SDKs and costwatch_client.call()."""
    body = json.dumps(case["json"]) if "json" in case else sse([tuple(pair) for pair in case["sse"]])
    content_type = "application/json" if "json" in case else "text/event-stream"
    httpserver.clear()
    httpserver.expect_request(re.compile(r"^/.*"), method="POST").respond_with_handler(
        lambda request: Response(body, content_type=content_type))
    sdk = case["sdk"]
    if sdk.startswith("openai"):
        client = openai.OpenAI(base_url=httpserver.url_for("/v1"), api_key="sk-test", max_retries=0)
        create = client.chat.completions.create if sdk == "openai_chat" else client.responses.create
    elif sdk == "anthropic":
        client = anthropic.Anthropic(base_url=httpserver.url_for(""), api_key="sk-ant-test", max_retries=0)
        create = client.messages.create
    else:
        client = genai.Client(api_key="test", http_options=genai_types.HttpOptions(base_url=httpserver.url_for("")))
        create = client.models.generate_content_stream if case["stream"] else client.models.generate_content
    result = cw.call(create, **case["params"], costwatch={"feature": "sdk-call", "request_id": f"py-{case['name']}"})
    if case["stream"]:
        for _ in result:
            pass
    return client  # the SDK client closes its connections when it is garbage collected


def row_by_request(project, request_id):
    return Event.objects.select_related("feature").get(project=project, request_id=request_id)


def test_the_js_client_records_real_sdk_calls_into_a_live_costwatch(priced_project, live_server, node_package,
                                                                   tmp_path, httpserver):
    project = priced_project
    key = api_key_issue(project=project, scopes=["ingest"]).plaintext

    checks = run_node_tests(node_package, live_server, key, tmp_path / "results.jsonl")

    assert set(checks) == {"cases", "record", "message_stream", "readable_stream", "track", "retry", "207", "unmapped",
                           "exit", "score"}
    # Stored tokens, cap and cost per call, for every SDK shape, streams with usage and without.
    assert checks["cases"]["names"] == list(EXPECTED)
    for name, (model, inp, cached, write, out, reasoning, cap, finish, estimated) in EXPECTED.items():
        row = row_by_request(project, f"js-{name}")
        assert (row.feature.name, row.model, row.input_tokens, row.cached_input_tokens, row.cache_write_input_tokens,
                row.output_tokens, row.reasoning_tokens, row.max_output_tokens, row.finish_reason) == (
            "sdk-call", model, inp, cached, write, out, reasoning, cap, finish), name
        assert row.attributes == ({"usage_estimated": True} if estimated else {}), name
        service_tier = SERVICE_TIER.get(name, "standard")
        assert (row.service_tier, row.status) == (service_tier, STATUS.get(name, "ok")), name
        assert row.cost_usd == expected_cost(model, inp, cached, write, out, reasoning, service_tier), name
        assert row.latency_ms is not None and (row.ttft_ms is not None) == CASES_BY_NAME[name]["stream"], name

    record = Event.objects.get(project=project, event_id=checks["record"]["eventId"])
    assert (record.feature.name, record.role, record.parent_event_id, record.route_reason, record.quality,
            record.latency_ms, record.attributes, record.max_output_tokens) == (
        "summaries", "escalation", "lite-1", "low_confidence", 0.75, 420, {"customer": "acme"}, 80)
    assert (record.input_tokens, record.cached_input_tokens, record.cache_write_input_tokens) == (2430, 2000, 400)

    streamed = row_by_request(project, "js-message-stream")  # messages.stream() + finalMessage()
    assert (streamed.feature.name, streamed.input_tokens, streamed.cached_input_tokens, streamed.output_tokens,
            streamed.max_output_tokens, streamed.finish_reason) == ("message-stream", 125, 100, 15, 1024, "stop")
    streamed = row_by_request(project, "js-response-stream")  # responses.stream() + finalResponse()
    assert (streamed.input_tokens, streamed.output_tokens, streamed.reasoning_tokens, streamed.max_output_tokens,
            streamed.finish_reason) == (1200, 300, 250, 2048, "stop")

    piped = row_by_request(project, "js-readable-stream")  # stream.toReadableStream() read by a Response
    assert (piped.feature.name, piped.input_tokens, piped.cached_input_tokens, piped.output_tokens,
            piped.finish_reason) == ("route-stream", 90, 64, 64, "length")

    # track(): each request's fields on its own events, across awaits and interleaved requests.
    tracked = sorted((e.request_id, e.role, e.route_reason, json.dumps(e.attributes, sort_keys=True))
                     for e in Event.objects.filter(project=project, feature__name="support-answer"))
    assert tracked == [
        ("req-a", "primary", "", '{"customer": "acme", "step": "answer"}'),
        ("req-a", "triage", "simple", '{"customer": "acme"}'),
        ("req-b", "primary", "", '{"customer": "globex", "step": "answer"}'),
        ("req-b", "triage", "simple", '{"customer": "globex"}'),
    ]
    outside = row_by_request(project, "req-outside")
    assert (outside.feature.name, outside.role, outside.attributes) == ("outside", "primary", {})

    # A 503 then a retry of the same batch: stored once.
    retried = Event.objects.filter(project=project, feature__name="retry-check")
    assert sorted(e.event_id for e in retried) == sorted(checks["retry"]["eventIds"])
    assert sorted(e.input_tokens for e in retried) == [1, 2, 3]

    # A 207: the good event stored, the bad ones not.
    assert [e.event_id for e in Event.objects.filter(project=project, feature__name="partial")] == \
        checks["207"]["eventIds"]

    # score(): the late qualities stored, the one sent before its event after a not_found retry.
    # The out-of-range scores (1.5, -0.1) were never sent: the last valid one stands.
    early = Event.objects.get(project=project, event_id=checks["score"]["early"])
    scored = Event.objects.get(project=project, event_id=checks["score"]["scored"])
    assert (early.feature.name, early.input_tokens, early.quality) == ("scored", 5, 0.25)
    assert (scored.feature.name, scored.input_tokens, scored.quality) == ("scored", 7, 0.9)

    # An unknown response shape: recorded with what could be read.
    first, second = (Event.objects.get(project=project, event_id=i) for i in checks["unmapped"]["eventIds"])
    assert (first.model, first.provider, first.input_tokens, first.output_tokens, first.max_output_tokens) == (
        "llama-3.1-8b", "", 50, 7, 64)
    assert (second.input_tokens, second.max_output_tokens) == (60, None)
    assert first.attributes == second.attributes == {"unmapped_response": "LocalModelReply"}
    assert first.cost_usd == expected_cost("llama-3.1-8b", 50, 0, 0, 7, 0)

    # The app that never called flush() or close(): its event arrived before it exited.
    (exited,) = checks["exit"]["eventIds"]
    row = Event.objects.get(project=project, event_id=exited)
    assert (row.feature.name, row.input_tokens, row.output_tokens, row.max_output_tokens) == ("exit-check", 90, 64, 64)

    # The same SDK responses through the Python client: identical stored events.
    python_client = PythonClient(api_key=key, base_url=live_server.url, flush_interval=0.05)
    for case in CASES:
        record_with_python_client(python_client, case, httpserver)
    assert python_client.flush(timeout=30) is True
    python_client.close(timeout=2)
    for case in CASES:
        js_row, py_row = (row_by_request(project, f"{side}-{case['name']}") for side in ("js", "py"))
        js_fields = {name: getattr(js_row, name) for name in MAPPED_FIELDS}
        assert js_fields == {name: getattr(py_row, name) for name in MAPPED_FIELDS}, case["name"]
        assert js_row.feature_id == py_row.feature_id


def test_npm_pack_makes_a_tarball_that_installs_and_imports(node_package, tmp_path):
    npm, node = node_package["npm"], node_package["node"]
    packed = _run([npm, "pack", "--json", "--pack-destination", str(tmp_path)])
    (info,) = json.loads(packed.stdout)
    tarball = tmp_path / info["filename"]
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert {"package/README.md", "package/package.json", "package/src/index.js", "package/src/index.d.ts"} <= names
    assert not any("/test/" in name or "node_modules" in name for name in names), sorted(names)
    manifest = json.loads((PACKAGE / "package.json").read_text())
    assert manifest.get("dependencies", {}) == {}  # no runtime dependencies

    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "app", "private": True, "type": "module"}))
    _run([npm, "install", "--no-audit", "--no-fund", "--offline", str(tarball)], cwd=app)
    (app / "main.mjs").write_text(
        "import { Client, track } from 'costwatch';\n"
        "const cw = new Client({ apiKey: 'cw_abcd1234_' + 'x'.repeat(30), baseUrl: 'http://127.0.0.1:9' });\n"
        "console.log(typeof cw.call, typeof cw.record, typeof track, typeof cw.score, JSON.stringify(cw.stats().scores));\n")
    out = _run([node, "main.mjs"], cwd=app)
    zeros = {"sent": 0, "rejected": 0, "failed": 0, "dropped": 0, "retried": 0, "not_found_retried": 0, "queued": 0}
    assert out.stdout.strip() == "function function function function " + json.dumps(zeros, separators=(",", ":"))


# What the TypeScript examples of the docs may use without defining it.
EXAMPLE_IMPORTS = {
    "OpenAI": "import OpenAI from 'openai';",
    "Anthropic": "import Anthropic from '@anthropic-ai/sdk';",
    "GoogleGenAI": "import { GoogleGenAI } from '@google/genai';",
    "Client": "import { Client } from 'costwatch';",
    "track": "import { track } from 'costwatch';",
}
EXAMPLE_GLOBALS = {
    "openai": "OpenAI", "anthropic": "Anthropic", "ai": "GoogleGenAI", "cw": "Client",
    "messages": "OpenAI.ChatCompletionMessageParam[]", "claudeMessages": "Anthropic.MessageParam[]",
    "prompt": "string",
    "app": "{ use(handler: (req: { get(name: string): string | undefined }, res: unknown, next: () => void) => void)"
           ": void }",
}
DOCS_WITH_TYPESCRIPT = (ROOT / "README.md", ROOT / "docs" / "sending-events.md", PACKAGE / "README.md")


def typescript_example(block):
    """A ```ts block of the docs as a module: its free names declared with their SDK types."""
    imported = set(re.findall(r"import\s+(?:\{([^}]*)\}|(\w+))\s+from", block))
    imported = {name.strip() for pair in imported for names in pair for name in names.split(",") if name.strip()}
    defined = set(re.findall(r"\b(?:const|let|function)\s+(\w+)", block))
    lines = [line for name, line in EXAMPLE_IMPORTS.items() if name not in imported]
    lines += [f"declare const {name}: {kind};" for name, kind in EXAMPLE_GLOBALS.items() if name not in defined]
    return "\n".join(lines) + "\n" + block + "\nexport {};\n"


def test_the_typescript_examples_of_the_docs_type_check_against_the_real_sdks(node_package):
    """Every ```ts block of the README, docs/sending-events.md and the package README compiles
    with the shipped .d.ts and the SDKs' own types (tsc, strict)."""
    folder = PACKAGE / "test" / ".docs-examples"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    files = []
    for doc in DOCS_WITH_TYPESCRIPT:
        for n, block in enumerate(re.findall(r"^```ts\n(.*?)^```", doc.read_text(), re.S | re.M)):
            path = folder / f"{doc.parent.name}-{doc.stem}-{n}.ts"
            path.write_text(typescript_example(block))
            files.append(path.name)
    assert len(files) >= 8, files  # README, docs and the package README all have examples
    (folder / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
        "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": True, "noEmit": True,
        "skipLibCheck": True, "types": ["node"]}, "files": files}))
    try:
        _run([str(PACKAGE / "node_modules" / ".bin" / "tsc"), "-p", str(folder / "tsconfig.json")])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
