"""Collecting an audit's inputs: images recursively, texts one per line, class sub-folders as true labels."""

from __future__ import annotations

import pytest

from service.cli.audit.inputs import InputError, Item, class_names, collect, true_label


def test_images_are_collected_recursively_in_order_with_their_first_sub_folder(tmp_path):
    for name in ["circle/b.png", "circle/deeper/a.PNG", "square/c.jpg", "top.png", "circle/notes.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    items = collect(str(tmp_path), "image")
    assert [(i.name, i.folder) for i in items] == [
        ("circle/b.png", "circle"),
        ("circle/deeper/a.PNG", "circle"),
        ("square/c.jpg", "square"),
        ("top.png", None),
    ]
    assert items[0].source == str(tmp_path / "circle" / "b.png")


def test_each_non_empty_line_of_a_txt_file_is_a_text(tmp_path):
    (tmp_path / "positive").mkdir()
    (tmp_path / "positive" / "many.txt").write_text("great kettle\n\n  fine lid  \n", encoding="utf-8")
    (tmp_path / "one.txt").write_text("awful", encoding="utf-8")
    items = collect(str(tmp_path), "text")
    assert items == [
        Item("awful", "one.txt:1", None),
        Item("great kettle", "positive/many.txt:1", "positive"),
        Item("fine lid", "positive/many.txt:3", "positive"),
    ]


def test_one_file_can_be_audited(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    assert collect(str(tmp_path / "a.png"), "image") == [Item(str(tmp_path / "a.png"), "a.png", None)]


@pytest.mark.parametrize(
    "setup, kind, says",
    [
        (None, "image", "cannot read {path}: No such file or directory"),
        ({"a.txt": b"text"}, "image", "{path}: no images in it (looked for .png, "),
        ({"a.png": b"x"}, "text", "{path}: no texts in it (looked for .txt)"),
        ({"a.txt": b"\n  \n"}, "text", "{path}: its .txt files hold no text"),
        ({"a.txt": b"caf\xe9!"}, "text", "{path}/a.txt: not UTF-8 text (invalid continuation byte at byte 3)"),
    ],
)
def test_what_cannot_be_audited_says_why_in_one_line(tmp_path, setup, kind, says):
    path = tmp_path / "data"
    if setup is not None:
        path.mkdir()
        for name, content in setup.items():
            (path / name).write_bytes(content)
    with pytest.raises(InputError) as info:
        collect(str(path), kind)
    assert str(info.value).startswith(says.format(path=path)) and "\n" not in str(info.value)


def test_a_sub_folder_is_a_true_label_only_when_the_model_has_that_label():
    classes = class_names(["circle", "square"], 2)
    assert true_label(Item("p", "circle/a.png", "circle"), classes) == "circle"
    assert true_label(Item("p", "misc/a.png", "misc"), classes) is None
    assert true_label(Item("p", "a.png", None), classes) is None
    assert class_names(None, 3) == ["0", "1", "2"]  # a model without labels: its classes by index
