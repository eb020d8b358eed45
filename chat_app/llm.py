"""Optional chat LLM that chooses the tools (off unless ``--chat-model``/``SPEX_CHAT_MODEL`` is set).

The model only picks an operation and its arguments; every number in a reply still
comes from the spectral engine. Two ways to get a choice out of a model:

* native tool calling: the tokenizer's chat template renders the tool schemas and
  the model answers with a ``<tool_call>{...}</tool_call>`` / JSON object;
* a JSON tool-choice prompt for any other :class:`BaseChatModel` (system prompt lists
  the tools, the answer is ``{"tool": name, "args": {...}}``).

Anything unusable (no valid call, bad arguments, a model error) falls back to the
rule-based interpreter, so a weak model can never break the chat. Weights are read
from a local folder only (``local_files_only=True``): nothing touches the network.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr, ValidationError

from chat_app.tools import RuleInterpreter, build_tools

if TYPE_CHECKING:
    from chat_app.state import ChatState

__all__ = ["LLMInterpreter", "LocalChatModel", "make_llm_interpreter", "parse_tool_calls", "tool_choice_prompt"]

log = logging.getLogger(__name__)

SYSTEM = (
    "You operate SPEX chat, a remote-sensing tool that extracts land cover from a multispectral scene. "
    "Choose exactly one tool for the user's latest message. Never invent numbers: the tools compute them. "
    "Areas are in square metres (1 ha = 10 000 m², 1 km² = 1 000 000 m²)."
)
_JSON_RE = re.compile(r"\{.*\}", re.DOTALL)
_TAGGED_RE = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def tool_choice_prompt(tools: Sequence[BaseTool]) -> str:
    """System prompt for models without native tool calling: list tools, ask for one JSON object."""
    lines = [SYSTEM, "", "Tools (JSON schema of the arguments):"]
    for t in tools:
        schema = convert_to_openai_tool(t)["function"]
        lines.append(f"- {t.name}: {t.description} Arguments: {json.dumps(schema.get('parameters', {}))}")
    lines += ["", 'Answer with one JSON object only: {"tool": "<name>", "args": {...}}']
    return "\n".join(lines)


def parse_tool_calls(text: str) -> list[dict[str, Any]]:
    """Tool calls found in generated text (``<tool_call>`` tags or one bare JSON object)."""
    blobs = _TAGGED_RE.findall(text) or ([m.group(0)] if (m := _JSON_RE.search(text)) else [])
    calls = []
    for blob in blobs:
        try:
            obj = json.loads(blob)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        name = obj.get("name") or obj.get("tool")
        args = obj.get("arguments", obj.get("args", obj.get("parameters", {})))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                continue
        if isinstance(name, str) and isinstance(args, dict):
            calls.append({"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"})
    return calls


class LocalChatModel(BaseChatModel):
    """A local transformers causal LM as a langchain chat model (4-bit on CUDA via bitsandbytes)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    quantization: str | None = "4bit"
    max_new_tokens: int = 192
    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "spex-local-transformers"

    def load(self) -> LocalChatModel:
        """Read tokenizer and weights from ``model_path`` (local files only)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from spex.errors import ModelError

        path = self.model_path
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            kwargs: dict[str, Any] = {"local_files_only": True}
            if torch.cuda.is_available():
                kwargs["device_map"] = "auto"
                if self.quantization in ("4bit", "8bit"):
                    from transformers import BitsAndBytesConfig

                    kwargs["quantization_config"] = (
                        BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                           bnb_4bit_compute_dtype=torch.float16)
                        if self.quantization == "4bit" else BitsAndBytesConfig(load_in_8bit=True))
            elif self.quantization not in (None, "none"):
                log.warning("no CUDA device: chat model %s runs unquantized on the CPU", path)
            self._model = AutoModelForCausalLM.from_pretrained(path, **kwargs).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the chat model from {path!r} (a local folder with config, "
                             f"tokenizer and weights is needed; nothing is downloaded): {exc}") from exc
        return self

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """Pass OpenAI-style tool schemas to the chat template at generation time."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        import torch

        if self._model is None:
            self.load()
        chat = [_to_template_dict(m) for m in messages]
        tools = kwargs.get("tools")
        try:
            enc = self._tokenizer.apply_chat_template(chat, tools=tools, add_generation_prompt=True,
                                                      return_tensors="pt", return_dict=True)
        except Exception:  # template without tool support (or none): plain prompt, JSON choice in text
            log.debug("chat template rejected tools; using the JSON tool-choice prompt", exc_info=True)
            enc = self._tokenizer("\n".join(f"{c['role']}: {c['content']}" for c in chat) + "\nassistant:",
                                  return_tensors="pt")
        enc = {k: v.to(self._model.device) for k, v in enc.items()}
        with torch.inference_mode():
            out = self._model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                       pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id)
        text = self._tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        if stop:
            for s in stop:
                text = text.split(s)[0]
        message = AIMessage(content=text, tool_calls=parse_tool_calls(text))
        return ChatResult(generations=[ChatGeneration(message=message)])


