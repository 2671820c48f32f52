"""The OpenAI-compatible endpoint client against a real local HTTP server (tests/generation/fake_openai.py)."""

from __future__ import annotations

import pytest

from generation.backends.base import GenerationStopped, Request, SamplingParams
from generation.backends.endpoint import EndpointBackend, EndpointRefused, allowed
from tests.generation.fake_openai import FakeOpenAI

PARAMS = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=64, seed=11)


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def backend_for(server, **overrides) -> EndpointBackend:
    options = {"label": "fake", "base_url": server.base_url, "model": "fake-model", "api_key": None,
               "timeout": 5.0, "max_retries": 2, "concurrency": 4, "allowed_hosts": [server.host],
               "backoff_seconds": 0.01} | overrides
    return EndpointBackend(**options)


def ask(text: str, samples: int = 1) -> Request:
    return Request(key=text, messages=[{"role": "user", "content": text}], samples=samples)


def run(backend, requests, **kwargs):
    outputs = []
    throughput = backend.generate(requests, PARAMS, on_outputs=outputs.extend, **kwargs)
    return {(o.key, o.sample): o for o in outputs}, throughput


def test_n_samples_per_request_with_the_params_and_key_sent(server):
    outputs, throughput = run(backend_for(server, api_key="sk-test-123"), [ask("Habari?", 2), ask("Vanakkam?", 2)])
    assert sorted(outputs) == [("Habari?", 0), ("Habari?", 1), ("Vanakkam?", 0), ("Vanakkam?", 1)]
    assert outputs[("Habari?", 1)].text == "answer 1: Habari?"
    assert not any(o.error or o.truncated for o in outputs.values())
    assert server.count == 2  # one request per prompt, n=2 each
    body = server.requests[0]["body"]
    assert {k: body[k] for k in ("model", "temperature", "top_p", "max_tokens", "seed", "n")} == {
        "model": "fake-model", "temperature": 0.7, "top_p": 0.9, "max_tokens": 64, "seed": 11, "n": 2}
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-test-123"
    assert (throughput.prompts, throughput.outputs, throughput.new_tokens) == (2, 4, 20)
    assert outputs[("Habari?", 0)].new_tokens == 5  # usage's 10 tokens shared by the 2 choices


def test_no_key_no_authorization_header(server):
    run(backend_for(server), [ask("Habari?")])
    assert "Authorization" not in server.requests[0]["headers"]


def test_a_500_is_retried_and_then_succeeds(server):
    server.plan = ["500"]
    outputs, _ = run(backend_for(server), [ask("Habari?")])
    assert outputs[("Habari?", 0)].text == "answer 0: Habari?"
    assert server.count == 2


def test_a_429_is_retried(server):
    server.plan = ["429", "429"]
    outputs, _ = run(backend_for(server), [ask("Habari?")])
    assert outputs[("Habari?", 0)].error == ""
    assert server.count == 3


def test_failures_past_the_retries_fail_that_request_only(server):
    server.by_text["BROKEN"] = "503"
    outputs, throughput = run(backend_for(server, max_retries=1), [ask("BROKEN"), ask("Habari?")])
    assert "answered 503" in outputs[("BROKEN", 0)].error and "after 2 attempts" in outputs[("BROKEN", 0)].error
    assert outputs[("Habari?", 0)].text == "answer 0: Habari?"
    assert throughput.prompts == 1


def test_a_timeout_is_recorded_for_that_request_while_the_others_succeed(server):
    server.by_text["SLOW"] = "slow"
    server.slow_seconds = 30  # the server never answers in time; closing the server wakes it
    requests = [ask("SLOW", 2), ask("one"), ask("two"), ask("three")]
    outputs, _ = run(backend_for(server, timeout=0.5, max_retries=1), requests)
    assert [outputs[("SLOW", s)].error for s in (0, 1)] == ["no answer from " + server.base_url
                                                          + "/chat/completions within 0.5 s (after 2 attempts)"] * 2
    assert [outputs[(key, 0)].text for key in ("one", "two", "three")] == [
        "answer 0: one", "answer 0: two", "answer 0: three"]


@pytest.mark.parametrize(("behaviour", "message"), [("garbage", "not JSON"), ("no-choices", "has no choices"),
                                                    ("401", "check the endpoint's API key")])
def test_an_answer_that_is_not_a_completion_fails_that_request_without_retrying(server, behaviour, message):
    server.by_text["BAD"] = behaviour
    outputs, _ = run(backend_for(server), [ask("BAD"), ask("Habari?")])
    assert message in outputs[("BAD", 0)].error
    assert outputs[("Habari?", 0)].text == "answer 0: Habari?"
    assert server.count == 2  # no retry of the bad one


def test_finish_reason_length_is_truncated(server):
    server.default = "length"
    outputs, _ = run(backend_for(server), [ask("Habari?", 2)])
    assert [outputs[("Habari?", s)].truncated for s in (0, 1)] == [True, True]


def test_a_host_not_allowed_is_refused_before_any_request(server):
    with pytest.raises(EndpointRefused, match="CROSSFEED_GENERATION_ALLOWED_HOSTS"):
        backend_for(server, allowed_hosts=["api.example.com", "127.0.0.1:1"])
    assert server.count == 0


def test_a_redirect_is_not_followed(server):
    with FakeOpenAI() as elsewhere:
        server.default = "redirect"
        server.redirect_to = elsewhere.base_url + "/chat/completions"
        # Even a redirect to an allowed host is not followed: the URL the admin set is the only one called.
        outputs, _ = run(backend_for(server, allowed_hosts=[server.host, elsewhere.host]), [ask("Habari?")])
        assert "redirect" in outputs[("Habari?", 0)].error and elsewhere.base_url in outputs[("Habari?", 0)].error
        assert server.count == 1 and elsewhere.count == 0


def test_should_stop_stops_between_requests(server):
    backend = backend_for(server, concurrency=1)
    outputs = []
    with pytest.raises(GenerationStopped):
        backend.generate([ask("one"), ask("two"), ask("three")], PARAMS, on_outputs=outputs.extend,
                         should_stop=lambda: len(outputs) >= 1)
    assert [o.key for o in outputs] == ["one"]
    assert server.count == 1


@pytest.mark.parametrize(("url", "hosts", "expected"), [
    ("http://127.0.0.1:8001/v1", ["127.0.0.1"], True),  # host alone: any port
    ("http://127.0.0.1:8001/v1", ["127.0.0.1:8001"], True),
    ("http://127.0.0.1:8001/v1", ["127.0.0.1:8002"], False),
    ("https://API.example.com/v1", ["api.example.com:443"], True),  # default port, case aside
    ("http://api.example.com/v1", ["api.example.com:443"], False),
    ("http://[::1]:8000/v1", ["[::1]:8000"], True),
    ("http://api.example.com.evil.org/v1", ["api.example.com"], False),
    ("http://user:pw@api.example.com/v1", ["api.example.com"], False),  # credentials in the URL
    ("file:///etc/passwd", ["localhost", ""], False),
    ("ftp://api.example.com/v1", ["api.example.com"], False),
    ("http://api.example.com/v1", [], False),
])
def test_allowed(url, hosts, expected):
    assert allowed(url, hosts) is expected


def test_a_malformed_url_is_refused():
    with pytest.raises(EndpointRefused, match="http:// or https://"):
        EndpointBackend(label="x", base_url="file:///etc/passwd", model="m", api_key=None, timeout=1, max_retries=0,
                        concurrency=1, allowed_hosts=["localhost"])
