"""Kestra's LLM tasks on OpenAI-compatible HTTP APIs: OpenAI ChatCompletion and Responses, DeepSeek, Perplexity.

Names: `io.kestra.plugin.openai.*` (plugin-openai), `io.kestra.plugin.deepseek.ChatCompletion`
(plugin-deepseek) and `io.kestra.plugin.perplexity.ChatCompletion` (plugin-perplexity).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, model_validator

from yaml2dag.tasktypes.base import (
    Flag,
    KestraModel,
    TaskBase,
    Text,
    choice,
    is_expression,
    literal_or_expression,
    rendered,
)

_OPS = "yaml2dag.operators.ai"


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not (isinstance(value, int | float) or is_expression(value)):
        raise ValueError("must be a number (or an expression rendering to one)")
    return value


def _whole(value: Any) -> Any:
    if isinstance(value, bool) or not (isinstance(value, int) or is_expression(value)):
        raise ValueError("must be a whole number (or an expression rendering to one)")
    return value


#: A decimal number, or an expression rendering to one (Kestra's `Property<Double>`).
Number = Annotated[float | int | str, AfterValidator(_number), literal_or_expression({"type": "number"})]
#: A whole number, or an expression rendering to one (Kestra's `Property<Integer>` / `Property<Long>`).
Whole = Annotated[int | str, AfterValidator(_whole), literal_or_expression({"type": "integer"})]


class ChatMessage(KestraModel):
    """One OpenAI chat message: `role` (system, assistant, user; anything else is sent as user) and `content`."""

    role: Text = Field(description="system, assistant or user (other roles are sent as user, as Kestra does).")
    content: Text | None = Field(default=None, description="The message text.")
    name: Text | None = Field(default=None, description="Accepted as in Kestra (not sent).")


class TypedMessage(KestraModel):
    """One DeepSeek or Perplexity chat message: `type` (SYSTEM, ASSISTANT, USER) and `content`."""

    type: choice("SYSTEM", "ASSISTANT", "USER") = Field(description="SYSTEM, ASSISTANT or USER.")  # type: ignore[valid-type]
    content: Text | None = Field(default=None, description="The message text.")


class FunctionParameter(KestraModel):
    """One parameter of a function the model may call."""

    name: Text = Field(description="Parameter name.")
    description: Text = Field(description="What the model should put in it.")
    type: Text = Field(description="OpenAPI type: string, number, integer, boolean, array or object.")
    enumValues: list[Text] | None = Field(default=None, description="The values the model must choose from.")
    required: Flag | None = Field(default=None, description="Whether the model must provide it (default false).")


class ChatFunction(KestraModel):
    """A function exposed to the model as a tool (`functions`)."""

    name: Text | None = Field(default=None, description="Function name.")
    description: Text | None = Field(default=None, description="What the function does.")
    parameters: list[FunctionParameter] | None = Field(
        default=None, description="Its parameters (a function without parameters is not sent, as in Kestra)."
    )


class _OpenAiTask(TaskBase):
    """What every `io.kestra.plugin.openai` task has: the API key, end-user id and client timeout."""

    apiKey: Text = rendered(description="OpenAI API key: a secret, masked in logs (`{{ secret('OPENAI_API_KEY') }}`).")
    user: Text | None = rendered(None, description="A unique id of your end user, sent as `user`.")
    clientTimeout: int = Field(default=10, ge=1, description="Seconds to wait for the response (default 10).")


class OpenAiChatCompletion(_OpenAiTask):
    """Send a prompt or messages to OpenAI's Chat Completions API; outputs id, object, model, choices, usage."""

    TYPES: ClassVar = ("io.kestra.plugin.openai.ChatCompletion",)
    OPERATOR: ClassVar = f"{_OPS}:OpenAiChatCompletionOperator"

    model: Text = rendered(description="Model id, e.g. `gpt-4o`.")
    messages: list[ChatMessage] | Text | None = rendered(
        None, description="The conversation: `{role, content}` maps, or an expression rendering to a JSON list."
    )
    prompt: Text | None = rendered(None, description="Text sent as a last `user` message.")
    functions: list[ChatFunction] | Text | None = rendered(None, description="Functions the model may call (tools).")
    functionCall: Text = rendered("auto", description="`auto` (default), `none` or the name of one of `functions`.")
    temperature: Number = rendered(1.0, description="Sampling temperature, 0 to 2 (default 1).")
    topP: Number | None = rendered(None, description="Nucleus sampling (omitted by default).")
    n: Whole = rendered(1, description="How many choices to generate (default 1).")
    stop: list[Text] | Text | None = rendered(None, description="Up to 4 stop sequences.")
    maxTokens: Whole | None = rendered(None, description="Most completion tokens (`max_completion_tokens`).")
    presencePenalty: Number | None = rendered(None, description="-2 to 2.")
    frequencyPenalty: Number | None = rendered(None, description="-2 to 2.")
    logitBias: dict[str, Any] | None = rendered(None, description="Token id → bias.")
    jsonResponseSchema: Text | None = rendered(
        None, description="A JSON Schema: the answer is JSON following it (`response_format` json_schema, strict)."
    )
    promptCaching: Flag | None = rendered(None, description="Keep the prompt cached 24 h (`prompt_cache_retention`).")

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> OpenAiChatCompletion:
        if self.messages is None and self.prompt is None:
            raise ValueError("set `prompt` or `messages`")
        return self


