"""The values of a SCIM resource as the attribute index stores them (see server.db.ScimValue).

One indexer for every write (create, replace, PATCH, a change of members, the refresh of
records a staff change marked stale): it reads the resource's SCIM JSON, the document the
storage validates a resource from (:mod:`scim.mapping`) or a dump of a resource
(:func:`indexed_values`), never the pydantic resource itself. A created user was validated
twice, its body and then its stored document only to index it, a tenth of a create (issue 15).

Every attribute the model declares is indexed under its full URN (but those a column of the
record answers, :data:`scim.values.COLUMN_PATHS` and a user's ``active``,
:data:`scim.values.STATUS_PATHS`), sub-attributes of a multi-valued complex
attribute once per entry with the entry's ``element`` key, so a value path
(``emails[type eq "work" and value co "x"]``) compares sub-attributes of one entry. ``lead``
marks the entry a sort reads (the primary entry, else the first one), as SearchRequest.sort does.
Keys are the model's serialization aliases, as a dump writes them; what the model does not
declare is not indexed, as validation drops it. Each JSON value is turned into the Python value
the model holds (an enum, the bytes of a base64 binary, a dateTime) before
:func:`scim.values.comparison_form`.

An entry's ``element`` key is made from the resource, the attribute and the entry's ``value``
(:func:`element_key`), not from its position: removing one member of a group of thousands
leaves the other members' rows as they are, so only that member's rows change
(:func:`server.domain.scim_index.replace_values` writes only what changed).

>>> document_values(model, "5f1c", {"userName": "bart"})  # doctest: +SKIP
[IndexedValue(path='urn:…:user:username', text='bart', ...)]
"""

from __future__ import annotations

import base64
import datetime
import enum
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Any, get_args

from pydantic import BaseModel
from scim2_models import AttributeBinding, Path, Resource
from scim2_server.utils import parametrize

from scim.values import COLUMN_PATHS, STATUS_PATHS, comparison_form, path_key
from server.domain.scim_index import IndexedValue

# ``groups`` is read from the membership tables (scim.filters). ``schemas``, which the model's
# paths leave out, is indexed on its own (:func:`_schemas`), so ``schemas eq
# "urn:…:enterprise:2.0:User"`` (an RFC 7644 §3.4.2.2 example) finds its users. Nor are the
# attributes a column of the record answers (:data:`scim.values.COLUMN_PATHS`).
SKIPPED = ("password", "groups", "schemas")


@cache
def top_bindings(
    model: type[Resource[Any]],
) -> tuple[tuple[AttributeBinding, tuple[AttributeBinding, ...]], ...]:
    """The top-level attributes of a model with their sub-attributes."""
    paths = list(parametrize(Path, model).iter_paths(include_subattributes=True))
    tops: dict[str, tuple[AttributeBinding, list[AttributeBinding]]] = {}
    for path in paths:
        binding = path.resolve()
        if binding is None or binding.field_name in SKIPPED:
            continue
        owner = binding.urn.rsplit(".", 1)[0] if binding.sub_field_name else binding.urn
        if binding.sub_field_name is None:
            tops.setdefault(binding.urn, (binding, []))
        elif owner in tops:
            tops[owner][1].append(binding)
    return tuple((top, tuple(subs)) for top, subs in tops.values())


@cache
def schemas_binding(model: type[Resource[Any]]) -> AttributeBinding | None:
    return parametrize(Path, model)("schemas").resolve()


def element_key(resource_id: str | None, path: str, value: str, occurrence: int) -> str:
    """The ``element`` key of one entry of a multi-valued attribute: the resource's id and a
    digest of the attribute, the entry's ``value`` and how many entries before it had the
    same one (under the column's 60 characters).

    >>> element_key("5f1c", "urn:…:Group:members", "'u7'", 0)
    '5f1c/c439123533343d30'
    """
    seed = f"{path}\x00{value}\x00{occurrence}".encode()
    return f"{resource_id}/{hashlib.blake2b(seed, digest_size=8).hexdigest()}"


