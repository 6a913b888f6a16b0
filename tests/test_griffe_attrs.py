"""The docs' griffe extension (tools/griffe_attrs.py) builds the __init__ attrs generates.

Each rule is checked on a small source module, and the static result is compared with the
``__init__`` attrs really generates: for every attrs class of camvidseg, and for random class
definitions (hypothesis). Skipped when griffe (the ``docs`` extra) is not installed.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import textwrap
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("griffe")

import griffe

from tools.griffe_attrs import AttrsExtension, attrs_init_parameters

if TYPE_CHECKING:
    from collections.abc import Mapping

Row = tuple[str, str, str | None, str | None]


def _load(files: Mapping[str, str]) -> Iterator[griffe.Module]:
    with griffe.temporary_visited_package(
        "pkg",
        {name: textwrap.dedent(code) for name, code in files.items()},
        extensions=griffe.load_extensions(AttrsExtension()),
    ) as package:
        yield package


def static_init(code: str, name: str, **modules: str) -> list[Row] | None:
    """``(name, kind, annotation, default)`` of each ``__init__`` parameter griffe gets."""
    files = {"__init__.py": code, **{f"{module}.py": text for module, text in modules.items()}}
    for package in _load(files):
        class_ = package[name]
        init = class_.members.get("__init__")
        if init is None:
            return None
        return [
            (
                p.name,
                p.kind.name if p.kind else "",
                None if p.annotation is None else str(p.annotation),
                None if p.default is None else str(p.default),
            )
            for p in list(init.parameters)[1:]
        ]
    raise AssertionError("unreachable")


def runtime_init(code: str, name: str) -> list[Row]:
    """The same rows for the ``__init__`` attrs generates (``NOTHING`` defaults as ``?``)."""
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(code), "<test>", "exec"), namespace)
    init = namespace[name].__init__
    rows = []
    for p in list(inspect.signature(init).parameters.values())[1:]:
        annotation = init.__annotations__.get(p.name)
        default = None if p.default is p.empty else repr(p.default)
        rows.append((p.name, p.kind.name.lower(), annotation, default))
    return rows


def _normalised(rows: list[Row]) -> list[Row]:
    """Factories are ``NOTHING`` at run time and ``f()`` statically: compare their presence."""
    return [
        (name, kind, annotation, "<factory>" if default in ("NOTHING", "list()") else default)
        for name, kind, annotation, default in rows
    ]


HEADER = "from __future__ import annotations\nimport attrs\n"


def test_fields_defaults_and_factories() -> None:
    code = HEADER + textwrap.dedent(
        """
        def make() -> list[int]:
            return []

        @attrs.frozen
        class Point:
            x: int
            y: int = 0
            tags: list[int] = attrs.field(factory=list)
            more: list[int] = attrs.Factory(make)
            named: str = attrs.field(default="n")
        """
    )
    assert static_init(code, "Point") == [
        ("x", "positional_or_keyword", "int", None),
        ("y", "positional_or_keyword", "int", "0"),
        ("tags", "positional_or_keyword", "list[int]", "list()"),
        ("more", "positional_or_keyword", "list[int]", "make()"),
        ("named", "positional_or_keyword", "str", "'n'"),
    ]


def test_kw_only_per_field_and_per_class_moves_parameters_behind_the_star() -> None:
    code = HEADER + textwrap.dedent(
        """
        @attrs.define
        class Base:
            a: int = attrs.field(kw_only=True)
            b: int = 1

        @attrs.define(kw_only=True)
        class Child(Base):
            c: int
            d: int = attrs.field(default=2, kw_only=False)
        """
    )
    kinds = [(row[0], row[1]) for row in static_init(code, "Child") or []]
    # Class-level kw_only leaves base fields alone and yields to a field's own kw_only=False.
    assert kinds == [
        ("b", "positional_or_keyword"),
        ("d", "positional_or_keyword"),
        ("a", "keyword_only"),
        ("c", "keyword_only"),
    ]
    assert kinds == [(row[0], row[1]) for row in runtime_init(code, "Child")]


def test_force_kw_only_makes_every_field_keyword_only() -> None:
    code = HEADER + textwrap.dedent(
        """
        @attrs.define
        class Base:
            a: int

        @attrs.define(kw_only=True, force_kw_only=True)
        class Child(Base):
            b: int = attrs.field(kw_only=False)
        """
    )
    rows = static_init(code, "Child")
    assert [(row[0], row[1]) for row in rows or []] == [
        ("a", "keyword_only"),
        ("b", "keyword_only"),
    ]
    assert rows == runtime_init(code, "Child")


def test_init_false_alias_and_private_names() -> None:
    code = HEADER + textwrap.dedent(
        """
        @attrs.frozen
        class Item:
            _path: str
            _name: str = attrs.field(alias="label")
            __secret: int = 0
            cache: dict[str, int] = attrs.field(init=False, factory=dict)
        """
    )
    expected = ["path", "label", "Item__secret"]  # __secret is stored as _Item__secret
    assert [row[0] for row in static_init(code, "Item") or []] == expected
    assert [row[0] for row in runtime_init(code, "Item")] == expected


def test_inheritance_order_with_a_redefined_field_across_modules() -> None:
    base = HEADER + textwrap.dedent(
        """
        @attrs.define
        class A:
            x: int
            y: int = 1

        @attrs.define
        class B(A):
            z: int = 2
        """
    )
    code = HEADER + textwrap.dedent(
        """
        from pkg.base import B

        @attrs.define
        class C(B):
            x: int = 5
            w: int = 3
        """
    )
    rows = static_init(code, "C", base=base)
    # The redefined x leaves its base position and takes the subclass's (attrs' MRO order).
    assert [(row[0], row[3]) for row in rows or []] == [
        ("y", "1"),
        ("z", "2"),
        ("x", "5"),
        ("w", "3"),
    ]


def test_classic_attr_s_only_counts_attr_ib_and_keeps_the_old_base_order() -> None:
    code = textwrap.dedent(
        """
        import attr

        @attr.s
        class A:
            a = attr.ib()
            b = attr.ib(default=1)
            plain: int = 3

        @attr.s
        class B(A):
            a = attr.ib(default=0)
            c = attr.ib(default=2, type=int)
        """
    )
    assert static_init(code, "A") == [
        ("a", "positional_or_keyword", None, None),
        ("b", "positional_or_keyword", None, "1"),
    ]
    static = static_init(code, "B")
    assert [row[0] for row in static or []] == [row[0] for row in runtime_init(code, "B")]
    assert [row[0] for row in static or []] == ["b", "a", "c"]
    assert static is not None
    assert static[2] == ("c", "positional_or_keyword", "int", "2")


def test_define_without_types_falls_back_to_field_assignments() -> None:
    code = textwrap.dedent(
        """
        import attrs

        @attrs.define
        class A:
            a = attrs.field()
            count: int = 3
        """
    )
    assert static_init(code, "A") == [("a", "positional_or_keyword", None, None)]
    assert [row[0] for row in runtime_init(code, "A")] == ["a"]


def test_class_variables_and_properties_are_not_fields() -> None:
    code = HEADER + textwrap.dedent(
        """
        from typing import ClassVar
        from functools import cached_property

        @attrs.frozen
        class A:
            LIMIT: ClassVar[int] = 3
            a: int

            @property
            def double(self) -> int:
                return 2 * self.a
        """
    )
    assert static_init(code, "A") == [("a", "positional_or_keyword", "int", None)]


def test_converters_give_the_parameter_their_input_type() -> None:
    code = HEADER + textwrap.dedent(
        """
        import os

        def to_text(value: str | os.PathLike[str]) -> str:
            return os.fspath(value)

        class Wrapped:
            def __init__(self, raw: bytes) -> None:
                self.raw = raw

        @attrs.frozen
        class A:
            a: str = attrs.field(converter=to_text)
            b: str | None = attrs.field(default=None, converter=attrs.converters.optional(to_text))
            c: str = attrs.field(default="x", converter=str)
            d: str = attrs.field(default="y", converter=[to_text, str])
            e: Wrapped = attrs.field(default=b"", converter=Wrapped)
            f: str = attrs.field(default="z", converter=attrs.Converter(to_text))
        """
    )
    annotations = {row[0]: row[2] for row in static_init(code, "A") or []}
    assert annotations == {
        "a": "str | os.PathLike[str]",
        "b": "str | os.PathLike[str] | None",
        "c": None,  # attrs cannot read str's signature either: no annotation at run time
        "d": "str | os.PathLike[str]",
        "e": "bytes",
        "f": "str | os.PathLike[str]",
    }
    runtime = {row[0]: row[2] for row in runtime_init(code, "A")}
    assert runtime["a"] == annotations["a"]
    assert runtime["c"] is None
    assert runtime["e"] == "bytes"


def test_decorated_default_is_shown_as_the_method_call() -> None:
    code = HEADER + textwrap.dedent(
        """
        @attrs.define
        class A:
            size: int = 2
            counts: list[int] = attrs.field()

            @counts.default
            def _zeros(self) -> list[int]:
                return [0] * self.size
        """
    )
    assert static_init(code, "A") == [
        ("size", "positional_or_keyword", "int", "2"),
        ("counts", "positional_or_keyword", "list[int]", "self._zeros()"),
    ]


@pytest.mark.parametrize(
    "decorator", ["@attrs.define(init=False)", "@attrs.define(these={'a': attrs.field()})"]
)
def test_no_init_when_attrs_generates_none(decorator: str) -> None:
    assert static_init(f"{HEADER}\n{decorator}\nclass A:\n    a: int = 1\n", "A") is None


def test_an_init_of_the_class_itself_is_kept() -> None:
    code = HEADER + "@attrs.define\nclass A:\n    a: int = 1\n"
    code += "    def __init__(self, b: str) -> None:\n        self.a = len(b)\n"
    assert static_init(code, "A") == [("b", "positional_or_keyword", "str", None)]


def test_attribute_docstrings_become_parameter_docstrings_and_values_show_defaults() -> None:
    code = HEADER + textwrap.dedent(
        '''
        @attrs.frozen
        class A:
            """A value."""

            size: int = attrs.field(default=3, validator=attrs.validators.ge(0))
            """How many, at least 0."""
        '''
    )
    for package in _load({"__init__.py": code}):
        class_ = package["A"]
        (parameter,) = list(class_.members["__init__"].parameters)[1:]
        assert parameter.docstring is not None
        assert parameter.docstring.value == "How many, at least 0."
        assert str(class_.members["size"].value) == "3"  # not "attrs.field(default=3, ...)"


def test_non_attrs_classes_are_left_alone() -> None:
    code = "class A:\n    a: int = 1\n"
    for package in _load({"__init__.py": code}):
        assert attrs_init_parameters(package["A"]) is None
        assert "__init__" not in package["A"].members


# -- against attrs itself -------------------------------------------------------------------


def _camvidseg_attrs_classes() -> list[type]:
    import camvidseg

    found: list[type] = []
    # onerror: a package whose optional dependency (Beam, PyAV, ...) is missing is not walked.
    for info in pkgutil.walk_packages(camvidseg.__path__, "camvidseg.", onerror=lambda _: None):
        if info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:  # an extra that is not installed
            if (exc.name or "").startswith("camvidseg"):
                raise
            continue
        found.extend(
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj) and attrs.has(obj) and obj.__module__ == info.name
        )
    return found


@pytest.mark.slow
def test_every_camvidseg_attrs_class_gets_the_signature_attrs_generates() -> None:
    loader = griffe.GriffeLoader(
        extensions=griffe.load_extensions(AttrsExtension()), search_paths=["src"]
    )
    package = loader.load("camvidseg")
    classes = _camvidseg_attrs_classes()
    assert len(classes) > 20  # the check must cover the package, not an empty list
    for cls in classes:
        static = package[f"{cls.__module__.removeprefix('camvidseg.')}.{cls.__qualname__}"]
        init = static.members["__init__"]
        generated = vars(cls)["__init__"]  # the __init__ attrs wrote for this class
        runtime = inspect.signature(generated)
        annotations = generated.__annotations__
        got = [
            (p.name, p.kind.name if p.kind else "", p.default is not None, str(p.annotation))
            for p in list(init.parameters)[1:]
        ]
        expected = [
            (p.name, p.kind.name.lower(), p.default is not p.empty, str(annotations.get(p.name)))
            for p in list(runtime.parameters.values())[1:]
        ]
        assert got == expected, cls


FIELD_NAMES = ("a", "b", "c", "_d", "e")
FIELD_FORMS = (
    "{name}: int",
    "{name}: int = 1",
    "{name}: int = attrs.field(default=2)",
    "{name}: list[int] = attrs.field(factory=list)",
    "{name}: list[int] = attrs.Factory(list)",
    "{name}: int = attrs.field(kw_only=True)",
    "{name}: int = attrs.field(default=3, kw_only=False)",
    "{name}: int = attrs.field(init=False, default=4)",
    "{name}: int = attrs.field(default=5, alias='{name}_alias')",
)


@st.composite
def attrs_modules(draw: st.DrawFn) -> str:
    """Source of a base class and a subclass with random fields and class options."""
    lines = [HEADER]
    for cls, base in (("Base", ""), ("Child", "(Base)")):
        names = draw(st.lists(st.sampled_from(FIELD_NAMES), unique=True, max_size=4))
        options = draw(
            st.sampled_from(["", "(kw_only=True)", "(kw_only=True, force_kw_only=True)"])
        )
        decorator = draw(st.sampled_from(["define", "frozen"]))
        lines.append(f"@attrs.{decorator}{options}\nclass {cls}{base}:")
        lines.extend(
            "    " + draw(st.sampled_from(FIELD_FORMS)).format(name=name) for name in names
        )
        lines.append("    pass\n")
    return "\n".join(lines)


@pytest.mark.slow
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(attrs_modules())
def test_random_classes_match_attrs(code: str) -> None:
    try:
        runtime = runtime_init(code, "Child")
    except ValueError:  # mandatory after defaulted positional: attrs refuses the class
        assume(False)
        raise
    static = static_init(code, "Child")
    assert static is not None
    assert _normalised(static) == _normalised(runtime)
