"""A griffe extension that builds the ``__init__`` of attrs classes statically.

griffe reads source code without importing it, so it never sees the ``__init__`` that attrs
generates at class creation; mkdocstrings then shows attrs classes without a signature and warns
about every parameter their docstrings describe. griffe's built-in ``dataclasses`` extension
solves the same problem for dataclasses; this module follows its structure and applies attrs'
own rules (``attr/_make.py``: ``_transform_attrs``, ``_collect_base_attrs``,
``_attrs_to_init_script``):

- Fields: with ``auto_attribs`` every annotated class attribute that is not a ``ClassVar``, in
  definition order; without it only ``attr.ib()`` / ``attrs.field()`` assignments. ``define``,
  ``frozen`` and ``mutable`` guess ``auto_attribs`` as attrs does: true unless an unannotated
  ``field()`` exists.
- Inheritance: the fields of attrs base classes come first, in reverse MRO order, a field
  redefined further down replacing the earlier one (``collect_by_mro=True``, the default of the
  modern API; ``attr.s`` keeps attrs' old order unless it asks for ``collect_by_mro=True``).
- ``init=False`` fields are left out; ``kw_only`` (per field, per class, ``force_kw_only``)
  moves parameters behind ``*``; the parameter name is ``alias``, else the field name (after
  Python's private-name mangling) without leading underscores.
- Defaults: ``default=``, a plain value, ``factory=f`` and ``Factory(f)`` (shown as ``f()``),
  and a method decorated with ``@<field>.default`` (shown as ``self.method()``).
- Converters: the parameter takes the converter's first parameter type, as attrs' generated
  ``__init__`` does (``converters.optional`` adds ``| None``; ``pipe`` and lists use the first
  converter); a converter griffe cannot see (a builtin, another package) leaves the parameter
  without annotation, again like attrs.
- The attribute's docstring becomes the parameter's docstring, and the attribute's displayed
  value becomes its default instead of the ``attrs.field(...)`` call.

A class that defines ``__init__`` itself (attrs' ``auto_detect``), passes ``these=`` or
``init=False`` keeps what griffe found.

Load it from ``mkdocs.yml``::

    plugins:
      - mkdocstrings:
          handlers:
            python:
              options:
                extensions:
                  - tools/griffe_attrs.py
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from typing import Any, cast

from griffe import (
    Alias,
    Attribute,
    Class,
    Decorator,
    Expr,
    ExprAttribute,
    ExprBinOp,
    ExprCall,
    ExprKeyword,
    ExprList,
    Extension,
    Function,
    Module,
    Object,
    Parameter,
    ParameterKind,
    Parameters,
    logger,
)

__all__ = ["AttrsExtension", "attrs_init_parameters"]

#: Class decorators of the modern API (``auto_attribs`` guessed, ``collect_by_mro=True``).
MODERN_DECORATORS = frozenset(
    f"{module}.{name}" for module in ("attrs", "attr") for name in ("define", "frozen", "mutable")
)
#: Class decorators of the classic API (``auto_attribs=False``, attrs' old base-class order).
CLASSIC_DECORATORS = frozenset(
    {"attr.s", "attr.attrs", "attr.attributes", "attr.dataclass", "attrs.attrs"}
)
FIELD_FUNCTIONS = frozenset({"attrs.field", "attr.field", "attr.ib", "attr.attrib", "attr.attr"})
FACTORY_CLASSES = frozenset({"attrs.Factory", "attr.Factory"})
CONVERTER_CLASSES = frozenset({"attrs.Converter", "attr.Converter"})
OPTIONAL_CONVERTERS = frozenset({"attrs.converters.optional", "attr.converters.optional"})
PIPE_CONVERTERS = frozenset({"attrs.converters.pipe", "attr.converters.pipe"})
# griffe's StrEnum only exists from Python 3.11, so mypy (checking for 3.10) types members as str.
POSITIONAL_OR_KEYWORD = cast("ParameterKind", ParameterKind.positional_or_keyword)
KEYWORD_ONLY = cast("ParameterKind", ParameterKind.keyword_only)
#: Key of this extension's data in griffe's ``Object.extra``.
EXTRA_NAMESPACE = "griffe_attrs"
#: ``attr.ib``'s positional parameters (``attrs.field`` takes keywords only).
ATTRIB_POSITIONAL = ("default", "validator", "repr", "cmp", "hash", "init", "metadata", "type")
#: ``Factory``'s positional parameters.
FACTORY_POSITIONAL = ("factory", "takes_self")


class _Field:
    """One attrs field as attrs' ``Attribute`` would describe it (only what ``__init__`` needs)."""

    __slots__ = ("annotation", "attribute", "default", "init", "kw_only", "name", "parameter")

    def __init__(
        self,
        attribute: Attribute,
        *,
        parameter: str,
        annotation: str | Expr | None,
        default: str | Expr | None,
        init: bool,
        kw_only: bool | None,
    ) -> None:
        self.attribute = attribute
        self.name = attribute.name
        self.parameter = parameter
        self.annotation = annotation
        self.default = default
        self.init = init
        self.kw_only = kw_only

    def with_kw_only(self, kw_only: bool) -> _Field:
        return _Field(
            self.attribute,
            parameter=self.parameter,
            annotation=self.annotation,
            default=self.default,
            init=self.init,
            kw_only=kw_only,
        )


