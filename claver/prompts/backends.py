"""Language-model backends: an OpenAI-compatible chat-completions server, or a local HF model."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable


class PromptBackendError(RuntimeError):
    """A failure that retrying will not fix (bad URL, authentication, refused connection...)."""


class RetryableError(RuntimeError):
    """A failure worth another try (timeout, overload, malformed answer)."""


class OpenAIChat:
    """POST {base_url}/chat/completions, as served by OpenAI, vLLM, llama.cpp's server and Ollama.

    The API key is read from the environment variable ``api_key_env`` (if set) and never logged.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        temperature: float = 0.8,
        max_tokens: int = 160,
    ):
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise PromptBackendError(f"bad base URL {base_url!r}: expected http(s)://host[:port]/v1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.timeout = model, timeout
        self.temperature, self.max_tokens = temperature, max_tokens
        self._key = os.environ.get(api_key_env, "")
        self.api_key_env = api_key_env

    def settings(self) -> dict:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

    def __call__(self, messages: list[dict[str, str]]) -> str:
        body = json.dumps(
            {"model": self.model, "messages": messages, "temperature": self.temperature, "max_tokens": self.max_tokens}
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise PromptBackendError(
                    f"authentication failed at {self.url} (HTTP {e.code}): check the key in ${self.api_key_env}"
                ) from None
            if e.code == 404:
                raise PromptBackendError(
                    f"{self.url} answered 404: is the base URL right (usually ends in /v1)?"
                ) from None
            if e.code == 429 or e.code >= 500:
                raise RetryableError(f"server busy or failing (HTTP {e.code})") from None
            raise PromptBackendError(f"request refused by {self.url} (HTTP {e.code})") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, ConnectionRefusedError):
                raise PromptBackendError(f"connection refused by {self.url}: is the server running?") from None
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise RetryableError(f"timed out after {self.timeout:g} s") from None
            raise PromptBackendError(f"cannot reach {self.url}: {e.reason}") from None
        except TimeoutError:
            raise RetryableError(f"timed out after {self.timeout:g} s") from None
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise RetryableError(f"malformed response (not a chat completion): {raw[:120]!r}") from None
        if not isinstance(content, str):
            raise RetryableError("malformed response: message content is not text")
        return content


class Transformers:
    """A local Hugging Face model through ``transformers``' text-generation pipeline (optional extra)."""

    def __init__(self, model: str, temperature: float = 0.8, max_tokens: int = 160):
        try:
            from transformers import pipeline
        except ImportError:
            raise PromptBackendError(
                "the transformers backend needs the 'transformers' package: pip install transformers"
            ) from None
        self.model, self.temperature, self.max_tokens = model, temperature, max_tokens
        self._pipe = pipeline("text-generation", model=model)

    def settings(self) -> dict:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

    def __call__(self, messages: list[dict[str, str]]) -> str:
        out = self._pipe(
            messages,
            max_new_tokens=self.max_tokens,
            do_sample=True,
            temperature=self.temperature,
            return_full_text=False,
        )
        return out[0]["generated_text"]


def with_retries(
    call: Callable[[list[dict[str, str]]], str], retries: int = 3, backoff: float = 1.0
) -> Callable[[list[dict[str, str]]], str]:
    """Retry RetryableError with exponential backoff; the last error is raised as PromptBackendError."""

    def wrapped(messages):
        attempt = 0
        while True:
            try:
                return call(messages)
            except RetryableError as e:
                if attempt >= retries:
                    raise PromptBackendError(f"giving up after {retries + 1} attempts: {e}") from None
                time.sleep(backoff * 2**attempt)
                attempt += 1

    return wrapped
