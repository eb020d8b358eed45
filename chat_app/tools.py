"""The chat operations as langchain-core tools, and the rule-based interpreter that picks them.

Every user turn becomes one or more tool calls on an :class:`~langchain_core.messages.AIMessage`.
The default interpreter maps :func:`spex.engine.parse_instruction` onto these tools; an
optional LLM (:mod:`chat_app.llm`) can choose them instead. Either way the numbers in
the replies come from the engine, never from a language model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Literal, Protocol

from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from spex.engine.request import PARTS, REGIONS, TARGETS, ExtractionRequest, IndexLimit, Intent

if TYPE_CHECKING:
    from chat_app.state import ChatState

__all__ = [
    "QUESTIONS", "AnswerArgs", "DisplayArgs", "ExtractArgs", "IndexLimitArgs", "NoArgs", "RefineArgs",
    "RuleInterpreter",
    "SharesArgs",
    "ToolRunner", "apply_refinement", "build_tools", "intent_to_call", "request_from_args",
]

Target = Literal[TARGETS]  # type: ignore[valid-type]
Region = Literal[REGIONS]  # type: ignore[valid-type]
#: Questions the engine answers from the current mask (see spex.engine.answer_question).
QUESTIONS = ("largest", "smallest", "total_area", "count", "list", "where", "evidence")
Question = Literal[QUESTIONS]  # type: ignore[valid-type]
Clearable = Literal["exclude", "min_area_m2", "max_area_m2", "keep_largest", "region", "index_limits", "parts",
                    "drop_parts"]
Part = Literal[PARTS]  # type: ignore[valid-type]


class IndexLimitArgs(BaseModel):
    """A threshold the user stated on an index for one class (used as given)."""

    target: Target = Field(description="the class the threshold is for")
    index: str = Field(description="index name, e.g. NDVI, MNDWI, NDBI")
    low: float | None = Field(None, description="keep pixels with index above this")
    high: float | None = Field(None, description="keep pixels with index below this")


class ExtractArgs(BaseModel):
    """A complete new extraction (replaces the current result)."""

    targets: list[Target] = Field(min_length=1, description="land-cover classes to extract (union)")
    exclude: list[Target] = Field(default_factory=list, description="classes removed from the result")
    min_area_m2: float | None = Field(None, ge=0, description="drop regions smaller than this (m²; 1 ha = 10 000 m²)")
    max_area_m2: float | None = Field(None, ge=0, description="drop regions larger than this (m²)")
    keep_largest: int | None = Field(None, ge=1, description="keep only the N largest regions")
    region: Region | None = Field(None, description="restrict to a part of the image")
    strictness: int = Field(0, ge=-2, le=2, description="-2 much looser .. +2 much stricter threshold")
    fill_holes: bool = Field(False, description="fill holes inside regions")
    smooth: bool = Field(False, description="smooth region edges")
    drop_border: bool = Field(False, description="remove regions touching the image border")
    index_limits: list[IndexLimitArgs] = Field(default_factory=list, description="user-stated index thresholds")
    parts: list[Part] = Field(default_factory=list, description="keep only these parts of the water")
    drop_parts: list[Part] = Field(default_factory=list, description="remove these parts of the water")


class RefineArgs(BaseModel):
    """A change to the current result; omitted fields keep their current value."""

    targets: list[Target] | None = Field(None, description="replace the target classes")
    add_targets: list[Target] = Field(default_factory=list, description="add classes to the current targets")
    exclude: list[Target] | None = Field(None, description="replace the excluded classes")
    add_exclude: list[Target] = Field(default_factory=list, description="also exclude these classes")
    min_area_m2: float | None = Field(None, ge=0, description="new minimum region area (m²)")
    max_area_m2: float | None = Field(None, ge=0, description="new maximum region area (m²)")
    keep_largest: int | None = Field(None, ge=1, description="keep only the N largest regions")
    region: Region | None = Field(None, description="restrict to a part of the image")
    strictness: int | None = Field(None, ge=-2, le=2, description="new strictness, -2..+2")
    stricter: int = Field(0, ge=-4, le=4, description="change strictness by this many steps")
    fill_holes: bool | None = None
    smooth: bool | None = None
    drop_border: bool | None = None
    index_limits: list[IndexLimitArgs] | None = Field(None, description="replace the user-stated index thresholds")
    parts: list[Part] | None = Field(None, description="keep only these parts of the water")
    drop_parts: list[Part] | None = Field(None, description="remove these parts of the water")
    clear: list[Clearable] = Field(default_factory=list, description="filters to remove")


class AnswerArgs(BaseModel):
    """A question about the current result, answered without recomputing it."""

    question: Question = Field(description="what to report about the current regions")


class DisplayArgs(BaseModel):
    """How to colour the image and overlay."""

    mode: Literal["false_colour", "true_colour"]


class NoArgs(BaseModel):
    """No arguments."""


class SharesArgs(BaseModel):
    """Scene-wide class shares, measured by extracting each class."""

    classes: list[Target] = Field(default_factory=list, description="classes to compare; empty = every class")


class ToolRunner(Protocol):
    """What the tools act on: one turn's working state (implemented by the dialogue)."""

    def run_extract(self, request: ExtractionRequest, *, refined: bool) -> str: ...
    def run_undo(self) -> str: ...
    def run_redo(self) -> str: ...
    def run_reset(self) -> str: ...
    def run_question(self, question: str) -> str: ...
    def run_shares(self, classes: tuple[str, ...]) -> str: ...
    def run_display(self, false_colour: bool) -> str: ...
    def run_help(self) -> str: ...
    @property
    def current(self) -> ExtractionRequest | None: ...