@dataclass(frozen=True)
class _Leaf:
    """A simple attribute or sub-attribute as the index stores it: its binding, its index path
    (:func:`scim.values.path_key`), its key in a document and how a JSON value of it becomes
    the value the model holds (None: as it is). Made once per model (:func:`_layout`): the
    binding's ``urn`` and ``target_type`` were worked out again for every value (issue 15)."""

    binding: AttributeBinding
    path: str
    alias: str
    typed: Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Attribute:
    """One attribute as a document holds it: where (``host``: the extension's key, or None
    for the resource itself; "" for none), under which key, its sub-attributes and the model
    of its complex values (None for a simple one); ``order``: its place among the model's."""

    binding: AttributeBinding
    host: str | None
    key: str
    path: str
    leaf: _Leaf
    subs: tuple[_Leaf, ...]
    value_sub: _Leaf | None  # ``value``, which an entry's ``element`` key reads
    complex_model: type[BaseModel] | None
    order: int


@dataclass(frozen=True)
class _Layout:
    """The indexed attributes of a model by where a document holds them: for each host (None
    first: the resource's own), each attribute by its key; and ``schemas``."""

    hosts: tuple[tuple[str | None, dict[str, _Attribute]], ...]
    attributes: tuple[_Attribute, ...]
    schemas: _Leaf | None


def document_values(
    model: type[Resource[Any]], resource_id: str | None, doc: dict[str, Any]
) -> list[IndexedValue]:
    """The index rows of the resource of ``model`` whose id is ``resource_id`` and whose SCIM
    JSON is ``doc`` (in the aliases a dump of ``model`` writes; ``id`` and ``meta`` unread).

    Only the attributes ``doc`` holds are visited, in the model's order (a created user holds
    six of a User's 31)."""
    layout = _layout(model)
    rows: list[IndexedValue] = []
    if layout.schemas is not None:
        _schemas(rows, layout.schemas, resource_id, doc.get("schemas"))
    for attribute, value in _held_attributes(layout, doc):
        if isinstance(value, list):
            start = len(rows)
            _entries(rows, resource_id, attribute, value, None)
            _presence(rows, start, attribute.path, _present(value, attribute.complex_model))
        elif attribute.complex_model is not None and isinstance(value, dict):
            start = len(rows)
            for sub in attribute.subs:
                if (held := value.get(sub.alias)) is not None:
                    _leaf(rows, sub, held, None, True)
            _presence(rows, start, attribute.path, _present(value, attribute.complex_model))
        else:
            _leaf(rows, attribute.leaf, value, None, True)
    return rows


def own_paths(model: type[Resource[Any]], path: str, *, entries: bool) -> tuple[str, ...]:
    """The index paths whose rows say whether the attribute at ``path`` (a
    :func:`scim.values.path_key`) is held: its own (see :func:`_presence`) and its
    sub-attributes'; ``entries``: with the entry rows (``path#``) of a multi-valued complex
    one, which a null comparison counts (an entry with no value still holds the attribute)
    and ``pr`` does not."""
    subs, multivalued = _sub_paths(model).get(path, ((), False))
    if entries and multivalued:
        return (path, path + "#", *subs)
    return (path, *subs)


@cache
def _sub_paths(model: type[Resource[Any]]) -> dict[str, tuple[tuple[str, ...], bool]]:
    """The sub-attribute paths of each complex attribute of ``model``, and whether it is
    multi-valued."""
    return {
        attribute.path: (
            tuple(sub.path for sub in attribute.subs),
            attribute.binding.is_multivalued,
        )
        for attribute in _layout(model).attributes
        if attribute.complex_model is not None
    }


def _presence(rows: list[IndexedValue], start: int, path: str, present: bool) -> None:
    """The row of a complex or multi-valued attribute itself, before the rows of its values
    (``rows[start:]``), unless they answer for it: ``pr`` and ``eq null`` on the attribute
    read the rows of its sub-attributes too (:func:`own_paths`), so a row is needed only
    when it has no other row (``name: {}``, ``emails: []``) or its presence is not theirs
    (issue 15: three of the benchmark user's ten rows, each an entry in three indexes)."""
    held = rows[start:]
    if held and present == any(row.present for row in held if not row.path.endswith("#")):
        return
    rows.insert(start, IndexedValue(path, present=present))


def indexed_values(resource: Resource[Any]) -> list[IndexedValue]:
    """:func:`document_values` of a resource, for a caller that holds no document of it."""
    doc = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    return document_values(type(resource), resource.id, doc)


