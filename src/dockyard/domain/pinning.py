"""Bases built in the same push are named by image id in the Dockerfile that is built (pure).

A Dockerfile that builds ``FROM crigen/nodejs:8``, where ``crigen/nodejs`` is the header name of
another Dockerfile of the same push, is built with that FROM line pointing at the image just
built, by its content id. No tag is lent in the shared engine, so a build never changes what a
name means outside its own app. A Dockerfile built several ways (compose ``build:``) is named by
its header name in one of them only (``images.named_images``): the builder passes that one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dockyard.domain.images import ImageSpec
from dockyard.domain.references import parse_reference

_FROM = re.compile(r"(?i)^(\s*FROM[ \t]+(?:--\S+[ \t]+)*)(\S+)")


def base_pins(spec: ImageSpec, built: Mapping[str, tuple[ImageSpec, str]]) -> dict[str, str]:
    """For each FROM of ``spec`` that names an image of ``built`` (dockerfile -> (spec, image
    id)), the word as written and the image id it must be built from."""
    pins: dict[str, str] = {}
    for base in spec.bases:
        try:
            ref = parse_reference(base)
        except ValueError:
            continue
        for other, image_id in built.values():
            if other is not spec and other.declared_name == ref.name and ref.tag in (None, "latest", other.version):
                pins[base] = image_id
    return pins


def pin_bases(text: str, pins: Mapping[str, str]) -> str:
    """``text`` with every ``FROM <word>`` whose word is a key of ``pins`` replaced by its value."""
    if not pins:
        return text
    out = []
    for line in text.splitlines(keepends=True):
        match = _FROM.match(line)
        if match and match.group(2) in pins:
            line = match.group(1) + pins[match.group(2)] + line[match.end():]
        out.append(line)
    return "".join(out)
