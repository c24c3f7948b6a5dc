#!/usr/bin/env python3
"""Lambda-mode figures for scripts/bench: a loopback Lambda Runtime API
(2018-06-01) and a loopback SNS-compatible endpoint (PublishBatch), and a
binary started against them. Measures exec -> first `invocation/next`,
exec -> first response, throughput over N events, and peak RSS (VmHWM).
Prints one JSON object."""

import argparse
import http.server
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse


def send(handler, status, content_type, body, headers):
    """One write per response: a head and body in separate segments would
    meet the client's delayed ACK and add ~40 ms per request."""
    head = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers]
    try:
        handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the process under test was stopped


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # connections cut when the process under test is stopped


class RuntimeApi(QuietServer):
    def __init__(self, events):
        super().__init__(("127.0.0.1", 0), RuntimeHandler)
        self.events = list(events)
        self.next_index = 0
        self.lock = threading.Condition()
        self.first_poll = None
        self.polled = threading.Event()
        self.responses = 0
        self.errors = []
        self.done = threading.Event()
        self.done_at = None
        self.stopping = False
        # Per invocation: handed out (perf_counter) and its latency (s).
        self.handed_out = {}
        self.latencies = []


class RuntimeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"{}", headers=()):
        send(self, status, "application/json", body, headers)

    def do_GET(self):
        api = self.server
        if self.path != "/2018-06-01/runtime/invocation/next":
            return self.reply(404)
        with api.lock:
            if api.first_poll is None:
                api.first_poll = time.perf_counter()
                api.polled.set()
            while api.next_index >= len(api.events) and not api.stopping:
                api.lock.wait()
            if api.stopping:
                return self.reply(500)
            index = api.next_index
            api.next_index += 1
            api.handed_out[index] = time.perf_counter()
        deadline = int(time.time() * 1000) + 60_000
        self.reply(200, api.events[index], [
            ("Lambda-Runtime-Aws-Request-Id", f"req-{index}"),
            ("Lambda-Runtime-Deadline-Ms", str(deadline)),
            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench"),
        ])

    def do_POST(self):
        api = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.endswith("/error"):
            api.errors.append(body.decode(errors="replace"))
        self.reply(202)
        if "/invocation/" in self.path:
            with api.lock:
                request_id = self.path.split("/invocation/")[1].split("/")[0]
                if request_id.startswith("req-"):
                    started = api.handed_out.get(int(request_id[4:]))
                    if started is not None:
                        api.latencies.append(time.perf_counter() - started)
                api.responses += 1
                if api.responses == len(api.events):
                    api.done_at = time.perf_counter()
                    api.done.set()


# No `(?:^|&)` anchor: it kept the regex engine from scanning for the
# literal prefix (~0.4 ms per 15 KB of form instead of ~20 µs). It is not
# needed: in a form body `=` and `&` inside values are percent-encoded, so
# `...member.N.Id=` occurs only as a key.
ENTRY_ID = re.compile(r"PublishBatchRequestEntries\.member\.\d+\.Id=([^&]*)")


class FakeSns(QuietServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), SnsHandler)
        self.published = 0


class SnsHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        # Only the entries' ids are read: parsing the whole form in Python
        # cost ~130 µs per entry (1.3 ms per batch of ten), a per-byte cost
        # that stood in the function's loop and that SNS does not have.
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        ids = [urllib.parse.unquote_plus(v) for v in ENTRY_ID.findall(body)]
        self.server.published += len(ids)
        members = "".join(f"<member><Id>{i}</Id><MessageId>m-{i}</MessageId></member>" for i in ids)
        body = (
            '<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishBatchResult>'
            f"<Successful>{members}</Successful><Failed/></PublishBatchResult>"
            "<ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></PublishBatchResponse>"
        ).encode()
        send(self, 200, "text/xml", body, ())


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def start_servers(events):
    """A Runtime API handing out `events`, and an SNS endpoint, serving."""
    api = RuntimeApi(events)
    sns = FakeSns()
    for server in (api, sns):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return api, sns


