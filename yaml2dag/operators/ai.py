"""Operators for Kestra's LLM tasks (OpenAI, DeepSeek, Perplexity), on httpx.

The three services speak OpenAI's wire format (`POST <base>/chat/completions`, `POST
<base>/responses`, a Bearer key), so one small JSON client serves them all: no SDK to install. The
base URL is the service's own, or the host of an Airflow connection (`openai_default`,
`perplexity_default`, `deepseek_default`: the OpenAI provider's convention) to reach a proxy or a
compatible server; DeepSeek's `baseUrl` property wins. The API key is registered with Airflow's
secrets masker before and after rendering and only travels in the Authorization header; logs and
errors name the server as `scheme://host:port`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from yaml2dag.errors import TaskFailure
from yaml2dag.operators.base import KestraOperator
from yaml2dag.operators.http import HttpSettings, http_client, http_errors, server_of
from yaml2dag.operators.notifications import mask_literal
from yaml2dag.properties import as_flag
from yaml2dag.tasktypes.ai import (
    DeepSeekChatCompletion,
    OpenAiChatCompletion,
    OpenAiResponses,
    PerplexityChatCompletion,
)

#: Most characters of an error response quoted in a task failure.
_ERROR_BODY = 2000
#: What Kestra's DeepSeek task prepends as a system message when `jsonResponseSchema` is set.
_DEEPSEEK_SCHEMA_PROMPT = (
    "You must output valid JSON only (no extra text). Follow this JSON Schema strictly when formatting your "
    "response. If a field is unknown, output a sensible empty value of the correct type. JSON Schema:\n"
)


def json_list(value: Any, name: str) -> list[Any]:
    """A rendered list property: a list, or text holding a JSON list (an expression's result)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TaskFailure(f"`{name}` rendered text that is not a JSON list ({exc.msg})") from None
    if not isinstance(value, list):
        raise TaskFailure(f"`{name}` must be a list, got {type(value).__name__}")
    return value


def json_schema(text: str) -> dict[str, Any]:
    """The rendered `jsonResponseSchema` as a JSON object."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskFailure(
            f"`jsonResponseSchema` is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(schema, dict):
        raise TaskFailure("`jsonResponseSchema` must be a JSON object (a JSON Schema)")
    return schema


def number(value: Any, name: str, kind: type[int] | type[float] = float) -> int | float:
    """A rendered numeric property as `kind`."""
    try:
        result = kind(value)
    except (TypeError, ValueError):
        raise TaskFailure(f"`{name}` rendered `{value}`: it must be a number") from None
    if kind is int and isinstance(value, float | str) and float(value) != result:
        raise TaskFailure(f"`{name}` rendered `{value}`: it must be a whole number")
    return result


def _typed_messages(value: Any) -> list[dict[str, str]]:
    """DeepSeek/Perplexity `messages` (`{type, content}`) as `{role, content}` maps."""
    messages = []
    for item in json_list(value, "messages"):
        kind = str(item.get("type", "")).upper() if isinstance(item, dict) else ""
        if kind not in ("SYSTEM", "ASSISTANT", "USER"):
            raise TaskFailure("each message needs `type`: SYSTEM, ASSISTANT or USER")
        content = item.get("content")
        messages.append({"role": kind.lower(), "content": "" if content is None else str(content)})
    return messages


class _ChatApiOperator(KestraOperator):
    """POST a JSON request to an OpenAI-compatible API and return the decoded JSON answer."""

    ui_color = "#ede7f6"
    #: The service's name in logs and errors.
    service: ClassVar[str] = "OpenAI"
    #: The service's API base URL.
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    #: Airflow connection whose host, when the connection exists, replaces `default_base_url`.
    conn_id: ClassVar[str] = "openai_default"

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Mask the API key in logs and rendered fields, before rendering (render errors quote it) and after."""
        mask_literal(self.apiKey)
        super().render_template_fields(context, jinja_env)
        mask_literal(self.apiKey)

    def base_url(self) -> str:
        """The API base URL: the Airflow connection's host when it is defined, else the service's."""
        from airflow.sdk.bases.hook import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            connection = BaseHook.get_connection(self.conn_id)
        except AirflowNotFoundException:
            return self.default_base_url
        host = str(connection.host or "")
        if not host:
            return self.default_base_url
        if "://" not in host:
            host = f"https://{host}" + (f":{connection.port}" if connection.port else "")
        return host

    def timeout(self) -> float:
        """Seconds to wait for the answer."""
        return 300.0

    def call(self, path: str, body: dict[str, Any], base_url: str | None = None) -> dict[str, Any]:
        """POST `body` to `<base>/<path>` with the API key; the JSON object answered, or a failure."""
        key = str(self.apiKey or "")
        if not key:
            raise TaskFailure(f"`apiKey` rendered an empty {self.service} API key")
        url = f"{(base_url or self.base_url()).rstrip('/')}/{path}"
        if not url.lower().startswith(("http://", "https://")):
            raise TaskFailure(f"the {self.service} API URL must be http(s), got `{server_of(url)}`")
        self.log.info("Calling the %s API at %s (%s)", self.service, server_of(url), path)
        with (
            http_errors(url, f"{self.service} API request"),
            http_client(HttpSettings(read_timeout=self.timeout(), bearer=key)) as client,
        ):
            response = client.post(url, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        if response.status_code >= 400:
            raise TaskFailure(
                f"{self.service} API error {response.status_code} from {server_of(url)}: {response.text[:_ERROR_BODY]}"
            )
        try:
            answer = response.json()
        except ValueError:
            raise TaskFailure(f"{self.service} API at {server_of(url)} answered a body that is not JSON") from None
        if not isinstance(answer, dict):
            raise TaskFailure(f"{self.service} API at {server_of(url)} answered JSON that is not an object")
        return answer

    def log_usage(self, usage: Any) -> None:
        """Log the token counts of an answer (Kestra records them as metrics)."""
        if isinstance(usage, dict):
            counts = {key: value for key, value in usage.items() if isinstance(value, int)}
            self.log.info("Token usage: %s", ", ".join(f"{key}={value}" for key, value in counts.items()))


def _first_content(answer: dict[str, Any], service: str) -> str | None:
    """`choices[0].message.content` of a chat answer."""
    try:
        return answer["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise TaskFailure(f"{service} answered without choices[0].message") from None


class OpenAiChatCompletionOperator(_ChatApiOperator, task_type=OpenAiChatCompletion):
    """`io.kestra.plugin.openai.ChatCompletion`: the Chat Completions API, Kestra's request field for field."""

    def timeout(self) -> float:
        """`clientTimeout` seconds."""
        return float(self.clientTimeout)

    def chat_messages(self) -> list[dict[str, str]]:
        """`messages` (roles other than system and assistant sent as user), then `prompt` as a user message."""
        messages = []
        if self.messages is not None:
            for item in json_list(self.messages, "messages"):
                if not isinstance(item, dict) or not item.get("role"):
                    raise TaskFailure("each message needs a `role` (system, assistant or user)")
                role = str(item["role"]).lower()
                role = role if role in ("system", "assistant") else "user"
                content = item.get("content")
                messages.append({"role": role, "content": "" if content is None else str(content)})
        if self.prompt is not None:
            messages.append({"role": "user", "content": str(self.prompt)})
        return messages

    def tools(self) -> list[dict[str, Any]]:
        """`functions` as tools (Kestra sends only the functions that have parameters)."""
        tools = []
        for function in json_list(self.functions, "functions") if self.functions is not None else []:
            if not isinstance(function, dict) or not function.get("parameters"):
                continue
            properties: dict[str, Any] = {}
            required = []
            for parameter in function["parameters"]:
                schema: dict[str, Any] = {"type": str(parameter["type"])}
                if parameter.get("description") is not None:
                    schema["description"] = str(parameter["description"])
                if parameter.get("enumValues"):
                    schema["enum"] = [str(value) for value in parameter["enumValues"]]
                properties[str(parameter["name"])] = schema
                if parameter.get("required") is not None and as_flag(parameter["required"], "required"):
                    required.append(str(parameter["name"]))
            if not function.get("name"):
                raise TaskFailure("each function needs a `name`")
            definition: dict[str, Any] = {"name": str(function["name"])}
            if function.get("description") is not None:
                definition["description"] = str(function["description"])
            definition["parameters"] = {"type": "object", "properties": properties, "required": required}
            tools.append({"type": "function", "function": definition})
        return tools

    def tool_choice(self, tools: list[dict[str, Any]]) -> Any:
        """`functionCall` as `tool_choice` (None: not sent), refused as Kestra refuses it."""
        choice = str(self.functionCall or "auto")
        if choice.lower() == "none":
            return "none"
        if choice.lower() == "auto":
            return "auto" if tools else None
        if not tools:
            raise TaskFailure(f"`functionCall` names `{choice}` but no `functions` (with parameters) are given")
        if choice not in {tool["function"]["name"] for tool in tools}:
            raise TaskFailure(f"`functionCall` names `{choice}`, which is not one of `functions`")
        return {"type": "function", "function": {"name": choice}}

    def request(self) -> dict[str, Any]:
        """The request body."""
        body: dict[str, Any] = {
            "messages": self.chat_messages(),
            "model": str(self.model),
            "temperature": number(self.temperature, "temperature"),
            "n": number(self.n, "n", int),
        }
        optional = (
            ("max_completion_tokens", self.maxTokens, "maxTokens", int),
            ("presence_penalty", self.presencePenalty, "presencePenalty", float),
            ("frequency_penalty", self.frequencyPenalty, "frequencyPenalty", float),
            ("top_p", self.topP, "topP", float),
        )
        for key, value, name, kind in optional:
            if value is not None:
                body[key] = number(value, name, kind)
        if self.jsonResponseSchema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "kestra_schema",
                    "strict": True,
                    "schema": json_schema(self.jsonResponseSchema),
                },
            }
        if self.promptCaching is not None and as_flag(self.promptCaching, "promptCaching"):
            body["prompt_cache_retention"] = "24h"
        tools = self.tools()
        if tools:
            body["tools"] = tools
        choice = self.tool_choice(tools)
        if choice is not None:
            body["tool_choice"] = choice
        self.add_extras(body)
        return body

    def add_extras(self, body: dict[str, Any]) -> None:
        """`user`, `stop` and `logitBias`, when set."""
        if self.user is not None:
            body["user"] = str(self.user)
        if self.stop:
            listed = not isinstance(self.stop, str) or self.stop.strip().startswith("[")
            body["stop"] = [str(item) for item in json_list(self.stop, "stop")] if listed else [self.stop]
        if self.logitBias:
            body["logit_bias"] = {str(token): number(bias, "logitBias", int) for token, bias in self.logitBias.items()}

    def run(self, context: Any) -> dict[str, Any]:
        """Send the conversation; outputs id, object, model, choices and usage."""
        body = self.request()
        answer = self.call("chat/completions", body)
        _first_content(answer, self.service)
        self.log.info(
            "%s answered with %d choice(s) from model %s", self.service, len(answer["choices"]), answer.get("model")
        )
        self.log_usage(answer.get("usage"))
        return {
            "id": answer.get("id"),
            "object": answer.get("object"),
            "model": answer.get("model"),
            "choices": answer.get("choices"),
            "usage": answer.get("usage"),
        }


def _responses_input(value: Any) -> list[dict[str, Any]]:
    """`input` as Responses API input items: a JSON list of messages, or one user text message."""
    if isinstance(value, list):
        return value
    text = str(value)
    if text.strip().startswith("[") and text.strip().endswith("]"):
        items = json_list(text, "input")
        for item in items:
            for part in item.get("content") or [] if isinstance(item, dict) else []:
                image = part.get("image_url") if isinstance(part, dict) else None
                if isinstance(image, str) and image.startswith("kestra://"):
                    raise TaskFailure(
                        "`input` images from internal storage (kestra:// image_url) are not supported by yaml2dag "
                        "yet: pass an https:// URL or a data: URL"
                    )
        return items
    return [{"role": "user", "content": [{"type": "input_text", "text": text}]}]


def _output_text(output: list[Any]) -> str:
    """Kestra's `outputText`: per output item, a function call's arguments or a message's texts; joined by lines."""
    texts = []
    for item in output:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call":
            texts.append(str(item.get("arguments", "")))
            continue
        contents = item.get("content") if item.get("type") == "message" else []
        texts.append("\n".join(str(c.get("text", "")) for c in contents or [] if c.get("type") == "output_text"))
    return "\n".join(texts)


def _sources(output: list[Any]) -> list[str]:
    """The URLs of the `url_citation` annotations of the answer's texts."""
    urls = []
    for item in output:
        for content in item.get("content") or [] if isinstance(item, dict) and item.get("type") == "message" else []:
            for annotation in content.get("annotations") or []:
                if annotation.get("type") == "url_citation" and annotation.get("url"):
                    urls.append(str(annotation["url"]))
    return urls


class OpenAiResponsesOperator(_ChatApiOperator, task_type=OpenAiResponses):
    """`io.kestra.plugin.openai.Responses`: the Responses API; outputs responseId, outputText, sources, rawResponse."""

    def timeout(self) -> float:
        """`clientTimeout` seconds."""
        return float(self.clientTimeout)

    def request(self) -> dict[str, Any]:
        """The request body."""
        body: dict[str, Any] = {
            "input": _responses_input(self.input),
            "model": str(self.model),
            "store": as_flag(self.store, "store"),
            "temperature": number(self.temperature, "temperature"),
            "tool_choice": str(self.toolChoice).lower(),
        }
        if self.topP is not None:
            body["top_p"] = number(self.topP, "topP")
        if self.maxOutputTokens is not None:
            body["max_output_tokens"] = number(self.maxOutputTokens, "maxOutputTokens", int)
        if self.parallelToolCalls is not None:
            body["parallel_tool_calls"] = as_flag(self.parallelToolCalls, "parallelToolCalls")
        if self.promptCaching is not None and as_flag(self.promptCaching, "promptCaching"):
            body["prompt_cache_retention"] = "24h"
        if self.promptId:
            body["prompt"] = {"id": str(self.promptId)}
            if self.promptVariables is not None:
                body["prompt"]["variables"] = self.promptVariables
        if self.tools:
            body["tools"] = json_list(self.tools, "tools")
        if self.previousResponseId:
            body["previous_response_id"] = str(self.previousResponseId)
        for key, value in (("reasoning", self.reasoning), ("text", self.text)):
            if value is not None:
                body[key] = value
        return body

    def run(self, context: Any) -> dict[str, Any]:
        """Send the input; outputs responseId, outputText, sources and rawResponse."""
        answer = self.call("responses", self.request())
        listed = answer.get("output")
        output: list[Any] = listed if isinstance(listed, list) else []
        self.log_usage(answer.get("usage"))
        return {
            "responseId": answer.get("id"),
            "outputText": _output_text(output),
            "sources": _sources(output),
            "rawResponse": answer,
        }


class PerplexityChatCompletionOperator(_ChatApiOperator, task_type=PerplexityChatCompletion):
    """`io.kestra.plugin.perplexity.ChatCompletion`: outputs outputText and rawResponse (the JSON text)."""

    service = "Perplexity"
    default_base_url = "https://api.perplexity.ai"
    conn_id = "perplexity_default"

    def request(self) -> dict[str, Any]:
        """The request body, with Kestra's defaults sent explicitly."""
        body: dict[str, Any] = {
            "model": str(self.model),
            "messages": _typed_messages(self.messages),
            "temperature": number(self.temperature, "temperature"),
            "top_p": number(self.topP, "topP"),
            "top_k": number(self.topK, "topK", int),
            "stream": as_flag(self.stream, "stream"),
            "presence_penalty": number(self.presencePenalty, "presencePenalty"),
            "frequency_penalty": number(self.frequencyPenalty, "frequencyPenalty"),
        }
        if self.maxTokens is not None:
            body["max_tokens"] = number(self.maxTokens, "maxTokens", int)
        if self.jsonResponseSchema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"schema": json_schema(self.jsonResponseSchema)},
            }
        return body

    def run(self, context: Any) -> dict[str, Any]:
        """Send the conversation; outputs outputText (first choice) and rawResponse."""
        answer = self.call("chat/completions", self.request())
        self.log_usage(answer.get("usage"))
        return {"outputText": _first_content(answer, self.service), "rawResponse": json.dumps(answer)}