def _canonical(expr: object) -> str | None:
    if isinstance(expr, Expr):
        try:
            path: str = expr.canonical_path
        except Exception:  # griffe raises various errors for expressions it cannot name
            return None
        return path
    return None


def _attrs_decorator(decorators: Sequence[Decorator]) -> tuple[str, Expr] | None:
    """The attrs class decorator (its canonical path and expression), if any."""
    for decorator in decorators:
        value = decorator.value
        path = _canonical(value)
        if path in MODERN_DECORATORS or path in CLASSIC_DECORATORS:
            assert isinstance(value, Expr)  # a canonical path implies an expression
            return str(path), value
    return None


def _call_arguments(call: ExprCall, positional: Sequence[str] = ()) -> dict[str, str | Expr]:
    """Arguments of a call by parameter name (positional ones named by ``positional``)."""
    arguments: dict[str, str | Expr] = {}
    position = 0
    for argument in call.arguments:
        if isinstance(argument, ExprKeyword):
            arguments[argument.name] = argument.value
        elif position < len(positional):
            arguments[positional[position]] = argument
            position += 1
    return arguments


def _decorator_arguments(decorator: Expr) -> dict[str, str | Expr]:
    return _call_arguments(decorator) if isinstance(decorator, ExprCall) else {}


def _flag(value: str | Expr | None) -> bool | None:
    """``True``/``False`` for the literals, ``None`` when absent or not a literal."""
    if value == "True":
        return True
    if value == "False":
        return False
    return None


def _source_value(attribute: Attribute) -> str | Expr | None:
    """The value as written in the class body (before :func:`_set_init` replaced it)."""
    saved: dict[str, Any] = attribute.extra.get(EXTRA_NAMESPACE, {})
    return saved.get("value", attribute.value)


def _field_call(value: str | Expr | None) -> ExprCall | None:
    if isinstance(value, ExprAttribute):  # griffe wraps some calls in an attribute chain
        value = value.last
    if isinstance(value, ExprCall) and value.canonical_path in FIELD_FUNCTIONS:
        return value
    return None


def _factory_default(value: str | Expr) -> str | Expr:
    """``Factory(f)`` shown as ``f()``; anything else unchanged."""
    if isinstance(value, ExprCall) and value.canonical_path in FACTORY_CLASSES:
        arguments = _call_arguments(value, FACTORY_POSITIONAL)
        factory = arguments.get("factory")
        if isinstance(factory, Expr) and _flag(arguments.get("takes_self")) is not True:
            return ExprCall(function=factory, arguments=[])
    return value


def _lookup(owner: Object, expr: str | Expr) -> Object | None:
    """The griffe object an expression names, when it is loaded."""
    path = _canonical(expr)
    if path is None:
        return None
    try:
        found: Object | Alias = owner.modules_collection.get_member(path)
        if isinstance(found, Alias):
            found = found.final_target
    except Exception:  # not loaded, external, or an alias griffe cannot resolve
        return None
    return found if isinstance(found, Object) else None


def _first_parameter_type(owner: Object, converter: str | Expr) -> str | Expr | None:
    """The type attrs' generated ``__init__`` gives a parameter with this converter."""
    if isinstance(converter, ExprList):
        return _first_parameter_type(owner, converter.elements[0]) if converter.elements else None
    if isinstance(converter, ExprCall):
        path = converter.canonical_path
        if path in CONVERTER_CLASSES or path in PIPE_CONVERTERS:
            first = _call_arguments(converter, ("converter",)).get("converter")
            return None if first is None else _first_parameter_type(owner, first)
        if path in OPTIONAL_CONVERTERS:
            inner = _call_arguments(converter, ("converter",)).get("converter")
            annotation = None if inner is None else _first_parameter_type(owner, inner)
            if annotation is None:
                return None
            return ExprBinOp(left=annotation, operator="|", right="None")
        return None
    target = _lookup(owner, converter)
    if isinstance(target, Class):
        init = target.members.get("__init__")
        if not isinstance(init, Function):
            return None
        parameters = list(init.parameters)[1:]  # without self
    elif isinstance(target, Function):
        parameters = list(target.parameters)
        if (
            target.parent is not None
            and target.parent.is_class
            and "staticmethod" not in target.labels
        ):
            parameters = parameters[1:]  # a method referenced through its class
    else:
        return None
    return parameters[0].annotation if parameters else None