def lambda_env(api, sns, extra_env):
    """The environment Lambda gives the function, pointed at the servers."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{sns.server_address[1]}",
        "AWS_EC2_METADATA_DISABLED": "true",
        "OUTCOME_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench-outcomes",
        "LOG_LEVEL": "error",
        **extra_env,
    }


def stop_servers(api, sns):
    with api.lock:
        api.stopping = True
        api.lock.notify_all()
    api.shutdown()
    sns.shutdown()


def run_once(binary, event, count, extra_env, timeout=600, runner=None):
    api, sns = start_servers([event] * count)
    env = lambda_env(api, sns, extra_env)
    started = time.perf_counter()
    command = [*runner.split(), binary] if runner else [binary]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        limit = time.perf_counter() + timeout
        # Wakes on the first poll; every 50 ms it checks the process is alive.
        while not api.polled.wait(0.05):
            if process.poll() is not None:
                raise SystemExit(f"{binary} exited before polling: {process.stderr.read().decode()}")
            if time.perf_counter() > limit:
                raise SystemExit(f"{binary} never polled")
        result = {"first_poll_ms": (api.first_poll - started) * 1000}
        if count:
            if not api.done.wait(timeout):
                raise SystemExit(f"{binary}: {api.responses}/{count} responses; errors: {api.errors[:3]}")
            if api.errors:
                raise SystemExit(f"{binary} reported errors: {api.errors[:3]}")
            result["done_ms"] = (api.done_at - started) * 1000
            result["per_event_us"] = (api.done_at - api.first_poll) * 1e6 / count
        result["latencies"] = sorted(api.latencies)
        result["peak_rss_kib"] = peak_rss_kib(process.pid)
        result["published"] = sns.published
        return result
    finally:
        process.kill()
        process.wait()
        stop_servers(api, sns)


def burst_events(event_bytes, changes, batch):
    """`changes` distinct Matano changes (alert ids differ): one SNS event
    each (batch 1), or SQS events of `batch` records whose bodies are SNS
    notifications (a queue subscribed with raw delivery off)."""
    event = json.loads(event_bytes)
    sns = event["Records"][0]["Sns"]
    payload = json.loads(sns["Message"])
    def message(i):
        payload["updated_alert"]["id"] = f"burst-{i:06d}"
        return json.dumps(payload)
    if batch == 1:
        events = []
        for i in range(changes):
            sns["Message"] = message(i)
            sns["MessageId"] = f"burst-{i}"
            events.append(json.dumps(event).encode())
        return events
    events = []
    for start in range(0, changes, batch):
        records = []
        for i in range(start, min(start + batch, changes)):
            body = {"Type": "Notification", "MessageId": f"burst-{i}", "TopicArn": sns["TopicArn"],
                    "Message": message(i), "Timestamp": sns["Timestamp"], "MessageAttributes": {}}
            records.append({"messageId": f"sqs-{i}", "receiptHandle": "rh", "body": json.dumps(body),
                            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                            "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench-ingest"})
        events.append(json.dumps({"Records": records}).encode())
    return events


def cpu_seconds(pid):
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_burst(binary, events, changes, env, timeout=900):
    """Like run_once, with distinct events: changes/s and per-change latency
    (a change is done when its invocation answers), and the function's own
    CPU time per change (the rest of a change's time is spent waiting on
    the harness's Runtime API and SNS)."""
    api, sns = start_servers(events)
    process = subprocess.Popen([binary], env=lambda_env(api, sns, env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.polled.wait(60):
            raise SystemExit(f"{binary} never polled")
        cpu_at_first_poll = cpu_seconds(process.pid)
        if not api.done.wait(timeout):
            raise SystemExit(f"{binary}: {api.responses}/{len(events)} responses; errors: {api.errors[:3]}")
        cpu = cpu_seconds(process.pid) - cpu_at_first_poll
        if api.errors:
            raise SystemExit(f"{binary} reported errors: {api.errors[:3]}")
        seconds = api.done_at - api.first_poll
        latencies = sorted(api.latencies)
        pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e6
        return {"changes_per_s": changes / seconds, "p50_us": pick(0.5), "p99_us": pick(0.99),
                "cpu_us_per_change": cpu * 1e6 / changes, "wall_us_per_change": seconds * 1e6 / changes,
                "outcomes": sns.published}
    finally:
        process.kill()
        process.wait()
        stop_servers(api, sns)


def instructions(binary, events, env, timeout=900):
    """Instructions the function executed (valgrind's callgrind), from exec
    until it is stopped after the last response."""
    api, sns = start_servers(events)
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "callgrind.out")
        log = os.path.join(scratch, "stderr.txt")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary]
        with open(log, "w") as stderr:
            process = subprocess.Popen(command, env=lambda_env(api, sns, env), stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            limit = time.perf_counter() + timeout
            # Wakes when the last response arrives; every second it checks
            # the process is alive.
            while not api.done.wait(1):
                if process.poll() is not None or time.perf_counter() > limit:
                    with open(log) as logged:
                        tail = logged.read()[-2000:]
                    raise SystemExit(f"{binary} under callgrind: {api.responses}/{len(events)} responses\n{tail}")
            if api.errors:
                raise SystemExit(f"{binary} reported errors: {api.errors[:3]}")
            process.send_signal(signal.SIGTERM)
            process.wait(timeout)
        finally:
            process.kill()
            process.wait()
            stop_servers(api, sns)
        with open(out) as profile:
            for line in profile:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
    raise SystemExit(f"{binary}: callgrind wrote no totals")


def instructions_per_change(binary, event, batch, low=100, high=600):
    """Instructions per change through the loop: two runs of `low` and
    `high` distinct changes, so that init cancels out. Counted, not timed:
    the same binary and events give the same figure however busy the
    machine is (valgrind's CPU has no SHA extensions, so SigV4's hashing
    weighs more than on the real CPU)."""
    runs = [instructions(binary, burst_events(event, n, batch), {"DRY_RUN": "true"}) for n in (low, high)]
    return (runs[1] - runs[0]) / (high - low)


class Webhook(QuietServer):
    """A webhook receiver that answers 200 at once."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), WebhookHandler)


class WebhookHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        send(self, 200, "application/json", b"{}", ())


def run_shadow(binary, events, policies, bundle, runs):
    """Per-change latency of invocations that run an HTTP action (a webhook
    on loopback), without and with a shadow bundle, alternated `runs` times."""
    hook = Webhook()
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    env = {"POLICY_DIR": policies, "POLICY_ENV": "WEBHOOK_URL", "HTTP_ALLOW_PRIVATE": "true",
           "WEBHOOK_URL": f"http://127.0.0.1:{hook.server_address[1]}/hook"}
    pairs = []
    try:
        for _ in range(runs):
            live = run_burst(binary, events, len(events), env)
            shadowed = run_burst(binary, events, len(events), {**env, "SHADOW_POLICY_BUNDLE": bundle})
            pairs.append({"live": live, "shadow": shadowed, "ratio": shadowed["p50_us"] / live["p50_us"]})
    finally:
        hook.shutdown()
    return sorted(pairs, key=lambda p: p["ratio"])[len(pairs) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--hello", required=True)
    parser.add_argument("--event", required=True)
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--throughput", type=int, default=10_000)
    parser.add_argument("--rss-events", type=int, default=1_000)
    # Another architecture's binaries under an emulator (`qemu-aarch64`):
    # only the paired cold start, whose ratio is what means something there.
    parser.add_argument("--runner")
    parser.add_argument("--cold-start-only", action="store_true")
    # Distinct changes through the loop, one per SNS invocation and in SQS
    # batches of --burst-batch, alternated --burst-runs times.
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--burst-batch", type=int, default=10)
    parser.add_argument("--burst-runs", type=int, default=3)
    # Instructions per change (callgrind), one per SNS invocation and in
    # SQS batches of --burst-batch: the noise-free view of the burst.
    parser.add_argument("--instructions", action="store_true")
    # Invocations running an HTTP action with the policies of
    # --shadow-policies, without and with --shadow-bundle as the shadow.
    parser.add_argument("--shadow-policies")
    parser.add_argument("--shadow-bundle")
    parser.add_argument("--shadow-events", type=int, default=2000)
    args = parser.parse_args()
    event = open(args.event, "rb").read()
    ours_env = {"DRY_RUN": "true"}
    runner_env = {"QEMU_LD_PREFIX": os.environ["QEMU_LD_PREFIX"]} if "QEMU_LD_PREFIX" in os.environ else {}

    def paired(count, key):
        """Ours and the bare binary started alternately, so that drift in
        the machine's speed moves both alike: the medians of each, and the
        median of the ratios of each pair."""
        ours, hello = [], []
        for _ in range(args.repeat):
            ours.append(run_once(args.binary, event, count, {**ours_env, **runner_env}, runner=args.runner)[key])
            hello.append(run_once(args.hello, event, count, runner_env, runner=args.runner)[key])
        ratio = statistics.median(o / h for o, h in zip(ours, hello))
        return statistics.median(ours), statistics.median(hello), ratio

    figures = {}
    if args.shadow_bundle:
        events = burst_events(event, args.shadow_events, 1)
        json.dump(run_shadow(args.binary, events, args.shadow_policies, args.shadow_bundle, args.burst_runs), sys.stdout)
        print()
        return
    if args.instructions:
        sns = instructions_per_change(args.binary, event, 1)
        sqs = instructions_per_change(args.binary, event, args.burst_batch)
        json.dump({"sns_per_change": sns, "sqs_per_change": sqs, "ratio": sns / sqs}, sys.stdout)
        print()
        return
    if args.burst:
        one = burst_events(event, args.burst, 1)
        batched = burst_events(event, args.burst, args.burst_batch)
        runs = []
        for _ in range(args.burst_runs):
            sns_run = run_burst(args.binary, one, args.burst, ours_env)
            sqs_run = run_burst(args.binary, batched, args.burst, ours_env)
            runs.append({"sns": sns_run, "sqs": sqs_run, "ratio": sqs_run["changes_per_s"] / sns_run["changes_per_s"]})
        median_run = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
        json.dump({"changes": args.burst, "batch": args.burst_batch, "runs": runs, "median": median_run}, sys.stdout)
        print()
        return
    figures["init_ms"], figures["hello_init_ms"], figures["init_ratio"] = paired(0, "first_poll_ms")
    (figures["first_event_ms"], figures["hello_first_event_ms"],
     figures["first_event_ratio"]) = paired(1, "done_ms")
    if args.cold_start_only:
        json.dump(figures, sys.stdout)
        print()
        return
    rss = run_once(args.binary, event, args.rss_events, ours_env)
    figures["peak_rss_mib_after_events"] = rss["peak_rss_kib"] / 1024
    figures["rss_events"] = args.rss_events
    throughput = run_once(args.binary, event, args.throughput, ours_env)
    figures["throughput_events"] = args.throughput
    figures["per_event_us"] = throughput["per_event_us"]
    figures["outcomes_published"] = throughput["published"]
    hello = run_once(args.hello, event, args.throughput, {})
    figures["hello_per_event_us"] = hello["per_event_us"]
    json.dump(figures, sys.stdout)
    print()


if __name__ == "__main__":
    main()
