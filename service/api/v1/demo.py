"""Demo inputs (shapes images, reviews, prompts) for clients without their own, such as the dashboard."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query

from ...demo.samples import MAX_SAMPLES, image_samples, prompt_samples, text_samples
from .schemas import DemoImage, DemoPrompt, DemoSamples, DemoText, ErrorBody

router = APIRouter(prefix="/v1/demo", tags=["demo"])


@router.get("/samples", responses={422: {"model": ErrorBody}})  # the service's error body, not FastAPI's
def samples(
    n: Annotated[int, Query(ge=1, le=MAX_SAMPLES, description="Images, texts and prompts each.")] = 8,
    seed: Annotated[int, Query(ge=0, le=2**32 - 1)] = 0,
) -> DemoSamples:
    """Generated demo inputs, the same for the same seed; every second one carries the demo's shortcut."""
    return DemoSamples(
        images=[
            DemoImage(image=base64.b64encode(s.png).decode("ascii"), label=s.label, watermark=s.watermark)
            for s in image_samples(n, seed)
        ],
        texts=[DemoText(text=s.text, label=s.label, shortcut=s.shortcut) for s in text_samples(n, seed)],
        prompts=[DemoPrompt(text=s.text, answer=s.answer, tagged=s.tagged) for s in prompt_samples(n, seed)],
    )
