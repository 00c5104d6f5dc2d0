"""The plan's JSON Schema (draft 2020-12), for tools outside CardioPlan.

:mod:`cardioplan.plan` validates plans itself (with messages that name the field); this schema
describes the same format for other readers and writers (a web viewer, a hospital system, a
Unity or Unreal front end) and is checked against the library's output by the tests.

Examples
--------
>>> import json
>>> PLAN_JSON_SCHEMA["properties"]["schema"]["const"]
'cardioplan.plan'
>>> print(json.dumps(PLAN_JSON_SCHEMA)[:40])    # doctest: +ELLIPSIS
{"$schema": "https://json-schema.org/...
"""

from __future__ import annotations

from typing import Any

__all__ = ["PLAN_JSON_SCHEMA"]

_POINT: dict[str, Any] = {"type": "array", "items": {"type": "number"}, "minItems": 3,
                          "maxItems": 3, "description": "LPS millimetres"}
_DIRECTION: dict[str, Any] = {**_POINT, "description": "direction (not the zero vector)"}
_NAME: dict[str, Any] = {"type": "string", "minLength": 1}
_ID: dict[str, Any] = {"type": "string", "minLength": 1}
_NAMES: dict[str, Any] = {"type": "array", "items": _NAME}
_CAMERA: dict[str, Any] = {
    "type": "object", "required": ["position", "focal_point", "view_up"],
    "properties": {"position": _POINT, "focal_point": _POINT, "view_up": _DIRECTION,
                   "view_angle": {"type": "number", "exclusiveMinimum": 0,
                                  "exclusiveMaximum": 180}}}
_POSE: dict[str, Any] = {
    "type": "object",
    "properties": {"position": _POINT,
                   "orientation_xyzw": {"type": "array", "items": {"type": "number"},
                                        "minItems": 4, "maxItems": 4,
                                        "description": "unit quaternion, OpenXR order"},
                   "scale": {"type": "number", "exclusiveMinimum": 0}}}

PLAN_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://cardioplan.invalid/schemas/plan-1.json",
    "title": "CardioPlan rehearsal plan (plan.json), schema_version 1",
    "type": "object",
    "required": ["schema", "schema_version"],
    "properties": {
        "schema": {"const": "cardioplan.plan"},
        "schema_version": {"const": 1},
        "space": {"const": "LPS"},
        "units": {"const": "mm"},
        "revision": {"type": "integer", "minimum": 0},
        "modified": {"type": ["string", "null"]},
        "modified_by": {"type": ["string", "null"]},
        "display": {"type": "object", "additionalProperties": {
            "type": "object",
            "properties": {
                "visible": {"type": "boolean"},
                "opacity": {"type": "number", "minimum": 0, "maximum": 1},
                "color": {"oneOf": [{"type": "null"}, {
                    "type": "array", "items": {"type": "integer", "minimum": 0,
                                               "maximum": 255},
                    "minItems": 3, "maxItems": 3}]}}}},
        "landmarks": {"type": "array", "items": {
            "type": "object", "required": ["name", "point"],
            "properties": {"id": _ID, "name": _NAME, "point": _POINT,
                           "structure": {"type": ["string", "null"]}}}},
        "measurements": {"type": "array", "items": {
            "type": "object", "required": ["kind", "points"],
            "properties": {"id": _ID, "name": {"type": "string"},
                           "kind": {"enum": ["distance", "angle"]},
                           "points": {"type": "array", "items": _POINT, "minItems": 2,
                                      "maxItems": 3},
                           "value": {"type": "number"}, "unit": {"enum": ["mm", "deg"]}},
            "if": {"properties": {"kind": {"const": "distance"}}},
            "then": {"properties": {"points": {"maxItems": 2}}},
            "else": {"properties": {"points": {"minItems": 3}}}}},
        "cut_planes": {"type": "array", "items": {
            "type": "object", "required": ["name", "origin", "normal"],
            "properties": {"id": _ID, "name": _NAME, "origin": _POINT, "normal": _DIRECTION,
                           "structures": _NAMES, "enabled": {"type": "boolean"}}}},
        "seeds": {"type": "array", "items": {
            "type": "object", "required": ["structure", "point"],
            "properties": {"structure": _NAME, "point": _POINT}}},
        "views": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": _NAME,
                           "camera": {"oneOf": [{"type": "null"}, _CAMERA]},
                           "model_pose": {"oneOf": [{"type": "null"}, _POSE]}},
            "anyOf": [{"properties": {"camera": _CAMERA}, "required": ["camera"]},
                      {"properties": {"model_pose": _POSE}, "required": ["model_pose"]}]}},
        "steps": {"type": "array", "items": {
            "type": "object", "required": ["title"],
            "properties": {"id": _ID, "title": _NAME, "note": {"type": "string"},
                           "view": {"type": ["string", "null"]},
                           "visible": {"oneOf": [{"type": "null"}, _NAMES]},
                           "cut_planes": {"type": "array", "items": _ID}}}},
        "model_pose": {"oneOf": [{"type": "null"}, _POSE]},
    },
}
"""JSON Schema of ``plan.json`` version 1 (cross-references such as a step's cut plane ids are
checked by :meth:`cardioplan.plan.Plan.validate`, which JSON Schema cannot express)."""