def entry_values(
    model: type[Resource[Any]],
    resource_id: str,
    doc: dict[str, Any],
    attribute: str,
    values: set[str],
) -> tuple[list[str], list[IndexedValue]]:
    """The ``element`` keys of the entries of multi-valued ``attribute`` whose ``value`` is one
    of ``values`` (entries there or gone: each value once), and the rows of those there.

    What :func:`document_values` gives for those entries, without the others: a change to a
    few members of a group of thousands re-indexes those members only (``doc`` needs only
    ``value`` and ``primary`` of the other entries).
    """
    for found in _layout(model).attributes:
        if found.binding.field_name == attribute:
            elements = {element_key(resource_id, found.path, repr(value), 0) for value in values}
            host = doc if found.host is None else doc.get(found.host)
            items = (host.get(found.key) if isinstance(host, dict) else None) or []
            rows: list[IndexedValue] = []
            _entries(rows, resource_id, found, items, elements)
            return sorted(elements), rows
    raise ValueError(f"{model.__name__} has no attribute {attribute!r}")


def _held_attributes(layout: _Layout, doc: dict[str, Any]) -> list[tuple[_Attribute, Any]]:
    """The attributes ``doc`` holds a value of (not null), with it, in the model's order."""
    held = []
    for host, attributes in layout.hosts:
        values = doc if host is None else doc.get(host)
        if isinstance(values, dict):
            for key, value in values.items():
                attribute = attributes.get(key)
                if attribute is not None and value is not None:
                    held.append((attribute.order, attribute, value))
    held.sort(key=itemgetter(0))
    return [(attribute, value) for _, attribute, value in held]


def _schemas(rows: list[IndexedValue], leaf: _Leaf, resource_id: str | None, schemas: Any) -> None:
    if not schemas:
        return
    start = len(rows)
    elements = _element_keys(resource_id, leaf.path, schemas)
    for index, schema in enumerate(schemas):
        _leaf(rows, leaf, schema, elements[index], index == 0)
    _presence(rows, start, leaf.path, True)


def _entries(
    rows: list[IndexedValue],
    resource_id: str | None,
    attribute: _Attribute,
    items: list[Any],
    only: set[str] | None,
) -> None:
    """The rows of the entries of a multi-valued attribute (``only``: of these elements)."""
    key = attribute.path
    if attribute.complex_model is None:
        typed = [_typed(attribute.leaf, item) for item in items]
        elements = _element_keys(resource_id, key, typed)
        for index, item in enumerate(typed):
            if only is None or elements[index] in only:
                _leaf(rows, attribute.leaf, item, elements[index], index == 0)
        return
    value_sub = next((sub for sub in attribute.subs if sub.binding.sub_field_name == "value"), None)
    values = [
        None if value_sub is None else _typed(value_sub, item.get(value_sub.alias))
        for item in items
    ]
    lead = next((i for i, item in enumerate(items) if item.get("primary") is True), 0)
    elements = _element_keys(resource_id, key, values)
    for index, item in enumerate(items):
        element = elements[index]
        if only is not None and element not in only:
            continue
        rows.append(IndexedValue(key + "#", element=element, lead=index == lead, present=True))
        for sub in attribute.subs:
            if (held := item.get(sub.alias)) is not None:
                _leaf(rows, sub, held, element, index == lead)


def _lead(items: list[Any]) -> int:
    """The entry a sort reads: the primary one, else the first."""
    for index, item in enumerate(items):
        if item.get("primary") is True:
            return index
    return 0


def _element_keys(resource_id: str | None, path: str, values: list[Any]) -> list[str]:
    """The element keys of the entries of one attribute, from their values, in order."""
    seen: Counter[str] = Counter()
    keys = []
    for value in values:
        marker = repr(value)
        keys.append(element_key(resource_id, path, marker, seen[marker]))
        seen[marker] += 1
    return keys


def _leaf(
    rows: list[IndexedValue], leaf: _Leaf, value: Any, element: str | None, lead: bool
) -> None:
    if value is None:
        return
    typed = value if leaf.typed is None else leaf.typed(value)
    text, number = comparison_form(leaf.binding, typed, leaf.path)
    present = not isinstance(typed, str | bytes) or len(typed) > 0
    rows.append(
        IndexedValue(
            leaf.path, text=text, number=number, present=present, element=element, lead=lead
        )
    )


