"""The corpus: worst examples of earlier runs, per family and dtype, replayed first by the next run.

Stored as JSON (never pickle): ``{"lossfuzz_corpus": 1, "family": ..., "dtype": ..., "examples":
[{"inputs": [hex, ...], "labels": [hex or int, ...], "shape": [...]}, ...]}``; an example of a family with
parameters at other than their defaults also has ``"params": {"gamma": 0.5}`` (an example without the key
is at the defaults, so corpora written before parameters existed load unchanged). Conversion only; the
CLI reads and writes the files.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

import oracles

from ._files import parse_json
from ._values import float_hex, parse_value
from .strategies import Example, param_pairs

__all__ = ["CORPUS_VERSION", "MAX_EXAMPLE_DIMS", "MAX_EXAMPLE_ELEMENTS", "corpus_file_name", "corpus_to_json", "corpus_from_json", "example_to_json", "example_from_json"]

CORPUS_VERSION = 1
# Bounds of one stored example or worst case (corpus, baseline, journal): lossfuzz writes rows of at most 64
# classes and batches of 8 rows, so a larger one is not its own, and scoring it exactly could take hours.
MAX_EXAMPLE_DIMS = 2
MAX_EXAMPLE_ELEMENTS = 4096


def corpus_file_name(family: str, dtype: str) -> str:
    return f"{family}.{dtype}.json"


def example_to_json(e: Example) -> dict[str, Any]:
    """One example as JSON: inputs and soft labels in exact hex text, class indices as integers."""
    labels: list[Any] = (
        [int(v) for v in np.ravel(e.labels)] if e.labels.dtype.kind in "iu" else [float_hex(v) for v in np.ravel(e.labels)]
    )
    item: dict[str, Any] = {"inputs": [float_hex(v) for v in np.ravel(e.inputs)], "labels": labels, "shape": list(e.inputs.shape)}
    if e.params:
        item["params"] = dict(e.params)
    return item


def example_from_json(item: dict[str, Any], family: str, dtype: str) -> Example:
    """The inverse of :func:`example_to_json` (KeyError/ValueError/TypeError on malformed items)."""
    fam = oracles.get_family(family)
    fmt = oracles.resolve_format(dtype)
    shape = tuple(item["shape"])
    if len(shape) > MAX_EXAMPLE_DIMS or not all(isinstance(n, int) and 0 <= n <= MAX_EXAMPLE_ELEMENTS for n in shape):
        raise ValueError(f"shape {list(shape)[:MAX_EXAMPLE_DIMS + 1]} is not an example's (at most {MAX_EXAMPLE_DIMS}"
                         f" sizes of 0 to {MAX_EXAMPLE_ELEMENTS})")
    if len(item["inputs"]) > MAX_EXAMPLE_ELEMENTS or len(item["labels"]) > MAX_EXAMPLE_ELEMENTS:
        raise ValueError(f"an example with more than {MAX_EXAMPLE_ELEMENTS} values (lossfuzz writes at most a few hundred)")
    x = np.array([parse_value(v, "corpus input") for v in item["inputs"]], dtype=np.float64).reshape(shape)
    if fam.label_kind == "index":
        z = np.array(int(item["labels"][0]), dtype=np.int64)
    else:
        z = np.array([parse_value(v, "corpus label") for v in item["labels"]], dtype=np.float64).reshape(shape)
        z = z.astype(fmt.numpy_dtype)
    params = item.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"params {params!r} is not a mapping of parameter names to numbers")
    fam.check_params(params)  # a one-line ValueError for an unknown name or a value out of range
    return Example(x.astype(fmt.numpy_dtype), z, param_pairs(params))


def corpus_to_json(family: str, dtype: str, examples: list[Example]) -> str:
    items = [example_to_json(e) for e in examples]
    data = {"lossfuzz_corpus": CORPUS_VERSION, "family": family, "dtype": dtype, "examples": items}
    return json.dumps(data, indent=1) + "\n"


def corpus_from_json(text: str, where: str) -> tuple[str, str, list[Example]]:
    """Parse a corpus file; a truncated or corrupt one is a one-line ``ValueError`` naming ``where``."""
    data = parse_json(text, f"corpus file {where}", "delete it or restore it")
    if not isinstance(data, dict) or data.get("lossfuzz_corpus") != CORPUS_VERSION:
        raise ValueError(f"corpus file {where} is not a lossfuzz corpus (version {CORPUS_VERSION}); delete it or restore it")
    try:
        family, dtype = data["family"], data["dtype"]
        examples = [example_from_json(item, family, dtype) for item in data["examples"]]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"corpus file {where} is malformed ({type(exc).__name__}: {exc}); delete it or restore it") from None
    return family, dtype, examples
