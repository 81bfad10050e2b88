import pytest

from semcathode.data._schema import Schema, default_schema


@pytest.mark.parametrize(
    "name, expected",
    [
        ("NCM333_pristine", ("NCM333", "pristine")),
        ("NCM811_cycled", ("NCM811", "cycled")),
        ("ncm622-formation", ("NCM622", "formation")),
        ("333", ("NCM333", "pristine")),  # upstream KAIST layout: bare number = pristine
        ("333_formation", ("NCM333", "formation")),
        ("811_cycled", ("NCM811", "cycled")),
        ("NCM523_cycled", ("NCM523", "cycled")),  # recognised extra composition
    ],
)
def test_parse_known_names(name, expected):
    assert default_schema().parse(name) == expected


@pytest.mark.parametrize("name", ["NCM999_pristine", "NCM333_exploded", "images", "cats", ""])
def test_parse_unknown_names(name):
    assert default_schema().parse(name) is None


def test_classes_order_and_extra():
    s = default_schema()
    assert s.classes[:3] == ["NCM333_pristine", "NCM333_formation", "NCM333_cycled"]
    assert len(s.classes) == 9 and "NCM523_pristine" not in s.classes
    s2 = Schema(compositions=("NCM523",), extra_compositions=())
    assert s2.classes == ["NCM523_pristine", "NCM523_formation", "NCM523_cycled"]
    assert s2.parse("NCM333_pristine") is None
    assert Schema.from_dict(s.to_dict()) == s
