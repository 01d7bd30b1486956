"""The prompt generator against a real HTTP server on loopback that speaks OpenAI chat completions."""

import json
import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from claver import prompts
from claver.labels import class_names
from claver.prompts import fitting
from claver.prompts.__main__ import main as prompts_main
from claver.prompts.backends import OpenAIChat, PromptBackendError, with_retries
from claver.prompts.generate import generate

CLASSES = ["wave hand", "jump rope", "climb stairs"]


class FakeLLM:
    """A chat-completions server with a configurable behaviour; records what it was asked."""

    def __init__(self, mode="ok", fail_after=None):
        self.mode, self.fail_after = mode, fail_after
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, h, body):
        user = body["messages"][-1]["content"]
        action = re.findall(r"Action: (.*)", user)[-1]
        family = next(f for f, (task, _) in prompts.instructions.EXAMPLES.items() if user.startswith(task))
        with self.lock:
            self.requests.append((action, family))
            n = len(self.requests)
        if self.mode == "auth":
            return self.reply(h, 401, b'{"error": "bad key"}')
        if self.mode == "timeout":
            time.sleep(1.0)
        if self.mode == "malformed":
            return self.reply(h, 200, b"this is not json")
        if self.fail_after is not None and n > self.fail_after:
            return self.reply(h, 503, b'{"error": "overloaded"}')
        text = f"A person does {action}, described for {family} in sample {n}. " + "Extra words follow here. " * 3
        answer = {"choices": [{"message": {"role": "assistant", "content": text}}]}
        self.reply(h, 200, json.dumps(answer).encode())

    @staticmethod
    def reply(h, code, payload):
        try:
            h.send_response(code)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test): nothing to answer

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def count():
    return fitting.clip_token_counter()


def run(url, out, count, timeout=5.0, retries=1, **kw):
    backend = with_retries(OpenAIChat(url, "fake-model", timeout=timeout), retries=retries, backoff=0.01)
    return generate(CLASSES, backend, out, count_tokens=count, progress=False, **kw)


def test_generates_complete_valid_file(tmp_path, count):
    llm = FakeLLM()
    try:
        result = run(llm.url, tmp_path / "p.json", count, variants=2)
    finally:
        llm.close()
    assert len(llm.requests) == len(CLASSES) * 4 * 2
    loaded = prompts.load(tmp_path / "p.json")
    assert [c.name for c in loaded.classes] == CLASSES
    for c in loaded.classes:
        for fam in prompts.FAMILIES:
            assert len(c.descriptions[fam]) == 2
            assert all(count(t) <= 75 and c.name in t for t in c.descriptions[fam])
    assert loaded.generator["settings"]["variants"] == 2 and result.classes[0].name == CLASSES[0]


def test_interrupted_run_resumes_without_repeating_requests(tmp_path, count):
    out = tmp_path / "p.json"
    failing = FakeLLM(fail_after=7)
    try:
        with pytest.raises(PromptBackendError, match="rerun to resume"):
            run(failing.url, out, count, concurrency=1)
    finally:
        failing.close()
    good = FakeLLM()
    try:
        run(good.url, out, count, concurrency=3)
    finally:
        good.close()
    assert len(good.requests) == len(CLASSES) * 4 * 2 - 7
    # Both variants of a (class, family) send the same messages: count them.
    asked = Counter(failing.requests[:7]) + Counter(good.requests)
    assert set(asked.values()) == {2}, "a finished request was sent again"
    rerun = FakeLLM()
    try:
        run(rerun.url, out, count)
    finally:
        rerun.close()
    assert rerun.requests == []


def test_connection_refused(tmp_path, count):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(PromptBackendError, match="connection refused"):
        run(f"http://127.0.0.1:{port}/v1", tmp_path / "p.json", count)


def test_timeout(tmp_path, count):
    llm = FakeLLM(mode="timeout")
    try:
        with pytest.raises(PromptBackendError, match="timed out"):
            run(llm.url, tmp_path / "p.json", count, timeout=0.2, retries=1)
    finally:
        llm.close()


def test_malformed_json(tmp_path, count):
    llm = FakeLLM(mode="malformed")
    try:
        with pytest.raises(PromptBackendError, match="malformed response"):
            run(llm.url, tmp_path / "p.json", count)
    finally:
        llm.close()


