"""A client of OpenAI-compatible chat-completions servers (a hosted model, or a vLLM server). Django-free.

    backend = EndpointBackend(label="hosted", base_url="https://api.example.com/v1", model="m", api_key=key,
                              timeout=60, max_retries=2, concurrency=4, allowed_hosts=["api.example.com"])
    backend.generate(requests, SamplingParams(), on_outputs=save)

Security. The worker holds the only key and can reach the local network, so a base URL typed by an admin must not
turn it into a way to call arbitrary addresses: the URL's host (and port) must be on the operator's allowlist
(CROSSFEED_GENERATION_ALLOWED_HOSTS) when the backend is made and again before every request (EndpointRefused
otherwise, and no request is made); redirects are never followed (a 3xx is a failure that names where it pointed),
and no proxy from the environment is used, so the request goes to the allowed host and nowhere else. The key goes
only in the Authorization header, never in a message.

Each request is one POST {base_url}/chat/completions with the model, the messages, temperature, top_p, max_tokens,
seed and n (the samples). A timeout, a connection error, 408, 429, 500, 502, 503 or 504 is retried up to max_retries
times with exponential back-off (Retry-After is honoured, capped); any other answer that is not a chat completion, or
the last failure, becomes an error Output for that request alone and the others go on. `timeout` bounds each connect
and each read of the socket, as urllib does. Requests run concurrency at a time; should_stop() is asked as each one
completes, and the requests in flight then finish and are handed over before GenerationStopped.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

from generation.backends.base import GenerationStopped, Output, Request, SamplingParams, Throughput, never_stop

MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # n long answers fit many times over; a server streaming forever does not
MAX_BACKOFF_SECONDS = 30.0
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class EndpointRefused(ValueError):
    """The base URL is malformed, or its host is not on the allowlist: no request was made."""


class _Retryable(Exception):
    def __init__(self, message: str, *, wait_seconds: float | None = None) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


class _Failed(Exception):
    """A failure that retrying will not mend (4xx, redirect, garbage)."""


@dataclass(frozen=True)
class _Completion:
    texts: list[str]
    truncated: list[bool]
    completion_tokens: int


def _host_port(netloc: str, scheme: str) -> tuple[str, int | None]:
    parts = urlsplit(f"{scheme}://{netloc}")
    host = (parts.hostname or "").rstrip(".").lower()
    return host, parts.port


def check_url(base_url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a usable base URL; EndpointRefused for anything else."""
    try:
        parts = urlsplit(base_url.strip())
        port = parts.port
    except ValueError as error:
        raise EndpointRefused(f"the base URL {base_url!r} is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointRefused(f"the base URL {base_url!r} must start with http:// or https:// and name a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise EndpointRefused(f"the base URL {base_url!r} may not hold a user name, password, query or fragment; "
                              "give the key through the endpoint's API key variable")
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.rstrip(".").lower(), port or default


def allowed(base_url: str, allowed_hosts: Sequence[str]) -> bool:
    """Whether the URL's host is on the allowlist: an entry "host" allows every port of that host, "host:port" (or
    "[v6 address]:port") that port only. Names are compared as written (case aside), never resolved."""
    try:
        scheme, host, port = check_url(base_url)
    except EndpointRefused:
        return False
    for entry in allowed_hosts:
        entry = entry.strip()
        if not entry:
            continue
        try:
            entry_host, entry_port = _host_port(entry, scheme)
        except ValueError:
            continue
        if entry_host == host and entry_port in (None, port):
            return True
    return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201, PLR0913
        return None  # urllib then raises the 3xx as an HTTPError, which we report


