"""Write the JSON Schema of the OCSF classes streams.formats emits, from the OCSF schema's source.

The vendored file beside this one (ocsf-1.6.0-classes.schema.json) is this script's output, so
the tests validate offline. To rebuild it, or for another release, from a checkout of
github.com/ocsf/ocsf-schema at that release's tag:

    python tests/ocsf/build_schema.py /path/to/ocsf-schema 3001 3002 3004 3005 > \
        tests/ocsf/ocsf-1.6.0-classes.schema.json

What it reads: dictionary.json (attribute types, enums), objects/*.json and events/**/*.json
(each with its `extends` chain). Per class: every attribute of the class and its parents, typed;
the `required` ones required; enumerated `*_id` attributes limited to their values; class_uid,
category_uid and type_uid fixed to the class; unknown attributes refused (a misspelt name fails).
Objects likewise, with their `at_least_one` and `just_one` constraints. Profile attributes are
allowed but never required; `$include`d profile files are not merged (we emit none of theirs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCALARS = {
    "boolean_t": {"type": "boolean"},
    "float_t": {"type": "number"},
    "integer_t": {"type": "integer"},
    "long_t": {"type": "integer"},
    "json_t": {},
    "object": {"type": "object"},
}


class Schema:
    def __init__(self, root: Path) -> None:
        self.root = root
        dictionary = json.loads((root / "dictionary.json").read_text())
        self.attributes: dict[str, Any] = dictionary["attributes"]
        self.types: dict[str, Any] = dictionary["types"]["attributes"]
        self.objects = {
            json.loads(path.read_text())["name"]: json.loads(path.read_text())
            for path in (root / "objects").glob("*.json")
        }
        self.events = {}
        for path in (root / "events").rglob("*.json"):
            event = json.loads(path.read_text())
            self.events[event["name"]] = event
        self.categories = json.loads((root / "categories.json").read_text())["attributes"]
        self.defs: dict[str, Any] = {}

    def _chain(self, item: dict[str, Any], table: dict[str, Any]) -> list[dict[str, Any]]:
        chain = [item]
        while item.get("extends") and item["extends"] in table:
            item = table[item["extends"]]
            chain.append(item)
        return chain[::-1]  # the root first, so a child's entries win

    def _merged(self, chain: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for item in chain:
            for name, spec in item.get("attributes", {}).items():
                if name.startswith("$"):
                    continue
                before = merged.get(name, {})
                merged[name] = {**before, **spec}
                if "enum" in before and "enum" in spec:  # a class adds to its parent's values
                    merged[name]["enum"] = {**before["enum"], **spec["enum"]}
        return merged

    def _scalar(self, type_name: str) -> dict[str, Any]:
        if type_name in SCALARS:
            return dict(SCALARS[type_name])
        spec = self.types.get(type_name, {})
        base = spec.get("type")
        if type_name == "string_t" or base == "string_t":
            return {"type": "string"}
        if base:
            return self._scalar(base)
        return {}

    def _attribute(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        entry = {**self.attributes.get(name, {}), **spec}
        type_name = entry.get("type", "string_t")
        if type_name == "object":  # OCSF's open object: any keys (unmapped, data)
            schema: dict[str, Any] = {"type": "object"}
        elif type_name in self.objects:
            self._object(type_name)
            schema = {"$ref": f"#/$defs/{type_name}"}
        else:
            schema = self._scalar(type_name)
            enum = {**self.attributes.get(name, {}).get("enum", {}), **spec.get("enum", {})}
            if enum and schema.get("type") == "integer":
                schema["enum"] = sorted(int(value) for value in enum)
        if entry.get("is_array"):
            schema = {"type": "array", "items": schema}
        return schema

    def _properties(self, attributes: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        properties = {name: self._attribute(name, spec) for name, spec in attributes.items()}
        required = sorted(
            name
            for name, spec in attributes.items()
            if spec.get("requirement") == "required" and not spec.get("profile")
        )
        return properties, required

    def _object(self, name: str) -> None:
        if name in self.defs:
            return
        self.defs[name] = {}  # reserve it: objects refer to one another in cycles
        chain = self._chain(self.objects[name], self.objects)
        properties, required = self._properties(self._merged(chain))
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        constraints = chain[-1].get("constraints") or {}
        for item in chain[::-1]:
            if item.get("constraints"):
                constraints = item["constraints"]
                break
        if "at_least_one" in constraints:
            schema["anyOf"] = [{"required": [k]} for k in constraints["at_least_one"]]
        if "just_one" in constraints:
            schema["oneOf"] = [{"required": [k]} for k in constraints["just_one"]]
        self.defs[name] = schema

    def event_class(self, class_uid: int) -> dict[str, Any]:
        for event in self.events.values():
            chain = self._chain(event, self.events)
            category = next((e["category"] for e in chain[::-1] if e.get("category")), None)
            if category not in self.categories or "uid" not in event:
                continue
            category_uid = self.categories[category]["uid"]
            if category_uid * 1000 + event["uid"] != class_uid:
                continue
            attributes = self._merged(chain)
            properties, required = self._properties(attributes)
            activities = sorted(int(k) for k in properties["activity_id"]["enum"])
            properties["class_uid"] = {"const": class_uid}
            properties["category_uid"] = {"const": category_uid}
            properties["type_uid"] = {"enum": [class_uid * 100 + a for a in activities]}
            return {
                "title": f"{event['caption']} [{class_uid}]",
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            }
        raise LookupError(f"no class {class_uid}")


def main(root: str, *class_uids: str) -> None:
    schema = Schema(Path(root))
    version = json.loads((Path(root) / "version.json").read_text())["version"]
    classes = {uid: schema.event_class(int(uid)) for uid in class_uids}
    print(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": f"OCSF {version}: the classes Activity Monitor emits",
                "ocsf_version": version,
                "classes": classes,
                "$defs": dict(sorted(schema.defs.items())),
            },
            indent=1,
            sort_keys=False,
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
