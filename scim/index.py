"""The values of a SCIM resource as the attribute index stores them (see server.db.ScimValue).

One indexer for every write (create, replace, PATCH, a change of members, the refresh of
records a staff change marked stale): it reads the resource's SCIM JSON, the document the
storage validates a resource from (:mod:`scim.mapping`) or a dump of a resource
(:func:`indexed_values`), never the pydantic resource itself. A created user was validated
twice, its body and then its stored document only to index it, a tenth of a create (issue 15).

Every attribute the model declares is indexed under its full URN, sub-attributes of a
multi-valued complex attribute once per entry with the entry's ``element`` key, so a value path
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
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel
from scim2_models import AttributeBinding, Path, Resource
from scim2_server.utils import parametrize

from scim.values import comparison_form, path_key
from server.domain.scim_index import IndexedValue

# ``groups`` is read from the membership tables (scim.filters). ``schemas``, which the model's
# paths leave out, is indexed on its own (:func:`_schemas`), so ``schemas eq
# "urn:…:enterprise:2.0:User"`` (an RFC 7644 §3.4.2.2 example) finds its users.
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
class _Attribute:
    """One attribute as a document holds it: where (``host``: the extension's key, or None
    for the resource itself; "" for none), under which key, its sub-attributes and the model
    of its complex values (None for a simple one)."""

    binding: AttributeBinding
    host: str | None
    key: str
    subs: tuple[tuple[AttributeBinding, str], ...]
    complex_model: type[BaseModel] | None


def document_values(
    model: type[Resource[Any]], resource_id: str | None, doc: dict[str, Any]
) -> list[IndexedValue]:
    """The index rows of the resource of ``model`` whose id is ``resource_id`` and whose SCIM
    JSON is ``doc`` (in the aliases a dump of ``model`` writes; ``id`` and ``meta`` unread)."""
    return list(_values(model, resource_id, doc))


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
    for found in _attributes(model):
        if found.binding.field_name == attribute:
            key = path_key(found.binding)
            elements = {element_key(resource_id, key, repr(value), 0) for value in values}
            items = _held(doc, found) or []
            return sorted(elements), list(_entries(resource_id, found, items, elements))
    raise ValueError(f"{model.__name__} has no attribute {attribute!r}")


def attribute_values(model: type[Resource[Any]], attribute: str, value: Any) -> list[IndexedValue]:
    """The index rows :func:`document_values` gives a simple top-level ``attribute`` of
    ``model`` holding ``value`` (the row a PATCH of a user's ``active`` rewrites)."""
    for top, subs in top_bindings(model):
        if top.field_name == attribute and not subs:
            return list(_leaf(top, value, None, True))
    raise ValueError(f"{model.__name__} has no simple attribute {attribute!r}")


def _held(doc: dict[str, Any], attribute: _Attribute) -> Any:
    """The JSON value of ``attribute`` in ``doc``, or None."""
    host = doc if attribute.host is None else doc.get(attribute.host)
    return host.get(attribute.key) if isinstance(host, dict) else None


def _values(
    model: type[Resource[Any]], resource_id: str | None, doc: dict[str, Any]
) -> Iterator[IndexedValue]:
    yield from _schemas(model, resource_id, doc.get("schemas"))
    for attribute in _attributes(model):
        value = _held(doc, attribute)
        if value is None:
            continue
        top, key = attribute.binding, path_key(attribute.binding)
        if isinstance(value, list):
            yield IndexedValue(key, present=_present(value, attribute.complex_model))
            yield from _entries(resource_id, attribute, value, None)
        elif attribute.complex_model is not None and isinstance(value, dict):
            yield IndexedValue(key, present=_present(value, attribute.complex_model))
            for sub, alias in attribute.subs:
                yield from _leaf(sub, value.get(alias), None, True)
        else:
            yield from _leaf(top, value, None, True)


def _schemas(
    model: type[Resource[Any]], resource_id: str | None, schemas: Any
) -> Iterator[IndexedValue]:
    binding = schemas_binding(model)
    if binding is None or not schemas:
        return
    key = path_key(binding)
    yield IndexedValue(key, present=True)
    elements = _element_keys(resource_id, key, schemas)
    for index, schema in enumerate(schemas):
        yield from _leaf(binding, schema, elements[index], index == 0)


def _entries(
    resource_id: str | None, attribute: _Attribute, items: list[Any], only: set[str] | None
) -> Iterator[IndexedValue]:
    """The rows of the entries of a multi-valued attribute (``only``: of these elements)."""
    key = path_key(attribute.binding)
    complex_model = attribute.complex_model
    if complex_model is None:
        typed = [_typed(attribute.binding, item) for item in items]
        elements = _element_keys(resource_id, key, typed)
        for index, item in enumerate(typed):
            if only is None or elements[index] in only:
                yield from _leaf(attribute.binding, item, elements[index], index == 0)
        return
    values = [_entry_value(attribute, item) for item in items]
    lead = next((i for i, item in enumerate(items) if item.get("primary") is True), 0)
    elements = _element_keys(resource_id, key, values)
    for index, item in enumerate(items):
        element = elements[index]
        if only is not None and element not in only:
            continue
        yield IndexedValue(key + "#", element=element, lead=index == lead, present=True)
        for sub, alias in attribute.subs:
            yield from _leaf(sub, item.get(alias), element, index == lead)


def _element_keys(resource_id: str | None, path: str, values: list[Any]) -> list[str]:
    """The element keys of the entries of one attribute, from their values, in order."""
    seen: Counter[str] = Counter()
    keys = []
    for value in values:
        marker = repr(value)
        keys.append(element_key(resource_id, path, marker, seen[marker]))
        seen[marker] += 1
    return keys


def _entry_value(attribute: _Attribute, item: dict[str, Any]) -> Any:
    """An entry's ``value`` as the model holds it, or None: what its ``element`` key reads."""
    for sub, alias in attribute.subs:
        if sub.sub_field_name == "value":
            return _typed(sub, item.get(alias))
    return None


def _leaf(
    binding: AttributeBinding, value: Any, element: str | None, lead: bool
) -> Iterator[IndexedValue]:
    if value is None:
        return
    typed = _typed(binding, value)
    text, number = comparison_form(binding, typed)
    present = not isinstance(typed, str | bytes) or len(typed) > 0
    yield IndexedValue(
        path_key(binding), text=text, number=number, present=present, element=element, lead=lead
    )


def _typed(binding: AttributeBinding, value: Any) -> Any:
    """A JSON value as the model holds it: an enum's member, a binary's bytes, a dateTime."""
    if value is None:
        return None
    target = binding.target_type
    if isinstance(target, type):
        if issubclass(target, enum.Enum):
            return target(value)
        if issubclass(target, bytes) and isinstance(value, str):
            return base64.b64decode(value)
        if issubclass(target, datetime.datetime) and isinstance(value, str):
            return datetime.datetime.fromisoformat(value)
    return value


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
def _attributes(model: type[Resource[Any]]) -> tuple[_Attribute, ...]:
    """The indexed attributes of ``model`` (:func:`top_bindings`), placed in a document:
    built once per model."""
    found = []
    for top, subs in top_bindings(model):
        target = top.target_type
        complex_model = (
            target if isinstance(target, type) and issubclass(target, BaseModel) else None
        )
        sub_aliases = _aliases(complex_model) if complex_model is not None else {}
        found.append(
            _Attribute(
                binding=top,
                host=_host_key(model, top.model),
                key=_aliases(top.model)[top.field_name],
                subs=tuple((sub, sub_aliases[sub.sub_field_name or ""]) for sub in subs),
                complex_model=complex_model,
            )
        )
    return tuple(found)


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
