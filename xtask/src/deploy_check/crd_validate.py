# Validates the custom resources of rendered manifests against the vendored CRD schemas of
# xtask/schemas/ (see deploy_check/crd_schemas.rs, which runs this with the gate's venv).
#
#   python crd_validate.py SCHEMA_DIR RENDER.yaml...
#
# Prints one line per resource: `CHECKED <apiVersion> <kind> <file> <name>` or
# `ERROR <file> did not validate for resource <kind>/<name>: <path>: <message>`.
#
# Strict, as `kubectl apply` with server-side field validation is: an object schema that lists
# `properties` rejects any other field, unless it says x-kubernetes-preserve-unknown-fields or
# has its own additionalProperties.
import pathlib
import sys

import jsonschema
import yaml


def strict(schema):
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items() if not key.startswith("x-kubernetes-")}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def load_schemas(directory):
    schemas = {}
    for path in sorted(pathlib.Path(directory).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            schemas[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return schemas


def main():
    schemas = load_schemas(sys.argv[1])
    failed = False
    for filename in sys.argv[2:]:
        with open(filename) as f:
            docs = [doc for doc in yaml.safe_load_all(f) if doc]
        for doc in docs:
            key = (doc.get("apiVersion"), doc.get("kind"))
            validator = schemas.get(key)
            if validator is None:
                continue
            name = doc.get("metadata", {}).get("name", "?")
            errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
            for error in errors:
                path = ".".join(str(part) for part in error.path)
                print(f"ERROR {filename} did not validate for resource {key[1]}/{name}: {path}: {error.message}")
                failed = True
            if not errors:
                print(f"CHECKED {key[0]} {key[1]} {filename} {name}")
    sys.exit(1 if failed else 0)


main()