def _is_field_candidate(attribute: Attribute) -> bool:
    """Whether a class attribute can be an attrs field (properties and class variables cannot)."""
    labels = attribute.labels
    if "property" in labels or "cached_property" in labels:
        return False
    # griffe unwraps ClassVar[...] and labels such attributes class-only.
    return not ("class-attribute" in labels and "instance-attribute" not in labels)


def _auto_attribs(class_: Class, decorator: str, arguments: dict[str, str | Expr]) -> bool:
    explicit = _flag(arguments.get("auto_attribs"))
    if explicit is not None:
        return explicit
    if decorator in CLASSIC_DECORATORS:
        return decorator == "attr.dataclass"  # attr.dataclass is attr.s(auto_attribs=True)
    # define/frozen/mutable try auto_attribs=True and fall back when a field() lacks a type.
    return not any(
        isinstance(member, Attribute)
        and member.annotation is None
        and _field_call(_source_value(member)) is not None
        for member in class_.members.values()
    )


def _own_fields(class_: Class) -> list[_Field]:
    """The fields ``class_`` itself defines, with the class-level ``kw_only`` applied (as they
    stand in attrs' ``__attrs_attrs__``, which subclasses read)."""
    found = _attrs_decorator(class_.decorators)
    if found is None:
        return []
    decorator, expression = found
    arguments = _decorator_arguments(expression)
    auto_attribs = _auto_attribs(class_, decorator, arguments)
    class_kw_only = _flag(arguments.get("kw_only")) is True
    fields = []
    for member in class_.members.values():
        if not isinstance(member, Attribute) or not _is_field_candidate(member):
            continue
        value = _source_value(member)
        call = _field_call(value)
        if auto_attribs:
            if member.annotation is None:
                continue
        elif call is None:
            continue
        field_arguments = _call_arguments(call, ATTRIB_POSITIONAL) if call else {}
        fields.append(_describe_field(class_, member, value, call, field_arguments, class_kw_only))
    if _forces_kw_only(arguments):
        fields = [field.with_kw_only(True) for field in fields]
    return fields


def _forces_kw_only(arguments: dict[str, str | Expr]) -> bool:
    return bool(_flag(arguments.get("kw_only")) and _flag(arguments.get("force_kw_only")))


def _mangled(class_: Class, name: str) -> str:
    """The name Python stores for ``name`` in the class body (``__x`` becomes ``_Class__x``)."""
    if name.startswith("__") and not name.endswith("__"):
        return f"_{class_.name.lstrip('_')}{name}"
    return name


def _decorated_default(class_: Class, name: str) -> str | None:
    """``self.method()`` for a default set with the ``@<field>.default`` decorator."""
    for member in class_.members.values():
        if isinstance(member, Function) and any(
            str(decorator.value) == f"{name}.default" for decorator in member.decorators
        ):
            return f"self.{member.name}()"
    return None


def _describe_field(
    class_: Class,
    member: Attribute,
    value: str | Expr | None,
    call: ExprCall | None,
    arguments: dict[str, str | Expr],
    class_kw_only: bool,
) -> _Field:
    default: str | Expr | None
    if call is None:
        default = None if value is None else _factory_default(value)
    elif "factory" in arguments:
        factory = arguments["factory"]
        default = ExprCall(function=factory, arguments=[]) if isinstance(factory, Expr) else None
    elif "default" in arguments:
        default = _factory_default(arguments["default"])
    else:
        default = _decorated_default(class_, member.name)
    annotation: str | Expr | None = member.annotation
    if annotation is None and "type" in arguments:
        annotation = arguments["type"]
    if "converter" in arguments:
        annotation = _first_parameter_type(class_, arguments["converter"])
    alias = arguments.get("alias")
    if isinstance(alias, str):
        parameter = ast.literal_eval(alias)
    else:
        parameter = _mangled(class_, member.name).lstrip("_")
    field_kw_only = _flag(arguments.get("kw_only"))
    return _Field(
        member,
        parameter=parameter,
        annotation=annotation,
        default=default,
        init=_flag(arguments.get("init")) is not False,
        kw_only=class_kw_only if field_kw_only is None else field_kw_only,
    )