def _as_array(content: str, schema: str | None) -> str:
    """Kestra's DeepSeek normalizer in short: a lone JSON object, where the schema wants an array, is wrapped."""
    if content is None or schema is None or '"type":"array"' not in "".join(schema.split()).lower():
        return content
    trimmed = content.strip()
    if trimmed.startswith("["):
        return content
    if trimmed.startswith("{") and trimmed.endswith("}"):
        return f"[{content}]"
    return content


class DeepSeekChatCompletionOperator(_ChatApiOperator, task_type=DeepSeekChatCompletion):
    """`io.kestra.plugin.deepseek.ChatCompletion`: outputs response (first choice) and raw (the JSON text)."""

    service = "DeepSeek"
    default_base_url = "https://api.deepseek.com/v1"
    conn_id = "deepseek_default"

    def request(self) -> dict[str, Any]:
        """The request body: the schema reminder first and JSON mode when `jsonResponseSchema` is set."""
        messages = _typed_messages(self.messages)
        schema = str(self.jsonResponseSchema) if self.jsonResponseSchema is not None else ""
        body: dict[str, Any] = {"model": str(self.modelName), "messages": messages}
        if schema.strip():
            messages.insert(0, {"role": "system", "content": _DEEPSEEK_SCHEMA_PROMPT + schema})
            body["response_format"] = {"type": "json_object"}
        return body

    def run(self, context: Any) -> dict[str, Any]:
        """Send the conversation; outputs response and raw."""
        base = str(self.baseUrl) if self.baseUrl and self.baseUrl != self.default_base_url else None
        answer = self.call("chat/completions", self.request(), base_url=base)
        schema = str(self.jsonResponseSchema) if self.jsonResponseSchema is not None else None
        content = _first_content(answer, self.service)
        return {"response": _as_array(content, schema) if content is not None else None, "raw": json.dumps(answer)}
