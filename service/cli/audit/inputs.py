"""The inputs of an audit: image files under a folder, or the lines of its .txt files, each with the name of
its class sub-folder (PATH/<label>/...), which is its true label when the model has that label."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..explain import IMAGE_SUFFIXES

TEXT_SUFFIX = ".txt"


@dataclass(frozen=True)
class Item:
    source: str  # the image's path, or the text itself
    name: str  # shown in the report: the path under PATH (texts: path:line)
    folder: str | None  # the first sub-folder under PATH, None for files directly in it


class InputError(ValueError):
    """A folder that cannot be audited: the message is the one line the command prints."""


def collect(root: str, kind: str) -> list[Item]:
    """Image files (kind "image") or the non-empty lines of .txt files (kind "text") under `root`, recursively,
    in sorted path order. A file is also accepted as `root`."""
    base = Path(root)
    if not base.exists():
        raise InputError(f"cannot read {root}: No such file or directory")
    suffixes = IMAGE_SUFFIXES if kind == "image" else (TEXT_SUFFIX,)
    files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.suffix.lower() in suffixes)
    files = [p for p in files if p.is_file()]
    if not files:
        raise InputError(
            f"{root}: no {'images' if kind == 'image' else 'texts'} in it (looked for {', '.join(suffixes)})"
        )
    items: list[Item] = []
    for path in files:
        relative = path.relative_to(base) if path != base else Path(path.name)
        folder = relative.parts[0] if len(relative.parts) > 1 else None
        if kind == "image":
            items.append(Item(str(path), str(relative), folder))
        else:
            items += [Item(text, f"{relative}:{line}", folder) for line, text in text_lines(path)]
    if not items:
        raise InputError(f"{root}: its .txt files hold no text (one text per non-empty line)")
    return items


def text_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each non-empty line: one text per line, so a file may hold one text or many."""
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return [(i, line.strip()) for i, line in enumerate(content.splitlines(), start=1) if line.strip()]


def class_names(labels: list[str] | None, num_classes: int) -> list[str]:
    """The model's class names: its labels, or the class indices as text when it has none."""
    return list(labels) if labels else [str(i) for i in range(num_classes)]


def true_label(item: Item, classes: list[str]) -> str | None:
    """The item's class sub-folder when the model has a class of that name; else the truth is unknown."""
    return item.folder if item.folder in classes else None
