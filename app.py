"""SPEX chat entry point (also the Hugging Face Space's ``app_file``).

    python app.py                      # http://127.0.0.1:7860, rule-based spectral engine
    python app.py --port 8080 --host 0.0.0.0
    python app.py --backend auto       # SPEX refiner where it measured better, LLM explanation streamed
    python app.py --backend spex --model assets/spex-small [--quantization 4bit]
    SPEX_CHAT_MODEL=/models/qwen python app.py   # optional local LLM chooses the tools

GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are respected (Spaces sets them).
Nothing here downloads anything: models are read from local folders only.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# GDAL's block cache defaults to 5 % of RAM per process; a shared server bounds it (MB)
os.environ.setdefault("GDAL_CACHEMAX", "128")

from chat_app.lifecycle import limit_malloc_arenas  # noqa: E402
from chat_app.settings import Settings, parse_settings  # noqa: E402

# before any thread starts: few malloc arenas, so a closed session's memory goes back to the OS
if os.environ.get("SPEX_MALLOC_ARENAS", "2") != "0":
    limit_malloc_arenas(int(os.environ.get("SPEX_MALLOC_ARENAS", "2")))


def create_app(settings: Settings):  # noqa: ANN201 - returns gr.Blocks (import kept lazy)
    """Load the shared models once and build the Blocks app."""
    from chat_app.ui import build_demo, make_dialogue

    from chat_app.explain import Explainer

    # the LLM loads in the background (the first reply never waits for it); shared read-only by all sessions
    refined = settings.backend == "auto" or (settings.backend == "spex" and not settings.model_path)
    explainer = Explainer(settings.explain_mode, settings.llm, settings.quantization, preload=refined)
    explainer.start()
    backend = None
    if refined:  # the SPEX refiner; the engine for a class until the LLM is ready (the reply says so)
        from spex.model.refined import RefinedBackend

        backend = RefinedBackend(settings.backend, llm=explainer.loaded)
    elif settings.backend == "spex":
        from spex.model import SpexBackend

        backend = SpexBackend(settings.model_path, quantization=settings.quantization)
    interpreter = None
    if settings.chat_model:
        from chat_app.llm import make_llm_interpreter

        interpreter = make_llm_interpreter(settings.chat_model, quantization=settings.chat_quantization)
    return build_demo(settings, make_dialogue(settings, backend=backend, interpreter=interpreter), explainer=explainer)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse settings, build the app and serve it until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = parse_settings(argv)
    except ValueError as exc:
        print(f"app.py: {exc}", file=sys.stderr)
        return 2
    from chat_app.ui import launch_kwargs

    demo = create_app(settings)
    demo.queue(default_concurrency_limit=2, max_size=32)
    demo.launch(server_name=settings.host, server_port=settings.port, **launch_kwargs(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