def request_from_args(args: ExtractArgs) -> ExtractionRequest:
    """The engine request described by ``extract`` tool arguments."""
    return ExtractionRequest(
        targets=tuple(dict.fromkeys(args.targets)), exclude=tuple(dict.fromkeys(args.exclude)),
        min_area_m2=args.min_area_m2, max_area_m2=args.max_area_m2, keep_largest=args.keep_largest,
        region=args.region, strictness=args.strictness, fill_holes=args.fill_holes, smooth=args.smooth,
        drop_border=args.drop_border, index_limits=_limits(args.index_limits),
        parts=tuple(dict.fromkeys(args.parts)), drop_parts=tuple(dict.fromkeys(args.drop_parts)),
    )


def _limits(args: list[IndexLimitArgs]) -> tuple[IndexLimit, ...]:
    from spex.spectral.indices import resolve_index  # "ndvi" -> "NDVI", "aweish" -> "AWEIsh"

    out = []
    for a in args:
        try:
            name = resolve_index(a.index).name
        except (KeyError, ValueError):
            name = a.index
        out.append(IndexLimit(a.target, name, a.low, a.high))
    return tuple(out)


def apply_refinement(current: ExtractionRequest, args: RefineArgs) -> ExtractionRequest:
    """``current`` changed as ``refine`` tool arguments say (raises ValueError if invalid)."""
    values = {f.name: getattr(current, f.name) for f in fields(ExtractionRequest)}
    for name in args.clear:
        values[name] = () if name in ("exclude", "index_limits", "parts", "drop_parts") else None
    if args.index_limits is not None:
        values["index_limits"] = _limits(args.index_limits)
    for name in ("parts", "drop_parts"):
        if getattr(args, name) is not None:
            values[name] = tuple(dict.fromkeys(getattr(args, name)))
    if args.targets is not None:
        values["targets"] = tuple(args.targets)
    values["targets"] = tuple(dict.fromkeys((*values["targets"], *args.add_targets)))
    if args.exclude is not None:
        values["exclude"] = tuple(args.exclude)
    values["exclude"] = tuple(dict.fromkeys((*values["exclude"], *args.add_exclude)))
    for name in ("min_area_m2", "max_area_m2", "keep_largest", "region", "fill_holes", "smooth", "drop_border"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    if args.strictness is not None:
        values["strictness"] = args.strictness
    values["strictness"] = max(-2, min(2, values["strictness"] + args.stricter))
    values["index_limits"] = tuple(lim for lim in values["index_limits"] if lim.target in values["targets"])
    if "water" not in values["targets"]:
        values["parts"], values["drop_parts"] = (), ()
    return ExtractionRequest(**values)


def _arg_value(value: Any) -> Any:
    """A request value as tool-call JSON (IndexLimit -> dict)."""
    if isinstance(value, tuple):
        return [_arg_value(v) for v in value]
    if isinstance(value, IndexLimit):
        return {"target": value.target, "index": value.index, "low": value.low, "high": value.high}
    return value


def _refine_args(current: ExtractionRequest, new: ExtractionRequest) -> dict[str, Any]:
    """The smallest ``refine`` arguments that turn ``current`` into ``new``."""
    args: dict[str, Any] = {}
    clear: list[str] = []
    for f in fields(ExtractionRequest):
        old, value = getattr(current, f.name), getattr(new, f.name)
        if old == value:
            continue
        if value is None or (f.name in ("exclude", "index_limits", "parts", "drop_parts") and value == ()):
            clear.append(f.name)
        else:
            args[f.name] = _arg_value(value)
    if clear:
        args["clear"] = clear
    return args


def _extract_args(request: ExtractionRequest) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for f in fields(ExtractionRequest):
        value = getattr(request, f.name)
        if value != f.default or f.name == "targets":
            args[f.name] = _arg_value(value)
    return args


def _call(name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "args": args or {}, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}


def intent_to_call(intent: Intent, current: ExtractionRequest | None) -> dict[str, Any]:
    """The tool call that carries out a parsed ``intent`` (a langchain ToolCall dict)."""
    if intent.kind in ("extract", "refine"):
        assert intent.request is not None  # guaranteed by Intent.__post_init__
        if intent.kind == "refine" and current is not None:
            return _call("refine", _refine_args(current, intent.request))
        return _call("extract", _extract_args(intent.request))
    if intent.kind == "question" and intent.question == "shares":
        return _call("measure_shares", {"classes": list(intent.classes)})
    if intent.kind == "question":
        return _call("answer_question", {"question": intent.question or "count"})
    if intent.kind == "display":
        return _call("set_display", {"mode": intent.display or "true_colour"})
    return _call({"undo": "undo", "redo": "redo", "reset": "start_over", "help": "help"}[intent.kind])


def build_tools(runner: ToolRunner | None) -> list[BaseTool]:
    """The chat operations as structured tools acting on ``runner`` (None: schemas only)."""

    def need() -> ToolRunner:
        if runner is None:
            raise RuntimeError("these tools were built for their schemas only")
        return runner

    def extract(**kw: Any) -> str:
        return need().run_extract(request_from_args(ExtractArgs(**kw)), refined=False)

    def refine(**kw: Any) -> str:
        r = need()
        if r.current is None:
            return "There is no result to refine yet: ask me to extract something first, e.g. 'extract the water'."
        return r.run_extract(apply_refinement(r.current, RefineArgs(**kw)), refined=True)

    def simple(method: Callable[[ToolRunner], str]) -> Callable[[], str]:
        return lambda: method(need())

    specs: list[tuple[str, str, type[BaseModel], Callable[..., str]]] = [
        ("extract", "Extract land-cover classes from the loaded scene as a new result.", ExtractArgs, extract),
        ("refine", "Change the current result: area filters, N largest, image part, strictness, "
                   "added/excluded classes, hole filling, border regions.", RefineArgs, refine),
        ("undo", "Go back to the previous result.", NoArgs, simple(lambda r: r.run_undo())),
        ("redo", "Re-apply the result that was undone.", NoArgs, simple(lambda r: r.run_redo())),
        ("start_over", "Clear the current result (the scene stays loaded).", NoArgs,
         simple(lambda r: r.run_reset())),
        ("answer_question", "Answer a question about the current regions from the current mask.", AnswerArgs,
         lambda question: need().run_question(question)),
        ("measure_shares", "Measure how much of the scene each class covers (which class covers most, "
                           "vegetation vs water).", SharesArgs,
         lambda classes=(): need().run_shares(tuple(classes))),
        ("set_display", "Show the image in true colour or false colour (NIR-red-green).", DisplayArgs,
         lambda mode: need().run_display(mode == "false_colour")),
        ("help", "Explain what can be asked.", NoArgs, simple(lambda r: r.run_help())),
    ]
    return [StructuredTool.from_function(func=fn, name=name, description=desc, args_schema=schema)
            for name, desc, schema, fn in specs]


class RuleInterpreter:
    """Chooses tools with the rule-based English parser (offline, deterministic)."""

    name = "rule-based parser"

    def __init__(self, parse: Callable[..., Intent] | None = None) -> None:
        if parse is None:
            from spex.engine import parse_instruction as parse
        self._parse = parse

    def choose(self, text: str, state: ChatState) -> AIMessage:
        """An AIMessage whose tool call does what ``text`` asks; raises InstructionError."""
        pixel_area = state.scene.scene.pixel_area_m2 if state.scene is not None else None
        intent = self._parse(text, state.request, pixel_area_m2=pixel_area)
        call = intent_to_call(intent, state.request)
        understood = "; ".join(intent.understood)
        return AIMessage(content=f"Understood: {understood}" if understood else "", tool_calls=[call],
                         additional_kwargs={"notes": list(intent.notes)} if intent.notes else {})
