"""HTTP: v1 (JSON, multipart) and v2 (Open Inference Protocol) side by side, each a thin translation into and
out of service.core; the pieces both use (auth, observe, events, docs, ui, common) sit here."""