def test_authentication_failure_names_the_variable_not_the_key(tmp_path, count, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    llm = FakeLLM(mode="auth")
    try:
        with pytest.raises(PromptBackendError, match=r"authentication failed .*\$OPENAI_API_KEY") as err:
            run(llm.url, tmp_path / "p.json", count)
    finally:
        llm.close()
    assert "sk-secret-value" not in str(err.value)


def test_bad_url():
    with pytest.raises(PromptBackendError, match="bad base URL"):
        OpenAIChat("localhost:8000", "m")


def test_cli_generate_and_stats(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(CLASSES)))
    llm = FakeLLM()
    try:
        code = prompts_main(
            [
                "generate",
                "--labels",
                str(labels),
                "--out",
                str(tmp_path / "p.json"),
                "--base-url",
                llm.url,
                "--model",
                "fake",
                "--variants",
                "2",
                "--backoff",
                "0.01",
            ]
        )
    finally:
        llm.close()
    assert code == 0
    assert prompts_main(["stats", str(tmp_path / "p.json")]) == 0
    assert "0 problems" in capsys.readouterr().out


def test_fit_cuts_at_boundaries(count):
    long = "First sentence is short. " + "Second one is long, with many words, " * 20 + "end."
    fitted = fitting.fit(long, count)
    assert fitted == "First sentence is short."
    phrase = "A very long single sentence, " + "and more clauses keep coming, " * 30 + "end"
    cut = fitting.fit(phrase, count)
    assert count(cut) <= 75 and cut.endswith(".") and cut[:-1] in phrase
    assert fitting.dedupe(["A b.", "a  B", "c", ""]) == ["A b.", "c"]


def test_shipped_label_lists_match_published_copies():
    import csv
    from pathlib import Path

    shared = Path(__file__).resolve().parents[2] / "shared" / "labels"
    pairs = {
        "hmdb51": "hmdb_51",
        "ucf101": "ucf_101",
        "kinetics400": "kinetics_400",
        "kinetics600": "kinetics_600",
        "ssv2": "SSv2",
    }
    counts = {"hmdb51": 51, "ucf101": 101, "kinetics400": 400, "kinetics600": 600, "ssv2": 174}
    for ours, theirs in pairs.items():
        names = class_names(ours)
        assert len(names) == counts[ours]
        published = shared / f"{theirs}_labels.csv"
        if published.is_file():
            with open(published, newline="") as f:
                assert names == [row[1] for row in list(csv.reader(f))[1:]]


@pytest.mark.parametrize("dataset,n", [("hmdb51", 51), ("ucf101", 101), ("kinetics400", 400), ("kinetics600", 600)])
def test_shipped_prompts_are_complete(dataset, n, count):
    from claver.prompts.stats import problems, retrieval_accuracy

    pf = prompts.load(dataset)
    assert len(pf.classes) == n and pf.generator.get("model")
    # the label list exactly, 4 families x 2 within CLIP's context, no description under two classes
    assert problems(pf, class_names(dataset), count, min_variants=2) == []
    assert retrieval_accuracy(pf) > 0.5


def test_kinetics600_shares_the_kinetics400_descriptions():
    from claver.labels.zeroshot import K400_TO_K600_RENAMES, kinetics600_novel_classes

    k400, k600 = prompts.load("kinetics400").by_name(), prompts.load("kinetics600").by_name()
    shared = {K400_TO_K600_RENAMES.get(n, n): texts for n, texts in k400.items()}
    shared = {name: texts for name, texts in shared.items() if name in k600}  # Kinetics-600 dropped 20
    assert len(shared) == 380 and all(k600[name] == texts for name, texts in shared.items())
    assert sorted(set(k600) - set(shared)) == sorted(kinetics600_novel_classes())


def test_retrieval_accuracy_tells_distinct_descriptions_from_templates():
    from claver.prompts.format import PromptClass, PromptFile
    from claver.prompts.stats import retrieval_accuracy

    def file(texts):
        classes = [PromptClass(i, name, {"scene": t}) for i, (name, t) in enumerate(texts.items())]
        return PromptFile("toy", ["scene"], {}, classes)

    distinct = {
        "swim": ["water pool lanes goggles", "pool water strokes lanes", "goggles water lap pool"],
        "ski": ["snow slope poles boots", "slope snow lift poles", "boots snow piste slope"],
        "cook": ["stove pan kitchen knife", "kitchen pan oil stove", "knife pan stove kitchen"],
    }
    template = {name: [f"a person doing {name} in a video", f"a video of {name}", f"{name} being done"]
                for name in distinct}  # fmt: skip
    assert retrieval_accuracy(file(distinct)) == 1.0
    assert retrieval_accuracy(file(template)) <= 1 / 3


def test_stats_flags_descriptions_that_name_another_action_by_contrast(count):
    from claver.prompts.format import PromptClass, PromptFile
    from claver.prompts.stats import problems

    texts = {"scene": ["A pool with lanes, unlike running on a track.", "Swimmers in goggles at a pool."]}
    pf = PromptFile("toy", ["scene"], {}, [PromptClass(0, "swimming", texts)])
    assert [p.split(":")[0] for p in problems(pf, ["swimming"], count, min_variants=2)] == ["'swimming'/scene"]