class EndpointBackend:
    def __init__(self, *, label: str, base_url: str, model: str, api_key: str | None, timeout: float,
                 max_retries: int, concurrency: int, allowed_hosts: Sequence[str],
                 backoff_seconds: float = 0.5) -> None:
        if not allowed(base_url, allowed_hosts):
            check_url(base_url)  # a malformed URL says so first
            raise EndpointRefused(
                f"the host of {base_url!r} is not allowed: the operator lists the hosts endpoints may call in "
                "CROSSFEED_GENERATION_ALLOWED_HOSTS (host or host:port, comma-separated); add it there or use an "
                "allowed endpoint")
        self.label = label
        self.url = base_url.strip().rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = max(1, concurrency)
        self.backoff_seconds = backoff_seconds
        self._api_key = api_key or None
        self._allowed_hosts = tuple(allowed_hosts)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    def close(self) -> None:
        self._opener = None

    def generate(self, requests: Sequence[Request], params: SamplingParams, *,
                 on_outputs: Callable[[list[Output]], None], should_stop: Callable[[], bool] = never_stop
                 ) -> Throughput:
        if not allowed(self.url, self._allowed_hosts):
            raise EndpointRefused(f"the host of {self.url!r} is not allowed (CROSSFEED_GENERATION_ALLOWED_HOSTS)")
        throughput = Throughput()
        began = time.perf_counter()
        pending = list(reversed(requests))
        in_flight: dict[Future, Request] = {}
        stopped = False
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"endpoint-{self.label}") as pool:
            while in_flight or (pending and not stopped):
                while pending and not stopped and len(in_flight) < self.concurrency:
                    request = pending.pop()
                    in_flight[pool.submit(self._answer, request, params)] = request
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    in_flight.pop(future)
                    outputs, tokens = future.result()
                    if not outputs[0].error:
                        throughput.add(Throughput(prompts=1, outputs=len(outputs), new_tokens=tokens))
                    on_outputs(outputs)
                if not stopped and pending and should_stop():
                    stopped = True
        throughput.seconds = time.perf_counter() - began
        if stopped:
            raise GenerationStopped(f"stopped with {len(pending)} of {len(requests)} requests not sent")
        return throughput

    def _answer(self, request: Request, params: SamplingParams) -> tuple[list[Output], int]:
        """All samples of one request, or an error Output per sample; and the tokens the server counted."""
        began = time.perf_counter()
        texts: list[str] = []
        truncated: list[bool] = []
        tokens = 0
        try:
            # A server may return fewer choices than n (some hosted APIs cap n): ask again for the rest, with
            # another seed so the rest are not copies.
            while len(texts) < request.samples:
                completion = self._complete(request, params, n=request.samples - len(texts),
                                            seed=params.seed + len(texts))
                texts += completion.texts
                truncated += completion.truncated
                tokens += completion.completion_tokens
        except _Failed as error:
            seconds = time.perf_counter() - began
            return [Output(key=request.key, sample=sample, text="", new_tokens=0, truncated=False,
                           error=str(error), seconds=seconds) for sample in range(request.samples)], 0
        seconds = time.perf_counter() - began
        # usage counts the tokens of all n choices together; each is given an equal share.
        share = tokens // max(1, len(texts))
        outputs = [Output(key=request.key, sample=sample, text=texts[sample].strip(), new_tokens=share,
                          truncated=truncated[sample], seconds=seconds) for sample in range(request.samples)]
        return outputs, tokens

    def _complete(self, request: Request, params: SamplingParams, *, n: int, seed: int) -> _Completion:
        body = {"model": self.model, "messages": request.messages, "temperature": params.temperature,
                "top_p": params.top_p, "max_tokens": params.max_new_tokens, "seed": seed, "n": n}
        attempt = 0
        while True:
            try:
                return _parse(self._post(body), n)
            except _Retryable as error:
                if attempt >= self.max_retries:
                    raise _Failed(f"{error} (after {attempt + 1} attempts)") from None
                delay = min(MAX_BACKOFF_SECONDS, self.backoff_seconds * 2 ** attempt)
                if error.wait_seconds is not None:
                    delay = min(MAX_BACKOFF_SECONDS, max(delay, error.wait_seconds))
                time.sleep(delay)
                attempt += 1

    def _post(self, body: dict) -> bytes:
        if not allowed(self.url, self._allowed_hosts):  # before every request, whatever changed the URL since
            raise _Failed(f"the host of {self.url!r} is not allowed (CROSSFEED_GENERATION_ALLOWED_HOSTS)")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        # check_url (at construction) admits http and https only.
        prepared = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers,  # noqa: S310
                                          method="POST")
        try:
            with self._opener.open(prepared, timeout=self.timeout) as response:
                payload = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            raise _http_failure(error, self.url) from None
        except TimeoutError:  # socket.timeout is TimeoutError
            raise _Retryable(f"no answer from {self.url} within {self.timeout:g} s") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise _Retryable(f"no answer from {self.url} within {self.timeout:g} s") from None
            raise _Retryable(f"could not reach {self.url}: {error.reason}") from None
        except (ConnectionError, OSError) as error:
            raise _Retryable(f"the connection to {self.url} failed: {error}") from None
        if len(payload) > MAX_RESPONSE_BYTES:
            raise _Failed(f"{self.url} answered with more than {MAX_RESPONSE_BYTES // 2**20} MiB; not a completion")
        return payload


def _http_failure(error: urllib.error.HTTPError, url: str) -> Exception:
    try:
        excerpt = error.read(300).decode("utf-8", errors="replace").strip()
    except OSError:
        excerpt = ""
    finally:
        error.close()
    detail = f": {excerpt[:200]}" if excerpt else ""
    if 300 <= error.code < 400:
        return _Failed(f"{url} answered {error.code} redirecting to {error.headers.get('Location', '?')!r}; "
                       "redirects are not followed: set the endpoint's base URL to the final address (and allow "
                       "its host)")
    if error.code in _RETRY_STATUS:
        return _Retryable(f"{url} answered {error.code}{detail}", wait_seconds=_retry_after(error))
    if error.code in (401, 403):
        return _Failed(f"{url} refused the request ({error.code}{detail}): check the endpoint's API key variable "
                       "on the worker")
    return _Failed(f"{url} answered {error.code}{detail}")


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("Retry-After", "") if error.headers else ""
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date, or nothing: our own back-off


def _parse(payload: bytes, n: int) -> _Completion:
    """The choices of a chat completion; _Failed naming what is wrong for anything else."""
    try:
        answer = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _Failed(f"the endpoint's answer is not JSON: {payload[:120]!r}") from None
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices:
        raise _Failed(f"the endpoint's answer has no choices, so it is not a chat completion: {payload[:120]!r}")
    texts, truncated = [], []
    ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
    for choice in ordered[:n]:
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise _Failed(f"a choice of the endpoint's answer has no message content: {str(choice)[:120]}")
        texts.append(content)
        truncated.append(choice.get("finish_reason") == "length")
    usage = answer.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return _Completion(texts, truncated, tokens if isinstance(tokens, int) and tokens >= 0 else 0)
