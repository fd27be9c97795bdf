#!/usr/bin/env python3
"""Writes one wheel (PEP 427, the binary distribution format) from files.

    make_wheel.py --out DIR --name NAME --version V --tag PY-ABI-PLATFORM
                  [--summary TEXT] [--requires REQ]... [--requires-python SPEC]
                  SOURCE=ARCNAME...

The wheel is a zip of the files under their archive names plus
NAME-V.dist-info/{METADATA,WHEEL,RECORD}; RECORD lists every file with its
sha256 and size. The python/CMakeLists.txt target memkv_wheels calls it: the
project needs no PyPI package to build its wheels. The zip is reproducible
(fixed timestamps, sorted names).
"""

import argparse
import base64
import hashlib
import os
import sys
import zipfile

EPOCH = (1980, 1, 1, 0, 0, 0)


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--tag", required=True, help="e.g. py3-none-any")
    parser.add_argument("--summary", default="")
    parser.add_argument("--requires", action="append", default=[])
    parser.add_argument("--requires-python", default=">=3.8")
    parser.add_argument("files", nargs="+", metavar="SOURCE=ARCNAME")
    args = parser.parse_args()

    name = args.name.replace("-", "_")
    dist_info = f"{name}-{args.version}.dist-info"
    pure = args.tag.endswith("-none-any")
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {args.name}",
        f"Version: {args.version}",
        f"Summary: {args.summary}",
        f"Requires-Python: {args.requires_python}",
    ] + [f"Requires-Dist: {r}" for r in args.requires]
    wheel = [
        "Wheel-Version: 1.0",
        "Generator: memkv python/make_wheel.py",
        f"Root-Is-Purelib: {'true' if pure else 'false'}",
        f"Tag: {args.tag}",
    ]

    entries = {}
    for spec in args.files:
        source, sep, arcname = spec.partition("=")
        if not sep or not arcname or arcname.startswith("/") or ".." in arcname.split("/"):
            parser.error(f"not SOURCE=ARCNAME: {spec}")
        with open(source, "rb") as f:
            entries[arcname] = (f.read(), os.stat(source).st_mode & 0o777 or 0o644)
    entries[f"{dist_info}/METADATA"] = (("\n".join(metadata) + "\n").encode(), 0o644)
    entries[f"{dist_info}/WHEEL"] = (("\n".join(wheel) + "\n").encode(), 0o644)
    record = [f"{a},{record_hash(d)},{len(d)}" for a, (d, _) in sorted(entries.items())]
    record.append(f"{dist_info}/RECORD,,")
    entries[f"{dist_info}/RECORD"] = (("\n".join(record) + "\n").encode(), 0o644)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{name}-{args.version}-{args.tag}.whl")
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        # dist-info last, as the spec recommends.
        for arcname in sorted(entries, key=lambda a: (a.startswith(dist_info), a)):
            data, mode = entries[arcname]
            info = zipfile.ZipInfo(arcname, EPOCH)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    os.replace(tmp, path)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
