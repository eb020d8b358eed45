"""Run-time settings of the chat app, from the command line and the environment.

Kept in one frozen value so handlers never read module globals: ``build_demo``
receives a :class:`Settings` and closes over it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BACKENDS", "EXPLAIN_MODES", "QUANTIZATIONS", "Settings", "build_parser", "gradio_temp_dir", "parse_settings"]

BACKENDS = ("spectral", "spex", "auto")
EXPLAIN_MODES = ("llm", "template")
QUANTIZATIONS = ("none", "8bit", "4bit")

#: Repository root (app.py lives there); the demo scene is in assets/demo.
REPO_ROOT = Path(__file__).resolve().parent.parent


def gradio_temp_dir() -> Path:
    """Gradio's upload and cache folder (``GRADIO_TEMP_DIR``, else <tmp>/gradio)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


@dataclass(frozen=True)
class Settings:
    """Everything the UI and the dialogue need to know about this deployment."""

    host: str = "127.0.0.1"
    port: int = 7860
    backend: str = "spectral"
    model_path: str | None = None
    quantization: str | None = None
    chat_model: str | None = None
    chat_quantization: str | None = "4bit"
    explain: str | None = None  # "llm" | "template"; None: "llm" unless the backend is the spectral engine
    llm: str | None = None  # language model of the SPEX backends / explanation (None: shipped SmolLM2)
    max_file_size_mb: int = 500
    max_history: int = 200
    shown_history: int = 40  # bubbles sent to the browser per turn (the report keeps the whole conversation)
    max_undo: int = 20
    demo_dir: Path = REPO_ROOT / "assets" / "demo"
    open_demo: bool = True  # each new page opens with the demo scene loaded (off: empty chat)
    # inside Gradio's cache folder: files served from there are not copied again into it at every turn
    # (outside it, each download and picture was duplicated per turn and kept for hours)
    # one folder per serving process (srv-<pid>), so a second server's start-up sweep leaves this one's alone
    work_dir: Path = field(default_factory=lambda: gradio_temp_dir() / "spex_chat" / f"srv-{os.getpid()}")
    delete_cache: tuple[int, int] = (3600, 7200)
    state_ttl_s: int = 4 * 3600  # an idle session's scene and cache are released after this
    turn_limit_s: float = 120.0  # a turn running longer ends with a message; the session keeps its state
    upload_orphan_ttl_s: float = 900.0  # an upload no chat turn used is deleted after this
    upload_orphan_cap_mb: int = 1024  # total size of uploads no turn has used yet (anonymous ones included)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"invalid backend: {self.backend!r}; expected one of {BACKENDS}")
        if self.explain is not None and self.explain not in EXPLAIN_MODES:
            raise ValueError(f"invalid explanation mode: {self.explain!r}; expected one of {EXPLAIN_MODES}")
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise ValueError(f"invalid quantization: {self.quantization!r}; expected one of {QUANTIZATIONS}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"invalid port: {self.port}; expected 1..65535")
        if not self.turn_limit_s > 0:
            raise ValueError(f"turn time limit must be > 0 s, got {self.turn_limit_s}")
        if self.max_file_size_mb < 1:
            raise ValueError(f"max file size must be >= 1 MB, got {self.max_file_size_mb}")

    @property
    def explain_mode(self) -> str:
        """How replies are explained: "llm" (streamed, fact-checked) or "template" (measured summary only)."""
        return self.explain or ("template" if self.backend == "spectral" else "llm")

    @property
    def max_file_size_bytes(self) -> int:
        return self.max_file_size_mb * 1024 * 1024

    @property
    def max_file_size(self) -> str:
        """The limit in Gradio's ``launch(max_file_size=...)`` notation."""
        return f"{self.max_file_size_mb}mb"


def build_parser() -> argparse.ArgumentParser:
    """The ``python app.py`` command line; defaults come from the environment."""
    p = argparse.ArgumentParser(prog="app.py", description="SPEX chat: talk to your multispectral scenes.")
    p.add_argument("--host", default=None, help="interface to bind (env GRADIO_SERVER_NAME; default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (env GRADIO_SERVER_PORT; default 7860)")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="spectral = rule-based spectral engine (default); auto = per class, the SPEX refiner where it "
                        "measured better on held-out data, else the engine; spex = the SPEX refiner for every class it "
                        "was trained on (with --model: an old SPEX checkpoint folder)")
    p.add_argument("--explain", choices=EXPLAIN_MODES, default=None,
                   help="llm = stream the language model's fact-checked explanation after the measured summary "
                        "(default for the SPEX backends); template = summary only (env SPEX_CHAT_EXPLAIN)")
    p.add_argument("--llm", default=None, help="language model folder or .gguf for the SPEX backends "
                                                "(env SPEX_LLM; default the shipped SmolLM2-135M-Instruct)")
    p.add_argument("--model", dest="model_path", default=None, help="SPEX checkpoint folder (env SPEX_MODEL)")
    p.add_argument("--quantization", choices=QUANTIZATIONS, default=None,
                   help="load the SPEX language model quantized with bitsandbytes (CUDA, or its CPU backend; falls back to full precision with a logged reason)")
    p.add_argument("--chat-model", default=None,
                   help="optional local chat LLM folder/id that chooses the tools (env SPEX_CHAT_MODEL); "
                        "default: the rule-based interpreter")
    p.add_argument("--max-file-size-mb", type=int, default=None, help="upload limit per file (default 500)")
    p.add_argument("--turn-limit-s", type=float, default=None,
                   help="seconds a chat turn may run before it is stopped (env SPEX_TURN_LIMIT_S; default 120)")
    p.add_argument("--no-demo", action="store_true",
                   help="open on an empty chat instead of the bundled demo scene (env SPEX_OPEN_DEMO=0)")
    return p


def parse_settings(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``argv`` (command line wins) and ``env`` (defaults to os.environ)."""
    env = os.environ if env is None else env
    args = build_parser().parse_args(argv)
    port = args.port if args.port is not None else int(env.get("GRADIO_SERVER_PORT", "7860"))
    quant = args.quantization or env.get("SPEX_QUANTIZATION") or None
    return Settings(
        host=args.host or env.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        port=port,
        backend=args.backend or env.get("SPEX_BACKEND", "spectral"),
        model_path=args.model_path or env.get("SPEX_MODEL") or None,
        quantization=None if quant == "none" else quant,
        chat_model=args.chat_model or env.get("SPEX_CHAT_MODEL") or None,
        explain=args.explain or env.get("SPEX_CHAT_EXPLAIN") or None,
        llm=args.llm or env.get("SPEX_LLM") or None,
        max_file_size_mb=args.max_file_size_mb or int(env.get("SPEX_MAX_FILE_SIZE_MB", "500")),
        turn_limit_s=args.turn_limit_s or float(env.get("SPEX_TURN_LIMIT_S", "120")),
        upload_orphan_ttl_s=float(env.get("SPEX_UPLOAD_ORPHAN_S", "900")),
        upload_orphan_cap_mb=int(env.get("SPEX_UPLOAD_CAP_MB", "1024")),
        open_demo=not args.no_demo and env.get("SPEX_OPEN_DEMO", "1").strip().lower() not in ("0", "false", "no"),
    )
