"""Session-scoped file access and the upload cap, enforced in front of Gradio's routes.

Why: Gradio serves any file under its cache folder and ``allowed_paths`` at
``/gradio_api/file=<path>`` to anyone who knows the path, and keeps every upload for
hours. Here:

- Each browser (or API client) gets an ``HttpOnly`` cookie on its first response. The
  session hashes it opens (``/gradio_api/queue/join`` bodies, heartbeats) are recorded
  for that cookie.
- A session's folder is named by an HMAC of its session hash under a per-server secret,
  so the path does not reveal the session hash, and a file under the work folder is
  served only to a cookie that opened the session owning that folder; an upload only to
  the cookie that posted it. Everyone else gets 404, path known or not.
- Uploads no turn has used ("orphans") are deleted after ``orphan_ttl_s``; their total
  is capped (``orphan_cap_bytes``; uploads without a cookie share a smaller bucket);
  an upload used by a session is deleted when the last session using it closes.

:class:`SessionFiles` holds the per-server registry (thread-safe: the handlers run in
worker threads, the middleware on the event loop); :class:`SessionFileMiddleware` is the
pure ASGI layer that applies it.
"""

from __future__ import annotations

from chat_app.session_files import SessionFiles
from chat_app.session_middleware import COOKIE, SessionFileMiddleware

# The registry (session_files.py) and the ASGI layer (session_middleware.py) live in their own
# modules; they are re-exported here so ``from chat_app.access import ...`` keeps working.
__all__ = ["COOKIE", "SessionFileMiddleware", "SessionFiles"]