def _to_template_dict(m: BaseMessage) -> dict[str, str]:
    role = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}.get(m.type, "user")
    return {"role": role, "content": m.content if isinstance(m.content, str) else json.dumps(m.content)}


class LLMInterpreter:
    """Lets a chat model choose the tool; falls back to the rules when its choice is unusable."""

    def __init__(self, model: BaseChatModel, fallback: RuleInterpreter | None = None, *,
                 history_messages: int = 6) -> None:
        self.model = model
        self.fallback = fallback or RuleInterpreter()
        self.history_messages = history_messages
        self.name = f"LLM ({getattr(model, 'model_path', type(model).__name__)})"

    def choose(self, text: str, state: ChatState) -> AIMessage:
        """An AIMessage with validated tool calls (raises InstructionError only via the fallback)."""
        tools = build_tools(None)
        try:
            ai = self._ask(text, state, tools)
            calls = self._validated(ai, {t.name: t for t in tools})
        except Exception:  # a broken model must never break the chat
            log.warning("chat model failed; falling back to the rule-based parser", exc_info=True)
            calls = []
        if not calls:
            return self.fallback.choose(text, state)
        return AIMessage(content=ai.content if isinstance(ai.content, str) else "", tool_calls=calls)

    def _ask(self, text: str, state: ChatState, tools: list[BaseTool]) -> AIMessage:
        context = f"Current result: {state.request.describe()}." if state.request else "No result yet."
        if state.scene is not None:
            context += f" Scene bands: {', '.join(state.scene.scene.band_names)}."
        history = [m for m in state.messages if isinstance(m, (HumanMessage, AIMessage))
                   and not isinstance(m, ToolMessage) and isinstance(m.content, str) and m.content]
        history = [m if not isinstance(m, AIMessage) else AIMessage(content=m.content)
                   for m in history[-self.history_messages:]]
        if history and isinstance(history[-1], HumanMessage) and history[-1].content == text:
            history = history[:-1]
        try:
            runnable = self.model.bind_tools(tools)
            system = SYSTEM
        except NotImplementedError:
            runnable = self.model
            system = tool_choice_prompt(tools)
        result = runnable.invoke([SystemMessage(content=f"{system}\n{context}"), *history, HumanMessage(content=text)])
        if not isinstance(result, AIMessage):
            raise TypeError(f"chat model returned {type(result).__name__}, expected AIMessage")
        if not result.tool_calls and isinstance(result.content, str):
            result = AIMessage(content="", tool_calls=parse_tool_calls(result.content))
        return result

    @staticmethod
    def _validated(ai: AIMessage, tools: dict[str, BaseTool]) -> list[dict[str, Any]]:
        calls = []
        for call in ai.tool_calls[:1]:  # one operation per turn keeps undo meaningful
            tool = tools.get(call["name"])
            if tool is None or tool.args_schema is None:
                log.info("chat model chose unknown tool %r", call["name"])
                continue
            try:
                args = tool.args_schema.model_validate(call["args"]).model_dump(exclude_unset=True)
            except ValidationError as exc:
                log.info("chat model gave invalid arguments for %s: %s", call["name"], exc)
                continue
            calls.append({**call, "args": args})
        return calls


def make_llm_interpreter(model_path: str | Path, quantization: str | None = "4bit") -> LLMInterpreter:
    """Load a local chat model once (at start-up) and wrap it as an interpreter."""
    model = LocalChatModel(model_path=str(model_path), quantization=quantization).load()
    return LLMInterpreter(model)
