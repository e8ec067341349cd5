"""Admin API request bodies, checked against the schemas its OpenAPI document publishes.

One description serves both: what ``/admin/api/openapi.json`` promises is what the API
accepts. A body that breaks it is refused with 400 naming the first offending field, before
any domain call, so a wrong type never reaches the database and an unknown field is never
silently ignored (issue 11 defects 7 and 8).

Example: ``check_body({"given_name": 5}, "UserChange")`` raises
``InvalidValue("given_name must be a string or null.", field="given_name")``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from server.errors import InvalidValue
from server.web.openapi import ADMIN_OPENAPI

_TYPE_NAMES = {
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
    "integer": "a whole number",
}


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    return Draft202012Validator(ADMIN_OPENAPI["components"]["schemas"][schema_name])


def check_body(body: Any, schema_name: str) -> None:
    """Refuse ``body`` unless it fits the component schema ``schema_name``.

    :raises InvalidValue: (400) the first problem, with ``field`` set to the field at fault.
    """
    error = best_match(_validator(schema_name).iter_errors(body))
    if error is not None:
        raise _explain(error)


def _explain(error: ValidationError) -> InvalidValue:
    where = [str(part) for part in error.absolute_path]
    field = where[0] if where else None
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        field = sorted(set(error.instance) - set(allowed))[0]
        return InvalidValue(
            f"Unknown field {field!r}; this request takes {', '.join(allowed)}.", field=field
        )
    if error.validator == "required":
        field = next(name for name in error.validator_value if name not in error.instance)
        return InvalidValue(f"{field} is required.", field=field)
    name = ".".join(where) or "The body"
    if error.validator == "type":
        kinds = (
            error.validator_value
            if isinstance(error.validator_value, list)
            else [error.validator_value]
        )
        wanted = " or ".join(_TYPE_NAMES.get(kind) or str(kind) for kind in kinds)
        return InvalidValue(f"{name} must be {wanted}.", field=field)
    if error.validator == "enum":
        choices = ", ".join(str(value) for value in error.validator_value if value is not None)
        return InvalidValue(f"{name} must be one of {choices}.", field=field)
    if error.validator == "minLength" and error.validator_value == 1:
        return InvalidValue(f"{name} must not be empty.", field=field)
    if error.validator == "pattern" and "description" in error.schema:
        return InvalidValue(
            f"Invalid {name} {error.instance!r}: {error.schema['description']}.", field=field
        )
    return InvalidValue(f"{name}: {error.message}", field=field)
