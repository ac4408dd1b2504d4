#!/usr/bin/env python3
"""Prints a GGUF file as the Python `gguf` package (GGUFReader) sees it, as JSON, for the C++ tests:
{"version", "alignment", "data_offset", "metadata": {key: value}, "types": {key: "u32" | "array[string]"},
 "tensors": [{"name", "type", "shape", "offset", "bytes"}], "crc32": {name: crc of the tensor bytes}}.
Tensor types use ggml's spelling (q4_K, iq4_nl, f32); shapes are in ggml order; offsets are relative
to the data section. Usage: gguf_py_dump.py FILE [--crc]"""
import json
import sys
import zlib

from gguf import GGUFReader, GGUFValueType

TYPE_NAMES = {
    GGUFValueType.UINT8: "u8", GGUFValueType.INT8: "i8", GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16", GGUFValueType.UINT32: "u32", GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32", GGUFValueType.BOOL: "bool", GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array", GGUFValueType.UINT64: "u64", GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}


def ggml_type_name(qtype):
    name = qtype.name.lower()
    return name[:-2] + "_K" if name.endswith("_k") else name


def plain(v):
    """numpy scalars and containers -> plain Python values json can write."""
    if isinstance(v, list):
        return [plain(x) for x in v]
    if hasattr(v, "item"):
        return v.item()
    return v


def main():
    path = sys.argv[1]
    with_crc = "--crc" in sys.argv[2:]
    r = GGUFReader(path)
    out = {"version": None, "alignment": int(r.alignment), "data_offset": int(r.data_offset),
           "metadata": {}, "types": {}, "tensors": [], "crc32": {}}
    for key, field in r.fields.items():
        if key == "GGUF.version":
            out["version"] = plain(field.contents())
        if key.startswith("GGUF."):
            continue
        t = TYPE_NAMES[field.types[0]]
        if field.types[0] == GGUFValueType.ARRAY:
            # parts: key length, key, value type, element type, count, items... (the element type
            # is read from parts because field.types omits it for an empty array)
            t = "array[%s]" % TYPE_NAMES[GGUFValueType(int(field.parts[3][0]))]
        out["types"][key] = t
        out["metadata"][key] = plain(field.contents())
    for t in r.tensors:
        start = int(t.data_offset)
        out["tensors"].append({"name": t.name, "type": ggml_type_name(t.tensor_type),
                               "shape": [int(x) for x in t.shape], "offset": start - int(r.data_offset),
                               "bytes": int(t.n_bytes)})
        if with_crc:
            out["crc32"][t.name] = zlib.crc32(bytes(r.data[start:start + int(t.n_bytes)]))
    json.dump(out, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
