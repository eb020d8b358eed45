"""SPEX chat: a Gradio front end that talks about multispectral scenes.

``chat_app.dialogue`` holds the turn logic (no Gradio), ``chat_app.ui`` the layout,
``chat_app.tools`` the operations as langchain-core tools. Start with ``python app.py``.
"""

__all__ = ["build_demo"]


def build_demo(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - thin lazy re-export
    """Build the Gradio app (see :func:`chat_app.ui.build_demo`); imports Gradio on first use."""
    from chat_app.ui import build_demo as _build

    return _build(*args, **kwargs)