def _typed(leaf: _Leaf, value: Any) -> Any:
    """A JSON value as the model holds it (:func:`_converter`)."""
    return value if value is None or leaf.typed is None else leaf.typed(value)


def _converter(binding: AttributeBinding) -> Callable[[Any], Any] | None:
    """How a JSON value of ``binding`` becomes the value the model holds: an enum's member,
    a binary's bytes (from base64), a dateTime; None for a value held as it is."""
    target = binding.target_type
    if not isinstance(target, type):
        return None
    if issubclass(target, enum.Enum):
        return target
    if issubclass(target, bytes):
        return _from_base64
    if issubclass(target, datetime.datetime):
        return _from_iso
    return None


def _from_base64(value: Any) -> Any:
    return base64.b64decode(value) if isinstance(value, str) else value


def _from_iso(value: Any) -> Any:
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else value


def _present(value: Any, complex_model: type[BaseModel] | None) -> bool:
    """Whether a value counts as present (RFC 7644 §3.4.2.2 ``pr``): not null, not empty, and
    for a complex value or a list, some sub-attribute or entry present."""
    if value is None:
        return False
    if isinstance(value, str | bytes):
        return len(value) > 0
    if isinstance(value, list):
        return any(_present(item, complex_model) for item in value)
    if isinstance(value, dict) and complex_model is not None:
        aliases = _aliases(complex_model).values()
        return any(_present(value.get(alias), None) for alias in aliases)
    return True


@cache
def _layout(model: type[Resource[Any]]) -> _Layout:
    """The indexed attributes of ``model`` (:func:`top_bindings`), placed in a document:
    built once per model."""
    found = []
    for order, (top, subs) in enumerate(top_bindings(model)):
        if path_key(top) in COLUMN_PATHS or path_key(top) in STATUS_PATHS:
            continue
        target = top.target_type
        complex_model = (
            target if isinstance(target, type) and issubclass(target, BaseModel) else None
        )
        sub_aliases = _aliases(complex_model) if complex_model is not None else {}
        key = _aliases(top.model)[top.field_name]
        leaves = tuple(_leaf_of(sub, sub_aliases[sub.sub_field_name or ""]) for sub in subs)
        found.append(
            _Attribute(
                binding=top,
                host=_host_key(model, top.model),
                key=key,
                path=path_key(top),
                leaf=_leaf_of(top, key),
                subs=leaves,
                value_sub=next((s for s in leaves if s.binding.sub_field_name == "value"), None),
                complex_model=complex_model,
                order=order,
            )
        )
    hosts: dict[str | None, dict[str, _Attribute]] = {None: {}}
    for attribute in found:
        hosts.setdefault(attribute.host, {})[attribute.key] = attribute
    schemas = schemas_binding(model)
    return _Layout(
        hosts=tuple(hosts.items()),
        attributes=tuple(found),
        schemas=None if schemas is None else _leaf_of(schemas, "schemas"),
    )


def _leaf_of(binding: AttributeBinding, alias: str) -> _Leaf:
    return _Leaf(binding, path_key(binding), alias, _converter(binding))


def _host_key(model: type[Resource[Any]], owner: type[BaseModel]) -> str | None:
    """The document's key of the extension holding ``owner``'s attributes (None: the
    resource's own; "": no field of the resource holds it)."""
    if issubclass(model, owner):
        return None
    fields = model.model_fields
    held = [name for name in fields if _mentions(fields[name].annotation, owner)]
    return _aliases(model)[held[0]] if held else ""


def _mentions(annotation: Any, model: type[Any]) -> bool:
    """Whether a field's type is ``model`` or names it (``Optional[model]``…)."""
    if annotation is model:
        return True
    return any(_mentions(argument, model) for argument in get_args(annotation))


@cache
def _aliases(model: type[BaseModel]) -> dict[str, str]:
    """Each field of ``model`` by its Python name: the key a dump by alias writes."""
    return {
        name: field.serialization_alias or field.alias or name
        for name, field in model.model_fields.items()
    }
