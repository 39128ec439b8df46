"""Build the API documentation with pdoc: ``python docs/build.py [OUT]`` (default docs/_build).

deepreco.calo and deepreco.toys import their public names on first use (so that ``deepreco --help`` does not
load torch); pdoc reads a package's names from its namespace, so they are resolved first. Any warning of pdoc
(a name that does not resolve, a docstring it cannot read) fails the build.
"""

import importlib
import sys
import warnings
from pathlib import Path

import pdoc

LAZY = ("deepreco.calo", "deepreco.toys")


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "_build")
    for name in LAZY:
        package = importlib.import_module(name)
        for public in package.__all__:
            setattr(package, public, getattr(package, public))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc("deepreco", output_directory=out)
    problems = [w for w in caught if "pdoc" in w.filename]
    for w in problems:
        print(f"docs: {w.message}", file=sys.stderr)
    pages = len(list(out.rglob("*.html")))
    print(f"docs: {pages} pages in {out}" + (f", {len(problems)} warnings" if problems else ""))
    return 1 if problems or pages == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
