#!/usr/bin/env python3
"""Checks the OpenAPI document's examples: every operation has a description, a request
example (its body's, or its parameters' when it has no body) and a response example, and
every example (media types, parameters, schemas) is valid against its schema, formats included.
Usage: check_examples.py openapi/openapi.json"""
import json
import sys

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

doc = json.load(open(sys.argv[1]))
registry = Registry().with_resource("urn:doc", Resource.from_contents(doc, default_specification=DRAFT202012))
failures = []
checked = 0


def pointer(*parts):
    return "urn:doc#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check(value, *location):
    global checked
    checked += 1
    validator = Draft202012Validator({"$ref": pointer(*location)}, registry=registry, format_checker=FormatChecker())
    for error in validator.iter_errors(value):
        failures.append(f"{'/'.join(map(str, location))}: {error.message} (at {list(error.absolute_path)})")


def content_examples(content, *location):
    found = False
    for media_type, media in (content or {}).items():
        if "example" in media and "schema" in media:
            check(media["example"], *location, "content", media_type, "schema")
            found = True
    return found


for name, schema in doc.get("components", {}).get("schemas", {}).items():
    for i, example in enumerate(schema.get("examples", [])):
        check(example, "components", "schemas", name)

for path, item in doc["paths"].items():
    for method, operation in item.items():
        if method not in ("get", "post", "put", "patch", "delete"):
            continue
        label = f"{method.upper()} {path}"
        if not operation.get("description"):
            failures.append(f"{label}: no description")
        requested = False
        body = operation.get("requestBody")
        if body:
            requested = content_examples(body.get("content"), "paths", path, method, "requestBody")
            requested = requested or any("schema" in m and m["schema"].get("type") == "string" for m in body["content"].values())
        for i, parameter in enumerate(operation.get("parameters", [])):
            location = ("paths", path, method, "parameters", i)
            if "$ref" in parameter:  # a shared parameter (Idempotency-Key): its component
                name = parameter["$ref"].rsplit("/", 1)[-1]
                parameter = doc["components"]["parameters"][name]
                location = ("components", "parameters", name)
            for example in parameter.get("schema", {}).get("examples", []):
                check(example, *location, "schema")
                requested = requested or not body
        parameters = [
            doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p
            for p in operation.get("parameters", [])
        ]
        if not body and not any(p.get("required") for p in parameters):
            # Nothing to give: the request is the method and the path. (No example for the
            # optional Idempotency-Key: a fuzzer would send that one key with every body.)
            requested = True
        if not requested:
            failures.append(f"{label}: no request example")
        answered = False
        for status, response in operation["responses"].items():
            answered |= content_examples(response.get("content"), "paths", path, method, "responses", status)
            answered |= not response.get("content") and status.startswith("2")
        if not answered:
            failures.append(f"{label}: no response example")

for failure in failures:
    print(failure)
print(f"{checked} examples checked, {len(failures)} problems")
sys.exit(1 if failures else 0)
