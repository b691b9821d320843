"""The v1 JSON API: its routes, request bodies (JSON, multipart, a raw image) and schemas, over service.core."""
