"""LLM tasks (OpenAI ChatCompletion and Responses, DeepSeek, Perplexity) against a real HTTP server on 127.0.0.1.

The server speaks the OpenAI wire format: it records each request and answers with the last user
message echoed back, so the outputs prove the request reached it and was read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import states

pytestmark = pytest.mark.airflow

API_KEY = "sk-test-SECRETKEY-0123456789"


@dataclass
class LlmServer:
    """The running server: its base URL and the requests it received (path, headers, JSON body)."""

    url: str
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for request_path, _, body in self.received if request_path.endswith(path)]


def _last_user_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        return [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    items = body["input"]
    return items[-1]["content"][-1]["text"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        return

    def do_POST(self) -> None:
        state: LlmServer = self.server.state  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state.received.append((self.path, dict(self.headers.items()), body))
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
        elif body.get("model") == "broken":
            self._send(400, {"error": {"message": "The model `broken` does not exist"}})
        elif self.path.endswith("/chat/completions"):
            self._send(200, self._chat(body))
        elif self.path.endswith("/responses"):
            self._send(200, self._response(body))
        else:
            self._send(404, {"error": "not found"})

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": f"echo: {_last_user_text(body)}", "refusal": None}
        if body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            message["tool_calls"] = [
                {"id": "call_1", "type": "function", "function": {"name": name, "arguments": '{"urgency": "now"}'}}
            ]
        choices = [{"index": i, "message": message, "finish_reason": "stop"} for i in range(body.get("n", 1))]
        usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": choices,
            "usage": usage,
        }

    def _response(self, body: dict[str, Any]) -> dict[str, Any]:
        text = {
            "type": "output_text",
            "text": f"echo: {_last_user_text(body)}",
            "annotations": [{"type": "url_citation", "url": "https://kestra.io/docs", "title": "Docs"}],
        }
        output = [
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "message", "id": "msg_1", "role": "assistant", "content": [text]},
        ]
        return {"id": "resp_1", "object": "response", "model": body["model"], "output": output}

    def _send(self, code: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[LlmServer]:
    """The server, reached through the Airflow connections the tasks read, and the key as a secret."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    state = LlmServer(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.state = state  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    for conn_id in ("OPENAI_DEFAULT", "PERPLEXITY_DEFAULT"):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps({"conn_type": "http", "host": f"{state.url}/v1"}))
    monkeypatch.setenv("AIRFLOW_VAR_OPENAI_API_KEY", API_KEY)
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_openai_chat_completion_sends_kestras_request_and_outputs_choices(run_flow, llm):
    result = run_flow(
        """
        id: chat
        namespace: tests.ai
        inputs:
          - id: question
            type: STRING
            defaults: What is data orchestration?
        tasks:
          - id: history
            type: io.kestra.plugin.core.debug.Return
            format: '[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]'
          - id: completion
            type: io.kestra.plugin.openai.ChatCompletion
            apiKey: "{{ secret('OPENAI_API_KEY') }}"
            model: gpt-4o
            maxTokens: 800
            temperature: "{{ 0.3 }}"
            n: 2
            user: ada
            stop: ["END"]
            messages:
              - role: system
                content: You answer in one sentence.
              - role: developer
                content: "{{ inputs.question }}"
            jsonResponseSchema: '{"type": "object", "properties": {"a": {"type": "string"}}}'
          - id: from_expression
            type: io.kestra.plugin.openai.ChatCompletion
            apiKey: "{{ secret('OPENAI_API_KEY') }}"
            model: gpt-4o-mini
            messages: "{{ outputs.history.value }}"
            prompt: And then?
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "{{ outputs.completion.choices[0].message.content }} / {{ outputs.completion.usage.total_tokens }}"
        """
    )
    assert states(result) == {
        "history": "success",
        "completion": "success",
        "from_expression": "success",
        "log": "success",
    }
    first, second = llm.bodies("/v1/chat/completions")
    assert first == {
        "messages": [
            {"role": "system", "content": "You answer in one sentence."},
            {"role": "user", "content": "What is data orchestration?"},
        ],
        "model": "gpt-4o",
        "temperature": 0.3,
        "n": 2,
        "max_completion_tokens": 800,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "kestra_schema",
                "strict": True,
                "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
            },
        },
        "user": "ada",
        "stop": ["END"],
    }
    assert second["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "And then?"},
    ]
    assert second["temperature"] == 1.0 and second["n"] == 1 and "tool_choice" not in second
    outputs = result.tasks["completion"].outputs
    assert outputs["id"] == "chatcmpl-1" and outputs["object"] == "chat.completion" and outputs["model"] == "gpt-4o"
    assert [choice["message"]["content"] for choice in outputs["choices"]] == ["echo: What is data orchestration?"] * 2
    assert outputs["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    assert "echo: What is data orchestration? / 18" in result.tasks["log"].log_text()
    log = result.tasks["completion"].log_text()
    assert f"Calling the OpenAI API at {llm.url} (chat/completions)" in log
    assert "total_tokens=18" in log
    for task in result.tasks.values():
        assert "SECRETKEY" not in task.log_text() and "SECRETKEY" not in json.dumps(task.outputs)


def test_openai_functions_become_tools_and_a_named_function_call(run_flow, llm):
    result = run_flow(
        """
        id: functions
        namespace: tests.ai
        tasks:
          - id: prioritize
            type: io.kestra.plugin.openai.ChatCompletion
            apiKey: "{{ secret('OPENAI_API_KEY') }}"
            model: gpt-4o
            prompt: I love your product!
            functionCall: respond_to_review
            functions:
              - name: respond_to_review
                description: Decide how urgently to reply.
                parameters:
                  - name: urgency
                    type: string
                    description: How urgent.
                    required: true
                    enumValues: [reply_immediately, reply_later]
                  - name: text
                    type: string
                    description: The reply.
              - name: no_parameters
                description: Not sent, as in Kestra.
          - id: unknown_function
            type: io.kestra.plugin.openai.ChatCompletion
            apiKey: "{{ secret('OPENAI_API_KEY') }}"
            model: gpt-4o
            prompt: hello
            functionCall: nowhere
        """
    )
    assert states(result) == {"prioritize": "success", "unknown_function": "failed"}
    (body,) = llm.bodies("/chat/completions")
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "respond_to_review",
                "description": "Decide how urgently to reply.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "urgency": {
                            "type": "string",
                            "description": "How urgent.",
                            "enum": ["reply_immediately", "reply_later"],
                        },
                        "text": {"type": "string", "description": "The reply."},
                    },
                    "required": ["urgency"],
                },
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "respond_to_review"}}
    message = result.tasks["prioritize"].outputs["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["arguments"] == '{"urgency": "now"}'
    assert "`functionCall` names `nowhere` but no `functions`" in result.tasks["unknown_function"].error


def test_api_errors_fail_the_task_with_the_services_message_and_no_key(run_flow, llm):
    result = run_flow(
        """
        id: errors
        namespace: tests.ai
        tasks:
          - id: bad_model
            type: io.kestra.plugin.openai.ChatCompletion
            apiKey: "{{ secret('OPENAI_API_KEY') }}"
            model: broken
            prompt: hello
            allowFailure: true
          - id: bad_key
            type: io.kestra.plugin.openai.ChatCompletion
            apiKey: sk-wrong-key
            model: gpt-4o
            prompt: hello
        """
    )
    assert states(result) == {"bad_model": "warning", "bad_key": "failed"}
    assert result.state == "failed"
    assert "OpenAI API error 401" in result.tasks["bad_key"].error
    assert "Incorrect API key provided" in result.tasks["bad_key"].error
    assert "The model `broken` does not exist" in result.tasks["bad_model"].log_text()
    assert "SECRETKEY" not in result.tasks["bad_model"].log_text()


def test_openai_responses_outputs_text_sources_and_raw_response(run_flow, llm):
    result = run_flow(
        """
        id: responses
        namespace: tests.ai
        tasks:
          - id: summarize
            type: io.kestra.plugin.openai.Responses
            apiKey: "{{ secret('OPENAI_API_KEY') }}"
            model: gpt-4o
            input: "Summarize {{ flow.id }}"
            tools:
              - type: web_search_preview
            maxOutputTokens: 300
            text:
              format:
                type: text
          - id: messages
            type: io.kestra.plugin.openai.Responses
            apiKey: "{{ secret('OPENAI_API_KEY') }}"
            model: gpt-4o
            store: false
            toolChoice: NONE
            previousResponseId: "{{ outputs.summarize.responseId }}"
            input:
              - role: user
                content:
                  - type: input_text
                    text: second turn
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "{{ outputs.summarize.outputText }}|{{ outputs.summarize.sources[0] }}"
        """
    )
    assert set(states(result).values()) == {"success"}
    first, second = llm.bodies("/v1/responses")
    assert first == {
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Summarize responses"}]}],
        "model": "gpt-4o",
        "store": True,
        "temperature": 1.0,
        "tool_choice": "auto",
        "max_output_tokens": 300,
        "tools": [{"type": "web_search_preview"}],
        "text": {"format": {"type": "text"}},
    }
    assert second["store"] is False and second["tool_choice"] == "none"
    assert second["previous_response_id"] == "resp_1"
    assert second["input"] == [{"role": "user", "content": [{"type": "input_text", "text": "second turn"}]}]
    outputs = result.tasks["summarize"].outputs
    # Kestra joins every output item's text: the web search call gives an empty first line.
    assert outputs["outputText"] == "\necho: Summarize responses"
    assert outputs["sources"] == ["https://kestra.io/docs"]
    assert outputs["responseId"] == "resp_1" and outputs["rawResponse"]["object"] == "response"
    assert "\necho: Summarize responses|https://kestra.io/docs" in result.tasks["log"].log_text()


def test_perplexity_and_deepseek_send_typed_messages_with_their_defaults(run_flow, llm, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_DEEPSEEK_API_KEY", API_KEY)
    result = run_flow(
        f"""
        id: compatible
        namespace: tests.ai
        tasks:
          - id: perplexity
            type: io.kestra.plugin.perplexity.ChatCompletion
            messages:
              - type: SYSTEM
                content: Summarize.
              - type: USER
                content: chapter one
          - id: deepseek
            type: io.kestra.plugin.deepseek.ChatCompletion
            apiKey: "{{{{ secret('DEEPSEEK_API_KEY') }}}}"
            modelName: deepseek-chat
            baseUrl: "{llm.url}/deepseek"
            messages:
              - type: USER
                content: "{{{{ outputs.perplexity.outputText }}}}"
            jsonResponseSchema: '{{"type": "array", "items": {{"type": "object"}}}}'
        pluginDefaults:
          - type: io.kestra.plugin.perplexity.ChatCompletion
            values:
              apiKey: "{{{{ secret('OPENAI_API_KEY') }}}}"
              model: sonar
              temperature: 0.7
        """
    )
    assert states(result) == {"perplexity": "success", "deepseek": "success"}
    (perplexity,) = llm.bodies("/v1/chat/completions")
    assert perplexity == {
        "model": "sonar",
        "messages": [{"role": "system", "content": "Summarize."}, {"role": "user", "content": "chapter one"}],
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 0,
        "stream": False,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
    }
    assert result.tasks["perplexity"].outputs["outputText"] == "echo: chapter one"
    assert json.loads(result.tasks["perplexity"].outputs["rawResponse"])["model"] == "sonar"
    (deepseek,) = llm.bodies("/deepseek/chat/completions")
    assert deepseek["model"] == "deepseek-chat" and deepseek["response_format"] == {"type": "json_object"}
    assert deepseek["messages"][0]["role"] == "system"
    assert deepseek["messages"][0]["content"].endswith('JSON Schema:\n{"type": "array", "items": {"type": "object"}}')
    assert deepseek["messages"][1] == {"role": "user", "content": "echo: chapter one"}
    assert result.tasks["deepseek"].outputs["response"] == "echo: echo: chapter one"
    assert json.loads(result.tasks["deepseek"].outputs["raw"])["id"] == "chatcmpl-1"


def test_invalid_llm_tasks_are_located_errors():
    import textwrap

    from yaml2dag.errors import FlowValidationError
    from yaml2dag.flowfile import parse_flow_text

    flow = """
        id: invalid
        namespace: tests.ai
        tasks:
          - id: chat
            type: io.kestra.plugin.openai.ChatCompletion
            apiKey: key
            model: gpt-4o
          - id: warm
            type: io.kestra.plugin.perplexity.ChatCompletion
            apiKey: key
            model: sonar
            temperature: warm
            messages:
              - type: USER
                content: hi
          - id: image
            type: io.kestra.plugin.openai.CreateImage
            apiKey: key
            prompt: a cat
        """
    with pytest.raises(FlowValidationError) as raised:
        parse_flow_text(textwrap.dedent(flow), "flow.yaml")
    errors = {(error.path, error.line): error.message for error in raised.value.errors}
    assert "set `prompt` or `messages`" in errors[("tasks[0]", 5)]
    assert "must be a number" in errors[("tasks[1].temperature", 13)]
    assert "not supported by yaml2dag yet" in errors[("tasks[2].type", 18)]