class OpenAiResponses(_OpenAiTask):
    """Call OpenAI's Responses API (tools, structured output, stored conversations); outputs outputText."""

    TYPES: ClassVar = ("io.kestra.plugin.openai.Responses",)
    OPERATOR: ClassVar = f"{_OPS}:OpenAiResponsesOperator"

    model: Text = rendered(description="Model id, e.g. `gpt-4o`.")
    input: Text | list[Any] = rendered(
        description="A text (sent as one user message) or a list of messages with `content` items, or its JSON."
    )
    text: dict[str, Any] | None = rendered(None, description="Text output configuration (`format`: json_schema…).")
    tools: list[dict[str, Any]] | Text | None = rendered(None, description="Tools, as the API takes them.")
    toolChoice: choice("NONE", "AUTO", "REQUIRED") = rendered("AUTO", description="NONE, AUTO (default) or REQUIRED.")  # type: ignore[valid-type]
    store: Flag = rendered(True, description="Store the response for a later `previousResponseId` (default true).")
    previousResponseId: Text | None = rendered(None, description="Continue the conversation of this response.")
    promptId: Text | None = rendered(None, description="A prompt stored on the OpenAI platform.")
    promptVariables: dict[str, Any] | None = rendered(None, description="Values for the stored prompt.")
    reasoning: dict[str, Any] | None = rendered(None, description="Reasoning configuration (`effort`, `summary`).")
    maxOutputTokens: Whole | None = rendered(None, description="Most output tokens.")
    temperature: Number = rendered(1.0, description="Sampling temperature, 0 to 2 (default 1).")
    topP: Number | None = rendered(None, description="Nucleus sampling, 0 to 1.")
    parallelToolCalls: Flag | None = rendered(None, description="Allow parallel tool calls.")
    promptCaching: Flag | None = rendered(None, description="Keep the prompt cached 24 h (`prompt_cache_retention`).")


class PerplexityChatCompletion(TaskBase):
    """Ask Perplexity's Chat Completions API; outputs outputText (first choice) and rawResponse (JSON text)."""

    TYPES: ClassVar = ("io.kestra.plugin.perplexity.ChatCompletion",)
    OPERATOR: ClassVar = f"{_OPS}:PerplexityChatCompletionOperator"

    apiKey: Text = rendered(description="Perplexity API key: a secret, masked in logs.")
    model: Text = rendered(description="Model, e.g. `sonar` or `sonar-pro`.")
    messages: list[TypedMessage] | Text = rendered(description="The conversation: `{type, content}` maps.")
    temperature: Number = rendered(0.2, description="Randomness, 0 to 2 (default 0.2).")
    topP: Number = rendered(0.9, description="Nucleus sampling, 0 to 1 (default 0.9).")
    topK: Whole = rendered(0, description="Top-k filter; 0 keeps all tokens (default).")
    stream: Flag = rendered(False, description="Sent as `stream` (keep false: the task reads one JSON body).")
    presencePenalty: Number = rendered(0.0, description="0 to 2 (default 0).")
    frequencyPenalty: Number = rendered(0.0, description="0 to 2 (default 0).")
    maxTokens: Whole | None = rendered(None, description="Most completion tokens.")
    jsonResponseSchema: Text | None = rendered(None, description="A JSON Schema for structured output.")


class DeepSeekChatCompletion(TaskBase):
    """Ask DeepSeek's (OpenAI-compatible) Chat Completions API; outputs response and raw (JSON text)."""

    TYPES: ClassVar = ("io.kestra.plugin.deepseek.ChatCompletion",)
    OPERATOR: ClassVar = f"{_OPS}:DeepSeekChatCompletionOperator"

    apiKey: Text = rendered(description="DeepSeek API key: a secret, masked in logs.")
    modelName: Text = rendered(description="Model, e.g. `deepseek-chat`.")
    baseUrl: Text = rendered("https://api.deepseek.com/v1", description="API endpoint (default DeepSeek's).")
    messages: list[TypedMessage] | Text = rendered(description="The conversation: `{type, content}` maps.")
    jsonResponseSchema: Text | None = rendered(
        None, description="A JSON Schema: JSON mode, with the schema given to the model in a system message."
    )


TASK_TYPES: tuple[type[TaskBase], ...] = (
    OpenAiChatCompletion,
    OpenAiResponses,
    PerplexityChatCompletion,
    DeepSeekChatCompletion,
)
