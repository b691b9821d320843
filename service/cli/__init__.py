"""Every command: `saliency-service serve | explain | audit | create-key | demo-images | demo-scenes |
demo-reviews | demo-prompts`.

Helpers raise (CommandError, the service's and the client's errors); only `main` turns them into one
`error: ...` line and an exit code. Local mode calls service.core, never the HTTP layer.
"""

from .main import main

__all__ = ["main"]
