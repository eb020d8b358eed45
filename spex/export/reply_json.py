"""``reply.json``: the LLM-written, fact-checked explanation of one extraction, with its facts.

``{"backend", "llm", "llm_parameters", "routing", "explanation", "explanation_source", "facts", "timings"}``;
``facts`` holds every number the explanation may state, in the unit in which it is stated.
:func:`run_llm_extract` is the CLI path of ``extract --backend spex`` without ``--model``:
the model reader reads the user's words, each class's mask comes from the trained refiner or
the engine as routed (:mod:`spex.model.refined`; ``routing`` in reply.json says which and
why), the LLM writes the reply.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

__all__ = ["reply_payload", "run_llm_extract", "write_reply_json"]


def reply_payload(extraction, explanation, llm, facts, routes=()) -> dict:
    """The reply.json content (plain JSON types); ``routes``: which backend made each class's mask and why."""
    from spex.model.facts import facts_json

    return {"backend": extraction.backend, "llm": llm.name, "llm_parameters": int(llm.parameters),
            "routing": [{"class": r.target, "backend": r.backend, "why": r.why} for r in routes],
            "explanation": explanation.text, "explanation_source": explanation.source,
            "unverified_numbers": list(explanation.unverified), "facts": facts_json(facts),
            "timings": {"llm_load_s": round(llm.load_seconds, 2),
                        "first_token_s": None if explanation.first_token_s is None else round(explanation.first_token_s, 2),
                        "reply_s": None if explanation.total_s is None else round(explanation.total_s, 2)}}


def write_reply_json(path: Path, payload: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def run_llm_extract(args) -> int:
    """Reader -> refiner/engine mask (routed per class) -> facts -> LLM explanation; files plus reply.json."""
    import re

    from spex.errors import InstructionError
    from spex.export import write_outputs
    from spex.io import open_scene
    from spex.model.explain import generate_explanation
    from spex.model.facts import extraction_facts
    from spex.model.llm import load_llm, resolve_llm
    from spex.model.reader import ModelReader
    from spex.model.refined import RefinedBackend
    from spex.spectral import IndexCache

    bands = [b for b in re.split(r"[,\s]+", args.bands) if b] if args.bands else None
    spec = resolve_llm(getattr(args, "llm", None), getattr(args, "quantization", None))
    reader = ModelReader()
    with open_scene(args.scene, bands=bands, mtl=args.mtl, sensor=args.sensor) as scene:
        intent = reader.read(args.query, None, pixel_area_m2=scene.pixel_area_m2)
        if intent.kind != "extract" or intent.request is None:
            raise InstructionError("--query must ask for a class to extract, e.g. 'show me the reservoir'.")
        cache = IndexCache(scene, window_size=getattr(args, "tile_size", 1024))
        llm = load_llm(spec)
        backend = RefinedBackend(args.backend, llm=llm)
        routes = backend.routes(intent.request)
        t_mask = time.perf_counter()
        extraction = backend.extract(scene, intent.request, cache, words=args.query)
        mask_s = time.perf_counter() - t_mask
        extraction.backend = f"{extraction.backend}; reader all-MiniLM-L6-v2; text {llm.name}"
        facts = extraction_facts(extraction)
        t0 = time.perf_counter()
        from spex.engine.request import TARGET_LABELS

        lead = "I selected the " + " and ".join(TARGET_LABELS[t] for t in extraction.request.targets)
        explanation = generate_explanation(llm, args.query, facts, extraction, scene_text=scene.sensor,
                                           ignore=[scene.sensor, llm.name, "SmolLM2"], lead=lead)
        out = Path(args.out)
        outputs = write_outputs(extraction, scene, out, reply=explanation.text,
                                false_colour=bool(getattr(args, "false_colour", False)))
        payload = reply_payload(extraction, explanation, llm, facts, routes)
        payload["timings"]["mask_s"] = round(mask_s, 2)
        path = write_reply_json(out / "reply.json", payload)
    print(explanation.text)
    print()
    print(f"Backend: {extraction.backend}; explanation {explanation.source} in {time.perf_counter() - t0:.1f} s")
    print("Wrote " + ", ".join(str(p) for p in (*outputs.paths(), path)))
    return 0
