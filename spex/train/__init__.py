"""Training of the SPEX model: SPIE data, tokenizer, stage A/B loops, evaluation, recipe.

Heavy modules (torch, transformers) are imported by the submodules, not here:
``spex.train.pipeline.train``, ``spex.train.evaluate.evaluate``, ``spex.train.recipe.main``.
"""

__all__: list[str] = []