def _base_fields(class_: Class, collect_by_mro: bool) -> list[_Field]:
    try:
        bases = class_.mro()
    except ValueError:  # an inheritance cycle griffe detected
        return []
    if collect_by_mro:
        # attrs' _collect_base_attrs: every base's own fields, furthest base first; the
        # definition nearest to the class wins and takes that place.
        collected = [field for base in reversed(bases) for field in _own_fields(base)]
        kept: list[_Field] = []
        seen: set[str] = set()
        for field in reversed(collected):
            if field.name not in seen:
                kept.insert(0, field)
                seen.add(field.name)
        return kept
    # attrs' _collect_base_attrs_broken (attr.s default): nearest base first, first one wins.
    result: list[_Field] = []
    taken: set[str] = set()
    for base in bases:
        for field in _all_fields(base):
            if field.name not in taken:
                taken.add(field.name)
                result.append(field)
    return result


def _all_fields(class_: Class) -> list[_Field]:
    """Every field of an attrs class, base-class fields first (attrs' ``__attrs_attrs__``)."""
    found = _attrs_decorator(class_.decorators)
    if found is None:
        return []
    decorator, expression = found
    arguments = _decorator_arguments(expression)
    collect_by_mro = (
        decorator in MODERN_DECORATORS or _flag(arguments.get("collect_by_mro")) is True
    )
    own = _own_fields(class_)
    own_names = {field.name for field in own}
    base = [field for field in _base_fields(class_, collect_by_mro) if field.name not in own_names]
    fields = base + own
    if _forces_kw_only(arguments):  # base-class fields too
        fields = [field.with_kw_only(True) for field in fields]
    return fields


def attrs_init_parameters(class_: Class) -> Parameters | None:
    """The parameters of the ``__init__`` attrs generates for ``class_``.

    ``None`` when ``class_`` is not an attrs class or attrs generates no ``__init__`` for it
    (``init=False``, ``these=``, or an ``__init__`` of its own).
    """
    found = _attrs_decorator(class_.decorators)
    if found is None:
        return None
    decorator, expression = found
    arguments = _decorator_arguments(expression)
    if _flag(arguments.get("init")) is False or "these" in arguments:
        return None
    auto_detect = decorator in MODERN_DECORATORS or _flag(arguments.get("auto_detect")) is True
    if auto_detect and "__init__" in class_.members:
        return None
    fields = [field for field in _all_fields(class_) if field.init]
    positional = [field for field in fields if not field.kw_only]
    keyword_only = [field for field in fields if field.kw_only]
    return Parameters(
        Parameter("self", kind=POSITIONAL_OR_KEYWORD),
        *_parameters(positional, POSITIONAL_OR_KEYWORD),
        *_parameters(keyword_only, KEYWORD_ONLY),
    )


def _parameters(fields: Iterable[_Field], kind: ParameterKind) -> list[Parameter]:
    return [
        Parameter(
            field.parameter,
            annotation=field.annotation,
            kind=kind,
            default=field.default,
            docstring=field.attribute.docstring,
        )
        for field in fields
    ]


def _set_init(class_: Class) -> None:
    parameters = attrs_init_parameters(class_)
    if parameters is None:
        return
    logger.debug("attrs: building __init__ of %s", class_.path)
    for field in _own_fields(class_):
        # Show the default, not the attrs.field(...) call, as the attribute's value; keep the
        # source for subclasses (possibly in packages loaded later) that read this field again.
        attribute = field.attribute
        attribute.extra[EXTRA_NAMESPACE].setdefault("value", attribute.value)
        attribute.value = field.default
    init = Function(
        "__init__",
        lineno=0,
        endlineno=0,
        parent=class_,
        parameters=parameters,
        returns="None",
    )
    class_.set_member("__init__", init)


def _apply_recursively(node: Module | Class, processed: set[str]) -> None:
    if node.canonical_path in processed:
        return
    processed.add(node.canonical_path)
    if isinstance(node, Class):
        _set_init(node)
    for member in list(node.members.values()):
        if isinstance(member, (Module, Class)):
            _apply_recursively(member, processed)


class AttrsExtension(Extension):
    """Builds the ``__init__`` of every attrs class of a loaded package."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        """Hook called by griffe once a package is loaded (its base classes are resolvable)."""
        _apply_recursively(pkg, set())
