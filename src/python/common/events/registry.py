"""The schema registry, in the repository: each event's JSON Schema per version, and
the compatibility rules a new version must keep.

`schemas/<subject>/<n>.json` is version n of the subject's payload as its model made it
(`model_json_schema`), committed, and shipped in the `ticketing-common` wheel so an
outside service can validate against it. A released version never changes; a new one
(`schema_version = n + 1` and an upcaster n → n+1 on the model) may only **add optional
fields** to every earlier one the stream may still hold (transitive, both ways: a reader
of n reads n-1…1 after upcasting, a reader of n-1 reads n ignoring what it adds):
no field removed or renamed, none retyped, none new and required, none made required.

    ./pants run src/python/common/events:registry            # check (what the test runs)
    ./pants run src/python/common/events:registry -- --write # commit the current versions

`--write` writes each model's current version; it refuses to change a committed
version's fields (that version is released: make a new one), unless `--force` (a
version no release has published yet).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common.events.contracts import EVENT_MODELS, Event

SCHEMAS = Path(__file__).parent / "schemas"
IN_REPO = Path("src/python/common/events/schemas")  # from the build root (`./pants run`)
COSMETIC = ("title", "description")  # words about a field, not its shape

Schema = dict[str, Any]


def generated(model: type[Event]) -> Schema:
    """The model's current version, as a JSON Schema (what a reader validates)."""
    schema = model.model_json_schema(mode="validation")
    return {"$id": f"{model.subject.value}/{model.schema_version}", **schema}


def path_of(subject: str, version: int) -> Path:
    return SCHEMAS / subject / f"{version}.json"


def committed(subject: str, version: int) -> Schema | None:
    path = path_of(subject, version)
    return json.loads(path.read_text()) if path.is_file() else None


def versions(subject: str) -> list[int]:
    """The versions committed for a subject, in order."""
    folder = SCHEMAS / subject
    return sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())


def text(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _shapeless(value: Any) -> Any:
    """The schema without its words (titles, descriptions): its shape alone."""
    if isinstance(value, dict):
        return {k: _shapeless(v) for k, v in value.items() if k not in COSMETIC}
    if isinstance(value, list):
        return [_shapeless(v) for v in value]
    return value


def _resolve(schema: Schema, root: Schema) -> Schema:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _shape(schema: Schema, root: Schema) -> str:
    """A field's type in words: `string`, `integer | null`, `object`, `string(date-time)`."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return " | ".join(sorted(_shape(option, root) for option in schema["anyOf"]))
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in sorted(schema["enum"], key=str))
    kind = str(schema.get("type", "any"))
    return f"{kind}({schema['format']})" if "format" in schema else kind


def incompatibilities(
    old: Schema, new: Schema, *, old_root: Schema | None = None, new_root: Schema | None = None,
    path: str = "",
) -> list[str]:  # fmt: skip
    """What makes `new` unreadable to a reader of `old` or the other way round: each
    problem names the field and the rule it breaks."""
    old_root, new_root = old_root or old, new_root or new
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    before, after = old.get("properties", {}), new.get("properties", {})
    was_required, required = set(old.get("required", [])), set(new.get("required", []))
    problems = []
    for name, field in before.items():
        where = f"{path}{name}"
        if name not in after:
            problems.append(
                f"`{where}` was removed (or renamed): readers of the older version need it"
            )
            continue
        was, now = _shape(field, old_root), _shape(after[name], new_root)
        if was != now:
            problems.append(f"`{where}` changed type from {was} to {now}")
        elif was == "object":
            problems += incompatibilities(
                field, after[name], old_root=old_root, new_root=new_root, path=f"{where}."
            )
    for name in sorted(required - was_required):
        where = f"{path}{name}"
        if name in before:
            problems.append(f"`{where}` became required: messages of the older version may lack it")
        else:
            problems.append(
                f"`{where}` is new and required: messages of the older version lack it (give it a default)"
            )
    return problems


def problems() -> list[str]:
    """Everything the gate refuses, each in words that say what to do."""
    found = []
    for subject, model in EVENT_MODELS.items():
        name, current = subject.value, model.schema_version
        have = versions(name)
        if have != list(range(1, current + 1)):
            found.append(
                f"{name}: schema_version is {current} but schemas/{name}/ holds versions "
                f"{have or 'none'} (each of 1..{current} is committed: run the registry with --write)"
            )
        missing = [n for n in range(1, current) if n not in model.upcasters]
        if missing:
            found.append(
                f"{name}: no upcaster from version(s) {missing} to the next (`upcasters` on the model)"
            )
        latest = committed(name, current)
        fresh = generated(model)
        if latest is not None and _shapeless(latest) != _shapeless(fresh):
            changes = incompatibilities(latest, fresh) or ["fields were added or constrained"]
            found.append(
                f"{name}: the model no longer matches its committed version {current} "
                f"({'; '.join(changes)}). A released version never changes: make it version "
                f"{current + 1} (schema_version = {current + 1}, an upcaster {current} → "
                f"{current + 1}) and run the registry with --write"
            )
        elif latest is not None and latest != fresh:
            found.append(
                f"{name}: schemas/{name}/{current}.json is out of date (its words): run the registry with --write"
            )
        schemas = {n: committed(name, n) for n in have}
        for older in have:
            for newer in (n for n in have if n > older):
                for problem in incompatibilities(schemas[older], schemas[newer]):  # type: ignore[arg-type]
                    found.append(
                        f"{name}: version {newer} is not compatible with version {older}: {problem}"
                    )
    return found


def write(folder: Path, force: bool = False) -> list[str]:
    """Write each model's current version into `folder` (the repository's schemas);
    refuse to change a committed version's shape (unless `force`). Returns what it
    wrote or refused."""
    said = []
    for subject, model in EVENT_MODELS.items():
        fresh = generated(model)
        path = folder / subject.value / f"{model.schema_version}.json"
        old = json.loads(path.read_text()) if path.is_file() else None
        if old == fresh:
            continue
        if old is not None and _shapeless(old) != _shapeless(fresh) and not force:
            said.append(
                f"refused: {path.relative_to(folder)} is committed with other fields (a released version never changes: bump schema_version, or --force if no release published it)"
            )
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text(fresh))
        said.append(f"wrote {path.relative_to(folder)}")
    return said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="commit the current versions")
    parser.add_argument(
        "--force", action="store_true", help="with --write: change a version no release published"
    )
    args = parser.parse_args()
    if args.write:
        for line in write(IN_REPO if IN_REPO.parent.is_dir() else SCHEMAS, args.force):
            print(line)
        return  # checked by the test command (the files just written are not here yet)
    found = problems()
    for problem in found:
        print(problem, file=sys.stderr)
    print(f"{len(EVENT_MODELS)} subjects, {len(found)} problem(s)")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
